//! The page's content: the feature files as parsed, and each scenario's (each
//! outline example row's) result and duration at every level that has a report.
//! The page walks the parsed features and looks each scenario's results up here;
//! the results borrow the feature files, the reports and the history.

use std::{collections::BTreeSet, iter, ptr};

use cucumber::gherkin;

use super::{
    history::{Past, Run},
    report::LevelRun,
};

/// A scenario's (or example row's) result at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// `step` is the step (or hook) that did not pass, `line` where it is written.
    Failed {
        step: String,
        line: Option<usize>,
        message: String,
    },
    NotRun {
        reason: String,
    },
    /// The level's report could not be read.
    Unknown,
}

impl Outcome {
    /// The CSS class and filter value, and the words the page shows.
    fn names(&self) -> [&'static str; 2] {
        match self {
            Self::Passed => ["passed"; 2],
            Self::Failed { .. } => ["failed"; 2],
            Self::NotRun { .. } => ["not-run", "not run"],
            Self::Unknown => ["unknown", "no result"],
        }
    }

    pub fn class(&self) -> &'static str {
        self.names()[0]
    }

    pub fn label(&self) -> &'static str {
        self.names()[1]
    }

    /// Whether it passed, if it ran.
    pub fn passed(&self) -> Option<bool> {
        match self {
            Self::Passed => Some(true),
            Self::Failed { .. } => Some(false),
            Self::NotRun { .. } | Self::Unknown => None,
        }
    }
}

/// One cell: a scenario (or example row) at one level.
#[derive(Debug, Clone)]
pub struct Cell<'a> {
    pub level: &'static str,
    pub outcome: Outcome,
    pub nanos: Option<u64>,
    /// Earlier results with their runs, oldest first (filled from the history).
    pub recent: Vec<(&'a Run, Past)>,
    /// Why the cell is flaky, if it is.
    pub flaky: Option<String>,
}

/// `1.2 s`, `35 ms`, `<1 ms`.
pub fn duration(nanos: u64) -> String {
    match nanos / 1_000_000 {
        0 => "<1 ms".to_owned(),
        millis @ 1..=999 => format!("{millis} ms"),
        _ => format!("{:.1} s", nanos as f64 / 1e9),
    }
}

/// A plain scenario, or one example row of an outline, with its result at each level.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub feature: &'a gherkin::Feature,
    pub scenario: &'a gherkin::Scenario,
    /// The outline's examples the row is one of; none for a plain scenario.
    pub examples: Option<&'a gherkin::Examples>,
    /// Names the row in the history and the diff: `Feature: Scenario (name: value, …)`.
    pub key: String,
    /// `name: value, …` of an example; empty for a plain scenario.
    pub label: String,
    /// Where cucumber reports it: the scenario's line, or the example's.
    pub line: usize,
    pub values: &'a [String],
    pub cells: Vec<Cell<'a>>,
}

/// `failed` when any level failed, else `passed` when any passed, else `not-run`.
fn status<'a, 'b: 'a>(cells: impl Iterator<Item = &'a Cell<'b>>) -> &'static str {
    // A failure (`false`) sorts before a pass.
    match cells.filter_map(|cell| cell.outcome.passed()).min() {
        Some(false) => "failed",
        Some(true) => "passed",
        None => "not-run",
    }
}

/// Totals of one level over the specification.
#[derive(Debug, Clone)]
pub struct LevelSummary<'a> {
    pub run: &'a LevelRun,
    pub passed: usize,
    pub failed: usize,
    pub not_run: usize,
    pub nanos: u64,
}

/// Everything the page shows: the feature files as parsed, which the page walks,
/// and the results of their scenarios, which it looks up as it goes.
#[derive(Debug, Clone)]
pub struct Book<'a> {
    pub features: &'a [gherkin::Feature],
    pub levels: Vec<LevelSummary<'a>>,
    /// Every plain scenario and example row, in the order of the feature files.
    pub rows: Vec<Row<'a>>,
    /// Results a level reported for scenarios the feature files do not have:
    /// the level, the scenario's name and where it is, and its outcome.
    pub strays: Vec<(&'static str, String, Outcome)>,
    pub unreadable: Vec<String>,
}

