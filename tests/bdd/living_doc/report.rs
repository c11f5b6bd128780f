//! What one level's run left behind: cucumber's `writer::Json` report, and the
//! scenarios the level could not run with why (`not_run.json`, written by the runner).

use std::{fs, io, path::Path};

use serde::{Deserialize, Serialize};

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
