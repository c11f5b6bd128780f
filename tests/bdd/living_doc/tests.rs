//! The renderer's own tests: outline tables, outcomes, escaping, history and
//! flaky marks, the diff, and the golden page.

use std::{collections::BTreeMap, path::PathBuf, sync::LazyLock};

use serde_json::{Value, json};

use super::{
    history::{MAX_RUNS, Past, Run, flaky},
    model::Outcome,
    *,
};

const FEATURE: &str = "\
Feature: Counting <visits> & \"more\"
  Every visit is counted,
  the visitor's own included.

  Background:
    Given the page has been seen 7 times

  Scenario: A visit <script>alert('counted')</script>
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
      | 3      | 10    |

  @shutdown
  Scenario: Stopping the service
    When the service is stopped
";

const FEATURE_NAME: &str = "Counting <visits> & \"more\"";
const HOSTILE: &str = "A visit <script>alert('counted')</script>";

/// The test feature, parsed once: the page borrows it.
static SPECIFICATION: LazyLock<Vec<gherkin::Feature>> = LazyLock::new(|| {
    vec![gherkin::Feature::parse(FEATURE, GherkinEnv::default()).expect("the test feature parses")]
});

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_798_761_600 + seconds).expect("a valid time")
}

fn step(keyword: &str, line: u64, name: &str, error: Option<&str>) -> Value {
    let mut result = json!({ "status": "passed", "duration": 1_500_000 });
    if let Some(error) = error {
        result["status"] = json!("failed");
        result["error_message"] = json!(error);
    }
    json!({ "keyword": keyword, "line": line, "name": name, "result": result })
}

fn scenario(line: u64, name: &str, steps: Vec<Value>) -> [Value; 2] {
    [
        json!({
            "keyword": "Scenario", "type": "scenario", "id": "x", "line": line, "name": name, "tags": [],
            "before": [{ "result": { "status": "passed", "duration": 1_000_000 } }], "steps": steps,
        }),
        json!({
            "keyword": "Background", "type": "background", "id": "x", "line": line, "name": "", "tags": [],
            "steps": [step("Given ", 6, "the page has been seen 7 times", None)],
        }),
    ]
}

/// At the unit level: the plain scenario passed; of the outline, the first row
/// passed, the second failed, the third was not reported; `@shutdown` was left out.
fn unit_report() -> Value {
    let mut elements = Vec::new();
    elements.extend(scenario(
        8,
        HOSTILE,
        vec![
            step("When ", 9, "a visitor opens the page", None),
            step(
                "Then ",
                10,
                "the visitor is told \"This page has been seen 8 times.\"",
                None,
            ),
        ],
    ));
    elements.extend(scenario(
        19,
        "Many visits",
        vec![
            step("When ", 14, "1 visitors open the page", None),
            step("Then ", 15, "the page has been seen 8 times in total", None),
        ],
    ));
    elements.extend(scenario(
        20,
        "Many visits",
        vec![
            step("When ", 14, "2 visitors open the page", None),
            step(
                "Then ",
                15,
                "the page has been seen 9 times in total",
                Some("expected <9>, got \"8\" & <script>x</script>"),
            ),
        ],
    ));
    json!([{ "uri": "features/counting.feature", "keyword": "Feature", "name": FEATURE_NAME, "tags": [], "elements": elements }])
}

fn level_run(level: &'static str, report: &Value, not_run: Vec<NotRun>) -> LevelRun {
    LevelRun {
        level,
        written: Some(at(0)),
        report: report::parse(&report.to_string()),
        not_run,
    }
}

fn unit_run() -> LevelRun {
    let not_run = vec![NotRun {
        feature: FEATURE_NAME.to_owned(),
        scenario: "Stopping the service".to_owned(),
        line: 24,
        reason: "the unit level has no server to stop".to_owned(),
    }];
    level_run("unit", &unit_report(), not_run)
}

/// The page of `book` as rendered at `commit`.
fn page_html(book: &Book, commit: &str) -> String {
    Page {
        book: book.clone(),
        now: at(0),
        commit,
    }
    .render()
    .expect("renders")
}

fn book_of(runs: &[LevelRun]) -> Book<'_> {
    Book::new(&SPECIFICATION, Vec::new(), runs)
}

fn past(passed: bool) -> Past {
    Past { passed, ms: 3 }
}

