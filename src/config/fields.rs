//! Reading typed fields out of a spanned TOML table while collecting every error, so that
//! one pass over a file reports all of its problems with their lines (serde stops at the first).

use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr;

use toml_edit::{Item, TableLike, Value};

use super::source::{ConfigError, Loc, Source};

#[derive(Clone)]
struct Field<'a> {
    item: &'a Item,
    src: &'a Source,
    key_span: Option<Range<usize>>,
    from_defaults: bool,
}

impl Field<'_> {
    fn loc(&self) -> Loc {
        Loc { file: self.src.path.clone(), line: self.src.line(self.item.span().or(self.key_span.clone())) }
    }
}

/// The fields of one table (plus site defaults under it), taken one by one.
///
/// Every key the reader asks about (`has`, `str`, `num`, `error`, …) is recorded, in the order
/// first asked: those are the table's known keys, so `finish` reports the others as unknown and
/// suggests the nearest known one. A reader therefore asks about each of its keys on every path
/// (`has` is enough), not only on the paths where it uses the value.
pub(crate) struct Fields<'a> {
    ctx: String,
    at: Loc,
    map: BTreeMap<String, Field<'a>>,
    /// Keys asked about, in the order first asked.
    known: Vec<String>,
    pub errs: Vec<ConfigError>,
}

impl<'a> Fields<'a> {
    /// `ctx` qualifies field names in errors (`camera[cp-01]`); `at` is where the table starts.
    pub fn new(ctx: impl Into<String>, at: Loc, src: &'a Source, table: &'a dyn TableLike) -> Self {
        let mut map = BTreeMap::new();
        for (k, item) in table.iter() {
            let key_span = table.key(k).and_then(|k| k.span());
            map.insert(k.to_string(), Field { item, src, key_span, from_defaults: false });
        }
        Self { ctx: ctx.into(), at, map, known: Vec::new(), errs: Vec::new() }
    }

    /// Adds the site defaults for keys the table does not set. Keys in one `group` go together:
    /// a table that sets any of them takes none of that group from the defaults.
    pub fn with_defaults(mut self, src: &'a Source, defaults: Option<&'a dyn TableLike>, groups: &[&[&str]]) -> Self {
        let Some(defaults) = defaults else { return self };
        for (k, item) in defaults.iter() {
            if self.map.contains_key(k) {
                continue;
            }
            let shadowed = groups
                .iter()
                .any(|g| g.contains(&k) && g.iter().any(|m| self.map.contains_key(*m) && !self.map[*m].from_defaults));
            if shadowed {
                continue;
            }
            let key_span = defaults.key(k).and_then(|k| k.span());
            self.map.insert(k.to_string(), Field { item, src, key_span, from_defaults: true });
        }
        self
    }

    pub fn set_ctx(&mut self, ctx: impl Into<String>) {
        self.ctx = ctx.into();
    }

    /// Where the table starts.
    pub fn at(&self) -> &Loc {
        &self.at
    }

    /// Records `key` as one the reader knows.
    fn ask(&mut self, key: &str) {
        if !self.known.iter().any(|k| k == key) {
            self.known.push(key.to_string());
        }
    }

    fn name_of(&self, key: &str, f: &Field) -> String {
        if f.from_defaults { format!("defaults.{key}") } else { format!("{}.{key}", self.ctx) }
    }

    /// Whether the table (or the defaults) sets `key`.
    pub fn has(&mut self, key: &str) -> bool {
        self.ask(key);
        self.map.contains_key(key)
    }

    /// Whether the table itself (not the defaults) sets `key`.
    pub fn has_own(&mut self, key: &str) -> bool {
        self.ask(key);
        self.map.get(key).is_some_and(|f| !f.from_defaults)
    }

    /// Location of a field, or of the table when the field is absent.
    pub fn loc_of(&mut self, key: &str) -> Loc {
        self.ask(key);
        self.map.get(key).map(|f| f.loc()).unwrap_or_else(|| self.at.clone())
    }

