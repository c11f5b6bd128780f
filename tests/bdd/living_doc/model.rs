//! The page's content: the specification as written, each scenario (or outline
//! example row) with its result and duration at every level that has a report.
//! Its parts borrow the parsed feature files, the reports and the history.

use std::collections::BTreeSet;

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

/// A plain scenario has one row without values; an outline one per example.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// Names the row in the history and the diff: `Feature: Scenario (name: value, …)`.
    pub key: String,
    /// `name: value, …` of an example; empty for a plain scenario.
    pub label: String,
    /// Where cucumber reports it: the scenario's line, or the example's.
    pub line: usize,
    pub values: &'a [String],
    pub cells: Vec<Cell<'a>>,
}

#[derive(Debug, Clone)]
pub struct Examples<'a> {
    pub src: &'a gherkin::Examples,
    pub header: &'a [String],
    pub rows: Vec<Row<'a>>,
}

#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub src: &'a gherkin::Step,
    pub parts: Vec<Part<'a>>,
    /// The levels that failed at this step.
    pub failed_at: Vec<&'static str>,
}

/// A step's text, its outline's `<placeholders>` apart so the page can mark them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    pub placeholder: bool,
    pub text: &'a str,
}

#[derive(Debug, Clone)]
pub struct Background<'a> {
    pub src: &'a gherkin::Background,
    pub steps: Vec<Step<'a>>,
}

impl<'a> Background<'a> {
    fn new(background: Option<&'a gherkin::Background>) -> Option<Self> {
        background.map(|src| Self {
            src,
            steps: steps(&src.steps, &[], &[]),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Scenario<'a> {
    pub src: &'a gherkin::Scenario,
    pub id: String,
    /// Its own tags and those it inherits, for the tag filter.
    pub all_tags: Vec<&'a String>,
    pub steps: Vec<Step<'a>>,
    /// A plain scenario's one row; empty for an outline.
    pub plain: Option<Row<'a>>,
    pub examples: Vec<Examples<'a>>,
}

impl<'a> Scenario<'a> {
    pub fn rows(&self) -> impl Iterator<Item = &Row<'a>> {
        let examples = self.examples.iter().flat_map(|e| &e.rows);
        self.plain.iter().chain(examples)
    }

    pub fn cells(&self) -> impl Iterator<Item = &Cell<'a>> {
        self.rows().flat_map(|row| &row.cells)
    }

    pub fn status(&self) -> &'static str {
        status(self.cells())
    }

    pub fn flaky(&self) -> bool {
        self.cells().any(|cell| cell.flaky.is_some())
    }

    /// An outline's levels that left rows out, each with why, once.
    pub fn not_run_notes(&self) -> BTreeSet<String> {
        let examples = self.examples.iter().flat_map(|examples| &examples.rows);
        let cells = examples.flat_map(|row| &row.cells);
        cells
            .filter_map(|cell| match &cell.outcome {
                Outcome::NotRun { reason } => Some(format!("{}: {reason}", cell.level)),
                _ => None,
            })
            .collect()
    }
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

/// The scenarios of a feature outside any rule, or of consecutive rules of one name.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub rule: Option<&'a gherkin::Rule>,
    pub background: Option<Background<'a>>,
    pub scenarios: Vec<Scenario<'a>>,
}

#[derive(Debug, Clone)]
pub struct Feature<'a> {
    pub src: &'a gherkin::Feature,
    pub id: String,
    pub background: Option<Background<'a>>,
    pub groups: Vec<Group<'a>>,
}

impl<'a> Feature<'a> {
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario<'a>> {
        self.groups.iter().flat_map(|group| &group.scenarios)
    }

    pub fn status(&self) -> &'static str {
        status(self.scenarios().flat_map(Scenario::cells))
    }
}

/// Results a level reported for scenarios the feature files do not have.
#[derive(Debug, Clone)]
pub struct Stray {
    pub level: &'static str,
    pub name: String,
    pub outcome: Outcome,
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

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct Book<'a> {
    pub levels: Vec<LevelSummary<'a>>,
    pub features: Vec<Feature<'a>>,
    pub strays: Vec<Stray>,
    pub unreadable: Vec<String>,
}

