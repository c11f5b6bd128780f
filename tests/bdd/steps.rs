//! Step definitions, written once for every level: they speak only to the [`Driver`].
//!
//! [`Driver`]: crate::driver::Driver

use std::{collections::HashSet, time::Duration};

use anyhow::{Context, Result, bail, ensure};
use cucumber::{given, then, when};
use futures::future::try_join_all;

use page_tracker::metrics::UNMATCHED_ROUTE;

use crate::{
    driver::{RawOutcome, Reply, SERVED_BY},
    metrics::{Sample, sum},
    world::PageTrackerWorld,
};

/// Allowance for scheduling on a busy machine on top of the store wait.
const SLACK: Duration = Duration::from_millis(500);
/// The longest a stopped service may take to drain and stop in a scenario.
const DRAIN_WAIT: Duration = Duration::from_secs(15);
/// How long after the visits start the stop signal is sent.
const IN_FLIGHT_DELAY: Duration = Duration::from_millis(100);
/// How often the load balancer checks each replica (deploy/haproxy/haproxy.cfg, `inter`).
const LB_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Between visitors arriving shortly one after another: long enough to fix the order
/// in which they reach the service, short enough for all to arrive during a slow count.
const ARRIVAL_GAP: Duration = Duration::from_millis(40);
/// How often figures are read again while waiting for them to show something.
const FIGURES_POLL: Duration = Duration::from_millis(100);

/// The metrics the operator's steps read.
const REQUESTS: &str = "http_server_request_duration_seconds";
const STORE_OPERATIONS: &str = "db_client_operation_duration_seconds";
const STORE_ERRORS: &str = "page_tracker_store_errors_total";
const STORE_RECONNECTS: &str = "page_tracker_redis_reconnects_total";
const ACTIVE_REQUESTS: &str = "http_server_active_requests";
const FIGURES: [&str; 7] = [
    "http_server_request_duration_seconds_count",
    "http_server_request_duration_seconds_sum",
    "db_client_operation_duration_seconds_count",
    "db_client_operation_duration_seconds_sum",
    STORE_ERRORS,
    STORE_RECONNECTS,
    ACTIVE_REQUESTS,
];

// --- Given -----------------------------------------------------------------

#[given("nobody has visited the page yet")]
async fn nobody_has_visited(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.counter.set(0).await
}

#[given(expr = "the page has been seen {int} times")]
async fn page_has_been_seen(world: &mut PageTrackerWorld, views: i64) -> Result<()> {
    world.driver()?.counter.set(views).await
}

#[given("the page-view store is down")]
async fn store_is_down(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.outages()?.take_down().await
}

#[given("the page-view store stops answering")]
async fn store_stops_answering(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.outages()?.freeze().await
}

#[given("a visitor has opened the page")]
async fn a_visitor_has_opened_the_page(world: &mut PageTrackerWorld) -> Result<()> {
    send(world, "GET", "/").await
}

#[given(expr = "the page-view store is slow to answer for {int} milliseconds")]
async fn store_is_slow(world: &mut PageTrackerWorld, millis: u64) -> Result<()> {
    world
        .driver()?
        .outages()?
        .stall(Duration::from_millis(millis))
        .await
}

#[given(expr = "a visitor has asked for {string}")]
async fn a_visitor_has_asked_for(world: &mut PageTrackerWorld, path: String) -> Result<()> {
    a_visitor_asks_for(world, path).await
}

#[given("the operator has noted the service's figures")]
async fn operator_notes_figures(world: &mut PageTrackerWorld) -> Result<()> {
    world.noted = Some(world.driver()?.metrics()?.samples(&FIGURES).await?);
    Ok(())
}

// --- When ------------------------------------------------------------------

#[when("the page-view store is back")]
async fn store_is_back(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.outages()?.restore().await
}

#[when("a visitor opens the page")]
async fn a_visitor_opens_the_page(world: &mut PageTrackerWorld) -> Result<()> {
    send(world, "GET", "/").await
}

