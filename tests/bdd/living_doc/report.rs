//! What one level's run left behind, cucumber's `writer::Json` report and the
//! scenarios the level could not run with why (`not_run.json`, written by the
//! runner), and what it says of each scenario of the feature files.

use std::{fs, io, path::Path};

use cucumber::gherkin;
use serde::{Deserialize, Serialize};

use super::model::{Outcome, Place, Row};

/// A feature as Cucumber JSON has it: only what the page needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Feature {
    pub uri: Option<String>,
    pub name: String,
    #[serde(default)]
    pub elements: Vec<Element>,
}

/// A scenario, or the background steps run for the scenario on the same `line`.
#[derive(Debug, Clone, Deserialize)]
pub struct Element {
    /// `scenario` or `background`: the page asks only whether it is a background.
    #[serde(rename = "type")]
    pub kind: String,
    pub line: usize,
    #[serde(default)]
    pub name: String,
    /// Hooks are steps without a keyword, line or name.
    #[serde(default)]
    pub before: Vec<Step>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub after: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    #[serde(default)]
    pub keyword: String,
    /// None for a hook.
    pub line: Option<usize>,
    #[serde(default)]
    pub name: String,
    pub result: RunResult,
}

impl Step {
    /// The step as written after its keyword: `Then the page …`.
    pub fn text(&self) -> String {
        let text = format!("{} {}", self.keyword.trim(), self.name);
        text.trim().to_owned()
    }

    /// Whether the step (or hook) passed; any other status stops its scenario.
    pub fn passed(&self) -> bool {
        self.result.status == "passed"
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RunResult {
    /// `passed`, `failed`, `skipped`, `ambiguous`, `undefined` or `pending`: the
    /// page asks only whether it passed, and names any other.
    pub status: String,
    /// Nanoseconds.
    #[serde(default)]
    pub duration: u64,
    pub error_message: Option<String>,
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
        let modified = fs::metadata(&path).and_then(|meta| meta.modified());
        let written = modified.ok().and_then(|time| time.try_into().ok());
        let (report, written) = match fs::read_to_string(&path) {
            Ok(text) => (parse(&text), written),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => (Err(format!("cannot read {}: {err}", path.display())), None),
        };
        // None yet, or none readable, is no scenario left out.
        let not_run = fs::read_to_string(dir.join(level).join("not_run.json"));
        let not_run = serde_json::from_str(&not_run.unwrap_or_default()).unwrap_or_default();
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
        let elements = features.iter().flat_map(|feature| &feature.elements);
        let steps = elements.flat_map(|e| e.before.iter().chain(&e.steps).chain(&e.after));
        let durations = steps.map(|step| step.result.duration);
        durations.fold(0, u64::wrapping_add)
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
    /// The result (and duration) of the scenario at `place`, or of its outline
    /// example, on `line`.
    pub fn outcome(&self, (feature, rule, scenario): Place, line: usize) -> (Outcome, Option<u64>) {
        let Ok(report) = &self.report else {
            return (Outcome::Unknown, None);
        };
        let reported = report.iter().filter(|f| f.name == feature.name);
        let (backgrounds, scenarios): (Vec<&Element>, Vec<&Element>) = reported
            .flat_map(|reported| &reported.elements)
            .filter(|element| element.line == line)
            .partition(|element| element.kind == "background");
        if backgrounds.is_empty() && scenarios.is_empty() {
            let mut not_run = self.not_run.iter();
            let entry = not_run.find(|entry| entry.feature == feature.name && entry.line == line);
            let reason = entry.map_or("not in this run", |e| &e.reason).to_owned();
            return (Outcome::NotRun { reason }, None);
        }
        let background_steps: Vec<&Step> = backgrounds.iter().flat_map(|e| &e.steps).collect();
        let scenario_steps: Vec<&Step> = scenarios.iter().flat_map(|e| &e.steps).collect();

        // In the order they ran: hooks before, the background, the scenario, hooks after.
        let before = scenarios.iter().flat_map(|element| &element.before);
        let set_up = before.map(|hook| ("the set-up before the scenario".to_owned(), hook));
        let steps = background_steps.iter().chain(&scenario_steps);
        let steps = steps.map(|step| (step.text(), *step));
        let after = scenarios.iter().flat_map(|element| &element.after);
        let clean_up = after.map(|hook| ("the clean-up after the scenario".to_owned(), hook));
        let ran: Vec<(String, &Step)> = set_up.chain(steps).chain(clean_up).collect();
        let nanos = Some(ran.iter().map(|(_, ran)| ran.result.duration).sum());
        let mut ran = ran.into_iter();
        let failed = ran.find(|(_, ran)| !ran.passed());
        let failed = failed.map(|(step, ran)| {
            let status = &ran.result.status;
            let message = ran.result.error_message.clone();
            let message = message.unwrap_or_else(|| format!("the step was {status}"));
            Outcome::Failed {
                step,
                line: ran.line,
                message,
            }
        });

        // Every step must have passed: one that never ran is no pass. The feature's
        // background runs first, then the rule's.
        let rule_background = rule.and_then(|rule| rule.background.as_ref());
        let background = feature.background.iter().chain(rule_background);
        let background: Vec<&gherkin::Step> = background.flat_map(|b| &b.steps).collect();
        let missing = background.get(background_steps.len()).copied();
        let missing = missing.or(scenario.steps.get(scenario_steps.len()));
        let missing = missing.map(|missing| {
            let expected = background.len() + scenario.steps.len();
            let ran = background_steps.len() + scenario_steps.len();
            Outcome::Failed {
                step: format!("{} {}", missing.keyword.trim(), missing.value),
                line: Some(missing.position.line),
                message: format!(
                    "only {ran} of the scenario's {expected} steps were run; the report may \
                     predate a change to the feature"
                ),
            }
        });
        (failed.or(missing).unwrap_or(Outcome::Passed), nanos)
    }

    /// Scenarios the level reported that no row of the feature files has (no
    /// longer, or not parsed): listed so that no failure goes unseen.
    pub fn strays(&self, rows: &[Row]) -> Vec<(&'static str, String, Outcome)> {
        let mut strays = Vec::new();
        for reported in self.report.iter().flatten() {
            for element in &reported.elements {
                let here = (&reported.name, element.line);
                let known = |row: &Row| (&row.feature.name, row.line) == here;
                if element.kind == "background" || rows.iter().any(known) {
                    continue;
                }
                // A hook's text is empty: it has no keyword or name.
                let hooks = element.before.iter().chain(&element.after);
                let mut ran = element.steps.iter().chain(hooks);
                let failed = ran.find(|step| !step.passed());
                let outcome = failed.map_or(Outcome::Passed, |step| Outcome::Failed {
                    step: step.text(),
                    line: None,
                    message: step.result.error_message.clone().unwrap_or_default(),
                });
                let uri = reported.uri.as_deref().unwrap_or_default();
                let (feature, name, line) = (&reported.name, &element.name, element.line);
                let name = format!("{feature}: {name} ({uri}, line {line})");
                strays.push((self.level, name, outcome));
            }
        }
        strays
    }
}
