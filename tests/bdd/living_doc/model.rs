//! The page's content: the specification as written, each scenario (or outline
//! example row) with its result and duration at every level that has a report.

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
    /// CSS class and filter value.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed { .. } => "failed",
            Self::NotRun { .. } => "not-run",
            Self::Unknown => "unknown",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed { .. } => "failed",
            Self::NotRun { .. } => "not run",
            Self::Unknown => "no result",
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

impl Cell {
    pub fn duration(&self) -> String {
        self.nanos.map(duration).unwrap_or_default()
    }
}

/// One earlier result of a cell, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    pub passed: bool,
    pub title: String,
}

/// `1.2 s`, `35 ms`, `<1 ms`.
pub fn duration(nanos: u64) -> String {
    let millis = nanos / 1_000_000;
    match millis {
        0 => "<1 ms".to_owned(),
        1..=999 => format!("{millis} ms"),
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
    pub values: Vec<String>,
    pub cells: Vec<Cell>,
}

impl Row {
    /// `unit:passed e2e:not-run`, for the page's filters.
    pub fn filter_results(&self) -> String {
        let cells = self.cells.iter();
        let words: Vec<String> = cells
            .map(|cell| format!("{}:{}", cell.level, cell.outcome.class()))
            .collect();
        words.join(" ")
    }

    /// The levels at which the row is flaky.
    pub fn filter_flaky(&self) -> String {
        let flaky = self.cells.iter().filter(|cell| cell.flaky.is_some());
        flaky.map(|cell| cell.level).collect::<Vec<_>>().join(" ")
    }
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

/// A failure shown under a scenario.
#[derive(Debug, Clone)]
pub struct Failure {
    pub level: &'static str,
    pub example: String,
    pub step: String,
    pub message: String,
}

impl Scenario {
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.plain
            .iter()
            .chain(self.examples.iter().flat_map(|examples| &examples.rows))
    }

    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut Row> {
        let examples = self
            .examples
            .iter_mut()
            .flat_map(|examples| &mut examples.rows);
        self.plain.iter_mut().chain(examples)
    }

    /// `failed` when any level failed, else `passed` when any passed, else `not-run`.
    pub fn status(&self) -> &'static str {
        let outcomes = || self.rows().flat_map(|row| &row.cells).map(|c| &c.outcome);
        if outcomes().any(|o| matches!(o, Outcome::Failed { .. })) {
            "failed"
        } else if outcomes().any(|o| *o == Outcome::Passed) {
            "passed"
        } else {
            "not-run"
        }
    }

    pub fn flaky(&self) -> bool {
        self.rows()
            .flat_map(|row| &row.cells)
            .any(|c| c.flaky.is_some())
    }

    pub fn failures(&self) -> Vec<Failure> {
        let mut failures = Vec::new();
        for row in self.rows() {
            for cell in &row.cells {
                if let Outcome::Failed { step, message, .. } = &cell.outcome {
                    failures.push(Failure {
                        level: cell.level,
                        example: row.label.clone(),
                        step: step.clone(),
                        message: message.clone(),
                    });
                }
            }
        }
        failures
    }

    /// An outline's levels that left rows out, each with why, once.
    pub fn not_run_notes(&self) -> Vec<String> {
        let cells = self
            .examples
            .iter()
            .flat_map(|e| &e.rows)
            .flat_map(|row| &row.cells);
        let mut notes: Vec<String> = cells
            .filter_map(|cell| match &cell.outcome {
                Outcome::NotRun { reason } => Some(format!("{}: {reason}", cell.level)),
                _ => None,
            })
            .collect();
        notes.sort();
        notes.dedup();
        notes
    }

    pub fn flaky_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for row in self.rows() {
            for cell in &row.cells {
                if let Some(why) = &cell.flaky {
                    let example = row.label.clone();
                    let example = if example.is_empty() {
                        example
                    } else {
                        format!(" ({example})")
                    };
                    notes.push(format!("{}{example}: {why}", cell.level));
                }
            }
        }
        notes
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

    pub fn scenarios_mut(&mut self) -> impl Iterator<Item = &mut Scenario> {
        self.groups
            .iter_mut()
            .flat_map(|group| &mut group.scenarios)
    }

    pub fn status(&self) -> &'static str {
        let statuses: Vec<&str> = self.scenarios().map(Scenario::status).collect();
        ["failed", "passed"]
            .into_iter()
            .find(|status| statuses.contains(status))
            .unwrap_or("not-run")
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
    pub written: String,
    pub problem: Option<String>,
}

