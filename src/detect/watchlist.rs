//! Watchlists (布控): which plates to watch for, and whether a plate read hits one.
//!
//! Pure: entries in, hits out; the registry stores entries (their row types — [`WatchlistEntry`],
//! [`NewWatchlist`], [`MatchKind`], [`Priority`], [`WatchlistError`] — are the registry's,
//! re-exported here) and `geo::service` raises a `watchlist_hit` event per hit. Three ways to match a (normalised) plate:
//! - `exact`: the same characters;
//! - `wildcard`: `*` stands for any run of characters (none included), `?` for exactly one;
//! - `fuzzy`: a weighted edit distance of at most `max_distance`, where a substitution between
//!   characters a plate reader often confuses costs 0.5 instead of 1 ([`CONFUSIONS`]). The
//!   province character must be equal: a separate model reads it, and a different province is a
//!   different vehicle.
//!
//! Hand-written distance and glob: both are a screen of code on a few characters; the crates
//! that offer them (`strsim`, `globset`) have no weighted substitutions, and globset works on
//! paths.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::plate::{ENDINGS, PROVINCES, normalise as normalise_plate};
pub use crate::registry::{MatchKind, NewWatchlist, Priority, WatchlistEntry, WatchlistError};

/// Groups of characters a plate reader confuses; a substitution inside a group costs 0.5.
pub const CONFUSIONS: [&str; 6] = ["0DQ", "8B", "17", "2Z", "5S", "6G"];
/// The cost of a substitution inside a confusion group.
pub const CONFUSION_COST: f64 = 0.5;
/// The longest pattern accepted, in characters.
pub const MAX_PATTERN_CHARS: usize = 16;
/// Largest `max_distance` a fuzzy entry may have.
pub const MAX_DISTANCE: f64 = 3.0;
/// `max_distance` of a fuzzy entry that does not give one.
pub const DEFAULT_MAX_DISTANCE: f64 = 1.0;
const MAX_TEXT_CHARS: usize = 1000;

fn invalid(field: &'static str, reason: impl Into<String>) -> WatchlistError {
    WatchlistError { field, reason: reason.into() }
}

/// One entry a plate read hits.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Hit {
    pub entry_id: i64,
    pub match_kind: MatchKind,
    /// The weighted edit distance (0 for exact and wildcard hits).
    pub distance: f64,
    pub pattern: String,
    pub reason: String,
    pub priority: Priority,
}

impl WatchlistEntry {
    /// Whether the entry is in force at `at_ms`: not revoked, and inside its validity window.
    pub fn in_force(&self, at_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.valid_from_ms <= at_ms && self.valid_until_ms.is_none_or(|u| at_ms < u)
    }

    /// The hit when `plate` (normalised here) read at `at_ms` matches this entry.
    pub fn matches(&self, plate: &str, at_ms: i64) -> Option<Hit> {
        if !self.in_force(at_ms) {
            return None;
        }
        let plate: Vec<char> = normalise_plate(plate).chars().collect();
        let pattern: Vec<char> = self.pattern.chars().collect();
        if plate.is_empty() || pattern.is_empty() {
            return None;
        }
        let distance = match self.match_kind {
            MatchKind::Exact => (plate == pattern).then_some(0.0)?,
            MatchKind::Wildcard => glob(&pattern, &plate).then_some(0.0)?,
            MatchKind::Fuzzy => {
                // The province is never fuzzy: the first characters must be equal.
                if plate[0] != pattern[0] {
                    return None;
                }
                let d = plate_distance(&pattern[1..], &plate[1..]);
                (d <= self.max_distance.unwrap_or(DEFAULT_MAX_DISTANCE)).then_some(d)?
            }
        };
        Some(Hit {
            entry_id: self.id,
            match_kind: self.match_kind,
            distance,
            pattern: self.pattern.clone(),
            reason: self.reason.clone(),
            priority: self.priority,
        })
    }
}

/// A set of entries.
#[derive(Debug, Clone, Default)]
pub struct Watchlist {
    pub entries: Vec<WatchlistEntry>,
}

impl Watchlist {
    pub fn new(entries: Vec<WatchlistEntry>) -> Self {
        Watchlist { entries }
    }

