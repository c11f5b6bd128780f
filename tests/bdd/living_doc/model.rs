//! The page's content: the specification as written, each scenario (or outline
//! example row) with its result and duration at every level that has a report.

use std::collections::BTreeSet;

use cucumber::gherkin;

use super::report::LevelRun;

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
pub struct Cell {
    pub level: &'static str,
    pub outcome: Outcome,
    pub nanos: Option<u64>,
    /// Earlier results, oldest first (filled from the history).
    pub recent: Vec<Recent>,
    /// Why the cell is flaky, if it is.
    pub flaky: Option<String>,
}

/// One earlier result of a cell, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    pub passed: bool,
    pub title: String,
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
pub struct Row {
    /// Names the row in the history and the diff: `Feature: Scenario (name: value, …)`.
    pub key: String,
    /// `name: value, …` of an example; empty for a plain scenario.
    pub label: String,
    /// Where cucumber reports it: the scenario's line, or the example's.
    pub line: usize,
    pub values: Vec<String>,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone)]
pub struct Examples {
    pub keyword: String,
    pub name: String,
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub keyword: String,
    pub parts: Vec<Part>,
    pub docstring: Option<String>,
    pub table: Vec<Vec<String>>,
    /// The levels that failed at this step.
    pub failed_at: Vec<&'static str>,
}

/// A step's text, its outline's `<placeholders>` apart so the page can mark them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub placeholder: bool,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Background {
    pub keyword: String,
    pub name: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    /// Its own tags and those it inherits, for the tag filter.
    pub all_tags: Vec<String>,
    pub description: Vec<String>,
    pub steps: Vec<Step>,
    /// A plain scenario's one row; empty for an outline.
    pub plain: Option<Row>,
    pub examples: Vec<Examples>,
}

impl Scenario {
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        let examples = self.examples.iter().flat_map(|e| &e.rows);
        self.plain.iter().chain(examples)
    }

    pub fn cells(&self) -> impl Iterator<Item = &Cell> {
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
fn status<'a>(cells: impl Iterator<Item = &'a Cell>) -> &'static str {
    // A failure (`false`) sorts before a pass.
    match cells.filter_map(|cell| cell.outcome.passed()).min() {
        Some(false) => "failed",
        Some(true) => "passed",
        None => "not-run",
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub keyword: String,
    pub name: String,
    pub tags: Vec<String>,
    pub description: Vec<String>,
    pub background: Option<Background>,
}

/// The scenarios of a feature outside any rule, or of one rule.
#[derive(Debug, Clone)]
pub struct Group {
    pub rule: Option<Rule>,
    pub scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone)]
pub struct Feature {
    pub id: String,
    pub keyword: String,
    pub name: String,
    pub tags: Vec<String>,
    pub description: Vec<String>,
    pub background: Option<Background>,
    pub groups: Vec<Group>,
}

impl Feature {
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
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
pub struct LevelSummary {
    pub level: &'static str,
    pub passed: usize,
    pub failed: usize,
    pub not_run: usize,
    pub nanos: u64,
    /// When the report was written, if known.
    pub written: Option<jiff::Timestamp>,
    pub problem: Option<String>,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct Book {
    pub levels: Vec<LevelSummary>,
    pub features: Vec<Feature>,
    pub strays: Vec<Stray>,
    pub unreadable: Vec<String>,
}

impl Book {
    pub fn new(
        specification: &[gherkin::Feature],
        unreadable: Vec<String>,
        runs: &[LevelRun],
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

    fn summarize(&self, run: &LevelRun, index: usize) -> LevelSummary {
        let cells: Vec<&Cell> = self.rows().filter_map(|row| row.cells.get(index)).collect();
        let count = |passed| {
            cells
                .iter()
                .filter(|c| c.outcome.passed() == passed)
                .count()
        };
        LevelSummary {
            level: run.level,
            passed: count(Some(true)),
            failed: count(Some(false)),
            not_run: count(None),
            nanos: cells.iter().map(|cell| cell.nanos.unwrap_or(0)).sum(),
            written: run.written,
            problem: run.report.as_ref().err().cloned(),
        }
    }

    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.features.iter().flat_map(Feature::scenarios)
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.scenarios().flat_map(Scenario::rows)
    }

    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut Row> {
        let groups = self.features.iter_mut().flat_map(|f| &mut f.groups);
        let scenarios = groups.flat_map(|group| &mut group.scenarios);
        scenarios.flat_map(|scenario| {
            let examples = scenario.examples.iter_mut().flat_map(|e| &mut e.rows);
            scenario.plain.iter_mut().chain(examples)
        })
    }