impl LevelSummary {
    pub fn duration(&self) -> String {
        duration(self.nanos)
    }
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
        let levels = runs
            .iter()
            .enumerate()
            .map(|(index, run)| summarize(run, index, &features))
            .collect();
        let strays = runs
            .iter()
            .flat_map(|run| run.strays(specification))
            .collect();
        Self {
            levels,
            features,
            strays,
            unreadable,
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.features
            .iter()
            .flat_map(Feature::scenarios)
            .flat_map(Scenario::rows)
    }

    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut Row> {
        self.features
            .iter_mut()
            .flat_map(Feature::scenarios_mut)
            .flat_map(Scenario::rows_mut)
    }

    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .features
            .iter()
            .flat_map(Feature::scenarios)
            .flat_map(|scenario| scenario.all_tags.iter().cloned())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    pub fn scenario_count(&self) -> usize {
        self.features.iter().flat_map(Feature::scenarios).count()
    }

    pub fn flaky_count(&self) -> usize {
        self.features
            .iter()
            .flat_map(Feature::scenarios)
            .filter(|s| s.flaky())
            .count()
    }
}

fn summarize(run: &LevelRun, index: usize, features: &[Feature]) -> LevelSummary {
    let mut summary = LevelSummary {
        level: run.level,
        passed: 0,
        failed: 0,
        not_run: 0,
        nanos: 0,
        written: run
            .written
            .map(format_time)
            .unwrap_or_else(|| "unknown".to_owned()),
        problem: run.report.as_ref().err().cloned(),
    };
    let cells = features
        .iter()
        .flat_map(Feature::scenarios)
        .flat_map(Scenario::rows)
        .filter_map(|row| row.cells.get(index));
    for cell in cells {
        match cell.outcome {
            Outcome::Passed => summary.passed += 1,
            Outcome::Failed { .. } => summary.failed += 1,
            Outcome::NotRun { .. } | Outcome::Unknown => summary.not_run += 1,
        }
        summary.nanos += cell.nanos.unwrap_or(0);
    }
    summary
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

fn paragraphs(text: Option<&str>) -> Vec<String> {
    let Some(text) = text else { return Vec::new() };
    let mut paragraphs = vec![Vec::new()];
    for line in text.lines().map(str::trim) {
        match (line.is_empty(), paragraphs.last_mut()) {
            (true, Some(last)) if !last.is_empty() => paragraphs.push(Vec::new()),
            (false, Some(last)) => last.push(line),
            _ => {}
        }
    }
    paragraphs
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.join(" "))
        .collect()
}

fn tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .map(|tag| format!("@{}", tag.trim_start_matches('@')))
        .collect()
}

/// A step's text, its outline's `<placeholders>` apart so the page can mark them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub placeholder: bool,
    pub text: String,
}

fn parts(text: &str, placeholders: &[String]) -> Vec<Part> {
    let part = |placeholder, text: &str| Part {
        placeholder,
        text: text.to_owned(),
    };
    let mut parts = Vec::new();
    let mut rest = text;
    let next = |rest: &str| {
        let found = placeholders
            .iter()
            .filter_map(|name| Some((rest.find(name.as_str())?, name)));
        found.min()
    };
    while let Some((at, name)) = next(rest) {
        if at > 0 {
            parts.push(part(false, &rest[..at]));
        }
        parts.push(part(true, name));
        rest = &rest[at + name.len()..];
    }
    if !rest.is_empty() {
        parts.push(part(false, rest));
    }
    parts
}

/// The steps as written; `placeholders` are an outline's `<name>`s.
fn steps(steps: &[gherkin::Step], placeholders: &[String]) -> Vec<Step> {
    steps
        .iter()
        .map(|step| Step {
            keyword: step.keyword.trim().to_owned(),
            parts: parts(&step.value, placeholders),
            docstring: step.docstring.clone(),
            table: step
                .table
                .as_ref()
                .map(|table| table.rows.clone())
                .unwrap_or_default(),
            failed_at: Vec::new(),
        })
        .collect()
}

fn background(background: Option<&gherkin::Background>) -> Option<Background> {
    background.map(|background| Background {
        keyword: background.keyword.clone(),
        name: background.name.clone(),
        steps: steps(&background.steps, &[]),
    })
}

