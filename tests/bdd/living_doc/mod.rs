//! Living documentation: one self-contained HTML page with every feature and
//! scenario of the specification, in the words of `features/`, and for each
//! scenario (each example row of an outline) its result, duration and recent
//! history at every level that has a report; and, against another run's
//! history, a Markdown summary of what changed.
//!
//! The text comes from the feature files (Cucumber JSON has no descriptions and
//! only the steps that ran); the results from `<report dir>/<level>/cucumber.json`
//! as cucumber's `writer::Json` leaves them, with the runner's `not_run.json`
//! saying why a level left a scenario out. Each render adds the reports not yet
//! recorded to the history file (`history.json` beside them, or `BDD_HISTORY`).
//!
//! `report` reads a level's run and what it says of each scenario, `model` holds
//! those results for every scenario and example row of the feature files, `history`
//! keeps earlier runs and finds flaky scenarios, `Page` and `diff` fill the templates
//! in `templates/` (the Markdown one is `diff.md.txt`: `.dockerignore` leaves `*.md`
//! out of the image builds, which compile it). The page walks the parsed feature
//! files and looks each scenario's results up in the model as it goes.

mod diff;
mod history;
mod model;
mod report;
// Run by their own target (`[[test]] name = "living_doc"`): the `bdd` target is
// built with `harness = false`, which compiles `#[test]` functions out and
// leaves the functions they call unused.
#[cfg(test)]
#[allow(
    dead_code,
    unused_imports,
    reason = "used by #[test] functions, which harness = false compiles out"
)]
mod tests;

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, anyhow};
use askama::Template;
use cucumber::{
    feature::Ext as _,
    gherkin::{self, GherkinEnv},
};
use walkdir::WalkDir;

pub use self::report::NotRun;
use self::{
    diff::Diff,
    history::History,
    model::{Book, Outcome},
    report::LevelRun,
};

/// The levels, in the order the page shows them: e2e-ha is the e2e level run
/// against the ha stack (`scripts/e2e.sh --ha`), which checks the failover.
const LEVELS: [&str; 4] = ["unit", "integration", "e2e", "e2e-ha"];

/// Where the inputs are and what to write.
#[derive(Debug, Clone)]
pub struct Options {
    pub report_dir: PathBuf,
    pub features: PathBuf,
    pub history: PathBuf,
    /// A history whose latest run the Markdown summary compares against.
    pub diff_against: Option<PathBuf>,
}

/// The page, from its template (`templates/page.html`): one self-contained file,
/// styles and script inline, every text from the feature files and the reports escaped.
#[derive(Debug, Template)]
#[template(path = "page.html", config = "tests/bdd/living_doc/askama.toml")]
struct Page<'a> {
    book: Book<'a>,
    /// When the page was rendered.
    now: jiff::Timestamp,
    commit: &'a str,
}

/// The page and the summary: as text, or where `render` wrote them.
#[derive(Debug)]
pub struct Rendered<T> {
    pub page: T,
    pub diff: Option<T>,
}

/// Reads the feature files, each level's report and the history; records the
/// reports in the history; writes `report.html` (and `diff.md` when asked to) in
/// the report directory.
pub fn render(options: &Options) -> Result<Rendered<PathBuf>> {
    let dir = &options.report_dir;
    let (specification, unreadable) = read_specification(&options.features)?;
    let read = |level: &&'static str| LevelRun::read(dir, level);
    let runs: Vec<LevelRun> = LEVELS.iter().filter_map(read).collect();
    // A history that cannot be read costs the page its past, not the run its result.
    let warn =
        |err: &anyhow::Error| eprintln!("living documentation: {err:#}; going on without it");
    let load = |path: &Path| History::load(path).inspect_err(warn).unwrap_or_default();
    let mut history = load(&options.history);
    let baseline = options.diff_against.as_deref().map(load);
    let book = Book::new(&specification, unreadable, &runs);
    let commit = commit();
    let now = jiff::Timestamp::now();
    let output = build(book, &mut history, baseline.as_ref(), &commit, now)?;

    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    history.save(&options.history)?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        anyhow::Ok(path)
    };
    let page = write("report.html", output.page)?;
    let diff = output.diff.map(|text| write("diff.md", text)).transpose()?;
    Ok(Rendered { page, diff })
}

/// Records the book's results in the history, marks its cells with their past,
/// and renders the page and, against `baseline`, the summary.
fn build<'a>(
    mut book: Book<'a>,
    history: &'a mut History,
    baseline: Option<&History>,
    commit: &'a str,
    now: jiff::Timestamp,
) -> Result<Rendered<String>> {
    history.append(history::record(&book, commit, now));
    history.annotate(&mut book);
    let page = Page { book, now, commit };
    let diff = baseline.map(|baseline| Diff::new(&page.book, baseline.runs.last()).render());
    Ok(Rendered {
        page: page.render()?,
        diff: diff.transpose()?,
    })
}

/// `BDD_COMMIT`, else `GITHUB_SHA`, else the work tree's commit (`-dirty` with
/// uncommitted changes), abbreviated; `unknown` outside a repository.
fn commit() -> String {
    let given = env::var("BDD_COMMIT").or_else(|_| env::var("GITHUB_SHA"));
    if let Some(commit) = given.ok().filter(|commit| !commit.is_empty()) {
        return commit.chars().take(12).collect();
    }
    Command::new("git")
        .args("describe --always --dirty --abbrev=12 --exclude=*".split(' '))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|commit| !commit.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Every `.feature` file under `dir`, parsed as written, in path order; and the
/// files that could not be read (or whose outlines do not expand), with why.
fn read_specification(dir: &Path) -> Result<(Vec<gherkin::Feature>, Vec<String>)> {
    let read = |path: &Path| -> Result<gherkin::Feature> {
        let feature = gherkin::Feature::parse_path(path, GherkinEnv::default())?;
        feature.clone().expand_examples()?;
        Ok(feature)
    };
    let mut features = Vec::new();
    let mut unreadable = Vec::new();
    // Each directory's entries sorted by name, each directory before its own: path order.
    for entry in WalkDir::new(dir).sort_by_file_name() {
        // Its message names the path and the cause: as context, the cause would show twice.
        let entry =
            entry.map_err(|err| anyhow!("reading the features in {}: {err}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().is_dir() || path.extension().is_none_or(|ext| ext != "feature") {
            continue;
        }
        match read(path) {
            Ok(feature) => features.push(feature),
            Err(err) => unreadable.push(format!("{}: {err}", path.display())),
        }
    }
    Ok((features, unreadable))
}
