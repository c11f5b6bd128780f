//! The levels the specification runs at, and what each can do.

pub mod e2e;
pub mod integration;
pub mod sentinel;
pub mod unit;

use std::{fmt, path::Path, sync::Arc};

use anyhow::{Result, bail};
use clap::ValueEnum;
use cucumber::gherkin;

use crate::driver::Driver;

/// Scenarios with these tags disturb the store or the server, read the store's
/// command statistics or count its connections, so they get their own.
const DISTURBING_TAGS: [&str; 4] = ["outage", "shutdown", "own-store", "connections"];

/// How far from the code the scenarios run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// In process, store replaced by a double: no network, no Docker.
    Unit,
    /// The application on a loopback port against a real Redis in Docker.
    Integration,
    /// The deployed service over HTTP, at APP_URL with its Redis at REDIS_URL.
    E2e,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Unit => "unit",
            Self::Integration => "integration",
            Self::E2e => "e2e",
        };
        f.write_str(name)
    }
}

/// What a level has set up for the whole run, shared by its scenarios.
pub enum Environment {
    Unit,
    Integration(Box<integration::SharedRedis>),
    E2e(Box<e2e::Stack>),
}

impl Environment {
    /// Sets up what `level` needs for a run (for example a Redis container).
    pub async fn start(level: Level) -> Result<Arc<Self>> {
        let environment = match level {
            Level::Unit => Self::Unit,
            Level::Integration => {
                if let Some(why) = docker_unreachable().await {
                    bail!(
                        "Docker is not reachable ({why}); the integration level needs a Docker engine"
                    );
                }
                Self::Integration(Box::new(integration::SharedRedis::start().await?))
            }
            Level::E2e => Self::E2e(Box::new(e2e::Stack::from_env().await?)),
        };
        Ok(Arc::new(environment))
    }

    /// A fresh driver for one scenario.
    pub async fn driver(&self, scenario: &gherkin::Scenario) -> Result<Driver> {
        match self {
            Self::Unit => Ok(unit::driver()),
            // The real binary, so the stop is a real signal to a real process.
            Self::Integration(_) if scenario.tags.iter().any(|tag| tag == "shutdown") => {
                integration::driver_with_own_redis_and_process().await
            }
            // A primary, a replica and sentinels of its own, to lose and bring back.
            Self::Integration(_) if scenario.tags.iter().any(|tag| tag == "sentinel") => {
                sentinel::driver_with_sentinels().await
            }
            // The deployment's Redis users, the service signing in as its own.
            Self::Integration(_) if scenario.tags.iter().any(|tag| tag == "acl") => {
                sentinel::driver_with_users().await
            }
            Self::Integration(_) if takes_the_store_away(scenario) => {
                integration::driver_with_own_redis().await
            }
            Self::Integration(shared) => shared.driver().await,
            Self::E2e(stack) => stack.driver().await,
        }
    }

    /// Why this level cannot run `scenario`, if it cannot.
    pub fn cannot_run(&self, scenario: &gherkin::Scenario) -> Option<&'static str> {
        let has = |tag: &str| scenario.tags.iter().any(|t| t == tag);
        match self {
            Self::Unit if has("over-the-wire") => {
                Some("no socket: the router is called in process")
            }
            Self::Unit if has("shutdown") => {
                Some("no server to stop: the router is called in process")
            }
            Self::Unit if has("replicas") => {
                Some("one copy of the service: the router is called in process")
            }
            Self::Integration(_) if has("replicas") => {
                Some("one copy of the service on a loopback port, no load balancer")
            }
            Self::Unit if has("sentinel") => {
                Some("the store double has no primary, replicas or sentinels")
            }
            Self::Unit if has("acl") => Some("the store double has no users"),
            Self::Unit if has("connections") => {
                Some("the store double has no connections to count")
            }
            Self::Unit | Self::Integration(_) => None,
            Self::E2e(stack) => stack.cannot_run(&scenario.tags),
        }
    }

    /// How many scenarios may run at once.
    pub fn concurrency(&self) -> usize {
        match self {
            Self::Unit => 64,
            // Below the number of Redis databases, and kind to a small machine.
            Self::Integration(_) => 8,
            // One live counter: scenarios take turns.
            Self::E2e(_) => 1,
        }
    }

    /// Removes whatever the level started; safe to call more than once.
    pub async fn stop(&self) {
        match self {
            Self::Unit => {}
            Self::Integration(shared) => shared.stop().await,
            Self::E2e(stack) => stack.restore_views().await,
        }
    }
}

fn takes_the_store_away(scenario: &gherkin::Scenario) -> bool {
    scenario
        .tags
        .iter()
        .any(|tag| DISTURBING_TAGS.contains(&tag.as_str()))
}

/// Why Docker cannot be used, or `None` when its socket answers.
pub async fn docker_unreachable() -> Option<String> {
    let socket = match std::env::var("DOCKER_HOST") {
        Ok(host) => match host.strip_prefix("unix://") {
            Some(path) => path.to_owned(),
            // A TCP or SSH engine: let the first container start tell.
            None => return None,
        },
        Err(_) => "/var/run/docker.sock".to_owned(),
    };
    match tokio::net::UnixStream::connect(Path::new(&socket)).await {
        Ok(_) => None,
        Err(err) => Some(format!("{socket}: {err}")),
    }
}

/// Polls Redis at `redis_url` with PING until it answers, for at most `wait`; the
/// error names `what` was awaited.
pub async fn wait_until_redis_answers(
    redis_url: &str,
    wait: std::time::Duration,
    what: &str,
) -> Result<()> {
    use std::time::{Duration, Instant};
    let client = redis::Client::open(redis_url)?;
    let deadline = Instant::now() + wait;
    loop {
        let answer = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(1), answer).await {
            Ok(Ok(_)) => return Ok(()),
            _ if Instant::now() > deadline => bail!("{what}: no answer within {wait:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}