impl<'a> Book<'a> {
    pub fn new(
        features: &'a [gherkin::Feature],
        unreadable: Vec<String>,
        runs: &'a [LevelRun],
    ) -> Self {
        let rows: Vec<Row> = scenarios(features).flat_map(|p| rows(p, runs)).collect();
        let levels = runs.iter().enumerate().map(|(index, run)| {
            let cells = rows.iter().map(|row| &row.cells[index]);
            let results: Vec<Option<bool>> = cells.clone().map(|c| c.outcome.passed()).collect();
            let count = |result| results.iter().filter(|&&of| of == result).count();
            LevelSummary {
                run,
                passed: count(Some(true)),
                failed: count(Some(false)),
                not_run: count(None),
                nanos: cells.filter_map(|cell| cell.nanos).sum(),
            }
        });
        Self {
            features,
            levels: levels.collect(),
            strays: runs.iter().flat_map(|run| run.strays(&rows)).collect(),
            rows,
            unreadable,
        }
    }

    /// The runs of the levels whose report could be read.
    pub fn reported(&self) -> impl Iterator<Item = &'a LevelRun> {
        let runs = self.levels.iter().map(|level| level.run);
        runs.filter(|run| run.report.is_ok())
    }

    /// Every scenario with the feature and the rule it is written in.
    pub fn scenarios(&self) -> impl Iterator<Item = Place<'a>> {
        scenarios(self.features)
    }

    /// The scenario's rows: a plain scenario's one, or an outline's examples.
    pub fn rows_of(&self, scenario: &gherkin::Scenario) -> impl Iterator<Item = &Row<'a>> {
        let own = move |row: &&Row| ptr::eq(row.scenario, scenario);
        self.rows.iter().filter(own)
    }

    /// A plain scenario's one row; none for an outline.
    pub fn plain(&self, scenario: &gherkin::Scenario) -> Option<&Row<'a>> {
        self.rows_of(scenario).find(|row| row.examples.is_none())
    }

    /// The rows of one of an outline's examples tables.
    pub fn rows_in(&self, examples: &gherkin::Examples) -> impl Iterator<Item = &Row<'a>> {
        let within = |row: &&Row| row.examples.is_some_and(|of| ptr::eq(of, examples));
        self.rows.iter().filter(within)
    }

    fn cells_of(&self, scenario: &gherkin::Scenario) -> impl Iterator<Item = &Cell<'a>> {
        self.rows_of(scenario).flat_map(|row| &row.cells)
    }

    pub fn status(&self, scenario: &gherkin::Scenario) -> &'static str {
        status(self.cells_of(scenario))
    }

    pub fn feature_status(&self, feature: &gherkin::Feature) -> &'static str {
        let rows = self.rows.iter().filter(|row| ptr::eq(row.feature, feature));
        status(rows.flat_map(|row| &row.cells))
    }

    pub fn flaky(&self, scenario: &gherkin::Scenario) -> bool {
        self.cells_of(scenario).any(|cell| cell.flaky.is_some())
    }

    pub fn flaky_count(&self) -> usize {
        self.scenarios().filter(|(_, _, s)| self.flaky(s)).count()
    }

    /// An outline's levels that left rows out, each with why, once.
    pub fn not_run_notes(&self, scenario: &gherkin::Scenario) -> BTreeSet<String> {
        let examples = self.rows_of(scenario).filter(|row| row.examples.is_some());
        let cells = examples.flat_map(|row| &row.cells);
        let note = |cell: &Cell| match &cell.outcome {
            Outcome::NotRun { reason } => Some(format!("{}: {reason}", cell.level)),
            _ => None,
        };
        cells.filter_map(note).collect()
    }

    /// The levels whose result of `scenario` failed at `step` (a background's
    /// steps, without a scenario, are not marked).
    pub fn failed_at(
        &self,
        scenario: Option<&gherkin::Scenario>,
        step: &gherkin::Step,
    ) -> Vec<&'static str> {
        let mut failed_at = Vec::new();
        for cell in scenario.into_iter().flat_map(|s| self.cells_of(s)) {
            let here = Some(step.position.line);
            let failed = matches!(cell.outcome, Outcome::Failed { line, .. } if line == here);
            if failed && !failed_at.contains(&cell.level) {
                failed_at.push(cell.level);
            }
        }
        failed_at
    }

    pub fn tags(&self) -> BTreeSet<&'a String> {
        self.scenarios().flat_map(|p| all_tags(&p)).collect()
    }
}

/// A scenario, the feature it is in and the rule it is written under, if any.
pub type Place<'a> = (
    &'a gherkin::Feature,
    Option<&'a gherkin::Rule>,
    &'a gherkin::Scenario,
);

/// Every scenario of the feature files: of each feature, those outside any rule first.
fn scenarios(features: &[gherkin::Feature]) -> impl Iterator<Item = Place<'_>> {
    features.iter().flat_map(|feature| {
        let ruled = feature.rules.iter().map(|r| (Some(r), &r.scenarios));
        let groups = iter::once((None, &feature.scenarios)).chain(ruled);
        groups.flat_map(move |(rule, scenarios)| scenarios.iter().map(move |s| (feature, rule, s)))
    })
}

