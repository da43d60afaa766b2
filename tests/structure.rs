//! The structure stays as drawn: every module of the library imports only modules of lower
//! layers, in the order `docs/ARCHITECTURE.md` lists them (its `layers` block is the one source
//! of that order). A new module must be given a layer there; an import upwards or sideways fails
//! here with the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module → layer` from the block between `<!-- layers -->` and `<!-- /layers -->`: lines of
/// `N: module module …`.
fn layers() -> HashMap<String, u32> {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let start = doc.find("<!-- layers -->").expect("a <!-- layers --> block in docs/ARCHITECTURE.md");
    let end = doc.find("<!-- /layers -->").expect("the block's end");
    let mut out = HashMap::new();
    for line in doc[start..end].lines() {
        let Some((n, mods)) = line.split_once(':') else { continue };
        let Ok(n) = n.trim().trim_start_matches("layer").trim().parse::<u32>() else { continue };
        for m in mods.split_whitespace() {
            assert!(out.insert(m.to_string(), n).is_none(), "{m} is given two layers");
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The library's top-level modules (those `src/lib.rs` declares).
fn lib_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod ").or_else(|| l.trim().strip_prefix("mod ")))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

/// Every `crate::module` named in code (not in comments) of a file, with its line.
fn references(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = match code.find(" //") {
            Some(k) => &code[..k],
            None => code,
        };
        let mut rest = code;
        while let Some(k) = rest.find("crate::") {
            let after = &rest[k + 7..];
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.push((i + 1, name));
            }
            rest = &rest[k + 7..];
        }
    }
    out
}

#[test]
fn every_module_imports_only_modules_below_it() {
    let layers = layers();
    let modules = lib_modules();
    for m in &modules {
        assert!(layers.contains_key(m), "module {m} has no layer in docs/ARCHITECTURE.md");
    }
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let from = first.trim_end_matches(".rs").to_string();
        // The binary's files (main.rs and its subcommands) may use anything of the library.
        let Some(&from_layer) = layers.get(&from) else { continue };
        let text = std::fs::read_to_string(&f).unwrap();
        for (line, to) in references(&text) {
            if to == from || !modules.contains(&to) {
                continue;
            }
            let to_layer = layers[&to];
            if to_layer >= from_layer {
                wrong.push(format!(
                    "src/{}:{line}: {from} (layer {from_layer}) imports {to} (layer {to_layer})",
                    rel.display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the documented order:\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    let refs = references(
        "use crate::api::AppState;\n// crate::app in a comment\nlet x = crate::registry::X; // crate::sim\n",
    );
    assert_eq!(refs, vec![(1, "api".to_string()), (3, "registry".to_string())]);
}