    pub fn tags(&self) -> BTreeSet<&String> {
        self.scenarios().flat_map(|s| &s.all_tags).collect()
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
fn paragraphs(text: Option<&str>) -> Vec<String> {
    let lines: Vec<&str> = text.unwrap_or_default().lines().map(str::trim).collect();
    let paragraphs = lines
        .split(|line| line.is_empty())
        .filter(|lines| !lines.is_empty());
    paragraphs.map(|lines| lines.join(" ")).collect()
}

fn tags<'a>(tags: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let tags = tags.into_iter();
    tags.map(|tag| format!("@{}", tag.trim_start_matches('@')))
        .collect()
}

fn parts(mut rest: &str, placeholders: &[String]) -> Vec<Part> {
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let found = placeholders
            .iter()
            .filter_map(|name| Some((rest.find(name.as_str())?, name)));
        let (text, placeholder) = match found.min() {
            Some((0, name)) => (name.as_str(), true),
            Some((at, _)) => (&rest[..at], false),
            None => (rest, false),
        };
        let text = text.to_owned();
        rest = &rest[text.len()..];
        parts.push(Part { placeholder, text });
    }
    parts
}

/// The steps as written; `placeholders` are an outline's `<name>`s, and each
/// step is marked with the levels whose result in `cells` failed there.
fn steps(steps: &[gherkin::Step], placeholders: &[String], cells: &[&Cell]) -> Vec<Step> {
    let step = |step: &gherkin::Step| {
        let mut failed_at = Vec::new();
        for cell in cells {
            if let Outcome::Failed {
                line: Some(line), ..
            } = cell.outcome
                && line == step.position.line
                && !failed_at.contains(&cell.level)
            {
                failed_at.push(cell.level);
            }
        }
        Step {
            keyword: step.keyword.trim().to_owned(),
            parts: parts(&step.value, placeholders),
            docstring: step.docstring.clone(),
            table: step
                .table
                .as_ref()
                .map(|table| table.rows.clone())
                .unwrap_or_default(),
            failed_at,
        }
    };
    steps.iter().map(step).collect()
}

fn background(background: Option<&gherkin::Background>) -> Option<Background> {
    background.map(|background| Background {
        keyword: background.keyword.clone(),
        name: background.name.clone(),
        steps: steps(&background.steps, &[], &[]),
    })
}

fn build_feature(feature: &gherkin::Feature, runs: &[LevelRun]) -> Feature {
    let scenarios_of = |rule, scenarios: &[gherkin::Scenario]| -> Vec<Scenario> {
        let build = |scenario| build_scenario(feature, rule, scenario, runs);
        scenarios.iter().map(build).collect()
    };
    let mut groups = vec![Group {
        rule: None,
        scenarios: scenarios_of(None, &feature.scenarios),
    }];
    for rule in &feature.rules {
        let scenarios = scenarios_of(Some(rule), &rule.scenarios);
        // Rules without scenarios are left out; consecutive ones of one name are one group.
        match groups.last_mut() {
            _ if scenarios.is_empty() => {}
            Some(Group {
                rule: Some(last),
                scenarios: into,
            }) if last.name == rule.name => into.extend(scenarios),
            _ => groups.push(Group {
                rule: Some(Rule {
                    keyword: rule.keyword.clone(),
                    name: rule.name.clone(),
                    tags: tags(&rule.tags),
                    description: paragraphs(rule.description.as_deref()),
                    background: background(rule.background.as_ref()),
                }),
                scenarios,
            }),
        }
    }
    groups.retain(|group| group.rule.is_some() || !group.scenarios.is_empty());
    Feature {
        id: slug(&feature.name),
        keyword: feature.keyword.clone(),
        name: feature.name.clone(),
        tags: tags(&feature.tags),
        description: paragraphs(feature.description.as_deref()),
        background: background(feature.background.as_ref()),
        groups,
    }
}

fn build_scenario(
    feature: &gherkin::Feature,
    rule: Option<&gherkin::Rule>,
    scenario: &gherkin::Scenario,
    runs: &[LevelRun],
) -> Scenario {
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
            row(format!("{key} ({label})"), label, values.clone(), line)
        });
        Some(Examples {
            keyword: examples.keyword.clone(),
            name: examples.name.clone().unwrap_or_default(),
            header: header.clone(),
            rows: rows.collect(),
        })
    });
    let examples: Vec<Examples> = examples.collect();
    let plain = scenario
        .examples
        .is_empty()
        .then(|| row(key, String::new(), Vec::new(), scenario.position.line));
    let rows = plain.iter().chain(examples.iter().flat_map(|e| &e.rows));
    let cells: Vec<&Cell> = rows.flat_map(|row| &row.cells).collect();
    Scenario {
        id: format!("{}--{}", slug(&feature.name), slug(&scenario.name)),
        name: scenario.name.clone(),
        tags: tags(&scenario.tags),
        all_tags: tags(feature.tags.iter().chain(inherited).chain(&scenario.tags)),
        description: paragraphs(scenario.description.as_deref()),
        steps: steps(&scenario.steps, &placeholders, &cells),
        plain,
        examples,
    }
}
