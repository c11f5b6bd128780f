//! Living documentation: one self-contained HTML page with every feature and
//! scenario of the specification, in the words of `features/`, and the latest
//! result of each scenario at each level that has a report.
//!
//! The text comes from the feature files (Cucumber JSON has no descriptions and
//! only the steps that ran); the results come from `<report dir>/<level>/cucumber.json`
//! as cucumber's `writer::Json` leaves them. A scenario missing from a level's JSON
//! was not run there. Scenario outlines are shown one example at a time, as they
//! run and are counted.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use anyhow::{Context as _, Result};
use cucumber::{
    feature::Ext as _,
    gherkin::{self, GherkinEnv},
};
use serde_json::Value;

/// The levels, in the order the page shows them.
const LEVELS: [&str; 3] = ["unit", "integration", "e2e"];

/// Reads `report_dir/<level>/cucumber.json` for each level that has one and the
/// feature files, and writes `report_dir/report.html`. Returns the page's path.
pub fn render(report_dir: &Path) -> Result<PathBuf> {
    let (specification, unreadable) = read_specification(&features_dir())?;
    let runs = read_runs(report_dir);
    let html = page(&specification, &unreadable, &runs);
    let path = report_dir.join("report.html");
    fs::create_dir_all(report_dir).with_context(|| format!("creating {}", report_dir.display()))?;
    fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `BDD_FEATURES`, else the crate's `features/`: where the runner reads them too.
fn features_dir() -> PathBuf {
    std::env::var_os("BDD_FEATURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("features"))
}

/// Every `.feature` file under `dir`, parsed with its outlines expanded, in path
/// order; and the files that could not be read, with why.
fn read_specification(dir: &Path) -> Result<(Vec<gherkin::Feature>, Vec<String>)> {
    let mut paths = Vec::new();
    collect_feature_files(dir, &mut paths)
        .with_context(|| format!("reading the features in {}", dir.display()))?;
    paths.sort();
    let mut features = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        match gherkin::Feature::parse_path(&path, GherkinEnv::default())
            .map_err(|err| err.to_string())
            .and_then(|feature| feature.expand_examples().map_err(|err| err.to_string()))
        {
            Ok(feature) => features.push(feature),
            Err(err) => unreadable.push(format!("{}: {err}", path.display())),
        }
    }
    Ok((features, unreadable))
}

fn collect_feature_files(dir: &Path, paths: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_feature_files(&path, paths)?;
        } else if path.extension().is_some_and(|ext| ext == "feature") {
            paths.push(path);
        }
    }
    Ok(())
}

/// The latest run of one level: its Cucumber JSON, or why it could not be read.
#[derive(Debug)]
struct LevelRun {
    level: &'static str,
    /// When the report was written, as `YYYY-MM-DD HH:MM UTC`.
    written: Option<String>,
    report: Result<Value, String>,
}

/// One `LevelRun` for each level whose `cucumber.json` exists.
fn read_runs(report_dir: &Path) -> Vec<LevelRun> {
    LEVELS
        .iter()
        .filter_map(|&level| {
            let path = report_dir.join(level).join("cucumber.json");
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
                Err(err) => {
                    return Some(LevelRun {
                        level,
                        written: None,
                        report: Err(format!("cannot read {}: {err}", path.display())),
                    });
                }
            };
            let written = fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
                .map(|since| utc(since.as_secs()));
            Some(LevelRun {
                level,
                written,
                report: parse_report(&text),
            })
        })
        .collect()
}

/// Cucumber JSON is an array of features; an empty file is a run that never finished.
fn parse_report(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Err("the report is empty: the run did not finish".to_owned());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(report @ Value::Array(_)) => Ok(report),
        Ok(_) => Err("not Cucumber JSON: expected an array of features".to_owned()),
        Err(err) => Err(format!("not valid JSON: {err}")),
    }
}

/// A scenario's latest result at one level.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Passed,
    /// `step` is the step (or hook) that did not pass, as written; `message` why.
    Failed {
        step: String,
        message: String,
    },
    /// Absent from the level's report.
    NotRun,
    /// The level's report could not be read.
    Unknown,
}

impl Outcome {
    fn class(&self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed { .. } => "failed",
            Self::NotRun => "not-run",
            Self::Unknown => "unknown",
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed { .. } => "failed",
            Self::NotRun => "not run",
            Self::Unknown => "no result",
        }
    }
}