    /// Records a problem with a field; located at the field when it is present.
    pub fn error(&mut self, key: &str, problem: impl Into<String>) {
        self.ask(key);
        let (loc, field) = match self.map.get(key) {
            Some(f) => (f.loc(), self.name_of(key, f)),
            None => (self.at.clone(), format!("{}.{key}", self.ctx)),
        };
        self.errs.push(ConfigError::at(&loc, field, problem));
    }

    fn take_value(&mut self, key: &str, want: &str) -> Option<(Field<'a>, &'a Value)> {
        self.ask(key);
        let f = self.map.get(key)?.clone();
        match f.item.as_value() {
            Some(v) => Some((f, v)),
            None => {
                let got = f.item.type_name();
                self.error(key, format!("expected {want}, found a {got}"));
                None
            }
        }
    }

    fn wrong_type(&mut self, key: &str, want: &str, v: &Value) {
        let text = self.map.get(key).and_then(|f| v.span().and_then(|s| f.src.text().get(s))).unwrap_or("").trim();
        let text: String = text.chars().take(40).collect();
        self.error(key, format!("expected {want}, found {} {text}", v.type_name()));
    }

    pub fn missing(&mut self, key: &str, what: &str) {
        self.ask(key);
        let field = format!("{}.{key}", self.ctx);
        self.errs.push(ConfigError::at(&self.at, field, format!("missing; {what}")));
    }

    pub fn str(&mut self, key: &str) -> Option<String> {
        let (_, v) = self.take_value(key, "a string")?;
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong_type(key, "a string", v);
                None
            }
        }
    }

    pub fn req_str(&mut self, key: &str, what: &str) -> Option<String> {
        if !self.has(key) {
            self.missing(key, what);
            return None;
        }
        self.str(key)
    }

    /// A string parsed into `T`; the parser's message becomes the problem.
    pub fn parse<T: FromStr<Err = String>>(&mut self, key: &str) -> Option<T> {
        let s = self.str(key)?;
        match s.parse::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    pub fn req_parse<T: FromStr<Err = String>>(&mut self, key: &str, what: &str) -> Option<T> {
        if !self.has(key) {
            self.missing(key, what);
            return None;
        }
        self.parse(key)
    }

    /// A number (integer or float) that `check` accepts.
    pub fn num(&mut self, key: &str, check: impl Fn(f64) -> Result<(), String>) -> Option<f64> {
        let (_, v) = self.take_value(key, "a number")?;
        let n = match v {
            Value::Float(f) => *f.value(),
            Value::Integer(i) => *i.value() as f64,
            _ => {
                self.wrong_type(key, "a number", v);
                return None;
            }
        };
        if !n.is_finite() {
            self.error(key, format!("{n} is not a finite number"));
            return None;
        }
        match check(n) {
            Ok(()) => Some(n),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    pub fn req_num(&mut self, key: &str, what: &str, check: impl Fn(f64) -> Result<(), String>) -> Option<f64> {
        if !self.has(key) {
            self.missing(key, what);
            return None;
        }
        self.num(key, check)
    }

    pub fn int(&mut self, key: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        let (_, v) = self.take_value(key, "an integer")?;
        let Some(n) = v.as_integer() else {
            self.wrong_type(key, "an integer", v);
            return None;
        };
        if !range.contains(&n) {
            self.error(key, format!("{n} is out of range {}..={}", range.start(), range.end()));
            return None;
        }
        Some(n)
    }

    pub fn bool(&mut self, key: &str) -> Option<bool> {
        let (_, v) = self.take_value(key, "true or false")?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(key, "true or false", v);
                None
            }
        }
    }

    /// An array of exactly `n` numbers, each accepted by `check`.
    pub fn num_list(&mut self, key: &str, n: usize, check: impl Fn(f64) -> Result<(), String>) -> Option<Vec<f64>> {
        let want = format!("an array of {n} numbers");
        let (_, v) = self.take_value(key, &want)?;
        let Some(arr) = v.as_array() else {
            self.wrong_type(key, &want, v);
            return None;
        };
        if arr.len() != n {
            self.error(key, format!("{} items; expected {n}", arr.len()));
            return None;
        }
        let mut out = Vec::with_capacity(n);
        for (i, item) in arr.iter().enumerate() {
            let x = match item {
                Value::Float(f) => *f.value(),
                Value::Integer(i) => *i.value() as f64,
                _ => {
                    self.error(key, format!("item {}: expected a number, found {}", i + 1, item.type_name()));
                    return None;
                }
            };
            if let Err(e) = check(x) {
                self.error(key, format!("item {}: {e}", i + 1));
                return None;
            }
            out.push(x);
        }
        Some(out)
    }

    /// An array of strings.
    pub fn str_list(&mut self, key: &str) -> Option<Vec<String>> {
        let (_, v) = self.take_value(key, "an array of strings")?;
        let Some(arr) = v.as_array() else {
            self.wrong_type(key, "an array of strings", v);
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in arr.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    self.error(key, format!("item {}: expected a string, found {}", i + 1, item.type_name()));
                    return None;
                }
            }
        }
        Some(out)
    }

    /// An outline: an array of at least three `[lon, lat]` pairs (WGS84 degrees).
    pub fn points(&mut self, key: &str) -> Option<Vec<[f64; 2]>> {
        let want = "an array of [lon, lat] pairs";
        let (_, v) = self.take_value(key, want)?;
        let Some(arr) = v.as_array() else {
            self.wrong_type(key, want, v);
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in arr.iter().enumerate() {
            let pair: Option<Vec<f64>> = item
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_float().or_else(|| x.as_integer().map(|i| i as f64))).collect());
            match pair.as_deref() {
                Some(&[lon, lat]) if (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat) => {
                    out.push([lon, lat])
                }
                _ => {
                    self.error(
                        key,
                        format!("point {}: expected [lon, lat] with lon in -180..180, lat in -90..90", i + 1),
                    );
                    return None;
                }
            }
        }
        if out.len() < 3 {
            self.error(key, format!("{} points; an outline needs at least 3", out.len()));
            return None;
        }
        Some(out)
    }

    /// Reports every key of the table itself that the reader never asked about (defaults are
    /// checked on their own), with the nearest known key or the list of them.
    pub fn finish(mut self) -> Vec<ConfigError> {
        let unknown: Vec<String> = self
            .map
            .iter()
            .filter(|(k, f)| !f.from_defaults && !self.known.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        let known: Vec<&str> = self.known.iter().map(String::as_str).collect();
        let msgs: Vec<(String, String)> = unknown
            .into_iter()
            .map(|k| {
                let m = unknown_field_message(&k, &known);
                (k, m)
            })
            .collect();
        for (k, msg) in msgs {
            self.error(&k, msg);
        }
        self.errs
    }
}

