//! What a change did to the specification's results, against another run
//! (the latest on `main`), as Markdown for a pull request's job summary.

use std::collections::{BTreeMap, BTreeSet};

use askama::Template;

use super::{
    history::Run,
    model::{Book, Outcome, format_time},
};

#[derive(Debug, Template)]
#[template(path = "diff.md.txt", config = "tests/bdd/living_doc/askama.toml")]
pub struct Diff {
    /// `commit` at `time` of the run compared against, when there is one.
    pub baseline: Option<String>,
    pub levels: Vec<LevelLine>,
    pub newly_failing: Vec<Failing>,
    pub newly_passing: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub coverage: Vec<String>,
    pub still_failing: usize,
}

/// One level's totals now, with the change from the baseline (`+2`, `-1`, or empty).
#[derive(Debug)]
pub struct LevelLine {
    pub level: &'static str,
    pub passed: usize,
    pub passed_change: String,
    pub failed: usize,
    pub failed_change: String,
    pub not_run: usize,
}

#[derive(Debug)]
pub struct Failing {
    pub level: &'static str,
    /// Markdown-safe.
    pub name: String,
    pub step: String,
    /// HTML-escaped, for a `<pre>` block.
    pub message: String,
}

impl Diff {
    pub fn new(book: &Book, baseline: Option<&Run>) -> Self {
        let empty = Run {
            commit: String::new(),
            time: jiff::Timestamp::UNIX_EPOCH,
            levels: BTreeMap::new(),
            results: BTreeMap::new(),
        };
        let base = baseline.unwrap_or(&empty);
        let mut diff = Self {
            baseline: baseline
                .map(|run| format!("`{}` ({})", md(&run.commit), format_time(run.time))),
            levels: Vec::new(),
            newly_failing: Vec::new(),
            newly_passing: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            coverage: Vec::new(),
            still_failing: 0,
        };
        let keys: BTreeSet<&str> = book.rows().map(|row| row.key.as_str()).collect();
        diff.removed = base
            .results
            .keys()
            .filter(|key| !keys.contains(key.as_str()))
            .map(|key| md(key))
            .collect();
        let reported: Vec<&str> = book
            .levels
            .iter()
            .filter(|l| l.problem.is_none())
            .map(|l| l.level)
            .collect();

        let nothing = BTreeMap::new();
        for row in book.rows() {
            let ran_now: Vec<String> = row
                .cells
                .iter()
                .filter(|cell| matches!(cell.outcome, Outcome::Passed | Outcome::Failed { .. }))
                .map(|cell| format!("{} {}", cell.level, cell.outcome.label()))
                .collect();
            // An added scenario's failures are listed as newly failing too.
            let (before, known) = match base.results.get(&row.key) {
                Some(before) => (before, true),
                None => (&nothing, false),
            };
            if !known && baseline.is_some() && !ran_now.is_empty() {
                diff.added
                    .push(format!("{} ({})", md(&row.key), ran_now.join(", ")));
            }
            for cell in &row.cells {
                let was = before.get(cell.level).map(|past| past.passed);
                let level_compared =
                    known && base.levels.contains_key(cell.level) && reported.contains(&cell.level);
                match (&cell.outcome, was) {
                    (Outcome::Failed { .. }, Some(false)) => diff.still_failing += 1,
                    (Outcome::Failed { step, message, .. }, _) => {
                        diff.newly_failing.push(Failing {
                            level: cell.level,
                            name: md(&row.key),
                            step: md(step),
                            message: html(message),
                        })
                    }
                    (Outcome::Passed, Some(false)) => {
                        diff.newly_passing
                            .push(format!("{} at {}", md(&row.key), cell.level))
                    }
                    (Outcome::Passed, None) if level_compared => {
                        diff.coverage
                            .push(format!("{}: now runs at {}", md(&row.key), cell.level));
                    }
                    (Outcome::NotRun { reason }, Some(_)) if level_compared => {
                        diff.coverage.push(format!(
                            "{}: no longer runs at {} ({})",
                            md(&row.key),
                            cell.level,
                            md(reason)
                        ))
                    }
                    _ => {}
                }
            }
        }

        for summary in &book.levels {
            let counted = |passed: bool| {
                base.results
                    .values()
                    .filter(|cells| cells.get(summary.level).is_some_and(|p| p.passed == passed))
                    .count()
            };
            let change = |now: usize, then: usize| match now.cmp(&then) {
                _ if !base.levels.contains_key(summary.level) => String::new(),
                std::cmp::Ordering::Greater => format!(" (+{})", now - then),
                std::cmp::Ordering::Less => format!(" (−{})", then - now),
                std::cmp::Ordering::Equal => String::new(),
            };
            diff.levels.push(LevelLine {
                level: summary.level,
                passed: summary.passed,
                passed_change: change(summary.passed, counted(true)),
                failed: summary.failed,
                failed_change: change(summary.failed, counted(false)),
                not_run: summary.not_run,
            });
        }
        if baseline.is_some() {
            for level in base.levels.keys() {
                if !reported.contains(&level.as_str()) {
                    diff.coverage.push(format!(
                        "the {} level has no report in this run (main had one)",
                        md(level)
                    ));
                }
            }
            for level in &reported {
                if !base.levels.contains_key(*level) {
                    diff.coverage.push(format!(
                        "the {level} level reported in this run; main had no report of it"
                    ));
                }
            }
        }
        diff
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
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                escaped.push('\\');
                escaped.push(character);
            }
            '\n' | '\r' => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
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