/// The JSON feature of `feature`, matched by name (JSON paths depend on where it ran).
fn report_feature<'a>(report: &'a Value, feature: &gherkin::Feature) -> Option<&'a Value> {
    report
        .as_array()?
        .iter()
        .find(|candidate| str_of(candidate, "name") == feature.name)
}

/// The JSON elements of the given type recorded for the scenario on `line`.
fn elements<'a>(
    report_feature: &'a Value,
    kind: &'a str,
    line: usize,
) -> impl Iterator<Item = &'a Value> + 'a {
    array_of(report_feature, "elements")
        .iter()
        .filter(move |element| {
            str_of(element, "type") == kind
                && element.get("line").and_then(Value::as_u64) == Some(line as u64)
        })
}

/// Works out `scenario`'s outcome at one level from that level's report;
/// `background` holds the steps run before it (the feature's, then its rule's).
fn outcome(
    report: &Result<Value, String>,
    feature: &gherkin::Feature,
    background: &[&gherkin::Step],
    scenario: &gherkin::Scenario,
) -> Outcome {
    let Ok(report) = report else {
        return Outcome::Unknown;
    };
    let Some(reported) = report_feature(report, feature) else {
        return Outcome::NotRun;
    };
    let line = scenario.position.line;
    let scenario_elements: Vec<&Value> = elements(reported, "scenario", line).collect();
    let background_elements: Vec<&Value> = elements(reported, "background", line).collect();
    if scenario_elements.is_empty() && background_elements.is_empty() {
        return Outcome::NotRun;
    }

    // In the order they ran: hooks before, the background, the scenario, hooks after.
    let background_steps = recorded(&background_elements, "steps");
    let scenario_steps = recorded(&scenario_elements, "steps");
    let before = recorded(&scenario_elements, "before");
    let after = recorded(&scenario_elements, "after");
    let ran = before
        .iter()
        .map(|hook| ("the set-up before the scenario".to_owned(), *hook))
        .chain(
            background_steps
                .iter()
                .chain(&scenario_steps)
                .map(|step| (recorded_step_text(step), *step)),
        )
        .chain(
            after
                .iter()
                .map(|hook| ("the clean-up after the scenario".to_owned(), *hook)),
        );
    for (what, ran) in ran {
        let result = ran.get("result").unwrap_or(&Value::Null);
        let status = str_of(result, "status");
        if status != "passed" {
            let message = match result.get("error_message").and_then(Value::as_str) {
                Some(message) => message.to_owned(),
                None if status.is_empty() => "no result recorded".to_owned(),
                None => format!("the step was {status}"),
            };
            return Outcome::Failed {
                step: what,
                message,
            };
        }
    }

    // Every step of the scenario must have passed: one that never ran is no pass.
    let missing = background
        .iter()
        .copied()
        .skip(background_steps.len())
        .chain(scenario.steps.iter().skip(scenario_steps.len()))
        .next();
    if let Some(missing) = missing {
        let expected = background.len() + scenario.steps.len();
        let ran = background_steps.len() + scenario_steps.len();
        return Outcome::Failed {
            step: step_text(missing),
            message: format!(
                "only {ran} of the scenario's {expected} steps were run; the report may \
                 predate a change to the feature"
            ),
        };
    }
    Outcome::Passed
}

/// The entries under `key` (steps or hooks) of all `elements`, in order.
fn recorded<'a>(elements: &[&'a Value], key: &str) -> Vec<&'a Value> {
    elements
        .iter()
        .flat_map(|element| array_of(element, key))
        .collect()
}