/// A run of `commit` in which `key` had `results` (level, passed).
fn history_run(commit: &str, seconds: i64, key: &str, results: &[(&str, bool)]) -> Run {
    let cells = results
        .iter()
        .map(|(level, passed)| ((*level).to_owned(), past(*passed)))
        .collect();
    Run {
        commit: commit.to_owned(),
        time: at(seconds),
        levels: results
            .iter()
            .map(|(level, _)| ((*level).to_owned(), seconds as u64))
            .collect(),
        results: BTreeMap::from([(key.to_owned(), cells)]),
    }
}

fn plain_key() -> String {
    format!("{FEATURE_NAME}: {HOSTILE}")
}

fn row_key(values: &str) -> String {
    format!("{FEATURE_NAME}: Many visits ({values})")
}

#[test]
fn an_outline_is_shown_once_with_its_examples_and_a_result_per_row_and_level() {
    let runs = [unit_run()];
    let book = book_of(&runs);
    let scenarios: Vec<&gherkin::Scenario> = book.scenarios().map(|(_, _, s)| s).collect();
    assert_eq!(
        scenarios.len(),
        3,
        "the outline is one scenario, not one per example"
    );
    let outline = scenarios[1];
    assert!(book.plain(outline).is_none());
    let first = model::parts(&outline.steps[0], Some(outline));
    assert_eq!(
        first,
        [(true, "<visits>"), (false, " visitors open the page")],
        "steps as written, placeholders apart"
    );
    let examples = &outline.examples[0];
    assert_eq!(
        *model::header(examples).expect("a header"),
        ["visits", "total"]
    );
    let example_rows: Vec<&model::Row> = book.rows_in(examples).collect();
    let rows: Vec<(&str, &str)> = example_rows
        .iter()
        .map(|row| (row.values[0].as_str(), row.cells[0].outcome.class()))
        .collect();
    assert_eq!(rows, [("1", "passed"), ("2", "failed"), ("3", "not-run")]);
    assert_eq!(example_rows[1].key, row_key("visits: 2, total: 9"));
    assert_eq!(
        example_rows[1].cells[0].outcome,
        Outcome::Failed {
            step: "Then the page has been seen 9 times in total".to_owned(),
            line: Some(15),
            message: "expected <9>, got \"8\" & <script>x</script>".to_owned(),
        }
    );
    assert_eq!(
        book.failed_at(Some(outline), &outline.steps[1]),
        ["unit"],
        "the step as written is marked"
    );
    assert_eq!(
        example_rows[0].cells[0].nanos,
        Some(5_500_000),
        "the hook and three steps"
    );

    let html = page_html(&book, "abc");
    assert_eq!(html.matches("<table class=\"examples\">").count(), 1);
    assert_eq!(html.matches("Many visits").count(), 1);
    assert!(html.contains("<th>visits</th><th>total</th><th class=\"level\">unit</th>"));
    assert!(html.contains("<tr data-results=\"unit:failed\" data-flaky=\"\"><td>2</td><td>9</td>"));
    assert!(html.contains(
        "<strong>unit</strong> (visits: 2, total: 9) failed at <q>Then the page has been seen 9 times in total</q>"
    ));
}

#[test]
fn not_run_cells_say_why() {
    let runs = [unit_run(), level_run("e2e", &json!([]), Vec::new())];
    let book = book_of(&runs);
    let (_, _, stopping) = book.scenarios().nth(2).expect("the third scenario");
    let cells = &book.plain(stopping).expect("a plain scenario").cells;
    assert_eq!(
        cells[0].outcome,
        Outcome::NotRun {
            reason: "the unit level has no server to stop".to_owned()
        }
    );
    assert_eq!(
        cells[1].outcome,
        Outcome::NotRun {
            reason: "not in this run".to_owned()
        }
    );
    let summary = &book.levels[0];
    assert_eq!((summary.passed, summary.failed, summary.not_run), (2, 1, 2));
}

#[test]
fn a_scenario_whose_steps_did_not_all_run_or_whose_set_up_failed_is_not_a_pass() {
    let mut report = unit_report();
    report[0]["elements"][0]["steps"]
        .as_array_mut()
        .expect("steps")
        .pop();
    report[0]["elements"][2]["before"][0]["result"] = json!({ "status": "failed", "duration": 1, "error_message": "setting up the scenario: no Docker" });
    let runs = [level_run("unit", &report, Vec::new())];
    let book = book_of(&runs);
    let mut scenarios = book.scenarios().map(|(_, _, scenario)| scenario);
    let first = book
        .plain(scenarios.next().expect("a scenario"))
        .expect("plain")
        .cells[0]
        .outcome
        .clone();
    assert!(
        matches!(first, Outcome::Failed { ref step, .. } if step == "Then the visitor is told \"This page has been seen 8 times.\"")
    );
    let outline = scenarios.next().expect("the outline");
    assert!(matches!(
        &book.rows_in(&outline.examples[0]).next().expect("a row").cells[0].outcome,
        Outcome::Failed { step, message, .. } if step == "the set-up before the scenario" && message == "setting up the scenario: no Docker"
    ));
}

