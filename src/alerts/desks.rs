//! Duty desks (值班台): which desks an alert has reached. Each desk answers for grid cells (any
//! level); an alert goes first to the desk of its own cell, else of the nearest cell above it
//! with one. Each escalation (the alert left unacknowledged for its kind's escalation time) takes
//! it one desk further up the grid, and the desks below keep it. An alert with no cell, or none
//! with a desk on the way up, reaches no desk: only operators without a desk (the command
//! centre) see it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::config::DeskConfig;
use crate::geo::model::GeoModel;

/// The desks of the configuration, by id and by cell.
#[derive(Debug, Clone, Default)]
pub struct Desks {
    desks: Vec<DeskConfig>,
    /// Cell id → desk id.
    of_cell: HashMap<String, String>,
}

/// The grid's parents: one cell's parent id.
pub trait Grid {
    fn parent(&self, cell: &str) -> Option<&str>;
}

impl Grid for GeoModel {
    fn parent(&self, cell: &str) -> Option<&str> {
        self.cell_by_id.get(cell).and_then(|&i| self.cells[i].parent.as_deref())
    }
}

impl Grid for HashMap<String, String> {
    fn parent(&self, cell: &str) -> Option<&str> {
        self.get(cell).map(String::as_str)
    }
}

/// The grid has three levels; a walk up longer than this is a loop in a hand-made grid.
const MAX_HOPS: usize = 8;

impl Desks {
    pub fn new(desks: &[DeskConfig]) -> Desks {
        let of_cell = desks
            .iter()
            .flat_map(|d| d.cells.iter().map(move |c| (c.clone(), d.id.clone())))
            .collect::<HashMap<_, _>>();
        Desks { desks: desks.to_vec(), of_cell }
    }

    pub fn list(&self) -> &[DeskConfig] {
        &self.desks
    }

    pub fn get(&self, id: &str) -> Option<&DeskConfig> {
        self.desks.iter().find(|d| d.id == id)
    }

    /// The desks on the way up from `cell`: its own (or the nearest above), then each next one
    /// above, each once.
    pub fn chain(&self, grid: &impl Grid, cell: Option<&str>) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut cur = cell;
        for _ in 0..MAX_HOPS {
            let Some(c) = cur else { break };
            if let Some(d) = self.of_cell.get(c)
                && !out.contains(&d.as_str())
            {
                out.push(d);
            }
            cur = grid.parent(c);
        }
        out
    }

    /// The desks an alert of `cell` escalated `level` times has reached: the first `level + 1` of
    /// its chain (all of it once escalation has passed the top).
    pub fn reached(&self, grid: &impl Grid, cell: Option<&str>, level: i64) -> Vec<&str> {
        let mut c = self.chain(grid, cell);
        c.truncate(usize::try_from(level.max(0)).unwrap_or(usize::MAX).saturating_add(1));
        c
    }

    /// Whether an alert of `cell` escalated `level` times has reached `desk`.
    pub fn reaches(&self, grid: &impl Grid, desk: &str, cell: Option<&str>, level: i64) -> bool {
        self.reached(grid, cell, level).contains(&desk)
    }

    /// The cells whose alerts can reach `desk`, each with the escalation level at which they do
    /// (0: the desk's own area; 1: the area of a desk one below it; …), from `cells`.
    pub fn area<'a>(&self, grid: &impl Grid, desk: &str, cells: impl Iterator<Item = &'a str>) -> Vec<(String, i64)> {
        cells
            .filter_map(|c| {
                self.chain(grid, Some(c)).iter().position(|d| *d == desk).map(|depth| (c.to_string(), depth as i64))
            })
            .collect()
    }

    /// The desk right above `desk` (the desk of the nearest cell above its cells), if any.
    pub fn above(&self, grid: &impl Grid, desk: &str) -> Option<&str> {
        let d = self.get(desk)?;
        d.cells.iter().find_map(|c| self.chain(grid, Some(c)).into_iter().find(|x| *x != desk))
    }
}

/// The desks in force, shared by the API and replaced when the configuration is reloaded.
#[derive(Debug, Clone, Default)]
pub struct DeskBook(Arc<RwLock<Arc<Desks>>>);