impl<'a> Book<'a> {
    pub fn new(
        specification: &'a [gherkin::Feature],
        unreadable: Vec<String>,
        runs: &'a [LevelRun],
    ) -> Self {
        let features: Vec<Feature> = specification
            .iter()
            .map(|feature| build_feature(feature, runs))
            .collect();
        let mut book = Self {
            levels: Vec::new(),
            strays: runs.iter().flat_map(|run| run.strays(&features)).collect(),
            features,
            unreadable,
        };
        for (index, run) in runs.iter().enumerate() {
            book.levels.push(book.summarize(run, index));
        }
        book
    }

    fn summarize(&self, run: &'a LevelRun, index: usize) -> LevelSummary<'a> {
        let cells: Vec<&Cell> = self.rows().filter_map(|row| row.cells.get(index)).collect();
        let count = |passed| {
            cells
                .iter()
                .filter(|c| c.outcome.passed() == passed)
                .count()
        };
        LevelSummary {
            run,
            passed: count(Some(true)),
            failed: count(Some(false)),
            not_run: count(None),
            nanos: cells.iter().map(|cell| cell.nanos.unwrap_or(0)).sum(),
        }
    }

    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario<'a>> {
        self.features.iter().flat_map(Feature::scenarios)
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row<'a>> {
        self.scenarios().flat_map(Scenario::rows)
    }

    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut Row<'a>> {
        let groups = self.features.iter_mut().flat_map(|f| &mut f.groups);
        let scenarios = groups.flat_map(|group| &mut group.scenarios);
        scenarios.flat_map(|scenario| {
            let examples = scenario.examples.iter_mut().flat_map(|e| &mut e.rows);
            scenario.plain.iter_mut().chain(examples)
        })
    }

    pub fn tags(&self) -> BTreeSet<&String> {
        self.scenarios()
            .flat_map(|s| s.all_tags.iter().copied())
            .collect()
    }

    pub fn flaky_count(&self) -> usize {
        self.scenarios().filter(|scenario| scenario.flaky()).count()
    }
}

/// `2026-11-27 15:30 UTC`.
pub fn format_time(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `Counting page views` → `counting-page-views`: URL fragments that survive re-runs.
fn slug(text: &str) -> String {
    let lower = text.to_lowercase();
    let words = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty());
    words.collect::<Vec<_>>().join("-")
}

/// The text's paragraphs, each on one line: blank lines part them.
pub fn paragraphs(text: Option<&str>) -> Vec<String> {
    let lines: Vec<&str> = text.unwrap_or_default().lines().map(str::trim).collect();
    let paragraphs = lines
        .split(|line| line.is_empty())
        .filter(|lines| !lines.is_empty());
    paragraphs.map(|lines| lines.join(" ")).collect()
}

fn parts<'a>(mut rest: &'a str, placeholders: &[String]) -> Vec<Part<'a>> {
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let found = placeholders
            .iter()
            .filter_map(|name| Some((rest.find(name.as_str())?, name)));
        let (text, placeholder) = match found.min() {
            Some((0, name)) => (&rest[..name.len()], true),
            Some((at, _)) => (&rest[..at], false),
            None => (rest, false),
        };
        rest = &rest[text.len()..];
        parts.push(Part { placeholder, text });
    }
    parts
}

/// The steps as written; `placeholders` are an outline's `<name>`s, and each
/// step is marked with the levels whose result in `cells` failed there.
fn steps<'a>(
    steps: &'a [gherkin::Step],
    placeholders: &[String],
    cells: &[&Cell],
) -> Vec<Step<'a>> {
    let step = |src: &'a gherkin::Step| {
        let mut failed_at = Vec::new();
        for cell in cells {
            if let Outcome::Failed {
                line: Some(line), ..
            } = cell.outcome
                && line == src.position.line
                && !failed_at.contains(&cell.level)
            {
                failed_at.push(cell.level);
            }
        }
        Step {
            src,
            parts: parts(&src.value, placeholders),
            failed_at,
        }
    };
    steps.iter().map(step).collect()
}