#[test]
fn an_unreadable_report_gives_no_result_and_strays_are_listed() {
    assert!(report::parse("").is_err());
    assert!(report::parse("{}").is_err());
    assert!(report::parse("[]").is_ok());
    let broken = LevelRun {
        report: Err("broken".to_owned()),
        ..unit_run()
    };
    let runs = [broken];
    let book = book_of(&runs);
    assert!(
        book.rows
            .iter()
            .all(|row| row.cells[0].outcome == Outcome::Unknown)
    );

    let stray = json!([{ "uri": "features/broken.feature", "keyword": "", "name": "", "tags": [], "elements": [{
        "keyword": "", "type": "scenario", "id": "failed-to-parse", "line": 0, "name": "", "tags": [],
        "steps": [step("", 0, "scenario", Some("Failed to parse <line 3>"))],
    }] }]);
    let runs = [level_run("unit", &stray, Vec::new())];
    let book = book_of(&runs);
    let html = page_html(&book, "abc");
    assert!(html.contains("Reported, but not in the feature files"));
    assert!(html.contains("Failed to parse &#60;line 3&#62;"));
}

#[test]
fn hostile_text_in_feature_files_and_reports_is_escaped() {
    let runs = [unit_run()];
    let book = book_of(&runs);
    let html = page_html(&book, "abc");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(html.contains("A visit &#60;script&#62;alert(&#39;counted&#39;)&#60;/script&#62;"));
    assert!(html.contains("Counting &#60;visits&#62; &#38; &#34;more&#34;"));
    assert!(html.contains("got &#34;8&#34; &#38; &#60;script&#62;x&#60;/script&#62;"));
    // The page stands alone: nothing loaded from elsewhere.
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="));

    let markdown = Diff::new(&book, None).render().expect("renders");
    assert!(!markdown.contains("<script"), "{markdown}");
    assert!(
        markdown.contains("&lt;script&gt;x&lt;/script&gt;"),
        "{markdown}"
    );
}

#[test]
fn flaky_means_passed_and_failed_on_one_commit_or_flipped_twice_lately() {
    assert_eq!(
        flaky(&[("a", true), ("b", true), ("b", false)]),
        Some("passed and failed on commit b".to_owned())
    );
    assert_eq!(
        flaky(&[("a", true), ("b", false), ("c", true)]),
        Some("changed result 2 times in the last 3 runs".to_owned())
    );
    assert_eq!(
        flaky(&[("a", true), ("b", false), ("c", false)]),
        None,
        "one change is a regression"
    );
    assert_eq!(
        flaky(&[("a-dirty", true), ("a-dirty", false)]),
        None,
        "uncommitted changes prove nothing"
    );
    let old_flip = [("a", true), ("b", false), ("c", true)]
        .into_iter()
        .chain(std::iter::repeat_n(("d", true), history::WINDOW));
    assert_eq!(
        flaky(&old_flip.collect::<Vec<_>>()),
        None,
        "a flip outside the window"
    );
}

#[test]
fn the_history_marks_cells_flaky_and_shows_their_recent_results() {
    let mut history = History::default();
    history.append(history_run("aaa", 1, &plain_key(), &[("unit", true)]));
    history.append(history_run("bbb", 2, &plain_key(), &[("unit", false)]));
    let runs = [unit_run()];
    let mut book = book_of(&runs);
    history.append(history::record(&book, "bbb", at(3)));
    history.annotate(&mut book);

    let (_, _, first) = book.scenarios().next().expect("a scenario");
    let plain = book.plain(first).expect("plain");
    let recent: Vec<bool> = plain.cells[0]
        .recent
        .iter()
        .map(|(_, past)| past.passed)
        .collect();
    assert_eq!(recent, [true, false, true]);
    assert_eq!(
        plain.cells[0].flaky.as_deref(),
        Some("passed and failed on commit bbb")
    );
    let html = page_html(&book, "bbb");
    assert!(
        html.contains("<span class=\"flaky\">flaky</span> unit: passed and failed on commit bbb")
    );
    assert!(html.contains("title=\"failed on bbb at 2027-01-01 00:00 UTC, 3 ms\""));
}