/// "unknown field; did you mean `x`?" with the nearest known name when one is close.
pub(crate) fn unknown_field_message(key: &str, known: &[&str]) -> String {
    let best = known.iter().map(|k| (edit_distance(key, k), *k)).min();
    match best {
        Some((d, k)) if d <= 3 || k.starts_with(key) => format!("unknown field; did you mean `{k}`?"),
        _ => format!("unknown field; known fields: {}", known.join(", ")),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known keys are those the reader asked about, in that order; `has` is enough.
    #[test]
    fn known_keys_are_the_keys_asked_about() {
        let src =
            Source::parse(std::path::Path::new("t.toml"), "[t]\na = 1\nbee = 3\nzzzzzz = 4\n".into()).ok().unwrap();
        let table = src.doc.get("t").and_then(|i| i.as_table_like()).unwrap();
        let mut f = Fields::new("t", Loc { file: src.path.clone(), line: 1 }, &src, table);
        assert_eq!(f.int("a", 0..=9), Some(1));
        assert!(!f.has("c"));
        assert!(!f.has("be"));
        let errs: Vec<String> = f.finish().iter().map(|e| format!("{}: {}", e.field, e.problem)).collect();
        assert_eq!(
            errs,
            ["t.bee: unknown field; did you mean `be`?", "t.zzzzzz: unknown field; known fields: a, c, be",]
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("bearing", "bearing_deg"), 4);
        assert!(unknown_field_message("bearing", &["bearing_deg", "lat"]).contains("bearing_deg"));
        assert!(unknown_field_message("zzzz", &["bearing_deg", "lat"]).contains("known fields"));
    }
}
