//! Earlier runs: one compact record per run (commit, time, and for each scenario
//! and level the result and duration), kept in a JSON file the page is rendered
//! from. It holds the last `MAX_RUNS` runs.

use std::{collections::BTreeMap, fs, io, path::Path};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::{model::Book, report::LevelRun};

/// Runs kept in the file; older ones are dropped.
pub const MAX_RUNS: usize = 50;
/// Results shown per cell, and the window in which a flip marks a scenario flaky.
pub const WINDOW: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Abbreviated commit, with `-dirty` when the work tree had changes.
    pub commit: String,
    pub time: jiff::Timestamp,
    /// Per level, the fingerprint of the report recorded: the same report is recorded once.
    pub levels: BTreeMap<String, u64>,
    /// Per scenario (or example row) key, per level: the result. Not-run cells are left out.
    pub results: BTreeMap<String, BTreeMap<String, Past>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Past {
    pub passed: bool,
    /// Milliseconds.
    pub ms: u64,
}

impl History {
    /// The file at `path`; none yet is an empty history.
    pub fn load(path: &Path) -> Result<Self> {
        let context = || format!("reading the history {}", path.display());
        match fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).with_context(context),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(err).with_context(context),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self)?;
        fs::write(path, text + "\n")
            .with_context(|| format!("writing the history {}", path.display()))
    }

    /// Adds the levels of `run` not recorded yet (a page rendered twice from the
    /// same reports records them once; a report with no duration at all, nothing),
    /// then drops the oldest runs beyond `MAX_RUNS`.
    pub fn append(&mut self, mut run: Run) {
        // A report belongs to the run that wrote it, whatever the commit is now.
        run.levels.retain(|level, &mut fingerprint| {
            let recorded = |old: &Run| old.levels.get(level) == Some(&fingerprint);
            fingerprint != 0 && !self.runs.iter().any(recorded)
        });
        if run.levels.is_empty() {
            return;
        }
        run.results.retain(|_, cells| {
            cells.retain(|level, _| run.levels.contains_key(level));
            !cells.is_empty()
        });
        self.runs.push(run);
        let excess = self.runs.len().saturating_sub(MAX_RUNS);
        self.runs.drain(..excess);
    }

    /// Fills each cell's recent results and flaky mark.
    pub fn annotate<'a>(&'a self, book: &mut Book<'a>) {
        for row in &mut book.rows {
            for cell in &mut row.cells {
                // The cell's results, oldest first, with the run of each.
                let past: Vec<(&Run, Past)> = self
                    .runs
                    .iter()
                    .filter_map(|run| Some((run, run.result(&row.key, cell.level)?)))
                    .collect();
                cell.recent = past[past.len().saturating_sub(WINDOW)..].to_vec();
                let results = past.iter().map(|(run, past)| (&*run.commit, past.passed));
                cell.flaky = flaky(&results.collect::<Vec<_>>());
            }
        }
    }
}

impl Run {
    /// The result of the scenario (or example row) `key` at `level`, if it ran.
    pub fn result(&self, key: &str, level: &str) -> Option<Past> {
        self.results.get(key)?.get(level).copied()
    }
}

/// Why a cell whose results are `results` (commit, passed; oldest first) is
/// flaky: it passed and failed on one commit, or changed result twice among the
/// last `WINDOW` (failed and recovered, or recovered and failed again). One
/// change is a fix or a regression, not a flake. Commits with uncommitted
/// changes (`-dirty`) prove nothing about one commit.
pub fn flaky(results: &[(&str, bool)]) -> Option<String> {
    let same_commit = results.iter().find(|&&(commit, passed)| {
        !commit.ends_with("-dirty") && results.contains(&(commit, !passed))
    });
    if let Some((commit, _)) = same_commit {
        return Some(format!("passed and failed on commit {commit}"));
    }
    let recent = &results[results.len().saturating_sub(WINDOW)..];
    let changes = recent.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let runs = recent.len();
    (changes >= 2).then(|| format!("changed result {changes} times in the last {runs} runs"))
}

/// This run's record: every scenario's result at each level that reported.
pub fn record(book: &Book, commit: &str, time: jiff::Timestamp) -> Run {
    let fingerprint = |run: &LevelRun| (run.level.to_owned(), run.fingerprint());
    let mut results: BTreeMap<String, BTreeMap<String, Past>> = BTreeMap::new();
    for row in &book.rows {
        for cell in &row.cells {
            if let Some(passed) = cell.outcome.passed() {
                let ms = cell.nanos.unwrap_or(0) / 1_000_000;
                let cells = results.entry(row.key.clone()).or_default();
                cells.insert(cell.level.to_owned(), Past { passed, ms });
            }
        }
    }
    Run {
        commit: commit.to_owned(),
        time,
        levels: book.reported().map(fingerprint).collect(),
        results,
    }
}
