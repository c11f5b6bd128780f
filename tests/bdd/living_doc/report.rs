//! What one level's run left behind, cucumber's `writer::Json` report and the
//! scenarios the level could not run with why (`not_run.json`, written by the
//! runner), and what it says of each scenario of the feature files.

use std::{fs, io, path::Path};

use cucumber::gherkin;
use serde::{Deserialize, Serialize};

use super::model::{Outcome, Stray};

/// A feature as Cucumber JSON has it: only what the page needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Feature {
    #[serde(default)]
    pub uri: Option<String>,
    pub name: String,
    #[serde(default)]
    pub elements: Vec<Element>,
}

/// A scenario, or the background steps run for the scenario on the same `line`.
#[derive(Debug, Clone, Deserialize)]
pub struct Element {
    #[serde(rename = "type")]
    pub kind: ElementKind,
    pub line: usize,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub before: Vec<Hook>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub after: Vec<Hook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElementKind {
    Scenario,
    Background,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hook {
    pub result: RunResult,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    #[serde(default)]
    pub keyword: String,
    #[serde(default)]
    pub line: usize,
    #[serde(default)]
    pub name: String,
    pub result: RunResult,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunResult {
    pub status: Status,
    /// Nanoseconds.
    #[serde(default)]
    pub duration: u64,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
    Ambiguous,
    Undefined,
    Pending,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Ambiguous => "ambiguous",
            Self::Undefined => "undefined",
            Self::Pending => "pending",
        }
    }
}

impl Step {
    /// The step as written after its keyword: `Then the page …`.
    pub fn text(&self) -> String {
        format!("{} {}", self.keyword.trim(), self.name)
            .trim()
            .to_owned()
    }
}

/// A scenario the level left out, and why (`<level>/not_run.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotRun {
    pub feature: String,
    pub scenario: String,
    pub line: usize,
    pub reason: String,
}

/// The latest run of one level.
#[derive(Debug, Clone)]
pub struct LevelRun {
    pub level: &'static str,
    /// When the report was written.
    pub written: Option<jiff::Timestamp>,
    /// The features it reported, or why they could not be read.
    pub report: Result<Vec<Feature>, String>,
    pub not_run: Vec<NotRun>,
}