#[when(expr = "a visitor opens the page with the request id {string}")]
async fn a_visitor_opens_the_page_named(world: &mut PageTrackerWorld, id: String) -> Result<()> {
    let reply = world.driver()?.request_named("GET", "/", Some(&id)).await?;
    world.replies = vec![reply];
    Ok(())
}

#[when(expr = "{int} visitors open the page one after another")]
async fn visitors_one_after_another(world: &mut PageTrackerWorld, visitors: usize) -> Result<()> {
    let mut replies = Vec::with_capacity(visitors);
    for _ in 0..visitors {
        replies.push(world.driver()?.request("GET", "/").await?);
    }
    world.replies = replies;
    Ok(())
}

#[when(expr = "{int} visitors open the page at the same moment")]
async fn visitors_at_once(world: &mut PageTrackerWorld, visitors: usize) -> Result<()> {
    let driver = world.driver()?;
    let visits = (0..visitors).map(|_| driver.request("GET", "/"));
    world.replies = try_join_all(visits).await?;
    Ok(())
}

#[when(expr = "{int} visitors open the page shortly one after another")]
async fn visitors_shortly_one_after_another(
    world: &mut PageTrackerWorld,
    visitors: u32,
) -> Result<()> {
    let driver = world.driver()?;
    // Each sets off before the one ahead is answered.
    let visits = (0..visitors).map(|place| async move {
        tokio::time::sleep(ARRIVAL_GAP * place).await;
        driver.request("GET", "/").await
    });
    world.replies = try_join_all(visits).await?;
    Ok(())
}

#[when(expr = "a visitor asks for {string}")]
async fn a_visitor_asks_for(world: &mut PageTrackerWorld, path: String) -> Result<()> {
    world.asked_for.push(path.clone());
    send(world, "GET", &path).await
}

#[when(expr = "someone sends a {word} request to the page")]
async fn someone_sends(world: &mut PageTrackerWorld, method: String) -> Result<()> {
    send(world, &method, "/").await
}

#[when(expr = "someone sends {word} instead of a visit")]
async fn someone_sends_malformed(world: &mut PageTrackerWorld, kind: String) -> Result<()> {
    let bytes = malformed_request(&kind)?;
    world.raw = Some(world.driver()?.send_raw(&bytes).await?);
    Ok(())
}

#[when(expr = "{int} visitors open the page and the service is stopped meanwhile")]
async fn visitors_during_shutdown(world: &mut PageTrackerWorld, visitors: usize) -> Result<()> {
    let server = world
        .server
        .take()
        .context("this level runs no server of its own to stop")?;
    let driver = world.driver()?;
    let visits = try_join_all((0..visitors).map(|_| driver.request("GET", "/")));
    let stop = async {
        // Long enough for every visit to reach the server, well inside the store's pause.
        tokio::time::sleep(IN_FLIGHT_DELAY).await;
        let _ = server.stop.send(());
        server.stopped.await
    };
    let (replies, stopped) = tokio::join!(visits, stop);
    world.replies = replies?;
    stopped
        .context("the server task failed")?
        .context("the server stopped with an error")?;
    world.stopped = true;
    Ok(())
}

#[when("the service is asked to stop")]
async fn service_is_asked_to_stop(world: &mut PageTrackerWorld) -> Result<()> {
    let server = world
        .server
        .take()
        .context("this level runs no server of its own to stop")?;
    server
        .stop
        .send(())
        .map_err(|()| anyhow::anyhow!("the server had already stopped"))?;
    world.stopping = Some(server.stopped);
    Ok(())
}

#[when("the drain delay has passed")]
async fn drain_delay_has_passed(world: &mut PageTrackerWorld) -> Result<()> {
    let stopped = world
        .stopping
        .take()
        .context("the service was not asked to stop")?;
    tokio::time::timeout(DRAIN_WAIT, stopped)
        .await
        .with_context(|| format!("the service was still running {DRAIN_WAIT:?} after the stop"))?
        .context("the server task failed")?
        .context("the server stopped with an error")?;
    world.stopped = true;
    Ok(())
}