    /// Every entry `plate` read at `at_ms` hits: highest priority first, then closest, then
    /// oldest entry.
    pub fn matches(&self, plate: &str, at_ms: i64) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self.entries.iter().filter_map(|e| e.matches(plate, at_ms)).collect();
        hits.sort_by(|a, b| {
            b.priority.cmp(&a.priority).then(a.distance.total_cmp(&b.distance)).then(a.entry_id.cmp(&b.entry_id))
        });
        hits
    }
}

/// `*` any run of characters (none included), `?` exactly one; everything else itself.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` take one more character and try again after it.
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

fn substitution_cost(a: char, b: char) -> f64 {
    if a == b {
        0.0
    } else if CONFUSIONS.iter().any(|g| g.contains(a) && g.contains(b)) {
        CONFUSION_COST
    } else {
        1.0
    }
}

/// Levenshtein distance with insertions and deletions costing 1 and substitutions 1, or
/// [`CONFUSION_COST`] between characters of one [`CONFUSIONS`] group.
pub fn plate_distance(a: &[char], b: &[char]) -> f64 {
    let mut prev: Vec<f64> = (0..=b.len()).map(|j| j as f64).collect();
    let mut cur = vec![0.0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = (i + 1) as f64;
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + substitution_cost(ca, cb)).min(prev[j + 1] + 1.0).min(cur[j] + 1.0);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn is_plate_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || PROVINCES.contains(c) || ENDINGS.contains(c)
}

/// Checks the characters of a normalised plate or (with `wildcards`) pattern: not empty, at
/// most [`MAX_PATTERN_CHARS`], plate characters only (and `*`, `?`).
fn check_chars(field: &'static str, pattern: &str, wildcards: bool) -> Result<Vec<char>, WatchlistError> {
    let chars: Vec<char> = pattern.chars().collect();
    if chars.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if chars.len() > MAX_PATTERN_CHARS {
        return Err(invalid(field, format!("{pattern:?} is longer than {MAX_PATTERN_CHARS} characters")));
    }
    if let Some(c) = chars.iter().find(|&&c| !(is_plate_char(c) || wildcards && (c == '*' || c == '?'))) {
        let why = match (*c, field) {
            ('*' | '?', "pattern") => " (wildcards need match_kind wildcard)",
            ('*' | '?', _) => " (no wildcards here)",
            _ => "",
        };
        return Err(invalid(field, format!("{pattern:?}: {c:?} is not a plate character{why}")));
    }
    Ok(chars)
}

/// Normalises a plate given to a query and checks its characters; `*` and `?` are allowed when
/// `wildcards`. The error names `field`.
pub fn plate_query(field: &'static str, plate: &str, wildcards: bool) -> Result<String, WatchlistError> {
    let p = normalise_plate(plate);
    let p = if wildcards { collapse_stars(&p) } else { p };
    let chars = check_chars(field, &p, wildcards)?;
    if chars.iter().all(|&c| c == '*') {
        return Err(invalid(field, "give at least one plate character"));
    }
    Ok(p)
}

/// Checks a normalised pattern for `kind`.
fn check_pattern(pattern: &str, kind: MatchKind) -> Result<(), WatchlistError> {
    let wild = kind == MatchKind::Wildcard;
    let chars = check_chars("pattern", pattern, wild)?;
    if wild {
        if chars.iter().all(|&c| c == '*' || c == '?') {
            return Err(invalid("pattern", format!("{pattern:?} has no plate character: it would hit every vehicle")));
        }
        return Ok(());
    }
    let well_formed = (7..=8).contains(&chars.len())
        && PROVINCES.contains(chars[0])
        && chars[1..chars.len() - 1].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && chars.last().is_some_and(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || ENDINGS.contains(c));
    if !well_formed {
        return Err(invalid(
            "pattern",
            format!(
                "{pattern:?} is not a plate: 7 or 8 characters, a province character first (e.g. 豫A12345); \
                 use match_kind wildcard for a partial plate"
            ),
        ));
    }
    Ok(())
}

fn check_max_distance(d: Option<f64>, kind: MatchKind) -> Result<Option<f64>, WatchlistError> {
    match (kind, d) {
        (MatchKind::Fuzzy, None) => Ok(Some(DEFAULT_MAX_DISTANCE)),
        (MatchKind::Fuzzy, Some(d)) if d > 0.0 && d <= MAX_DISTANCE => Ok(Some(d)),
        (MatchKind::Fuzzy, Some(d)) => Err(invalid("max_distance", format!("{d} is out of range (0, {MAX_DISTANCE}]"))),
        (_, None) => Ok(None),
        (k, Some(_)) => Err(invalid("max_distance", format!("only for fuzzy entries, not {}", k.as_str()))),
    }
}

