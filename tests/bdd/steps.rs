//! Step definitions, written once for every level: they speak only to the [`Driver`].
//!
//! [`Driver`]: crate::driver::Driver

use std::{collections::HashSet, time::Duration};

use anyhow::{Result, ensure};
use cucumber::{given, then, when};
use futures::future::try_join_all;

use crate::world::PageTrackerWorld;

/// Allowance for scheduling on a busy machine on top of the store wait.
const SLACK: Duration = Duration::from_millis(500);

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

// --- When ------------------------------------------------------------------

#[when("the page-view store is back")]
async fn store_is_back(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.outages()?.restore().await
}

#[when("a visitor opens the page")]
async fn a_visitor_opens_the_page(world: &mut PageTrackerWorld) -> Result<()> {
    send(world, "GET", "/").await
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

#[when(expr = "a visitor asks for {string}")]
async fn a_visitor_asks_for(world: &mut PageTrackerWorld, path: String) -> Result<()> {
    send(world, "GET", &path).await
}

#[when(expr = "someone sends a {word} request to the page")]
async fn someone_sends(world: &mut PageTrackerWorld, method: String) -> Result<()> {
    send(world, &method, "/").await
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
    let expected: Vec<_> = (first..=last).map(count_message).collect();
    let told: Vec<_> = world
        .replies
        .iter()
        .map(|reply| reply.body.clone())
        .collect();
    ensure!(
        told == expected,
        "expected {expected:?}, visitors were told {told:?}"
    );
    for reply in &world.replies {
        ensure!(reply.status == 200, "a visit answered {}", reply.status);
    }
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