#[when("the load balancer checks whether to send visitors to the service")]
async fn load_balancer_checks(world: &mut PageTrackerWorld) -> Result<()> {
    send(world, "GET", "/serving").await
}

#[when("the operator checks whether the service is alive")]
async fn operator_checks_liveness(world: &mut PageTrackerWorld) -> Result<()> {
    send(world, "GET", "/health").await
}

#[when("the operator checks whether the service can serve visitors")]
async fn operator_checks_readiness(world: &mut PageTrackerWorld) -> Result<()> {
    send(world, "GET", "/ready").await
}

async fn send(world: &mut PageTrackerWorld, method: &str, path: &str) -> Result<()> {
    let reply = world.driver()?.request(method, path).await?;
    world.replies = vec![reply];
    Ok(())
}

// --- Then ------------------------------------------------------------------

#[then("each answer names its request, no two the same")]
async fn each_answer_names_its_request(world: &mut PageTrackerWorld) -> Result<()> {
    let mut seen = HashSet::new();
    for (index, reply) in world.replies.iter().enumerate() {
        let id = reply
            .request_id
            .as_deref()
            .with_context(|| format!("answer {} names no request", index + 1))?;
        ensure!(
            !id.trim().is_empty(),
            "answer {} names an empty request id",
            index + 1
        );
        ensure!(
            seen.insert(id),
            "answer {} names request {id:?}, as an earlier answer did",
            index + 1
        );
    }
    ensure!(!seen.is_empty(), "no answer to look at");
    Ok(())
}

#[then(expr = "the answer names the request {string}")]
async fn the_answer_names_the_request(world: &mut PageTrackerWorld, id: String) -> Result<()> {
    let named = world.last_reply()?.request_id.as_deref();
    ensure!(
        named == Some(id.as_str()),
        "the answer names the request {named:?}, not {id:?}"
    );
    Ok(())
}

#[then(expr = "the visitor is told {string}")]
async fn the_visitor_is_told(world: &mut PageTrackerWorld, message: String) -> Result<()> {
    expect_reply(world, 200, &message)
}

#[then(expr = "the visitor is given the apology {string}")]
async fn the_visitor_is_given_the_apology(
    world: &mut PageTrackerWorld,
    apology: String,
) -> Result<()> {
    expect_reply(world, 500, &apology)
}

#[then(expr = "the visitors are told the counts {int} to {int}, in order")]
async fn the_visitors_are_told_the_counts(
    world: &mut PageTrackerWorld,
    first: i64,
    last: i64,
) -> Result<()> {
    told_in_order(&world.replies, first, last)
}

#[then(expr = "the first {int} visitors are told the counts {int} to {int} between them")]
async fn the_first_visitors_are_told_the_counts(
    world: &mut PageTrackerWorld,
    visitors: usize,
    first: i64,
    last: i64,
) -> Result<()> {
    told_between_them(first_replies(&world.replies, visitors)?, first, last)
}

#[then(expr = "the last {int} visitors are told the counts {int} to {int}, in order")]
async fn the_last_visitors_are_told_the_counts(
    world: &mut PageTrackerWorld,
    visitors: usize,
    first: i64,
    last: i64,
) -> Result<()> {
    told_in_order(last_replies(&world.replies, visitors)?, first, last)
}

/// The replies to the first `visitors` visits.
fn first_replies(replies: &[Reply], visitors: usize) -> Result<&[Reply]> {
    let count = replies.len();
    replies
        .get(..visitors)
        .with_context(|| format!("expected at least {visitors} visitors, there were {count}"))
}

/// The replies to the last `visitors` visits.
fn last_replies(replies: &[Reply], visitors: usize) -> Result<&[Reply]> {
    let count = replies.len();
    let after = count
        .checked_sub(visitors)
        .with_context(|| format!("expected at least {visitors} visitors, there were {count}"))?;
    Ok(&replies[after..])
}