fn check_window(from: i64, until: Option<i64>) -> Result<(), WatchlistError> {
    match until {
        Some(u) if u <= from => Err(invalid("valid_until_ms", format!("{u} is not after valid_from_ms {from}"))),
        _ => Ok(()),
    }
}

fn check_text(field: &'static str, s: &str, required: bool) -> Result<String, WatchlistError> {
    let s = s.trim();
    if required && s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(field, format!("longer than {MAX_TEXT_CHARS} characters")));
    }
    Ok(s.to_string())
}

/// A new entry as a client sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchlistInput {
    /// A plate (`豫A12345`; spaces, `·`, `-` and `.` are ignored, letters upper-cased) or, for
    /// `wildcard`, a pattern with `*` (any run of characters) and `?` (one character).
    pub pattern: String,
    /// `exact` (default), `wildcard` or `fuzzy`.
    pub match_kind: Option<MatchKind>,
    /// Fuzzy only: the largest weighted edit distance that hits, in (0, 3] (default 1).
    pub max_distance: Option<f64>,
    /// Why the vehicle is watched for.
    pub reason: String,
    /// `low`, `medium` (default), `high` or `critical`.
    pub priority: Option<Priority>,
    /// From when (ms since the epoch); now when absent.
    pub valid_from_ms: Option<i64>,
    /// Until when (ms since the epoch, exclusive); for good when absent.
    pub valid_until_ms: Option<i64>,
    /// Who asked for it (a unit, a case number).
    pub owner: Option<String>,
}

impl WatchlistInput {
    /// Normalises and checks the entry; `now_ms` is its start when it gives none.
    pub fn parse(&self, now_ms: i64) -> Result<NewWatchlist, WatchlistError> {
        let match_kind = self.match_kind.unwrap_or(MatchKind::Exact);
        let pattern = normalise_plate(&self.pattern);
        check_pattern(&pattern, match_kind)?;
        let pattern = if match_kind == MatchKind::Wildcard { collapse_stars(&pattern) } else { pattern };
        let max_distance = check_max_distance(self.max_distance, match_kind)?;
        let valid_from_ms = self.valid_from_ms.unwrap_or(now_ms);
        check_window(valid_from_ms, self.valid_until_ms)?;
        let owner = self.owner.as_deref().map(|o| check_text("owner", o, false)).transpose()?.filter(|o| !o.is_empty());
        Ok(NewWatchlist {
            pattern,
            match_kind,
            max_distance,
            reason: check_text("reason", &self.reason, true)?,
            priority: self.priority.unwrap_or(Priority::Medium),
            valid_from_ms,
            valid_until_ms: self.valid_until_ms,
            owner,
        })
    }
}

fn collapse_stars(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if !(c == '*' && out.ends_with('*')) {
            out.push(c);
        }
    }
    out
}

/// Present and `null` (`Some(None)`) differs from absent (`None`).
pub fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to an entry: only the fields given change; `null` clears `valid_until_ms` and `owner`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchlistPatch {
    pub reason: Option<String>,
    pub priority: Option<Priority>,
    /// `null`: for good.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub valid_until_ms: Option<Option<i64>>,
    /// `null`: nobody.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub owner: Option<Option<String>>,
    /// Fuzzy entries only, in (0, 3].
    pub max_distance: Option<f64>,
}