/// A step as the JSON has it: `Then the page …`.
fn recorded_step_text(step: &Value) -> String {
    format!(
        "{} {}",
        str_of(step, "keyword").trim(),
        str_of(step, "name")
    )
    .trim()
    .to_owned()
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn array_of<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn step_text(step: &gherkin::Step) -> String {
    format!("{} {}", step.keyword.trim(), step.value)
}

/// Scenarios a level reported that the feature files no longer have (or could
/// not be parsed into): listed so that no failure goes unseen.
fn unmatched(specification: &[gherkin::Feature], run: &LevelRun) -> Vec<(String, Outcome)> {
    let Ok(report) = &run.report else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for recorded in report.as_array().map_or(&[][..], Vec::as_slice) {
        let feature = specification
            .iter()
            .find(|feature| feature.name == str_of(recorded, "name"));
        for element in array_of(recorded, "elements") {
            if str_of(element, "type") != "scenario" {
                continue;
            }
            let line = element.get("line").and_then(Value::as_u64).unwrap_or(0);
            let known = feature.is_some_and(|feature| {
                all_scenarios(feature).any(|(_, scenario)| scenario.position.line as u64 == line)
            });
            if known {
                continue;
            }
            let failure = array_of(element, "steps")
                .iter()
                .chain(array_of(element, "before"))
                .chain(array_of(element, "after"))
                .find_map(|ran| {
                    let result = ran.get("result")?;
                    (str_of(result, "status") != "passed").then(|| Outcome::Failed {
                        step: recorded_step_text(ran),
                        message: str_of(result, "error_message").to_owned(),
                    })
                });
            let name = format!(
                "{}: {} ({}, line {line})",
                str_of(recorded, "name"),
                str_of(element, "name"),
                str_of(recorded, "uri"),
            );
            found.push((name, failure.unwrap_or(Outcome::Passed)));
        }
    }
    found
}

/// Every scenario of a feature with the rule it belongs to, in file order.
fn all_scenarios(
    feature: &gherkin::Feature,
) -> impl Iterator<Item = (Option<&gherkin::Rule>, &gherkin::Scenario)> {
    feature
        .scenarios
        .iter()
        .map(|scenario| (None, scenario))
        .chain(feature.rules.iter().flat_map(|rule| {
            rule.scenarios
                .iter()
                .map(move |scenario| (Some(rule), scenario))
        }))
}

/// Scenario totals of one level over the specification.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: usize,
    failed: usize,
    not_run: usize,
}

/// The whole page.
fn page(specification: &[gherkin::Feature], unreadable: &[String], runs: &[LevelRun]) -> String {
    let mut html = String::new();
    html.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        "<title>page-tracker: living documentation</title>\n<style>\n",
    ));
    html.push_str(STYLE);
    html.push_str(
        "</style>\n</head>\n<body>\n<header>\n<h1>page-tracker: living documentation</h1>\n",
    );
    html.push_str(
        "<p class=\"lead\">What the service does, in the words of its specification, and \
         whether it does it at each level: <em>unit</em> (in process), <em>integration</em> \
         (against a real Redis) and <em>e2e</em> (the deployed containers).</p>\n",
    );

    // Outcomes first: the summary needs them before the features are written.
    let outcomes: Vec<Vec<Vec<Outcome>>> = specification
        .iter()
        .map(|feature| {
            all_scenarios(feature)
                .map(|(rule, scenario)| {
                    let background: Vec<&gherkin::Step> = feature
                        .background
                        .iter()
                        .chain(rule.and_then(|rule| rule.background.as_ref()))
                        .flat_map(|background| &background.steps)
                        .collect();
                    runs.iter()
                        .map(|run| outcome(&run.report, feature, &background, scenario))
                        .collect()
                })
                .collect()
        })
        .collect();
    summary(&mut html, runs, &outcomes);
    for problem in unreadable {
        let _ = writeln!(
            html,
            "<p class=\"problem\">A feature file could not be read: {}</p>",
            escape(problem)
        );
    }
    contents(&mut html, specification);
    html.push_str("</header>\n<main>\n");

    for (index, (feature, outcomes)) in specification.iter().zip(&outcomes).enumerate() {
        feature_section(&mut html, index, feature, runs, outcomes);
    }

    let strays: Vec<(&str, Vec<(String, Outcome)>)> = runs
        .iter()
        .map(|run| (run.level, unmatched(specification, run)))
        .filter(|(_, found)| !found.is_empty())
        .collect();
    if !strays.is_empty() {
        html.push_str(
            "<section class=\"feature\">\n<h2>Reported, but not in the feature files</h2>\n\
             <p class=\"description\">Results for scenarios the feature files do not have \
             (any more), or for files that could not be parsed.</p>\n<ul>\n",
        );
        for (level, found) in strays {
            for (name, result) in found {
                let _ = write!(
                    html,
                    "<li><span class=\"badge {}\">{}: {}</span> {}",
                    result.class(),
                    escape(level),
                    result.label(),
                    escape(&name)
                );
                if let Outcome::Failed { step, message } = &result {
                    failure_detail(&mut html, level, step, message);
                }
                html.push_str("</li>\n");
            }
        }
        html.push_str("</ul>\n</section>\n");
    }
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn summary(html: &mut String, runs: &[LevelRun], outcomes: &[Vec<Vec<Outcome>>]) {
    if runs.is_empty() {
        html.push_str(
            "<p class=\"problem\">No level has a report yet: every scenario is shown without \
             a result.</p>\n",
        );
        return;
    }
    html.push_str(
        "<table class=\"summary\">\n<thead><tr><th>Level</th><th>Passed</th><th>Failed</th>\
         <th>Not run</th><th>Report written</th></tr></thead>\n<tbody>\n",
    );
    for (index, run) in runs.iter().enumerate() {
        let _ = write!(html, "<tr><th scope=\"row\">{}</th>", escape(run.level));
        match &run.report {
            Ok(_) => {
                let counts = count(outcomes, index);
                let _ = write!(
                    html,
                    "<td class=\"passed\">{}</td><td class=\"{}\">{}</td><td>{}</td>",
                    counts.passed,
                    if counts.failed > 0 { "failed" } else { "" },
                    counts.failed,
                    counts.not_run
                );
            }
            Err(why) => {
                let _ = write!(
                    html,
                    "<td colspan=\"3\" class=\"failed\">no result: {}</td>",
                    escape(why)
                );
            }
        }
        let _ = writeln!(
            html,
            "<td>{}</td></tr>",
            escape(run.written.as_deref().unwrap_or("unknown"))
        );
    }
    html.push_str("</tbody>\n</table>\n");
}