/// The visits of `replies` were answered 200 with the counts `first..=last`, in order.
fn told_in_order(replies: &[Reply], first: i64, last: i64) -> Result<()> {
    let expected: Vec<_> = (first..=last).map(count_message).collect();
    let told: Vec<_> = replies.iter().map(|reply| reply.body.clone()).collect();
    ensure!(
        told == expected,
        "expected {expected:?}, visitors were told {told:?}"
    );
    for reply in replies {
        ensure!(reply.status == 200, "a visit answered {}", reply.status);
    }
    Ok(())
}

#[then(expr = "the visitors are told every count from {int} to {int} exactly once")]
async fn told_every_count_once(world: &mut PageTrackerWorld, first: i64, last: i64) -> Result<()> {
    let mut told: Vec<_> = world
        .replies
        .iter()
        .map(|reply| reply.body.clone())
        .collect();
    let mut expected: Vec<_> = (first..=last).map(count_message).collect();
    told.sort();
    expected.sort();
    ensure!(
        told == expected,
        "the {} visitors were not told each count from {first} to {last} once: {:?}",
        world.replies.len(),
        told.iter()
            .filter(|body| !expected.contains(body))
            .collect::<Vec<_>>()
    );
    Ok(())
}

#[then(expr = "the other {int} visitors are given the apology {string}")]
async fn the_others_are_given_the_apology(
    world: &mut PageTrackerWorld,
    others: usize,
    apology: String,
) -> Result<()> {
    // The last `others`, after at least one visitor before them.
    let rest = last_replies(&world.replies, others)?;
    ensure!(
        world.replies.len() > others,
        "expected more than {others} visitors, there were {}",
        world.replies.len()
    );
    for reply in rest {
        ensure!(
            reply.status == 500 && reply.body == apology,
            "a visitor got {} {:?}",
            reply.status,
            reply.body
        );
    }
    Ok(())
}

#[then(expr = "the page-view store was updated {int} times")]
async fn the_store_was_updated(world: &mut PageTrackerWorld, commands: u64) -> Result<()> {
    let counted = world.driver()?.counter.counting_commands().await?;
    ensure!(
        counted == commands,
        "the store was asked to add views {counted} times, expected {commands}"
    );
    Ok(())
}

#[then("the visitor sees the page")]
async fn the_visitor_sees_the_page(world: &mut PageTrackerWorld) -> Result<()> {
    ensure!(
        world.replies.len() == 1,
        "expected one visit, there were {}",
        world.replies.len()
    );
    every_visitor_sees_the_page(world).await
}

#[then("every visitor sees the page")]
async fn every_visitor_sees_the_page(world: &mut PageTrackerWorld) -> Result<()> {
    ensure!(!world.replies.is_empty(), "nobody visited");
    for reply in &world.replies {
        ensure!(
            reply.status == 200 && reply.body.starts_with("This page has been seen "),
            "a visitor got {} {:?}",
            reply.status,
            reply.body
        );
    }
    Ok(())
}

#[then("no two visitors are told the same count")]
async fn no_two_visitors_share_a_count(world: &mut PageTrackerWorld) -> Result<()> {
    let distinct: HashSet<_> = world.replies.iter().map(|reply| &reply.body).collect();
    ensure!(
        distinct.len() == world.replies.len(),
        "{} visitors were told only {} different counts",
        world.replies.len(),
        distinct.len()
    );
    Ok(())
}

#[then(expr = "the page has been seen {int} times in total")]
async fn the_page_has_been_seen_in_total(world: &mut PageTrackerWorld, views: i64) -> Result<()> {
    let recorded = world.driver()?.counter.get().await?;
    ensure!(
        recorded == views,
        "the store holds {recorded} views, expected {views}"
    );
    Ok(())
}

