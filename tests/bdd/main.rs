//! The living specification: runs `features/` at the unit, integration or e2e level.
//!
//! `cargo test --test bdd -- --level unit|integration|e2e` (or `BDD_LEVEL`) picks
//! one level; without it the unit level runs, then the integration level where
//! Docker is reachable. Every run ends with the line `N passed, M failed`.

mod driver;
mod failover_steps;
mod levels;
mod living_doc;
mod metrics;
mod service_process;
mod steps;
mod tally;
mod world;

use std::{
    fs::{self, File},
    io,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex, PoisonError},
};

use anyhow::{Context, Result};
use cucumber::{
    World as _, WriterExt as _, cli, gherkin, parser, runner,
    tag::Ext as _,
    writer::{self, Coloring, Verbosity},
};
use futures::{FutureExt as _, future::LocalBoxFuture};

use crate::{
    levels::{Environment, Level},
    tally::{Tally, Totals},
    world::PageTrackerWorld,
};

/// Extra command-line options beside cucumber's own.
#[derive(Debug, Clone, clap::Args)]
struct Selection {
    /// Level to run. Without it: unit, then integration where Docker is reachable.
    #[arg(long, env = "BDD_LEVEL", value_enum)]
    level: Option<Level>,

    /// Run nothing; render target/bdd/report.html from the levels' latest reports.
    #[arg(long)]
    report_only: bool,

    /// Also write target/bdd/diff.md: the results against the latest run in this history file.
    #[arg(long, value_name = "HISTORY")]
    diff_against: Option<PathBuf>,
}

type Report = writer::Normalize<
    PageTrackerWorld,
    writer::FailOnSkipped<
        writer::Tee<
            writer::Tee<
                writer::Tee<
                    writer::Summarize<writer::Basic>,
                    Discarding<writer::JUnit<PageTrackerWorld, File>>,
                >,
                Discarding<writer::Json<File>>,
            >,
            Discarding<Tally>,
        >,
    >,
>;
type Discarding<W> = writer::discard::Arbitrary<writer::discard::Stats<W>>;
type Opts = cli::Opts<
    parser::basic::Cli,
    runner::basic::Cli,
    <Report as writer::Writer<PageTrackerWorld>>::Cli,
    Selection,
>;