fn count(outcomes: &[Vec<Vec<Outcome>>], level: usize) -> Counts {
    let mut counts = Counts::default();
    for outcome in outcomes
        .iter()
        .flatten()
        .filter_map(|per_level| per_level.get(level))
    {
        match outcome {
            Outcome::Passed => counts.passed += 1,
            Outcome::Failed { .. } => counts.failed += 1,
            Outcome::NotRun | Outcome::Unknown => counts.not_run += 1,
        }
    }
    counts
}

fn contents(html: &mut String, specification: &[gherkin::Feature]) {
    html.push_str("<nav>\n<h2>Features</h2>\n<ol>\n");
    for (index, feature) in specification.iter().enumerate() {
        let _ = writeln!(
            html,
            "<li><a href=\"#feature-{index}\">{}</a></li>",
            escape(&feature.name)
        );
    }
    html.push_str("</ol>\n</nav>\n");
}

fn feature_section(
    html: &mut String,
    index: usize,
    feature: &gherkin::Feature,
    runs: &[LevelRun],
    outcomes: &[Vec<Outcome>],
) {
    let _ = write!(
        html,
        "<section class=\"feature\" id=\"feature-{index}\">\n<h2><span class=\"keyword\">{}:</span> {}</h2>\n",
        escape(&feature.keyword),
        escape(&feature.name)
    );
    tags(html, &feature.tags);
    description(html, feature.description.as_deref());
    if let Some(background) = &feature.background {
        background_block(html, background);
    }
    let mut current_rule: Option<&gherkin::Rule> = None;
    for ((rule, scenario), outcomes) in all_scenarios(feature).zip(outcomes) {
        if let Some(rule) = rule
            && current_rule.is_none_or(|current| !std::ptr::eq(current, rule))
        {
            let _ = writeln!(
                html,
                "<h3 class=\"rule\"><span class=\"keyword\">{}:</span> {}</h3>",
                escape(&rule.keyword),
                escape(&rule.name)
            );
            tags(html, &rule.tags);
            description(html, rule.description.as_deref());
            if let Some(background) = &rule.background {
                background_block(html, background);
            }
            current_rule = Some(rule);
        }
        scenario_block(html, scenario, runs, outcomes);
    }
    html.push_str("</section>\n");
}

fn scenario_block(
    html: &mut String,
    scenario: &gherkin::Scenario,
    runs: &[LevelRun],
    outcomes: &[Outcome],
) {
    let worst = if outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. })) {
        "failed"
    } else if outcomes.contains(&Outcome::Passed) {
        "passed"
    } else {
        "not-run"
    };
    let _ = write!(
        html,
        "<article class=\"scenario {worst}\">\n<h3>{}",
        escape(&scenario.name)
    );
    if let Some(example) = example_values(scenario) {
        let _ = write!(
            html,
            " <span class=\"example\">({})</span>",
            escape(&example)
        );
    }
    html.push_str("</h3>\n");
    tags(html, &scenario.tags);
    html.push_str("<p class=\"results\">");
    for (run, outcome) in runs.iter().zip(outcomes) {
        let _ = write!(
            html,
            "<span class=\"badge {}\">{}: {}</span> ",
            outcome.class(),
            escape(run.level),
            outcome.label()
        );
    }
    html.push_str("</p>\n");
    description(html, scenario.description.as_deref());
    let failed_at: Vec<&str> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Failed { step, .. } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    steps(html, &scenario.steps, &failed_at);
    for (run, outcome) in runs.iter().zip(outcomes) {
        if let Outcome::Failed { step, message } = outcome {
            failure_detail(html, run.level, step, message);
        }
    }
    html.push_str("</article>\n");
}