#[then("the visitor's browser is told the page is HTML in UTF-8")]
async fn the_page_is_html(world: &mut PageTrackerWorld) -> Result<()> {
    let reply = world.last_reply()?;
    ensure!(
        reply.content_type.as_deref() == Some("text/html; charset=utf-8"),
        "Content-Type was {:?}",
        reply.content_type
    );
    Ok(())
}

#[then("the visitor got the answer within the configured wait for the store")]
async fn answered_within_the_wait(world: &mut PageTrackerWorld) -> Result<()> {
    let limit = world.driver()?.store_wait + SLACK;
    let elapsed = world.last_reply()?.elapsed;
    ensure!(
        elapsed <= limit,
        "the answer took {elapsed:?}, more than {limit:?}"
    );
    Ok(())
}

#[then("they are turned away without a page")]
async fn turned_away(world: &mut PageTrackerWorld) -> Result<()> {
    match world.raw.as_ref().context("nothing was sent")? {
        RawOutcome::Closed => Ok(()),
        RawOutcome::Status(status) if (400..600).contains(status) => Ok(()),
        RawOutcome::Status(status) => bail!("the server answered {status}"),
    }
}

#[then("the service no longer accepts visitors")]
async fn no_longer_accepts(world: &mut PageTrackerWorld) -> Result<()> {
    ensure!(world.stopped, "the service was not stopped");
    ensure!(
        world.driver()?.request("GET", "/").await.is_err(),
        "a visit after the stop was still answered"
    );
    Ok(())
}

#[then("the load balancer is told the service is serving")]
async fn told_serving(world: &mut PageTrackerWorld) -> Result<()> {
    expect_reply(world, 200, "serving")
}

#[then("the load balancer is told the service is draining")]
async fn told_draining(world: &mut PageTrackerWorld) -> Result<()> {
    // A stop signal reaches a process asynchronously, and a load balancer checks
    // again every second: the answer must turn within one check interval (well
    // inside the drain delay), not necessarily on the very first check.
    let deadline = tokio::time::Instant::now() + LB_CHECK_INTERVAL;
    while world.last_reply()?.status == 200 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        send(world, "GET", "/serving").await?;
    }
    expect_reply(world, 503, "draining")
}

#[then("the visitor's connection is closed after the answer")]
async fn connection_closed_after_answer(world: &mut PageTrackerWorld) -> Result<()> {
    ensure!(
        world.last_reply()?.closes_connection,
        "the answer did not ask the client to close the connection"
    );
    Ok(())
}

#[then("more than one copy of the service answered")]
async fn more_than_one_copy_answered(world: &mut PageTrackerWorld) -> Result<()> {
    let copies: HashSet<_> = world
        .replies
        .iter()
        .map(|reply| reply.served_by.as_deref())
        .collect();
    ensure!(
        !copies.contains(&None),
        "an answer did not name the copy that served it (header {SERVED_BY})"
    );
    ensure!(
        copies.len() > 1,
        "{} visitors were all served by {copies:?}",
        world.replies.len()
    );
    Ok(())
}

#[then("the visitor is told the page was not found")]
async fn not_found(world: &mut PageTrackerWorld) -> Result<()> {
    expect_status(world, 404)
}

#[then("they are told that is not allowed")]
async fn not_allowed(world: &mut PageTrackerWorld) -> Result<()> {
    expect_status(world, 405)
}

#[then("the operator is told the service is alive")]
async fn told_alive(world: &mut PageTrackerWorld) -> Result<()> {
    expect_reply(world, 200, "ok")
}

#[then("the operator is told the service is ready")]
async fn told_ready(world: &mut PageTrackerWorld) -> Result<()> {
    expect_reply(world, 200, "ready")
}

#[then("the operator is told the service is not ready")]
async fn told_not_ready(world: &mut PageTrackerWorld) -> Result<()> {
    expect_reply(world, 503, "not ready")
}