impl WatchlistPatch {
    /// Applies the change to `e` and checks the result; `e` is unchanged on error.
    pub fn apply(&self, e: &mut WatchlistEntry) -> Result<(), WatchlistError> {
        if self.reason.is_none()
            && self.priority.is_none()
            && self.valid_until_ms.is_none()
            && self.owner.is_none()
            && self.max_distance.is_none()
        {
            return Err(invalid(
                "body",
                "nothing to change: give reason, priority, valid_until_ms, owner or max_distance",
            ));
        }
        let mut n = e.clone();
        if let Some(r) = &self.reason {
            n.reason = check_text("reason", r, true)?;
        }
        if let Some(p) = self.priority {
            n.priority = p;
        }
        if let Some(u) = self.valid_until_ms {
            check_window(n.valid_from_ms, u)?;
            n.valid_until_ms = u;
        }
        if let Some(o) = &self.owner {
            n.owner = o.as_deref().map(|o| check_text("owner", o, false)).transpose()?.filter(|o| !o.is_empty());
        }
        if let Some(d) = self.max_distance {
            n.max_distance = check_max_distance(Some(d), n.match_kind)?;
        }
        *e = n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_780_000_000_000;

    fn entry(id: i64, pattern: &str, kind: MatchKind, max: Option<f64>) -> WatchlistEntry {
        let input = WatchlistInput {
            pattern: pattern.into(),
            match_kind: Some(kind),
            max_distance: max,
            reason: "stolen".into(),
            priority: Some(Priority::High),
            valid_from_ms: None,
            valid_until_ms: None,
            owner: None,
        };
        let n = input.parse(T0).unwrap();
        WatchlistEntry {
            id,
            pattern: n.pattern,
            match_kind: n.match_kind,
            max_distance: n.max_distance,
            reason: n.reason,
            priority: n.priority,
            valid_from_ms: n.valid_from_ms,
            valid_until_ms: n.valid_until_ms,
            owner: n.owner,
            created_at_ms: T0,
            created_by: None,
            updated_at_ms: None,
            updated_by: None,
            revoked_at_ms: None,
            revoked_by: None,
        }
    }

    fn dist(e: &WatchlistEntry, plate: &str) -> Option<f64> {
        e.matches(plate, T0).map(|h| h.distance)
    }

    #[test]
    fn exact_matches_the_normalised_plate_only() {
        let e = entry(1, "豫a·12345", MatchKind::Exact, None);
        assert_eq!(e.pattern, "豫A12345");
        assert_eq!(dist(&e, "豫A 12345"), Some(0.0));
        assert_eq!(dist(&e, "豫a-123.45"), Some(0.0));
        assert_eq!(dist(&e, "豫A12346"), None);
        assert_eq!(dist(&e, "豫A1234"), None);
        assert_eq!(dist(&e, ""), None);
        let h = e.matches("豫A12345", T0).unwrap();
        assert_eq!(
            (h.entry_id, h.match_kind, h.pattern.as_str(), h.priority),
            (1, MatchKind::Exact, "豫A12345", Priority::High)
        );
    }

    #[test]
    fn wildcard_star_is_any_run_and_question_mark_one_character() {
        let star = entry(1, "豫A*123", MatchKind::Wildcard, None);
        for hit in ["豫A123", "豫AB123", "豫AXY9123", "豫A12123"] {
            assert!(star.matches(hit, T0).is_some(), "{hit}");
        }
        for miss in ["豫B12123", "京A00123", "豫A1234", "豫A12"] {
            assert!(star.matches(miss, T0).is_none(), "{miss}");
        }
        let q = entry(2, "豫A?12?3", MatchKind::Wildcard, None);
        assert!(q.matches("豫AB1293", T0).is_some());
        assert!(q.matches("豫A12?3", T0).is_none(), "? needs exactly one character");
        assert!(q.matches("豫AB12993", T0).is_none());
        let tail = entry(3, "*警", MatchKind::Wildcard, None);
        assert!(tail.matches("豫A1234警", T0).is_some());
        assert!(tail.matches("豫A12345", T0).is_none());
        assert_eq!(entry(4, "豫**A***1", MatchKind::Wildcard, None).pattern, "豫*A*1");
        let g = |p: &str, t: &str| glob(&p.chars().collect::<Vec<_>>(), &t.chars().collect::<Vec<_>>());
        assert!(g("a*b*c", "axxbyybzc"));
        assert!(g("a*bc", "abcbc"));
        assert!(!g("a*bc", "axbcx"));
        assert!(g("**", ""));
    }

    #[test]
    fn fuzzy_confusions_cost_half_and_other_edits_one() {
        let e = entry(1, "豫A0B125", MatchKind::Fuzzy, None);
        assert_eq!(e.max_distance, Some(1.0));
        assert_eq!(dist(&e, "豫A0B125"), Some(0.0));
        assert_eq!(dist(&e, "豫AD8125"), Some(1.0), "0→D and B→8: two confusions");
        assert_eq!(dist(&e, "豫AQB125"), Some(0.5), "0→Q");
        assert_eq!(dist(&e, "豫A0B175"), Some(1.0), "2→7 is not a confusion");
        assert_eq!(dist(&e, "豫AQB175"), None, "0.5 + 1 > 1");
        assert_eq!(dist(&e, "豫A0B1Z5"), Some(0.5));
        assert_eq!(dist(&e, "豫A0B12S"), Some(0.5));
        assert_eq!(dist(&e, "豫A0B12"), Some(1.0), "a deletion");
        assert_eq!(dist(&e, "豫A0B1253"), Some(1.0), "an insertion");
        assert_eq!(dist(&e, "豫AX8125"), None, "0→X costs 1, B→8 0.5: 1.5 > 1");
        let wide = entry(2, "豫A0B125", MatchKind::Fuzzy, Some(1.5));
        assert_eq!(dist(&wide, "豫AX8125"), Some(1.5));
        // Every listed confusion, both ways.
        for g in CONFUSIONS {
            for a in g.chars() {
                for b in g.chars().filter(|&b| b != a) {
                    assert_eq!(plate_distance(&[a], &[b]), 0.5, "{a}/{b}");
                }
            }
        }
        for (a, b) in [('0', 'U'), ('1', 'I'), ('0', '8'), ('D', 'B'), ('7', '2')] {
            assert_eq!(plate_distance(&[a], &[b]), 1.0, "{a}/{b} is not a listed confusion");
        }
    }

    #[test]
    fn the_province_is_never_fuzzy() {
        let e = entry(1, "豫A12345", MatchKind::Fuzzy, Some(3.0));
        assert_eq!(dist(&e, "豫A12346"), Some(1.0));
        assert_eq!(dist(&e, "鄂A12345"), None, "another province, however close the rest");
        assert_eq!(dist(&e, "A12345"), None, "no province read");
    }

    #[test]
    fn validity_window_and_revocation() {
        let mut e = entry(1, "豫A12345", MatchKind::Exact, None);
        e.valid_from_ms = T0 + 1000;
        e.valid_until_ms = Some(T0 + 2000);
        assert!(e.matches("豫A12345", T0 + 999).is_none(), "not yet");
        assert!(e.matches("豫A12345", T0 + 1000).is_some(), "from is inclusive");
        assert!(e.matches("豫A12345", T0 + 1999).is_some());
        assert!(e.matches("豫A12345", T0 + 2000).is_none(), "until is exclusive");
        e.revoked_at_ms = Some(T0 + 1500);
        assert!(e.matches("豫A12345", T0 + 1200).is_none(), "revoked entries never hit");
    }

    #[test]
    fn a_watchlist_returns_every_hit_most_urgent_first() {
        let mut low = entry(1, "豫A*", MatchKind::Wildcard, None);
        low.priority = Priority::Low;
        let fuzzy = entry(2, "豫A12346", MatchKind::Fuzzy, None);
        let exact = entry(3, "豫A12345", MatchKind::Exact, None);
        let other = entry(4, "京A12345", MatchKind::Exact, None);
        let w = Watchlist::new(vec![low, fuzzy, exact, other]);
        let ids: Vec<i64> = w.matches("豫A12345", T0).iter().map(|h| h.entry_id).collect();
        assert_eq!(ids, [3, 2, 1]);
        assert!(w.matches("沪C00000", T0).is_empty());
    }

    fn input(pattern: &str, kind: Option<MatchKind>) -> WatchlistInput {
        WatchlistInput {
            pattern: pattern.into(),
            match_kind: kind,
            max_distance: None,
            reason: "case 7".into(),
            priority: None,
            valid_from_ms: None,
            valid_until_ms: None,
            owner: None,
        }
    }

    fn field_of(r: Result<NewWatchlist, WatchlistError>) -> &'static str {
        r.expect_err("refused").field
    }

