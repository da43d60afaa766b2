//! CTC decoding constrained by the plate grammar, and the CTC sequence likelihood used to fuse
//! two recognisers.
//!
//! Recogniser outputs are first folded onto the plate alphabet (`plate::alphabet`): lower case
//! onto upper case, `O`/`I` onto `0`/`1`, separators (`·`, `-`, space) onto blank. The decoder
//! then finds the single best path that spells a plate of the given template — the best
//! grammatical reading, not the best reading made grammatical afterwards.

// Index loops mirror the recurrences they implement.
#![allow(clippy::needless_range_loop)]

use crate::plate::{self, Class};

/// Per-frame log-probabilities over blank and the plate alphabet.
#[derive(Debug, Clone)]
pub struct PlateLogits {
    /// log P(blank) per frame.
    pub blank: Vec<f32>,
    /// log P(char) per frame, `alphabet().len()` per row.
    pub chars: Vec<Vec<f32>>,
    /// log P(a CJK character outside the plate alphabet) per frame (empty when unknown).
    pub other_cjk: Vec<f32>,
}

impl PlateLogits {
    /// The same frames with every CJK character outside the plate alphabet read as `c`: where the
    /// layout fixes a character (the 警 that ends a white police plate), a recogniser that
    /// mistakes it for a lookalike (酱, 擎, 华, 营) still spells it.
    pub fn with_other_cjk_as(&self, c: char) -> PlateLogits {
        let mut l = self.clone();
        let Some(k) = plate::alphabet().iter().position(|&a| a == c) else { return l };
        for (row, o) in l.chars.iter_mut().zip(&self.other_cjk) {
            row[k] = (row[k].exp() + o.exp()).ln();
        }
        l
    }
}

/// Folds a recogniser's output rows (probabilities or logits, `dict[k-1]` is class `k`, class 0
/// is blank) onto the plate alphabet.
pub fn fold(rows: &[f32], classes: usize, dict: &[String]) -> PlateLogits {
    let alpha = plate::alphabet();
    let index: std::collections::HashMap<char, usize> = alpha.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    // Where each recogniser class goes: None = nowhere, Some(usize::MAX) = blank,
    // Some(usize::MAX - 1) = a CJK character outside the alphabet.
    const OTHER_CJK: usize = usize::MAX - 1;
    let target: Vec<Option<usize>> = (0..classes)
        .map(|k| {
            if k == 0 {
                return Some(usize::MAX);
            }
            let s = dict.get(k - 1)?;
            let mut it = s.chars();
            let (Some(c), None) = (it.next(), it.next()) else {
                return if s.trim().is_empty() { Some(usize::MAX) } else { None };
            };
            if matches!(c, '·' | '-' | ' ' | '•' | '.' | '_') {
                return Some(usize::MAX);
            }
            let c = c.to_ascii_uppercase();
            let c = match c {
                'O' => '0',
                'I' => '1',
                c => c,
            };
            match index.get(&c) {
                Some(&i) => Some(i),
                None if ('\u{4e00}'..='\u{9fff}').contains(&c) => Some(OTHER_CJK),
                None => None,
            }
        })
        .collect();
    let frames = rows.len() / classes.max(1);
    let mut blank = Vec::with_capacity(frames);
    let mut chars = Vec::with_capacity(frames);
    let mut other_cjk = Vec::with_capacity(frames);
    for t in 0..frames {
        let row = &rows[t * classes..(t + 1) * classes];
        let probs = softmax_if_needed(row);
        let (mut b, mut o) = (0f32, 0f32);
        let mut cs = vec![0f32; alpha.len()];
        for (k, p) in probs.iter().enumerate() {
            match target[k] {
                Some(usize::MAX) => b += p,
                Some(OTHER_CJK) => o += p,
                Some(i) => cs[i] += p,
                None => {}
            }
        }
        blank.push((b + 1e-9).ln());
        other_cjk.push((o + 1e-9).ln());
        chars.push(cs.into_iter().map(|p| (p + 1e-9).ln()).collect());
    }
    PlateLogits { blank, chars, other_cjk }
}