#[then(expr = "the operator sees {int} more answer(s) from the page with status {int}, each timed")]
async fn operator_sees_page_answers(
    world: &mut PageTrackerWorld,
    answers: u32,
    status: u16,
) -> Result<()> {
    let status = status.to_string();
    let labels = [
        ("http_request_method", "GET"),
        ("http_route", "/"),
        ("http_response_status_code", status.as_str()),
    ];
    expect_more(world, REQUESTS, &labels, answers, true).await
}

#[then(
    expr = "the operator sees {int} more answer(s) for a page that does not exist, with status {int}"
)]
async fn operator_sees_unknown_pages(
    world: &mut PageTrackerWorld,
    answers: u32,
    status: u16,
) -> Result<()> {
    let status = status.to_string();
    let labels = [
        ("http_route", UNMATCHED_ROUTE),
        ("http_response_status_code", status.as_str()),
    ];
    expect_more(world, REQUESTS, &labels, answers, true).await
}

#[then(expr = "the operator sees {int} more visit(s) recorded in the page-view store, each timed")]
async fn operator_sees_store_visits(world: &mut PageTrackerWorld, visits: u32) -> Result<()> {
    let labels = [
        ("db_system_name", "redis"),
        ("db_operation_name", "INCRBY"),
        ("error_type", ""),
    ];
    expect_more(world, STORE_OPERATIONS, &labels, visits, true).await
}

#[then(expr = "the operator sees {int} more error(s) of the page-view store, of type {string}")]
async fn operator_sees_store_errors(
    world: &mut PageTrackerWorld,
    errors: u32,
    error_type: String,
) -> Result<()> {
    let labels = [("error_type", error_type.as_str())];
    expect_more(world, STORE_ERRORS, &labels, errors, false).await?;
    let timed = [
        ("db_operation_name", "INCRBY"),
        ("error_type", error_type.as_str()),
    ];
    expect_more(world, STORE_OPERATIONS, &timed, errors, true).await
}

#[then(expr = "the operator sees {int} more reconnection(s) to the page-view store")]
async fn operator_sees_reconnections(world: &mut PageTrackerWorld, more: u32) -> Result<()> {
    expect_more(world, STORE_RECONNECTS, &[], more, false).await
}

#[then("the operator sees no request still being served")]
async fn operator_sees_nothing_in_flight(world: &mut PageTrackerWorld) -> Result<()> {
    await_figures(world, |samples| {
        let active = sum(samples, ACTIVE_REQUESTS, &[]);
        (active != 0.0).then(|| format!("the operator still sees {active} requests being served"))
    })
    .await
}

#[then("the operator sees no more series than before")]
async fn operator_sees_no_new_series(world: &mut PageTrackerWorld) -> Result<()> {
    let noted = noted(world)?;
    let now = world.driver()?.metrics()?.samples(&FIGURES).await?;
    let before = noted.len();
    let added: Vec<_> = now
        .iter()
        .filter(|sample| !noted.iter().any(|old| old.same_series(sample)))
        .collect();
    ensure!(
        added.is_empty(),
        "{before} series before, {} now; new: {added:?}",
        now.len()
    );
    Ok(())
}

#[then("no series is named after an address a visitor asked for")]
async fn no_series_named_after_paths(world: &mut PageTrackerWorld) -> Result<()> {
    ensure!(
        !world.asked_for.is_empty(),
        "no visitor asked for an address"
    );
    let samples = world.driver()?.metrics()?.samples(&FIGURES).await?;
    for sample in &samples {
        for value in sample.labels.values() {
            let named = world.asked_for.iter().any(|path| {
                let without_query = path.split('?').next().unwrap_or(path);
                value == path || value == without_query
            });
            ensure!(!named, "a series is named after {value:?}: {sample:?}");
        }
    }
    Ok(())
}

fn noted(world: &PageTrackerWorld) -> Result<&Vec<Sample>> {
    world
        .noted
        .as_ref()
        .context("the operator has not noted the figures yet")
}