impl LevelRun {
    /// `<dir>/<level>/cucumber.json` and `not_run.json`; `None` when the level has no report.
    pub fn read(dir: &Path, level: &'static str) -> Option<Self> {
        let path = dir.join(level).join("cucumber.json");
        let (report, written) = match fs::read_to_string(&path) {
            Ok(text) => {
                let written = fs::metadata(&path)
                    .and_then(|meta| meta.modified())
                    .ok()
                    .and_then(|time| jiff::Timestamp::try_from(time).ok());
                (parse(&text), written)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => (Err(format!("cannot read {}: {err}", path.display())), None),
        };
        let not_run = fs::read_to_string(dir.join(level).join("not_run.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Some(Self {
            level,
            written,
            report,
            not_run,
        })
    }

    /// The sum of every recorded duration: two reports with the same sum are one run.
    pub fn fingerprint(&self) -> u64 {
        let Ok(features) = &self.report else { return 0 };
        features
            .iter()
            .flat_map(|feature| &feature.elements)
            .flat_map(|element| {
                let hooks = element.before.iter().chain(&element.after);
                hooks
                    .map(|hook| hook.result.duration)
                    .chain(element.steps.iter().map(|step| step.result.duration))
            })
            .fold(0, u64::wrapping_add)
    }
}

/// Cucumber JSON is an array of features; an empty file is a run that never finished.
pub fn parse(text: &str) -> Result<Vec<Feature>, String> {
    if text.trim().is_empty() {
        return Err("the report is empty: the run did not finish".to_owned());
    }
    serde_json::from_str(text).map_err(|err| format!("not Cucumber JSON: {err}"))
}

// What a level's report says about the specification's scenarios.
impl LevelRun {
    /// The result (and duration) of the scenario, or outline example, on `line`
    /// of `feature`; `background` holds the steps run before it.
    pub fn outcome(
        &self,
        feature: &gherkin::Feature,
        line: usize,
        background: &[&gherkin::Step],
        scenario: &gherkin::Scenario,
    ) -> (Outcome, Option<u64>) {
        let Ok(report) = &self.report else {
            return (Outcome::Unknown, None);
        };
        let not_run = || {
            let reason = self
                .not_run
                .iter()
                .find(|entry| entry.feature == feature.name && entry.line == line)
                .map_or("not in this run", |entry| entry.reason.as_str());
            (
                Outcome::NotRun {
                    reason: reason.to_owned(),
                },
                None,
            )
        };
        let elements: Vec<&Element> = report
            .iter()
            .filter(|reported| reported.name == feature.name)
            .flat_map(|reported| &reported.elements)
            .filter(|element| element.line == line)
            .collect();
        if elements.is_empty() {
            return not_run();
        }
        let of_kind = |kind| {
            elements
                .iter()
                .copied()
                .filter(move |element| element.kind == kind)
        };
        let scenario_elements = || of_kind(ElementKind::Scenario);
        let background_steps: Vec<&Step> = of_kind(ElementKind::Background)
            .flat_map(|e| &e.steps)
            .collect();
        let scenario_steps: Vec<&Step> = scenario_elements().flat_map(|e| &e.steps).collect();

        // In the order they ran: hooks before, the background, the scenario, hooks after.
        let before = scenario_elements().flat_map(|e| &e.before);
        let after = scenario_elements().flat_map(|e| &e.after);
        let ran = before
            .map(|hook| {
                (
                    "the set-up before the scenario".to_owned(),
                    None,
                    &hook.result,
                )
            })
            .chain(
                background_steps
                    .iter()
                    .chain(&scenario_steps)
                    .map(|step| (step.text(), Some(step.line), &step.result)),
            )
            .chain(after.map(|hook| {
                (
                    "the clean-up after the scenario".to_owned(),
                    None,
                    &hook.result,
                )
            }));
        let mut nanos = 0;
        let mut failure = None;
        for (step, line, result) in ran {
            nanos += result.duration;
            if result.status != Status::Passed && failure.is_none() {
                let message = result
                    .error_message
                    .clone()
                    .unwrap_or_else(|| format!("the step was {}", result.status.word()));
                failure = Some(Outcome::Failed {
                    step,
                    line,
                    message,
                });
            }
        }
        if let Some(failure) = failure {
            return (failure, Some(nanos));
        }

        // Every step must have passed: one that never ran is no pass.
        let missing = background
            .iter()
            .copied()
            .skip(background_steps.len())
            .chain(scenario.steps.iter().skip(scenario_steps.len()))
            .next();
        if let Some(missing) = missing {
            let expected = background.len() + scenario.steps.len();
            let ran = background_steps.len() + scenario_steps.len();
            let outcome = Outcome::Failed {
                step: format!("{} {}", missing.keyword.trim(), missing.value),
                line: Some(missing.position.line),
                message: format!(
                    "only {ran} of the scenario's {expected} steps were run; the report may \
                 predate a change to the feature"
                ),
            };
            return (outcome, Some(nanos));
        }
        (Outcome::Passed, Some(nanos))
    }

    /// Scenarios the level reported that the feature files no longer have (or could
    /// not be parsed into): listed so that no failure goes unseen.
    pub fn strays(&self, specification: &[gherkin::Feature]) -> Vec<Stray> {
        let Ok(report) = &self.report else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for reported in report {
            let feature = specification
                .iter()
                .find(|feature| feature.name == reported.name);
            for element in reported
                .elements
                .iter()
                .filter(|e| e.kind == ElementKind::Scenario)
            {
                let known =
                    feature.is_some_and(|feature| known_lines(feature).contains(&element.line));
                if known {
                    continue;
                }
                let steps = element.steps.iter().map(|step| (step.text(), &step.result));
                let hooks = element
                    .before
                    .iter()
                    .chain(&element.after)
                    .map(|hook| (String::new(), &hook.result));
                let outcome = steps
                    .chain(hooks)
                    .find(|(_, result)| result.status != Status::Passed)
                    .map_or(Outcome::Passed, |(step, result)| Outcome::Failed {
                        step,
                        line: None,
                        message: result.error_message.clone().unwrap_or_default(),
                    });
                found.push(Stray {
                    level: self.level,
                    name: format!(
                        "{}: {} ({}, line {})",
                        reported.name,
                        element.name,
                        reported.uri.as_deref().unwrap_or_default(),
                        element.line
                    ),
                    outcome,
                });
            }
        }
        found
    }
}

/// The lines cucumber reports a feature's scenarios and outline examples on.
fn known_lines(feature: &gherkin::Feature) -> Vec<usize> {
    let scenarios = feature
        .scenarios
        .iter()
        .chain(feature.rules.iter().flat_map(|rule| &rule.scenarios));
    let mut lines = Vec::new();
    for scenario in scenarios {
        if scenario.examples.is_empty() {
            lines.push(scenario.position.line);
        }
        for examples in &scenario.examples {
            let rows = examples
                .table
                .as_ref()
                .map_or(0, |table| table.rows.len().saturating_sub(1));
            lines.extend((0..rows).map(|index| examples.position.line + 2 + index));
        }
    }
    lines
}