    #[test]
    fn entries_are_checked_field_by_field() {
        use MatchKind::*;
        let ok = input("豫A12345", None).parse(T0).unwrap();
        assert_eq!(
            (ok.match_kind(), ok.priority(), ok.valid_from_ms(), ok.max_distance()),
            (Exact, Priority::Medium, T0, None)
        );
        assert!(input("粤Z1234港", Some(Exact)).parse(T0).is_ok());
        assert!(input("豫AD12345", Some(Fuzzy)).parse(T0).is_ok(), "8 characters: new energy");
        assert!(input("*1234?", Some(Wildcard)).parse(T0).is_ok());
        for (pattern, kind) in [
            ("", Exact),
            (" · ", Wildcard),
            ("豫A12345678901234567", Wildcard),
            ("豫A1234", Exact),
            ("A123456", Fuzzy),
            ("豫A12$45", Exact),
            ("豫A*2345", Exact),
            ("豫A1警345", Exact),
            ("ÄA12345", Wildcard),
            ("*", Wildcard),
            ("?*?", Wildcard),
        ] {
            assert_eq!(field_of(input(pattern, Some(kind)).parse(T0)), "pattern", "{pattern:?} {kind:?}");
        }
        let err = input("豫A*2345", Some(Exact)).parse(T0).unwrap_err().to_string();
        assert!(err.starts_with("pattern: ") && err.contains("wildcard"), "{err}");
        for d in [0.0, -1.0, 3.5, f64::NAN] {
            let mut i = input("豫A12345", Some(Fuzzy));
            i.max_distance = Some(d);
            assert_eq!(field_of(i.parse(T0)), "max_distance", "{d}");
        }
        let mut i = input("豫A12345", Some(Fuzzy));
        i.max_distance = Some(3.0);
        assert_eq!(i.parse(T0).unwrap().max_distance(), Some(3.0));
        let mut i = input("豫A12345", Some(Exact));
        i.max_distance = Some(1.0);
        assert_eq!(field_of(i.parse(T0)), "max_distance");
        let mut i = input("豫A12345", None);
        i.valid_until_ms = Some(T0);
        assert_eq!(field_of(i.parse(T0)), "valid_until_ms");
        let mut i = input("豫A12345", None);
        i.reason = "  ".into();
        assert_eq!(field_of(i.parse(T0)), "reason");
    }