/// Waits until `metric` (a histogram's name when `timed`, else a counter's) has
/// grown by `more` over what the operator noted, and, when `timed`, its time too.
/// Fails at the level's deadline with what it last saw.
async fn expect_more(
    world: &PageTrackerWorld,
    metric: &str,
    labels: &[(&str, &str)],
    more: u32,
    timed: bool,
) -> Result<()> {
    let noted = noted(world)?;
    let (count, seconds) = if timed {
        (format!("{metric}_count"), Some(format!("{metric}_sum")))
    } else {
        (metric.to_owned(), None)
    };
    let expected = sum(noted, &count, labels) + f64::from(more);
    let time_before = seconds.as_ref().map(|name| sum(noted, name, labels));
    await_figures(world, |samples| {
        let counted = sum(samples, &count, labels);
        let time_now = seconds.as_ref().map(|name| sum(samples, name, labels));
        let timed_ok = match (time_before, time_now) {
            (Some(before), Some(now)) => more == 0 || now > before,
            _ => true,
        };
        (counted != expected || !timed_ok).then(|| {
            format!(
                "{count}{labels:?}: expected {expected}, the operator sees {counted}{}",
                match (time_before, time_now) {
                    (Some(before), Some(now)) =>
                        format!("; time spent went from {before} s to {now} s"),
                    _ => String::new(),
                }
            )
        })
    })
    .await
}

/// Reads the figures until `check` finds what it waits for (it answers `None`),
/// for at most the level's patience; then fails with what `check` last saw.
async fn await_figures(
    world: &PageTrackerWorld,
    mut check: impl FnMut(&[Sample]) -> Option<String>,
) -> Result<()> {
    let view = world.driver()?.metrics()?;
    let deadline = tokio::time::Instant::now() + view.patience();
    loop {
        let Some(seen) = check(&view.samples(&FIGURES).await?) else {
            return Ok(());
        };
        if tokio::time::Instant::now() > deadline {
            bail!("{seen}");
        }
        tokio::time::sleep(FIGURES_POLL).await;
    }
}

/// The malformed requests the specification names, as bytes on the wire.
fn malformed_request(kind: &str) -> Result<Vec<u8>> {
    Ok(match kind {
        "gibberish" => b"\x00\x01\x02 this is not HTTP \xff\r\n\r\n".to_vec(),
        "oversized-headers" => {
            let filler = "a".repeat(100 * 1024);
            format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Filler: {filler}\r\n\r\n").into_bytes()
        }
        "an-unknown-protocol" => b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n".to_vec(),
        "no-address" => b"GET HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        "a-broken-header" => b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n".to_vec(),
        other => bail!("no malformed request is called {other:?}"),
    })
}

fn count_message(views: i64) -> String {
    format!("This page has been seen {views} times.")
}

fn expect_status(world: &PageTrackerWorld, status: u16) -> Result<()> {
    let reply = world.last_reply()?;
    ensure!(
        reply.status == status,
        "expected status {status}, got {} with {:?}",
        reply.status,
        reply.body
    );
    Ok(())
}

fn expect_reply(world: &PageTrackerWorld, status: u16, body: &str) -> Result<()> {
    expect_status(world, status)?;
    let reply = world.last_reply()?;
    ensure!(
        reply.body == body,
        "expected {body:?}, got {:?}",
        reply.body
    );
    Ok(())
}

// --- The store restarting ----------------------------------------------------

#[given("the page-view store restarts while nobody visits")]
async fn store_restarts_quietly(world: &mut PageTrackerWorld) -> Result<()> {
    let outages = world.driver()?.outages()?;
    outages.take_down().await?;
    outages.restore().await
}

// --- Large request heads -----------------------------------------------------