fn failure_detail(html: &mut String, level: &str, step: &str, message: &str) {
    let _ = writeln!(
        html,
        "<div class=\"failure\"><p><strong>{}</strong> failed at <q>{}</q></p><pre>{}</pre></div>",
        escape(level),
        escape(step),
        escape(message)
    );
}

/// `name: value, …` of the example row an expanded outline scenario stands for.
fn example_values(scenario: &gherkin::Scenario) -> Option<String> {
    let table = scenario.examples.first()?.table.as_ref()?;
    let [header, row] = table.rows.as_slice() else {
        return None;
    };
    Some(
        header
            .iter()
            .zip(row)
            .map(|(name, value)| format!("{name}: {value}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn background_block(html: &mut String, background: &gherkin::Background) {
    let _ = writeln!(
        html,
        "<div class=\"background\"><p><span class=\"keyword\">{}:</span> before each scenario {}</p>",
        escape(&background.keyword),
        escape(&background.name)
    );
    steps(html, &background.steps, &[]);
    html.push_str("</div>\n");
}

/// The steps as written; those in `failed_at` (by their text) marked as where a level failed.
fn steps(html: &mut String, steps: &[gherkin::Step], failed_at: &[&str]) {
    html.push_str("<ol class=\"steps\">\n");
    for step in steps {
        let failed = failed_at.contains(&step_text(step).as_str());
        let _ = write!(
            html,
            "<li{}><span class=\"keyword\">{}</span> {}",
            if failed { " class=\"failed-step\"" } else { "" },
            escape(step.keyword.trim()),
            escape(&step.value)
        );
        if let Some(docstring) = &step.docstring {
            let _ = write!(html, "<pre>{}</pre>", escape(docstring));
        }
        if let Some(table) = &step.table {
            html.push_str("<table class=\"data\">");
            for row in &table.rows {
                html.push_str("<tr>");
                for cell in row {
                    let _ = write!(html, "<td>{}</td>", escape(cell));
                }
                html.push_str("</tr>");
            }
            html.push_str("</table>");
        }
        html.push_str("</li>\n");
    }
    html.push_str("</ol>\n");
}

fn tags(html: &mut String, tags: &[String]) {
    if tags.is_empty() {
        return;
    }
    html.push_str("<p class=\"tags\">");
    for tag in tags {
        let _ = write!(
            html,
            "<span class=\"tag\">@{}</span> ",
            escape(tag.trim_start_matches('@'))
        );
    }
    html.push_str("</p>\n");
}

/// Gherkin descriptions are indented free text: paragraphs split at blank lines,
/// lines within one joined.
fn description(html: &mut String, text: Option<&str>) {
    let Some(text) = text else { return };
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, html: &mut String| {
        if !paragraph.is_empty() {
            let _ = writeln!(
                html,
                "<p class=\"description\">{}</p>",
                escape(&paragraph.join(" "))
            );
            paragraph.clear();
        }
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            flush(&mut paragraph, html);
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, html);
}

/// Text made safe for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let (hour, minute) = ((secs % 86_400) / 3_600, (secs % 3_600) / 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

const STYLE: &str = r#"
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --pass: #1a7f37; --pass-bg: #dafbe1;
  --fail: #cf222e; --fail-bg: #ffebe9; --none: #59636e; --none-bg: #eff2f5; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 60rem; padding: 1.5rem; color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.8rem; margin: 0 0 .5rem; }
h2 { font-size: 1.35rem; margin: 0 0 .5rem; }
h3 { font-size: 1.05rem; margin: 0 0 .25rem; }
.lead, .description { color: var(--muted); }
.keyword { color: var(--muted); font-weight: 600; }
table.summary { border-collapse: collapse; margin: 1rem 0; }
table.summary th, table.summary td { border: 1px solid var(--line); padding: .3rem .8rem; text-align: left; }
td.passed { color: var(--pass); } td.failed { color: var(--fail); font-weight: 600; }
nav ol { columns: 2; }
section.feature { border-top: 2px solid var(--line); margin-top: 2rem; padding-top: 1rem; }
h3.rule { margin-top: 1.5rem; }
article.scenario { border: 1px solid var(--line); border-left: 6px solid var(--none); border-radius: 6px;
  margin: 1rem 0; padding: .75rem 1rem; }
article.scenario.passed { border-left-color: var(--pass); }
article.scenario.failed { border-left-color: var(--fail); }
.example { color: var(--muted); font-weight: normal; }
.tags { margin: .25rem 0; }
.tag { background: #ddf4ff; border-radius: 1rem; color: #0969da; font-size: .8rem; padding: .05rem .5rem; }
.results { margin: .25rem 0 .5rem; }
.badge { border-radius: 4px; display: inline-block; font-size: .85rem; font-weight: 600; margin: 0 .25rem .25rem 0;
  padding: .05rem .5rem; }
.badge.passed { background: var(--pass-bg); color: var(--pass); }
.badge.failed { background: var(--fail-bg); color: var(--fail); }
.badge.not-run, .badge.unknown { background: var(--none-bg); color: var(--none); }
ol.steps { list-style: none; margin: .25rem 0; padding-left: 0; }
ol.steps li { padding: .1rem 0; }
ol.steps li.failed-step { color: var(--fail); font-weight: 600; }
ol.steps li.failed-step::after { content: "  \2716"; }
.background { background: #f6f8fa; border-radius: 6px; margin: .75rem 0; padding: .5rem 1rem; }
.background p { margin: 0; }
.failure { background: var(--fail-bg); border-radius: 6px; margin-top: .5rem; padding: .5rem 1rem; }
.failure p { margin: 0 0 .25rem; }
pre { margin: 0; overflow-x: auto; white-space: pre-wrap; font-size: .85rem; }
table.data { border-collapse: collapse; margin: .25rem 0 .25rem 1.5rem; }
table.data td { border: 1px solid var(--line); padding: .1rem .5rem; }
.problem { background: var(--fail-bg); border-radius: 6px; color: var(--fail); padding: .5rem 1rem; }
@media print { article.scenario { break-inside: avoid; } }
"#;

// The `bdd` target has `harness = false`, which compiles `#[test]` functions out:
// these tests run in a test target of their own with this file as its root
// (`[[test]] name = "living_doc"`), where every helper below is used.
#[cfg(test)]
#[allow(
    dead_code,
    reason = "used by #[test] functions, which harness = false compiles out"
)]
mod tests {
    use super::*;

    fn feature(text: &str) -> gherkin::Feature {
        gherkin::Feature::parse(text, GherkinEnv::default())
            .expect("the test feature parses")
            .expand_examples()
            .expect("the test feature's outlines expand")
    }

    const FEATURE: &str = "\
Feature: Counting <visits> & \"more\"
  Every visit is counted,
  the visitor's own included.

  Background:
    Given the page has been seen 7 times

  Scenario: A visit <b>counts</b>
    When a visitor opens the page
    Then the visitor is told \"This page has been seen 8 times.\"

  @slow
  Scenario Outline: Many visits
    When <visits> visitors open the page
    Then the page has been seen <total> times in total

    Examples:
      | visits | total |
      | 1      | 8     |
      | 2      | 9     |
";

    fn background_of(feature: &gherkin::Feature) -> Vec<&gherkin::Step> {
        feature
            .background
            .iter()
            .flat_map(|background| &background.steps)
            .collect()
    }

    fn run(level: &'static str, report: Value) -> LevelRun {
        LevelRun {
            level,
            written: Some("2026-01-02 03:04 UTC".to_owned()),
            report: Ok(report),
        }
    }

    fn step(keyword: &str, line: u64, name: &str, status: &str, error: Option<&str>) -> Value {
        let mut result = serde_json::json!({ "status": status, "duration": 1 });
        if let Some(error) = error {
            result["error_message"] = Value::from(error);
        }
        serde_json::json!({ "keyword": keyword, "line": line, "name": name, "result": result })
    }

    fn element(kind: &str, line: u64, name: &str, steps: Vec<Value>) -> Value {
        let mut element = serde_json::json!({
            "keyword": "Scenario", "type": kind, "id": "x", "line": line, "name": name,
            "tags": [], "steps": steps,
        });
        if kind == "scenario" {
            element["before"] =
                serde_json::json!([{ "result": { "status": "passed", "duration": 1 } }]);
        }
        element
    }

    /// The first scenario passed, the first example failed, the second was not run.
    fn unit_report() -> Value {
        let background = |line| {
            element(
                "background",
                line,
                "",
                vec![step(
                    "Given ",
                    6,
                    "the page has been seen 7 times",
                    "passed",
                    None,
                )],
            )
        };
        serde_json::json!([{
            "uri": "features/counting.feature",
            "keyword": "Feature",
            "name": "Counting <visits> & \"more\"",
            "tags": [],
            "elements": [
                element("scenario", 8, "A visit <b>counts</b>", vec![
                    step("When ", 9, "a visitor opens the page", "passed", None),
                    step("Then ", 10, "the visitor is told \"This page has been seen 8 times.\"", "passed", None),
                ]),
                background(8),
                element("scenario", 19, "Many visits", vec![
                    step("When ", 14, "1 visitors open the page", "passed", None),
                    step("Then ", 15, "the page has been seen 8 times in total", "failed",
                        Some("Step panicked. Captured output: expected <8>, got \"9\" & more")),
                ]),
                background(19),
            ],
        }])
    }

    #[test]
    fn escape_covers_the_five_special_characters() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("seen 7 times 😔"), "seen 7 times 😔");
    }

    #[test]
    fn outlines_are_expanded_one_scenario_per_example() {
        let feature = feature(FEATURE);
        let lines: Vec<usize> = feature.scenarios.iter().map(|s| s.position.line).collect();
        assert_eq!(lines, [8, 19, 20]);
        assert_eq!(
            example_values(&feature.scenarios[2]).as_deref(),
            Some("visits: 2, total: 9")
        );
        assert_eq!(example_values(&feature.scenarios[0]), None);
    }

    #[test]
    fn outcomes_are_passed_failed_with_the_step_and_message_or_not_run() {
        let feature = feature(FEATURE);
        let report = Ok(unit_report());
        let background = background_of(&feature);
        let results: Vec<Outcome> = feature
            .scenarios
            .iter()
            .map(|scenario| outcome(&report, &feature, &background, scenario))
            .collect();
        assert_eq!(results[0], Outcome::Passed);
        assert_eq!(
            results[1],
            Outcome::Failed {
                step: "Then the page has been seen 8 times in total".to_owned(),
                message: "Step panicked. Captured output: expected <8>, got \"9\" & more"
                    .to_owned(),
            }
        );
        assert_eq!(results[2], Outcome::NotRun);
    }

    #[test]
    fn a_scenario_whose_steps_did_not_all_run_is_not_a_pass() {
        let feature = feature(FEATURE);
        let mut report = unit_report();
        // Drop the last step of the first scenario: it never ran.
        report[0]["elements"][0]["steps"]
            .as_array_mut()
            .unwrap()
            .pop();
        let outcome = outcome(
            &Ok(report),
            &feature,
            &background_of(&feature),
            &feature.scenarios[0],
        );
        assert!(matches!(
            outcome,
            Outcome::Failed { ref step, .. } if step == "Then the visitor is told \"This page has been seen 8 times.\""
        ));
    }

    #[test]
    fn a_failed_set_up_hook_fails_the_scenario() {
        let feature = feature(FEATURE);
        let mut report = unit_report();
        report[0]["elements"][0]["before"] = serde_json::json!([{ "result": {
            "status": "failed", "duration": 1, "error_message": "setting up the scenario: no Docker"
        } }]);
        let outcome = outcome(
            &Ok(report),
            &feature,
            &background_of(&feature),
            &feature.scenarios[0],
        );
        assert_eq!(
            outcome,
            Outcome::Failed {
                step: "the set-up before the scenario".to_owned(),
                message: "setting up the scenario: no Docker".to_owned(),
            }
        );
    }

    #[test]
    fn a_feature_absent_from_a_report_was_not_run_and_an_unreadable_report_gives_no_result() {
        let feature = feature(FEATURE);
        let scenario = &feature.scenarios[0];
        assert_eq!(
            outcome(&Ok(serde_json::json!([])), &feature, &[], scenario),
            Outcome::NotRun
        );
        assert_eq!(
            outcome(&Err("broken".to_owned()), &feature, &[], scenario),
            Outcome::Unknown
        );
        assert!(parse_report("").is_err());
        assert!(parse_report("{}").is_err());
        assert!(parse_report("[").is_err());
        assert!(parse_report("[]").is_ok());
    }

    #[test]
    fn the_page_shows_every_scenario_escaped_with_its_result_per_level() {
        let specification = vec![feature(FEATURE)];
        let runs = vec![
            run("unit", unit_report()),
            run("e2e", serde_json::json!([])),
        ];
        let html = page(&specification, &[], &runs);

        // Self-contained: inline style, no scripts, no external references.
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<style>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("src="));

        // Feature, description and scenario text, escaped.
        assert!(html.contains("Counting &lt;visits&gt; &amp; &quot;more&quot;"));
        assert!(html.contains("Every visit is counted, the visitor&#39;s own included."));
        assert!(html.contains("A visit &lt;b&gt;counts&lt;/b&gt;"));
        assert!(!html.contains("<b>counts</b>"));
        assert!(html.contains("the visitor is told &quot;This page has been seen 8 times.&quot;"));
        assert!(html.contains("Many visits <span class=\"example\">(visits: 2, total: 9)</span>"));
        assert!(
            html.contains("<span class=\"keyword\">Given</span> the page has been seen 7 times")
        );
        assert!(html.contains("@slow"));

        // Results per level, every reported scenario matched to the feature file.
        assert!(!html.contains("Reported, but not in the feature files"));
        assert!(html.contains("<span class=\"badge passed\">unit: passed</span>"));
        assert!(html.contains("<span class=\"badge failed\">unit: failed</span>"));
        assert!(html.contains("<span class=\"badge not-run\">unit: not run</span>"));
        assert!(html.contains("<span class=\"badge not-run\">e2e: not run</span>"));
        assert!(!html.contains("integration:"));
        assert!(html.contains(
            "<li class=\"failed-step\"><span class=\"keyword\">Then</span> the page has been seen 8 times in total"
        ));
        assert!(html.contains(
            "failed at <q>Then the page has been seen 8 times in total</q></p>\
             <pre>Step panicked. Captured output: expected &lt;8&gt;, got &quot;9&quot; &amp; more</pre>"
        ));

        // Totals: unit 1 passed, 1 failed, 1 not run; e2e ran nothing of it.
        assert!(html.contains(
            "<th scope=\"row\">unit</th><td class=\"passed\">1</td><td class=\"failed\">1</td><td>1</td>"
        ));
        assert!(html.contains(
            "<th scope=\"row\">e2e</th><td class=\"passed\">0</td><td class=\"\">0</td><td>3</td>"
        ));
    }

    #[test]
    fn results_for_scenarios_no_feature_file_has_are_listed() {
        let specification = vec![feature(FEATURE)];
        let report = serde_json::json!([{
            "uri": "features/broken.feature", "keyword": "", "name": "", "tags": [],
            "elements": [{
                "keyword": "", "type": "scenario", "id": "failed-to-parse", "line": 0, "name": "",
                "tags": [], "steps": [step("", 0, "scenario", "failed", Some("Failed to parse <line 3>"))],
            }],
        }]);
        let html = page(&specification, &[], &[run("unit", report)]);
        assert!(html.contains("Reported, but not in the feature files"));
        assert!(html.contains("Failed to parse &lt;line 3&gt;"));
    }

    #[test]
    fn rule_scenarios_run_the_feature_and_the_rule_background() {
        let feature = feature(
            "\
Feature: Rules
  Background:
    Given one

  Rule: Only reading counts
    Background:
      Given two

    Scenario: Reading
      When three
",
        );
        let (rule, scenario) = all_scenarios(&feature).next().expect("one scenario");
        assert_eq!(
            rule.map(|rule| rule.name.as_str()),
            Some("Only reading counts")
        );
        assert_eq!(scenario.position.line, 9);
        let report = |background_steps: Vec<Value>| {
            serde_json::json!([{ "uri": "x", "keyword": "Feature", "name": "Rules", "tags": [], "elements": [
                element("scenario", 9, "Only reading counts Reading", vec![
                    step("When ", 10, "three", "passed", None),
                ]),
                element("background", 9, "Only reading counts Reading", background_steps),
            ] }])
        };
        let one = step("Given ", 3, "one", "passed", None);
        let two = step("Given ", 7, "two", "passed", None);
        let html = page(
            std::slice::from_ref(&feature),
            &[],
            &[run("unit", report(vec![one.clone(), two]))],
        );
        assert!(html.contains("Only reading counts</h3>"));
        assert!(html.contains("<article class=\"scenario passed\">"));
        assert!(!html.contains("Reported, but not in the feature files"));
        let html = page(&[feature], &[], &[run("unit", report(vec![one]))]);
        assert!(html.contains("<article class=\"scenario failed\">"));
        assert!(html.contains("failed at <q>Given two</q>"));
    }

    #[test]
    fn unix_seconds_become_a_utc_date() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_798_761_600 + 3_600 + 120), "2027-01-01 01:02 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59 UTC");
    }
}