    #[test]
    fn plate_queries_are_normalised_and_checked() {
        assert_eq!(plate_query("plate", "豫a·12**3?", true).unwrap(), "豫A12*3?");
        assert_eq!(plate_query("plate", "豫a 12345", false).unwrap(), "豫A12345");
        assert_eq!(plate_query("plate", "豫A*", false).unwrap_err().field, "plate");
        assert_eq!(plate_query("camera", "**", true).unwrap_err().field, "camera");
        assert!(plate_query("plate", "", true).is_err());
        assert!(plate_query("plate", "豫A%", true).is_err());
    }

    #[test]
    fn patches_change_only_what_they_give_and_are_checked() {
        let mut e = entry(1, "豫A12345", MatchKind::Exact, None);
        let before = e.clone();
        let p: WatchlistPatch = serde_json::from_str(r#"{"max_distance": 2}"#).unwrap();
        assert_eq!(p.apply(&mut e).unwrap_err().field, "max_distance");
        let p: WatchlistPatch = serde_json::from_str(r#"{"valid_until_ms": 5}"#).unwrap();
        assert_eq!(p.apply(&mut e).unwrap_err().field, "valid_until_ms");
        assert_eq!(WatchlistPatch::default().apply(&mut e).unwrap_err().field, "body");
        assert_eq!(e, before, "unchanged after refusals");
        let p: WatchlistPatch =
            serde_json::from_str(r#"{"priority": "critical", "owner": "unit 3", "valid_until_ms": 1780000009000}"#)
                .unwrap();
        p.apply(&mut e).unwrap();
        assert_eq!(
            (e.priority, e.owner.as_deref(), e.valid_until_ms),
            (Priority::Critical, Some("unit 3"), Some(T0 + 9000))
        );
        let p: WatchlistPatch = serde_json::from_str(r#"{"owner": null, "valid_until_ms": null}"#).unwrap();
        p.apply(&mut e).unwrap();
        assert_eq!((e.owner.as_deref(), e.valid_until_ms, e.reason.as_str()), (None, None, "stolen"));
        let mut f = entry(2, "豫A12345", MatchKind::Fuzzy, None);
        let p: WatchlistPatch = serde_json::from_str(r#"{"max_distance": 2.5}"#).unwrap();
        p.apply(&mut f).unwrap();
        assert_eq!(f.max_distance, Some(2.5));
    }
}