impl DeskBook {
    pub fn new(desks: &[DeskConfig]) -> DeskBook {
        DeskBook(Arc::new(RwLock::new(Arc::new(Desks::new(desks)))))
    }

    pub fn now(&self) -> Arc<Desks> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reconfigure(&self, desks: &[DeskConfig]) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Desks::new(desks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loc;

    fn desk(id: &str, cells: &[&str]) -> DeskConfig {
        DeskConfig {
            id: id.into(),
            name: id.into(),
            cells: cells.iter().map(|c| c.to_string()).collect(),
            loc: Loc { file: "site.toml".into(), line: 1 },
        }
    }

    /// city → {district-a → {a1, a2}, district-b → {b1}}; desks on city, district-a and a1 (a
    /// desk of its own), and on b1 only (district-b has none).
    fn grid() -> (HashMap<String, String>, Desks) {
        let parents: HashMap<String, String> = [
            ("district-a", "city"),
            ("district-b", "city"),
            ("a1", "district-a"),
            ("a2", "district-a"),
            ("b1", "district-b"),
        ]
        .into_iter()
        .map(|(c, p)| (c.to_string(), p.to_string()))
        .collect();
        let desks = Desks::new(&[
            desk("d-city", &["city"]),
            desk("d-a", &["district-a"]),
            desk("d-a1", &["a1"]),
            desk("d-b1", &["b1"]),
        ]);
        (parents, desks)
    }

    #[test]
    fn an_alert_goes_to_its_cells_desk_then_one_desk_up_per_escalation() {
        let (g, d) = grid();
        assert_eq!(d.chain(&g, Some("a1")), vec!["d-a1", "d-a", "d-city"]);
        assert_eq!(d.reached(&g, Some("a1"), 0), vec!["d-a1"]);
        assert_eq!(d.reached(&g, Some("a1"), 1), vec!["d-a1", "d-a"]);
        assert_eq!(d.reached(&g, Some("a1"), 5), vec!["d-a1", "d-a", "d-city"], "past the top: every desk");
        // a2 has no desk of its own: the nearest above.
        assert_eq!(d.reached(&g, Some("a2"), 0), vec!["d-a"]);
        // district-b has none: b1's next desk up is the city's.
        assert_eq!(d.chain(&g, Some("b1")), vec!["d-b1", "d-city"]);
        assert!(d.chain(&g, None).is_empty() && d.chain(&g, Some("elsewhere")).is_empty());
        assert!(!d.reaches(&g, "d-b1", Some("a1"), 9), "another area's desk, however far escalated");
        assert_eq!(d.above(&g, "d-a1"), Some("d-a"));
        assert_eq!(d.above(&g, "d-b1"), Some("d-city"));
        assert_eq!(d.above(&g, "d-city"), None);
    }

    #[test]
    fn a_desk_of_several_levels_counts_once() {
        let (g, _) = grid();
        let d = Desks::new(&[desk("d-a", &["district-a", "a1"]), desk("d-city", &["city"])]);
        assert_eq!(d.chain(&g, Some("a1")), vec!["d-a", "d-city"]);
        assert_eq!(d.above(&g, "d-a"), Some("d-city"));
    }

    #[test]
    fn a_desks_area_is_every_cell_it_can_be_reached_from_with_the_level_needed() {
        let (g, d) = grid();
        let cells = ["city", "district-a", "district-b", "a1", "a2", "b1"];
        let mut area = d.area(&g, "d-city", cells.iter().copied());
        area.sort();
        let want: Vec<(String, i64)> =
            [("a1", 2), ("a2", 1), ("b1", 1), ("city", 0), ("district-a", 1), ("district-b", 0)]
                .into_iter()
                .map(|(c, l)| (c.to_string(), l))
                .collect();
        assert_eq!(area, want);
        for c in cells {
            for level in 0..4 {
                let by_area = d.area(&g, "d-a", std::iter::once(c)).first().is_some_and(|(_, l)| *l <= level);
                assert_eq!(by_area, d.reaches(&g, "d-a", Some(c), level), "{c} at level {level}");
            }
        }
    }
}