/// The scenario's own tags and those it inherits, for the tag filter.
pub fn all_tags<'a>(&(feature, rule, scenario): &Place<'a>) -> Vec<&'a String> {
    let inherited = rule.into_iter().flat_map(|rule| &rule.tags);
    let tags = feature.tags.iter().chain(inherited).chain(&scenario.tags);
    tags.collect()
}

/// The feature's rules that have scenarios, consecutive ones of one name together:
/// the page shows each such group under one heading.
pub fn rule_groups(feature: &gherkin::Feature) -> Vec<Vec<&gherkin::Rule>> {
    let mut rules: Vec<&gherkin::Rule> = feature.rules.iter().collect();
    rules.retain(|rule| !rule.scenarios.is_empty());
    let groups = rules.chunk_by(|a, b| a.name == b.name);
    groups.map(<[_]>::to_vec).collect()
}

/// The names of an outline examples' columns; none when the examples have no table.
pub fn header(examples: &gherkin::Examples) -> Option<&Vec<String>> {
    examples.table.as_ref()?.rows.first()
}

/// `2026-11-27 15:30 UTC`.
pub fn format_time(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `Counting page views` → `counting-page-views`: URL fragments that survive re-runs.
pub fn slug(text: &str) -> String {
    let lower = text.to_lowercase();
    let words = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty());
    words.collect::<Vec<_>>().join("-")
}

/// The text's paragraphs, each on one line: blank lines part them.
pub fn paragraphs(text: Option<&str>) -> Vec<String> {
    let lines: Vec<&str> = text.unwrap_or_default().lines().map(str::trim).collect();
    let paragraphs = lines.split(|l| l.is_empty()).filter(|p| !p.is_empty());
    paragraphs.map(|lines| lines.join(" ")).collect()
}

/// The step's text in parts, each marked whether it is one of its outline's
/// `<placeholders>` (named by `scenario`'s examples), so the page can mark them.
pub fn parts<'a>(
    step: &'a gherkin::Step,
    scenario: Option<&gherkin::Scenario>,
) -> Vec<(bool, &'a str)> {
    let examples = scenario.into_iter().flat_map(|scenario| &scenario.examples);
    let names = examples.filter_map(header).flatten();
    let placeholders: Vec<String> = names.map(|name| format!("<{name}>")).collect();
    let mut parts = Vec::new();
    // Pieces that end at a `>`, as a placeholder does (cucumber's have no `>` inside),
    // each split before the longest placeholder it ends with, if it ends with one.
    for piece in step.value.split_inclusive('>') {
        let found = placeholders.iter().filter(|p| piece.ends_with(p.as_str()));
        let at = piece.len() - found.map(String::len).max().unwrap_or(0);
        let (text, placeholder) = piece.split_at(at);
        parts.extend([(false, text), (true, placeholder)]);
    }
    // Less the empty text before a placeholder, or placeholder after a text.
    parts.retain(|(_, text)| !text.is_empty());
    parts
}

/// A plain scenario's one row, or an outline's example rows, with the result of
/// each level in `runs`.
fn rows<'a>(place: Place<'a>, runs: &'a [LevelRun]) -> impl Iterator<Item = Row<'a>> {
    let (feature, _, scenario) = place;
    let plain = scenario.examples.is_empty();
    let plain = plain.then_some((None, &[][..], scenario.position.line));
    let examples = scenario.examples.iter().flat_map(|examples| {
        let table = examples.table.iter().flat_map(|table| &table.rows);
        // Where cucumber places an expanded example: two lines below `Examples:`, one per row.
        let rows = table.skip(1).zip(examples.position.line + 2..);
        rows.map(move |(values, line)| (Some(examples), &values[..], line))
    });
    let rows = plain.into_iter().chain(examples);
    rows.map(move |(examples, values, line)| {
        let header = examples.and_then(header).into_iter().flatten();
        let named = header.zip(values).map(|(n, v)| format!("{n}: {v}"));
        let label = named.collect::<Vec<_>>().join(", ");
        let mut key = format!("{}: {}", feature.name, scenario.name);
        if examples.is_some() {
            key = format!("{key} ({label})");
        }
        let cells = runs.iter().map(|run| {
            let (outcome, nanos) = run.outcome(place, line);
            Cell {
                level: run.level,
                outcome,
                nanos,
                recent: Vec::new(),
                flaky: None,
            }
        });
        Row {
            feature,
            scenario,
            examples,
            key,
            label,
            line,
            values,
            cells: cells.collect(),
        }
    })
}