fn main() -> ExitCode {
    let opts = Opts::parsed();
    let diff_against = opts.custom.diff_against.clone();
    if opts.custom.report_only {
        return render_living_doc(diff_against);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bdd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let totals = runtime.block_on(run(opts));
    let rendered = render_living_doc(diff_against);
    println!();
    println!("{} passed, {} failed", totals.passed, totals.failed);
    if totals.failed == 0 && totals.passed > 0 && rendered == ExitCode::SUCCESS {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes the living documentation from whatever level reports exist, and
/// records them in the history.
fn render_living_doc(diff_against: Option<PathBuf>) -> ExitCode {
    let report_dir = report_dir();
    let options = living_doc::Options {
        history: std::env::var_os("BDD_HISTORY")
            .map_or_else(|| report_dir.join("history.json"), PathBuf::from),
        report_dir,
        features: features_dir(),
        diff_against,
    };
    match living_doc::render(&options) {
        Ok(rendered) => {
            println!("living documentation: {}", rendered.page.display());
            if let Some(diff) = rendered.diff {
                println!("changes against the other run: {}", diff.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("bdd: cannot render the living documentation: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen levels and adds up their scenarios.
async fn run(opts: Opts) -> Totals {
    let levels = match opts.custom.level {
        Some(level) => vec![level],
        None => match levels::docker_unreachable().await {
            None => vec![Level::Unit, Level::Integration],
            Some(why) => {
                println!(
                    "bdd: integration level skipped: Docker is not reachable ({why}). \
                     Only the unit level runs."
                );
                vec![Level::Unit]
            }
        },
    };
    let mut totals = Totals::default();
    for level in levels {
        let level_totals = match run_level(level, opts.clone()).await {
            Ok(level_totals) => level_totals,
            Err(err) => {
                eprintln!("bdd: the {level} level could not run: {err:#}");
                Totals {
                    passed: 0,
                    failed: 1,
                }
            }
        };
        println!(
            "{level}: {} passed, {} failed",
            level_totals.passed, level_totals.failed
        );
        totals.passed += level_totals.passed;
        totals.failed += level_totals.failed;
    }
    totals
}

async fn run_level(level: Level, mut opts: Opts) -> Result<Totals> {
    println!("\n=== {level} level ===");
    let environment = Environment::start(level).await?;
    let tally = Tally::default();
    let report = report(level, tally.clone())?;

    // The level decides what it can run; the user's --tags and --name narrow that further.
    let tags = opts.tags_filter.take();
    let name = opts.re_filter.take();
    let not_run = Arc::new(Mutex::new(Vec::new()));
    let filter = {
        let environment = Arc::clone(&environment);
        let not_run = Arc::clone(&not_run);
        move |feature: &gherkin::Feature,
              rule: Option<&gherkin::Rule>,
              scenario: &gherkin::Scenario| {
            let chosen = match (&tags, &name) {
                (Some(tags), _) => tags.eval(
                    feature
                        .tags
                        .iter()
                        .chain(rule.iter().flat_map(|rule| &rule.tags))
                        .chain(&scenario.tags),
                ),
                (None, Some(name)) => name.is_match(&scenario.name),
                (None, None) => true,
            };
            if !chosen {
                return false;
            }
            if let Some(reason) = environment.cannot_run(scenario) {
                not_run
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(living_doc::NotRun {
                        feature: feature.name.clone(),
                        scenario: scenario.name.clone(),
                        line: scenario.position.line,
                        reason: reason.to_owned(),
                    });
                return false;
            }
            true
        }
    };

    let before = {
        let environment = Arc::clone(&environment);
        before_hook(move |_, _, scenario, world| {
            let environment = Arc::clone(&environment);
            let scenario = scenario.clone();
            async move {
                // A failure here fails the scenario: the hook's panic is reported as such.
                let driver = environment
                    .driver(&scenario)
                    .await
                    .unwrap_or_else(|err| panic!("setting up the scenario: {err:#}"));
                world.set_driver(driver);
            }
            .boxed_local()
        })
    };

    PageTrackerWorld::cucumber()
        .max_concurrent_scenarios(environment.concurrency())
        .with_writer(report)
        .before(before)
        .with_cli(opts)
        .filter_run(features_dir(), filter)
        .await;
    environment.stop().await;

    let not_run = not_run.lock().unwrap_or_else(PoisonError::into_inner);
    if !not_run.is_empty() {
        println!("Not run at the {level} level (neither passed nor failed):");
        for scenario in not_run.iter() {
            println!(
                "  - {}: {} (line {}): {}",
                scenario.feature, scenario.scenario, scenario.line, scenario.reason
            );
        }
    }
    // The living documentation shows why; without the file it says "not in this run".
    let path = report_dir().join(level.to_string()).join("not_run.json");
    let written = serde_json::to_string_pretty(&*not_run)
        .map_err(io::Error::other)
        .and_then(|json| fs::write(&path, json));
    if let Err(err) = written {
        eprintln!("bdd: cannot write {}: {err}", path.display());
    }
    Ok(tally.totals())
}

/// Pins the closure to the higher-ranked signature cucumber's `before` expects.
fn before_hook<F>(hook: F) -> F
where
    F: for<'a> Fn(
        &'a gherkin::Feature,
        Option<&'a gherkin::Rule>,
        &'a gherkin::Scenario,
        &'a mut PageTrackerWorld,
    ) -> LocalBoxFuture<'a, ()>,
{
    hook
}

/// Readable output on stdout, JUnit XML and Cucumber JSON under `target/bdd/<level>/`.
fn report(level: Level, tally: Tally) -> Result<Report> {
    let dir = report_dir().join(level.to_string());
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let create = |name: &str| {
        let path = dir.join(name);
        File::create(&path).with_context(|| format!("creating {}", path.display()))
    };
    Ok(
        writer::Basic::raw(io::stdout(), Coloring::Auto, Verbosity::Default)
            .summarized()
            .tee::<PageTrackerWorld, _>(writer::JUnit::for_tee(
                create("junit.xml")?,
                Verbosity::Default,
            ))
            .tee::<PageTrackerWorld, _>(writer::Json::for_tee(create("cucumber.json")?))
            .tee::<PageTrackerWorld, _>(tally.discard_stats_writes().discard_arbitrary_writes())
            .fail_on_skipped()
            .normalized(),
    )
}

/// `BDD_FEATURES`, else the crate's `features/`.
fn features_dir() -> PathBuf {
    std::env::var_os("BDD_FEATURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("features"))
}

/// `BDD_REPORT_DIR`, else `bdd/` in cargo's target directory.
pub fn report_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BDD_REPORT_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bdd")
}