#[when(expr = "a visitor whose browser sends {int} KiB of cookies opens the page")]
async fn visitor_with_cookies(world: &mut PageTrackerWorld, kib: usize) -> Result<()> {
    // Cookies of 32 bytes each ("c0000=" and 24 letters, then "; "), cut to the size asked.
    let mut cookies = (0..)
        .map(|n| format!("c{n:04}={}; ", "v".repeat(24)))
        .take(kib * 1024 / 32 + 1)
        .collect::<String>();
    cookies.truncate(kib * 1024);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {cookies}\r\n\r\n"
    );
    world.raw = Some(world.driver()?.send_raw(request.as_bytes()).await?);
    Ok(())
}

#[then("the page is served to them")]
async fn page_is_served(world: &mut PageTrackerWorld) -> Result<()> {
    expect_raw_status(world, 200, "the page")
}

#[then("they are told the request is too large")]
async fn request_too_large(world: &mut PageTrackerWorld) -> Result<()> {
    expect_raw_status(world, 431, "Request Header Fields Too Large")
}

/// The bytes sent by hand were answered with `status`.
fn expect_raw_status(world: &PageTrackerWorld, status: u16, what: &str) -> Result<()> {
    let outcome = world.raw.as_ref().context("nothing was sent")?;
    ensure!(
        *outcome == RawOutcome::Status(status),
        "expected {what} ({status}), got {outcome:?}"
    );
    Ok(())
}

// --- Connections to the store ------------------------------------------------

#[given("the page-view store has come back")]
async fn store_has_come_back(world: &mut PageTrackerWorld) -> Result<()> {
    store_is_back(world).await
}

#[given("the page-view store has become a replica refusing writes")]
async fn store_becomes_replica(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.outages()?.demote().await
}

#[when("the page-view store is a primary again")]
async fn store_is_primary_again(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.outages()?.promote().await
}

#[given("the store starts counting the connections it receives")]
async fn store_starts_counting_connections(world: &mut PageTrackerWorld) -> Result<()> {
    world.connections_before = Some(world.driver()?.outages()?.connections_received().await?);
    Ok(())
}

#[given(expr = "the page-view count in the store has been overwritten with {string}")]
async fn count_overwritten(world: &mut PageTrackerWorld, text: String) -> Result<()> {
    world.driver()?.counter.set_text(&text).await
}

#[when(expr = "the page-view count in the store is put back to {int}")]
async fn count_put_back(world: &mut PageTrackerWorld, views: i64) -> Result<()> {
    world.driver()?.counter.set(views).await
}

#[then(expr = "the store has received {int} new connection(s)")]
async fn store_received_connections(world: &mut PageTrackerWorld, expected: u64) -> Result<()> {
    expect_new_connections(world, expected).await
}

#[then("the store has received no new connection")]
async fn store_received_no_connection(world: &mut PageTrackerWorld) -> Result<()> {
    expect_new_connections(world, 0).await
}

async fn expect_new_connections(world: &PageTrackerWorld, expected: u64) -> Result<()> {
    let before = world
        .connections_before
        .context("the store was not counting connections")?;
    let now = world.driver()?.outages()?.connections_received().await?;
    let new = now - before;
    ensure!(
        new == expected,
        "the store received {new} new connection(s) from the service, expected {expected}"
    );
    Ok(())
}

#[then(expr = "the visitors are told the counts {int} to {int} between them")]
async fn told_the_counts_between_them(
    world: &mut PageTrackerWorld,
    first: i64,
    last: i64,
) -> Result<()> {
    told_between_them(&world.replies, first, last)
}

/// The visits of `replies` were answered 200 with the counts `first..=last`, in any order.
fn told_between_them(replies: &[Reply], first: i64, last: i64) -> Result<()> {
    let mut told: Vec<_> = replies
        .iter()
        .map(|reply| (reply.status, reply.body.clone()))
        .collect();
    told.sort_by_key(|(_, body)| {
        body.split(' ')
            .nth(5)
            .and_then(|views| views.parse::<i64>().ok())
    });
    let expected: Vec<_> = (first..=last).map(|n| (200, count_message(n))).collect();
    ensure!(
        told == expected,
        "expected {expected:?} in any order, visitors were told {told:?}"
    );
    Ok(())
}