fn build_feature(feature: &gherkin::Feature, runs: &[LevelRun]) -> Feature {
    let id = slug(&feature.name);
    let mut groups = vec![Group {
        rule: None,
        scenarios: Vec::new(),
    }];
    let outside = feature.scenarios.iter().map(|scenario| (None, scenario));
    let in_rules = feature.rules.iter().flat_map(|rule| {
        rule.scenarios
            .iter()
            .map(move |scenario| (Some(rule), scenario))
    });
    for (rule, scenario) in outside.chain(in_rules) {
        let same_rule = match (&groups.last().and_then(|g| g.rule.as_ref()), rule) {
            (None, None) => true,
            (Some(current), Some(rule)) => current.name == rule.name,
            _ => false,
        };
        if !same_rule {
            groups.push(Group {
                rule: rule.map(|rule| Rule {
                    keyword: rule.keyword.clone(),
                    name: rule.name.clone(),
                    tags: tags(&rule.tags),
                    description: paragraphs(rule.description.as_deref()),
                    background: background(rule.background.as_ref()),
                }),
                scenarios: Vec::new(),
            });
        }
        let background_steps: Vec<&gherkin::Step> = feature
            .background
            .iter()
            .chain(rule.and_then(|rule| rule.background.as_ref()))
            .flat_map(|background| &background.steps)
            .collect();
        let inherited = feature
            .tags
            .iter()
            .chain(rule.iter().flat_map(|rule| &rule.tags));
        let placeholders: Vec<String> = scenario
            .examples
            .iter()
            .filter_map(|examples| examples.table.as_ref()?.rows.first())
            .flatten()
            .map(|name| format!("<{name}>"))
            .collect();
        let mut built = Scenario {
            id: format!("{id}--{}", slug(&scenario.name)),
            name: scenario.name.clone(),
            tags: tags(&scenario.tags),
            all_tags: tags(&inherited.chain(&scenario.tags).cloned().collect::<Vec<_>>()),
            description: paragraphs(scenario.description.as_deref()),
            steps: steps(&scenario.steps, &placeholders),
            plain: None,
            examples: Vec::new(),
        };
        let key = format!("{}: {}", feature.name, scenario.name);
        let cells = |line: usize| -> Vec<Cell> {
            runs.iter()
                .map(|run| cell(run, feature, line, &background_steps, scenario))
                .collect()
        };
        if scenario.examples.is_empty() {
            built.plain = Some(Row {
                key,
                label: String::new(),
                values: Vec::new(),
                cells: cells(scenario.position.line),
            });
        } else {
            for examples in &scenario.examples {
                let Some(table) = &examples.table else {
                    continue;
                };
                let Some((header, rows)) = table.rows.split_first() else {
                    continue;
                };
                let rows = rows.iter().enumerate().map(|(index, values)| {
                    let named: Vec<String> = header
                        .iter()
                        .zip(values)
                        .map(|(name, value)| format!("{name}: {value}"))
                        .collect();
                    // Where cucumber places an expanded example: two lines below `Examples:`, one per row.
                    let line = examples.position.line + 2 + index;
                    let label = named.join(", ");
                    Row {
                        key: format!("{key} ({label})"),
                        label,
                        values: values.clone(),
                        cells: cells(line),
                    }
                });
                built.examples.push(Examples {
                    keyword: examples.keyword.clone(),
                    name: examples.name.clone().unwrap_or_default(),
                    header: header.clone(),
                    rows: rows.collect(),
                });
            }
        }
        mark_failed_steps(&mut built, scenario);
        if let Some(group) = groups.last_mut() {
            group.scenarios.push(built);
        }
    }
    groups.retain(|group| group.rule.is_some() || !group.scenarios.is_empty());
    Feature {
        id,
        keyword: feature.keyword.clone(),
        name: feature.name.clone(),
        tags: tags(&feature.tags),
        description: paragraphs(feature.description.as_deref()),
        background: background(feature.background.as_ref()),
        groups,
    }
}

/// Marks, on the scenario's own steps as written, the levels that failed there.
fn mark_failed_steps(built: &mut Scenario, scenario: &gherkin::Scenario) {
    let failures: Vec<(&'static str, usize)> = built
        .rows()
        .flat_map(|row| &row.cells)
        .filter_map(|cell| match &cell.outcome {
            Outcome::Failed {
                line: Some(line), ..
            } => Some((cell.level, *line)),
            _ => None,
        })
        .collect();
    for (step, written) in built.steps.iter_mut().zip(&scenario.steps) {
        for (level, line) in &failures {
            if *line == written.position.line && !step.failed_at.contains(level) {
                step.failed_at.push(level);
            }
        }
    }
}

/// The scenario (or example) on `line` of `feature` at one level.
fn cell(
    run: &LevelRun,
    feature: &gherkin::Feature,
    line: usize,
    background: &[&gherkin::Step],
    scenario: &gherkin::Scenario,
) -> Cell {
    let (outcome, nanos) = run.outcome(feature, line, background, scenario);
    Cell {
        level: run.level,
        outcome,
        nanos,
        recent: Vec::new(),
        flaky: None,
    }
}
