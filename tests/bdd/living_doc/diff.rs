//! What a change did to the specification's results, against another run
//! (the latest on `main`), as Markdown for a pull request's job summary.

use std::{cmp::Ordering, collections::BTreeSet};

use askama::Template;

use super::{
    history::Run,
    model::{self, Book, Cell, LevelSummary, Outcome, Row},
};

/// What changed, as plain text: the template makes every name and message safe
/// in Markdown as it writes them (`md`, `html`).
#[derive(Debug, Default, Template)]
#[template(path = "diff.md.txt", config = "tests/bdd/living_doc/askama.toml")]
pub struct Diff<'a> {
    /// The run compared against, when there is one.
    base: Option<&'a Run>,
    pub levels: &'a [LevelSummary<'a>],
    /// Cells that fail now, but did not on main (or are new), with their rows.
    pub newly_failing: Vec<(&'a Row<'a>, &'a Cell<'a>)>,
    pub newly_passing: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub coverage: Vec<String>,
    pub still_failing: usize,
}

impl<'a> Diff<'a> {
    pub fn new(book: &'a Book, baseline: Option<&'a Run>) -> Self {
        let empty = Run::default();
        let base = baseline.unwrap_or(&empty);
        let keys: BTreeSet<&String> = book.rows.iter().map(|row| &row.key).collect();
        let removed = base.results.keys().filter(|key| !keys.contains(*key));
        let reported: Vec<&str> = book.reported().map(|run| run.level).collect();
        let reports = |level: &str| reported.contains(&level);
        let had = |level: &str| base.levels.contains_key(level);
        let mut diff = Self {
            base: baseline,
            levels: &book.levels,
            removed: removed.cloned().collect(),
            ..Self::default()
        };

        for row in &book.rows {
            let name = &row.key;
            let ran = row.cells.iter().filter(|c| c.outcome.passed().is_some());
            let ran = ran.map(|cell| format!("{} {}", cell.level, cell.outcome.label()));
            let ran: Vec<String> = ran.collect();
            // An added scenario's failures are listed as newly failing too.
            let before = base.results.contains_key(&row.key);
            if !before && baseline.is_some() && !ran.is_empty() {
                diff.added.push(format!("{name} ({})", ran.join(", ")));
            }
            for cell in &row.cells {
                let level = cell.level;
                let was = base.result(&row.key, level).map(|past| past.passed);
                let compared = before && had(level) && reports(level);
                match (&cell.outcome, was) {
                    (Outcome::Failed { .. }, Some(false)) => diff.still_failing += 1,
                    (Outcome::Failed { .. }, _) => diff.newly_failing.push((row, cell)),
                    (Outcome::Passed, Some(false)) => {
                        diff.newly_passing.push(format!("{name} at {level}"));
                    }
                    (Outcome::Passed, None) if compared => {
                        diff.coverage.push(format!("{name}: now runs at {level}"));
                    }
                    (Outcome::NotRun { reason }, Some(_)) if compared => {
                        let change = format!("{name}: no longer runs at {level} ({reason})");
                        diff.coverage.push(change);
                    }
                    _ => {}
                }
            }
        }

        if baseline.is_some() {
            for level in base.levels.keys().filter(|level| !reports(level)) {
                let gone = format!("the {level} level has no report in this run (main had one)");
                diff.coverage.push(gone);
            }
            for level in reported.iter().filter(|level| !had(level)) {
                let new =
                    format!("the {level} level reported in this run; main had no report of it");
                diff.coverage.push(new);
            }
        }
        diff
    }

    /// A level's passed or failed total now, with the change from the baseline:
    /// `3 (+2)`, `1 (−1)`, or `3` alone.
    pub fn with_change(&self, level: &LevelSummary, passed: bool) -> String {
        let now = if passed { level.passed } else { level.failed };
        let name = level.run.level;
        let Some(base) = self.base.filter(|base| base.levels.contains_key(name)) else {
            return now.to_string();
        };
        let cells = base.results.values().filter_map(|cells| cells.get(name));
        let then = cells.filter(|past| past.passed == passed).count();
        match now.cmp(&then) {
            Ordering::Greater => format!("{now} (+{})", now - then),
            Ordering::Less => format!("{now} (−{})", then - now),
            Ordering::Equal => now.to_string(),
        }
    }

    pub fn unchanged(&self) -> bool {
        self.newly_failing.is_empty()
            && self.newly_passing.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.coverage.is_empty()
    }
}

/// Text made plain in Markdown: no markup, no HTML.
fn md(text: &str) -> String {
    let escaped = text.chars().map(|character| match character {
        '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => format!("\\{character}"),
        '\n' | '\r' => " ".to_owned(),
        other => other.to_string(),
    });
    html(&escaped.collect::<String>())
}

/// Text for an HTML `<pre>` block in Markdown, on one line so that it stays
/// inside its list item.
fn html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    escaped.replace('\n', "&#10;")
}