#[test]
fn the_history_records_each_report_once_and_keeps_the_last_runs() {
    let mut history = History::default();
    let runs = [unit_run()];
    let record = history::record(&book_of(&runs), "abc", at(0));
    assert_eq!(
        record.results.len(),
        3,
        "two example rows and a scenario ran; not-run cells are left out"
    );
    assert_eq!(
        record.results[&row_key("visits: 2, total: 9")]["unit"],
        Past {
            passed: false,
            ms: 5
        }
    );
    history.append(record.clone());
    history.append(record.clone());
    history.append(Run {
        commit: "def".to_owned(),
        ..record
    });
    assert_eq!(
        history.runs.len(),
        1,
        "the same report is recorded once, whatever the commit now"
    );

    for index in 0..MAX_RUNS + 5 {
        history.append(history_run(
            "abc",
            index as i64 + 10,
            "x",
            &[("unit", true)],
        ));
    }
    assert_eq!(history.runs.len(), MAX_RUNS);
    assert_eq!(history.runs[0].time, at(15));
}

#[test]
fn the_diff_lists_newly_failing_newly_passing_added_removed_and_coverage() {
    let mut baseline = history_run(
        "main1",
        0,
        &plain_key(),
        &[("unit", false), ("integration", true)],
    );
    baseline.levels.insert("integration".to_owned(), 0);
    baseline.results.insert(
        row_key("visits: 1, total: 8"),
        BTreeMap::from([("unit".to_owned(), past(true))]),
    );
    baseline.results.insert(
        row_key("visits: 2, total: 9"),
        BTreeMap::from([("unit".to_owned(), past(true))]),
    );
    baseline.results.insert(
        format!("{FEATURE_NAME}: Gone"),
        BTreeMap::from([("unit".to_owned(), past(true))]),
    );
    let mut history = History::default();
    history.runs.push(baseline);

    let mut runs = vec![unit_run()];
    let integration_report = json!([{ "uri": "x", "keyword": "Feature", "name": FEATURE_NAME, "tags": [], "elements": [] }]);
    runs.push(level_run("integration", &integration_report, Vec::new()));
    let book = book_of(&runs);
    let diff = Diff::new(&book, history.runs.last());
    assert_eq!(diff.newly_failing.len(), 1);
    let (_, failing) = diff.newly_failing[0];
    assert_eq!(failing.level, "unit");
    assert!(
        matches!(&failing.outcome, Outcome::Failed { step, .. } if step == "Then the page has been seen 9 times in total")
    );
    assert_eq!(diff.newly_passing.len(), 1);
    assert!(diff.newly_passing[0].ends_with("at unit"));
    assert_eq!(diff.removed, [format!("{FEATURE_NAME}: Gone")]);
    assert_eq!(diff.coverage.len(), 1);
    assert!(
        diff.coverage[0].ends_with("no longer runs at integration (not in this run)"),
        "{:?}",
        diff.coverage
    );
    assert!(diff.added.is_empty());

    let markdown = diff.render().expect("renders");
    assert!(
        markdown
            .contains("Compared with the latest run on main, at `main1` (2027-01-01 00:00 UTC).")
    );
    assert!(markdown.contains("| unit | 2 (−1) | 1 | 2 |"), "{markdown}");
    assert!(markdown.contains("#### Newly failing (1)"));
    assert!(
        markdown.contains(
            "<pre>expected &lt;9&gt;, got \"8\" &amp; &lt;script&gt;x&lt;/script&gt;</pre>"
        )
    );
    assert!(markdown.contains("#### Newly passing (1)"));
    assert!(
        markdown.contains("#### Removed (1)\n\n- Counting &lt;visits&gt; &amp; \"more\": Gone")
    );
    assert!(markdown.contains("#### Level coverage (1)"));

    let mut without_the_row = history.clone();
    without_the_row.runs[0]
        .results
        .remove(&row_key("visits: 1, total: 8"));
    let diff = Diff::new(&book, without_the_row.runs.last());
    assert_eq!(
        diff.added,
        [format!(
            "{FEATURE_NAME}: Many visits (visits: 1, total: 8) (unit passed)"
        )]
    );

    let unchanged = Diff::new(&book, Some(&history::record(&book, "main2", at(0))))
        .render()
        .expect("renders");
    assert!(
        unchanged.contains("No scenario changed its result; 1 still failing as on main."),
        "{unchanged}"
    );
}