fn softmax_if_needed(row: &[f32]) -> Vec<f32> {
    let sum: f32 = row.iter().sum();
    if row.iter().all(|v| *v >= 0.0) && (sum - 1.0).abs() < 0.05 {
        return row.to_vec();
    }
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// The best path spelling a string whose position `k` is one of `allowed[k]` (alphabet indices).
/// Returns the string, its path log-probability and each character's best frame probability.
pub fn best_path(l: &PlateLogits, allowed: &[Vec<usize>]) -> Option<(String, f32, Vec<f32>)> {
    best_path_frames(l, allowed).map(|(text, p, conf, _)| (text, p, conf))
}

/// [`best_path`], and the first frame at which each character is emitted (where it stands in
/// the picture: frames run left to right).
pub fn best_path_frames(l: &PlateLogits, allowed: &[Vec<usize>]) -> Option<(String, f32, Vec<f32>, Vec<usize>)> {
    const NEG: f32 = f32::NEG_INFINITY;
    let alpha = plate::alphabet();
    let t_len = l.blank.len();
    let n = allowed.len();
    if t_len < n || n == 0 {
        return None;
    }
    let a = alpha.len();
    // s[k][c]: k characters emitted, the last is c and this frame emits it; b[k]: this frame blank.
    // Back-pointers per frame: for s, where it came from: 0 = same state, 1 = blank of k-1, 2+c' = s[k-1][c'].
    let mut s = vec![vec![NEG; a]; n + 1];
    let mut b = vec![NEG; n + 1];
    let mut bp_s: Vec<Vec<Vec<u16>>> = Vec::with_capacity(t_len);
    let mut bp_b: Vec<Vec<u16>> = Vec::with_capacity(t_len);
    for t in 0..t_len {
        let mut ns = vec![vec![NEG; a]; n + 1];
        let mut nb = vec![NEG; n + 1];
        let mut bs = vec![vec![u16::MAX; a]; n + 1];
        let mut bb = vec![u16::MAX; n + 1];
        for k in 0..=n {
            // Blank: from blank or from any s[k][c]. (k = 0 at t = 0: start.)
            let (mut best, mut from) = if t == 0 && k == 0 { (0.0, 0u16) } else { (b[k], 0u16) };
            for c in 0..a {
                if s[k][c] > best {
                    best = s[k][c];
                    from = 1 + c as u16;
                }
            }
            if best > NEG {
                nb[k] = best + l.blank[t];
                bb[k] = from;
            }
        }
        for k in 1..=n {
            // Best predecessor among s[k-1][*] other than c: keep the top two.
            let (mut top1, mut top1c, mut top2) = (NEG, usize::MAX, NEG);
            for c in 0..a {
                let v = s[k - 1][c];
                if v > top1 {
                    top2 = top1;
                    top1 = v;
                    top1c = c;
                } else if v > top2 {
                    top2 = v;
                }
            }
            let start = if t == 0 && k == 1 { 0.0 } else { b[k - 1] };
            for &c in &allowed[k - 1] {
                let mut best = s[k][c];
                let mut from = 0u16;
                if start > best {
                    best = start;
                    from = 1;
                }
                let (pv, pc) = if top1c != c { (top1, top1c) } else { (top2, usize::MAX) };
                if pv > best {
                    best = pv;
                    from = if pc == usize::MAX {
                        // Second best: find it again (rare path).
                        let mut bc = 0;
                        let mut bv = NEG;
                        for c2 in 0..a {
                            if c2 != c && s[k - 1][c2] > bv {
                                bv = s[k - 1][c2];
                                bc = c2;
                            }
                        }
                        2 + bc as u16
                    } else {
                        2 + pc as u16
                    };
                }
                if best > NEG {
                    ns[k][c] = best + l.chars[t][c];
                    bs[k][c] = from;
                }
            }
        }
        s = ns;
        b = nb;
        bp_s.push(bs);
        bp_b.push(bb);
    }
    // End: blank or s at k = n.
    let mut best = b[n];
    let mut state: (bool, usize) = (true, 0);
    for c in 0..a {
        if s[n][c] > best {
            best = s[n][c];
            state = (false, c);
        }
    }
    if best == NEG {
        return None;
    }
    // Back-track.
    let mut out = vec![0usize; n];
    let mut conf = vec![0f32; n];
    let mut first = vec![0usize; n];
    let mut k = n;
    let (mut is_blank, mut c) = state;
    for t in (0..t_len).rev() {
        if is_blank {
            let from = bp_b[t][k];
            if from == 0 {
                continue;
            }
            is_blank = false;
            c = (from - 1) as usize;
            // This frame was blank; the previous frame emitted c.
            continue;
        }
        out[k - 1] = c;
        first[k - 1] = t;
        conf[k - 1] = conf[k - 1].max(l.chars[t][c].exp());
        let from = bp_s[t][k][c];
        match from {
            0 => {}
            1 => {
                k -= 1;
                is_blank = true;
            }
            f => {
                k -= 1;
                c = (f - 2) as usize;
            }
        }
    }
    let text: String = out.iter().map(|&i| alpha[i]).collect();
    Some((text, best, conf, first))
}

/// Allowed alphabet indices for a template.
pub fn template_sets(tmpl: &[Class]) -> Vec<Vec<usize>> {
    let alpha = plate::alphabet();
    tmpl.iter().map(|cl| (0..alpha.len()).filter(|&i| cl.allows(alpha[i])).collect()).collect()
}

/// Allowed sets spelling exactly `text` (None if a character is not in the alphabet).
pub fn exact_sets(text: &str) -> Option<Vec<Vec<usize>>> {
    let alpha = plate::alphabet();
    text.chars().map(|ch| alpha.iter().position(|&a| a == ch).map(|i| vec![i])).collect()
}

/// Whether any string whose position `k` is one of `allowed[k]` could have every character's
/// confidence (as [`best_path`] gives it: its best frame's probability) at least `floor`, the
/// last one spared when `free_last`. A necessary condition, exact enough to skip work on frames
/// that cannot give such a reading: each character needs a frame of its own, after the previous
/// character's, where some allowed character is that sure.
pub fn may_hold(l: &PlateLogits, allowed: &[Vec<usize>], floor: f32, free_last: bool) -> bool {
    // Compared in log space with a little slack, so rounding never refuses what `best_path`
    // would hold.
    let lf = floor.max(1e-30).ln() - 1e-3;
    let mut t = 0;
    for (k, set) in allowed.iter().enumerate() {
        if free_last && k + 1 == allowed.len() {
            return t < l.chars.len();
        }
        match (t..l.chars.len()).find(|&f| set.iter().any(|&c| l.chars[f][c] >= lf)) {
            Some(f) => t = f + 1,
            None => return false,
        }
    }
    true
}

/// log P(text | frames): the CTC forward algorithm.
pub fn log_likelihood(l: &PlateLogits, text: &str) -> f32 {
    let alpha = plate::alphabet();
    let Some(labels): Option<Vec<usize>> = text.chars().map(|ch| alpha.iter().position(|&a| a == ch)).collect() else {
        return f32::NEG_INFINITY;
    };
    // Extended sequence: blank, l1, blank, l2, …, blank. None = blank.
    let mut ext: Vec<Option<usize>> = vec![None];
    for &c in &labels {
        ext.push(Some(c));
        ext.push(None);
    }
    let t_len = l.blank.len();
    if t_len == 0 {
        return f32::NEG_INFINITY;
    }
    let e = |t: usize, s: usize| match ext[s] {
        None => l.blank[t],
        Some(c) => l.chars[t][c],
    };
    let lse = |a: f32, b: f32| {
        if a == f32::NEG_INFINITY {
            return b;
        }
        if b == f32::NEG_INFINITY {
            return a;
        }
        let m = a.max(b);
        m + ((a - m).exp() + (b - m).exp()).ln()
    };
    let m = ext.len();
    let mut a = vec![f32::NEG_INFINITY; m];
    a[0] = e(0, 0);
    if m > 1 {
        a[1] = e(0, 1);
    }
    for t in 1..t_len {
        let mut na = vec![f32::NEG_INFINITY; m];
        for s in 0..m {
            let mut v = a[s];
            if s >= 1 {
                v = lse(v, a[s - 1]);
            }
            if s >= 2 && ext[s].is_some() && ext[s] != ext[s - 2] {
                v = lse(v, a[s - 2]);
            }
            if v > f32::NEG_INFINITY {
                na[s] = v + e(t, s);
            }
        }
        a = na;
    }
    if m >= 2 { lse(a[m - 1], a[m - 2]) } else { a[m - 1] }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames that spell `text` with blanks between, each frame `p` sure of its symbol.
    fn logits_for(seq: &[Option<char>], p: f32) -> PlateLogits {
        let alpha = plate::alphabet();
        let rest = (1.0 - p) / alpha.len() as f32;
        let mut l = PlateLogits { blank: vec![], chars: vec![], other_cjk: vec![] };
        for s in seq {
            let mut row = vec![rest.ln(); alpha.len()];
            let mut blank = rest.ln();
            match s {
                None => blank = p.ln(),
                Some(c) => row[alpha.iter().position(|a| a == c).unwrap()] = p.ln(),
            }
            l.blank.push(blank);
            l.chars.push(row);
        }
        l
    }

    #[test]
    fn cjk_outside_the_alphabet_can_be_read_as_a_fixed_character() {
        // Classes: blank, 警, 酱 (CJK, not on plates), x (neither).
        let dict: Vec<String> = ["警", "酱", "x"].iter().map(|s| s.to_string()).collect();
        let rows = [0.1, 0.05, 0.8, 0.05, 0.9, 0.02, 0.03, 0.05];
        let l = fold(&rows, 4, &dict);
        let k = plate::alphabet().iter().position(|&a| a == '警').unwrap();
        assert!((l.chars[0][k].exp() - 0.05).abs() < 1e-4);
        assert!((l.other_cjk[0].exp() - 0.8).abs() < 1e-4, "x is not CJK and counts nowhere");
        assert!((l.other_cjk[1].exp() - 0.03).abs() < 1e-4);
        let w = l.with_other_cjk_as('警');
        assert!((w.chars[0][k].exp() - 0.85).abs() < 1e-4);
        assert!((w.chars[1][k].exp() - 0.05).abs() < 1e-4);
        assert_eq!(w.blank, l.blank);
        // Every other character is as it was.
        let j = plate::alphabet().iter().position(|&a| a == '学').unwrap();
        assert_eq!(w.chars[0][j], l.chars[0][j]);
    }

    fn seq(s: &str) -> Vec<Option<char>> {
        s.chars().map(|c| if c == '_' { None } else { Some(c) }).collect()
    }

    #[test]
    fn may_hold_is_false_only_where_no_reading_holds_the_floor() {
        let sets = template_sets(plate::PlateColor::Blue.templates()[0].0);
        let sure = logits_for(&seq("_豫_A_1_2_3_4_5_"), 0.9);
        assert!(may_hold(&sure, &sets, 0.01, false));
        let (_, _, conf) = best_path(&sure, &sets).unwrap();
        assert!(conf.iter().all(|c| *c >= 0.01));
        // Frames sure of nothing: each symbol at 1/66 < 0.02 would pass a floor of 0.01 but not 0.05.
        let flat = logits_for(&seq("_______________"), 1.0 / (plate::alphabet().len() as f32 + 1.0));
        assert!(may_hold(&flat, &sets, 0.01, false));
        assert!(!may_hold(&flat, &sets, 0.05, false));
        // Six sure characters and nothing after them: held only when the last is spared.
        let six = logits_for(&seq("_豫_A_1_2_3_4__"), 0.99);
        assert!(!may_hold(&six, &sets, 0.01, false));
        assert!(may_hold(&six, &sets, 0.01, true));
        // Too few frames for seven characters.
        let short = logits_for(&seq("豫A1234"), 0.99);
        assert!(!may_hold(&short, &sets, 0.01, true));
    }

    #[test]
    fn decodes_repeats_and_grammar() {
        let l = logits_for(&seq("_豫_AA_1_2_33_3_4_5_"), 0.9);
        let sets = template_sets(plate::PlateColor::Blue.templates()[0].0);
        let (text, _, conf) = best_path(&l, &sets).unwrap();
        assert_eq!(text, "豫A12334");
        assert!(conf.iter().all(|c| *c > 0.85), "{conf:?}");
        // "O" is not a plate letter: where the frames say 0 at the letter position, the grammar
        // forces a letter there.
        let l = logits_for(&seq("_豫_0_1_2_3_4_5_"), 0.9);
        let (text, _, _) = best_path(&l, &sets).unwrap();
        assert!(plate::check(&text).is_ok(), "{text}");
    }

    #[test]
    fn frames_say_where_each_character_stands() {
        let l = logits_for(&seq("__京_A___1_2_3_4_5_"), 0.9);
        let sets = exact_sets("京A12345").unwrap();
        let (text, _, _, frames) = best_path_frames(&l, &sets).unwrap();
        assert_eq!(text, "京A12345");
        assert_eq!(frames, vec![2, 4, 8, 10, 12, 14, 16]);
        // A two-row plate stitched with its upper row in the first 7 of 19 frames keeps GA 36's
        // layout; a sign whose letter comes from the lower line does not.
        let split = 7.0 / 19.0;
        assert!(crate::detect::plates::rows_fit(&l, "京A12345", split));
        let sign = logits_for(&seq("__京_____K_1_2_3_0_0"), 0.9);
        assert!(!crate::detect::plates::rows_fit(&sign, "京K12300", split));
    }

    #[test]
    fn likelihood_prefers_the_spelled_text() {
        let l = logits_for(&seq("_豫_A_1_2_3_4_5_"), 0.9);
        let good = log_likelihood(&l, "豫A12345");
        let bad = log_likelihood(&l, "豫A12346");
        assert!(good > bad + 3.0, "{good} {bad}");
        assert!(good > -3.0);
        let exact = exact_sets("豫A12345").unwrap();
        let (t, lp, _) = best_path(&l, &exact).unwrap();
        assert_eq!(t, "豫A12345");
        assert!(lp <= good + 1e-3);
    }
}