fn build_feature<'a>(feature: &'a gherkin::Feature, runs: &'a [LevelRun]) -> Feature<'a> {
    let scenarios_of = |rule: Option<&'a gherkin::Rule>, scenarios: &'a [gherkin::Scenario]| {
        let build = move |scenario| build_scenario(feature, rule, scenario, runs);
        scenarios.iter().map(build)
    };
    let loose = Group {
        rule: None,
        background: None,
        scenarios: scenarios_of(None, &feature.scenarios).collect(),
    };
    // Rules without scenarios are left out; consecutive ones of one name are one group.
    let rules: Vec<&gherkin::Rule> = feature
        .rules
        .iter()
        .filter(|rule| !rule.scenarios.is_empty())
        .collect();
    let ruled = rules.chunk_by(|a, b| a.name == b.name).map(|rules| Group {
        rule: Some(rules[0]),
        background: Background::new(rules[0].background.as_ref()),
        scenarios: rules
            .iter()
            .flat_map(|rule| scenarios_of(Some(rule), &rule.scenarios))
            .collect(),
    });
    let loose = (!loose.scenarios.is_empty()).then_some(loose);
    Feature {
        src: feature,
        id: slug(&feature.name),
        background: Background::new(feature.background.as_ref()),
        groups: loose.into_iter().chain(ruled).collect(),
    }
}

fn build_scenario<'a>(
    feature: &'a gherkin::Feature,
    rule: Option<&'a gherkin::Rule>,
    scenario: &'a gherkin::Scenario,
    runs: &'a [LevelRun],
) -> Scenario<'a> {
    let background: Vec<&gherkin::Step> = feature
        .background
        .iter()
        .chain(rule.and_then(|rule| rule.background.as_ref()))
        .flat_map(|background| &background.steps)
        .collect();
    let inherited = rule.iter().flat_map(|rule| &rule.tags);
    let placeholders: Vec<String> = scenario
        .examples
        .iter()
        .filter_map(|examples| examples.table.as_ref()?.rows.first())
        .flatten()
        .map(|name| format!("<{name}>"))
        .collect();
    let key = format!("{}: {}", feature.name, scenario.name);
    let row = |key, label, values, line| Row {
        key,
        label,
        values,
        line,
        cells: runs
            .iter()
            .map(|run| {
                let (outcome, nanos) = run.outcome(feature, line, &background, scenario);
                Cell {
                    level: run.level,
                    outcome,
                    nanos,
                    recent: Vec::new(),
                    flaky: None,
                }
            })
            .collect(),
    };
    let examples = scenario.examples.iter().filter_map(|examples| {
        let (header, values) = examples.table.as_ref()?.rows.split_first()?;
        let rows = values.iter().enumerate().map(|(index, values)| {
            let named = header.iter().zip(values);
            let named: Vec<String> = named
                .map(|(name, value)| format!("{name}: {value}"))
                .collect();
            let label = named.join(", ");
            // Where cucumber places an expanded example: two lines below `Examples:`, one per row.
            let line = examples.position.line + 2 + index;
            row(format!("{key} ({label})"), label, values, line)
        });
        Some(Examples {
            src: examples,
            header,
            rows: rows.collect(),
        })
    });
    let examples: Vec<Examples> = examples.collect();
    let plain = scenario
        .examples
        .is_empty()
        .then(|| row(key, String::new(), &[], scenario.position.line));
    let rows = plain.iter().chain(examples.iter().flat_map(|e| &e.rows));
    let cells: Vec<&Cell> = rows.flat_map(|row| &row.cells).collect();
    Scenario {
        src: scenario,
        id: format!("{}--{}", slug(&feature.name), slug(&scenario.name)),
        all_tags: feature
            .tags
            .iter()
            .chain(inherited)
            .chain(&scenario.tags)
            .collect(),
        steps: steps(&scenario.steps, &placeholders, &cells),
        plain,
        examples,
    }
}
