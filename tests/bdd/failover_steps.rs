//! Steps of the store's failover and of its users' rights (features/failover.feature).

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use cucumber::{given, then, when};

use crate::world::PageTrackerWorld;

/// The longest visitors keep trying after the primary is lost: well beyond the
/// sentinels' few seconds, so that only a service that never recovers fails.
const RECOVERY_WAIT: Duration = Duration::from_secs(60);
/// Between two visits while the store is away.
const VISIT_INTERVAL: Duration = Duration::from_millis(100);

#[given("the replicas have every visit so far")]
async fn replicas_have_every_visit(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.failover()?.sync_replicas().await
}

#[when("the store's primary is lost")]
async fn primary_is_lost(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.failover()?.kill_primary().await
}

#[given("the store's primary stops answering, keeping its connections open")]
async fn primary_stops_answering(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.failover()?.freeze_primary().await
}

#[given("the first sentinel the service knows stops answering, keeping its connections open")]
async fn first_sentinel_stops_answering(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.failover()?.freeze_first_sentinel().await
}

#[given("the sentinels have named a new primary")]
#[when("the sentinels have named a new primary")]
async fn sentinels_name_a_new_primary(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.failover()?.await_new_primary().await
}

#[when("the old primary answers again")]
async fn old_primary_answers_again(world: &mut PageTrackerWorld) -> Result<()> {
    world.driver()?.failover()?.thaw_old_primary().await
}

#[when("visitors keep opening the page until one is counted")]
async fn visitors_until_counted(world: &mut PageTrackerWorld) -> Result<()> {
    let deadline = Instant::now() + RECOVERY_WAIT;
    let mut replies = Vec::new();
    loop {
        let reply = world.driver()?.request("GET", "/").await?;
        let counted = reply.status == 200;
        replies.push(reply);
        if counted {
            break;
        }
        if Instant::now() > deadline {
            world.replies = replies;
            bail!("no visitor was counted within {RECOVERY_WAIT:?} of losing the primary");
        }
        tokio::time::sleep(VISIT_INTERVAL).await;
    }
    world.replies = replies;
    Ok(())
}

#[then(expr = "the first visitor counted is told {string}")]
async fn first_counted_is_told(world: &mut PageTrackerWorld, message: String) -> Result<()> {
    let reply = world.last_reply()?;
    ensure!(
        reply.status == 200 && reply.body == message,
        "the first visitor counted got {} {:?}",
        reply.status,
        reply.body
    );
    Ok(())
}

#[then(expr = "every visitor before was given the apology {string}")]
async fn everyone_before_apologised_to(
    world: &mut PageTrackerWorld,
    apology: String,
) -> Result<()> {
    let (_counted, before) = world
        .replies
        .split_last()
        .unwrap_or((&world.replies[0], &[]));
    for reply in before {
        ensure!(
            reply.status == 500 && reply.body == apology,
            "a visitor before was answered {} {:?}",
            reply.status,
            reply.body
        );
    }
    Ok(())
}

#[then(expr = "the old primary follows the new one, holding the count {int}")]
async fn old_primary_follows(world: &mut PageTrackerWorld, views: i64) -> Result<()> {
    world.driver()?.failover()?.old_primary_follows(views).await
}

#[when(expr = "the service's Redis user sends {string}")]
async fn service_user_sends(world: &mut PageTrackerWorld, command: String) -> Result<()> {
    world.refusal = Some(
        world
            .driver()?
            .failover()?
            .as_service_user(&command)
            .await?,
    );
    Ok(())
}

#[then("Redis refuses it for lack of permission")]
async fn redis_refuses(world: &mut PageTrackerWorld) -> Result<()> {
    match &world.refusal {
        Some(Some(refusal)) if refusal.starts_with("NOPERM") => Ok(()),
        Some(Some(other)) => bail!("Redis refused it for another reason: {other}"),
        Some(None) => bail!("Redis ran it"),
        None => bail!("no command was sent as the service's user"),
    }
}

#[then("Redis runs it")]
async fn redis_runs_it(world: &mut PageTrackerWorld) -> Result<()> {
    match &world.refusal {
        Some(None) => Ok(()),
        Some(Some(refusal)) => bail!("Redis refused it: {refusal}"),
        None => bail!("no command was sent as the service's user"),
    }
}