#[test]
fn rule_scenarios_run_the_feature_and_the_rule_background() {
    let feature = gherkin::Feature::parse(
        "Feature: Rules\n  Background:\n    Given one\n\n  Rule: Only reading counts\n    Background:\n      Given two\n\n    Scenario: Reading\n      When three\n",
        GherkinEnv::default(),
    )
    .expect("parses");
    let report = |background: Vec<Value>| {
        let scenario = json!({ "keyword": "Scenario", "type": "scenario", "line": 9, "name": "Reading",
            "steps": [step("When ", 10, "three", None)] });
        let background = json!({ "keyword": "Background", "type": "background", "line": 9, "steps": background });
        level_run(
            "unit",
            &json!([{ "name": "Rules", "elements": [scenario, background] }]),
            Vec::new(),
        )
    };
    let one = step("Given ", 3, "one", None);
    let two = step("Given ", 7, "two", None);
    let runs = [report(vec![one.clone(), two])];
    let book = Book::new(std::slice::from_ref(&feature), Vec::new(), &runs);
    let groups = model::rule_groups(&book.features[0]);
    assert_eq!(
        groups.first().map(|rules| rules[0].name.as_str()),
        Some("Only reading counts")
    );
    assert_eq!(book.feature_status(&book.features[0]), "passed");
    let (features, runs) = ([feature], [report(vec![one])]);
    let book = Book::new(&features, Vec::new(), &runs);
    let failed = book.rows[0].cells[0].outcome.clone();
    assert!(matches!(failed, Outcome::Failed { ref step, .. } if step == "Given two"));
}

/// The page for fixed inputs, compared with `golden/report.html`. After an
/// intended change to the page, `LIVING_DOC_BLESS=1 cargo test --test living_doc`
/// rewrites it; review the difference before committing it.
#[test]
fn the_page_matches_the_golden_page() {
    let mut history = History::default();
    history.append(history_run(
        "0123456789ab",
        -7200,
        &plain_key(),
        &[("unit", false), ("integration", true)],
    ));
    history.append(history_run(
        "0123456789ab",
        -3600,
        &plain_key(),
        &[("unit", true), ("integration", true)],
    ));
    let runs = [
        unit_run(),
        level_run("integration", &unit_report(), Vec::new()),
    ];
    let unreadable = vec!["features/broken.feature: Failed to parse".to_owned()];
    let output = build(
        Book::new(&SPECIFICATION, unreadable, &runs),
        &mut history,
        None,
        "fedcba987654",
        at(60),
    )
    .expect("renders");
    let golden =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bdd/living_doc/golden/report.html");
    if std::env::var_os("LIVING_DOC_BLESS").is_some() {
        std::fs::write(&golden, &output.page).expect("writes the golden page");
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("the golden page exists: run with LIVING_DOC_BLESS=1");
    assert!(
        output.page == expected,
        "the page differs from {}: if intended, re-bless with LIVING_DOC_BLESS=1 and review the diff",
        golden.display()
    );
}

#[test]
fn render_writes_the_page_the_history_and_the_diff() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("living-doc-render");
    let _ = std::fs::remove_dir_all(&dir);
    let features = dir.join("features");
    std::fs::create_dir_all(features.join("nested")).expect("creates the fixture dirs");
    std::fs::write(features.join("nested/counting.feature"), FEATURE).expect("writes the feature");
    std::fs::create_dir_all(dir.join("unit")).expect("creates the level dir");
    std::fs::write(dir.join("unit/cucumber.json"), unit_report().to_string())
        .expect("writes the report");
    let options = Options {
        report_dir: dir.clone(),
        features,
        history: dir.join("history.json"),
        diff_against: Some(dir.join("main-history.json")),
    };
    let rendered = render(&options).expect("renders");
    assert!(
        std::fs::read_to_string(&rendered.page)
            .expect("a page")
            .contains("Many visits")
    );
    let diff = std::fs::read_to_string(rendered.diff.expect("a diff")).expect("a diff file");
    assert!(diff.contains("No run on main to compare with"), "{diff}");
    render(&options).expect("renders again");
    let history = History::load(&options.history).expect("a history");
    assert_eq!(
        history.runs.len(),
        1,
        "rendering the same reports again records nothing new"
    );

    std::fs::write(&options.history, "{ not json").expect("spoils the history");
    std::fs::write(dir.join("main-history.json"), "[]").expect("spoils the other history");
    let rendered = render(&options).expect("renders without the histories");
    let diff = std::fs::read_to_string(rendered.diff.expect("a diff")).expect("a diff file");
    assert!(diff.contains("missing, empty or unreadable"), "{diff}");
    let history = History::load(&options.history).expect("a new history");
    assert_eq!(history.runs.len(), 1);
}
