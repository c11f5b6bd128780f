//! E2e level: the deployed service over real HTTP, its Redis read and seeded directly.
//!
//! Configured by environment: `APP_URL` (the web service), `REDIS_URL` (its Redis)
//! and, optionally, `STORE_DOWN_APP_URL`: a second instance of the service whose
//! Redis is unreachable. "The store is down" sends the visitor there, so the
//! apology is checked against a real failing service without a Docker socket.
//! "The store stops answering" asks the deployed Redis to pause every client
//! (`CLIENT PAUSE <ms> ALL`, Redis 6.2 or newer): it accepts connections but
//! answers nothing until the pause ends by itself.
//! `PROMETHEUS_URL`, when set, is the Prometheus that scrapes every instance: the
//! operator's figures are read there.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::future::{BoxFuture, FutureExt};

use crate::{
    driver::{App, BaseUrl, Counter, Driver, Outages},
    levels::integration::{RedisCounter, http_client},
    metrics::Prometheus,
};

/// The scrape job of the service's instances in deploy/prometheus/prometheus.yml.
const SCRAPE_JOB: &str = "page-tracker";

/// Where the deployed stack is.
pub struct Stack {
    app_url: String,
    redis_url: String,
    store_down_app_url: Option<String>,
    prometheus_url: Option<String>,
    /// The count before the run, put back afterwards: the run must not lose real views.
    views_before: Option<i64>,
    counter: RedisCounter,
    /// When the pause a scenario asked the deployed Redis for ends.
    paused_until: PausedUntil,
}

type PausedUntil = Arc<Mutex<Option<Instant>>>;

/// How long "the store stops answering" lasts: longer than any visit waits for it.
const FREEZE: Duration = Duration::from_secs(3);
/// How long Redis may take to answer again after its pause has ended.
const RESUME_WAIT: Duration = Duration::from_secs(30);

impl Stack {
    pub async fn from_env() -> Result<Self> {
        let app_url = required("APP_URL")?;
        let redis_url = required("REDIS_URL")?;
        let store_down_app_url = std::env::var("STORE_DOWN_APP_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| url.trim_end_matches('/').to_owned());
        let prometheus_url = std::env::var("PROMETHEUS_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| url.trim_end_matches('/').to_owned());
        let counter = RedisCounter::connect(&redis_url, None).await?;
        let views_before = counter.get_raw().await?;
        Ok(Self {
            app_url: app_url.trim_end_matches('/').to_owned(),
            redis_url,
            store_down_app_url,
            prometheus_url,
            views_before,
            counter,
            paused_until: PausedUntil::default(),
        })
    }

    pub async fn driver(&self) -> Result<Driver> {
        // A pause left by the previous scenario would hold this one's first command.
        wait_for_pause_end(&self.redis_url, &self.paused_until).await?;
        let base_url = BaseUrl::new(self.app_url.clone());
        let outages = StackOutages {
            base_url: base_url.clone(),
            store_down_app_url: self.store_down_app_url.clone(),
            redis_url: self.redis_url.clone(),
            paused_until: Arc::clone(&self.paused_until),
        };
        Ok(Driver {
            app: App::Http {
                client: http_client()?,
                base_url,
            },
            counter: Box::new(RedisCounter::connect(&self.redis_url, None).await?),
            outages: Some(Box::new(outages)),
            failover: None,
            server: None,
            // The compose file leaves the service's Redis timeouts at their defaults.
            store_wait: Duration::from_secs(1),
            metrics: match &self.prometheus_url {
                Some(url) => Some(Box::new(Prometheus {
                    client: http_client()?,
                    url: url.clone(),
                    job: SCRAPE_JOB.to_owned(),
                })),
                None => None,
            },
        })
    }

    /// Why a scenario needs more than this level can do.
    pub fn cannot_run(&self, tags: &[String]) -> Option<&'static str> {
        let has = |tag: &str| tags.iter().any(|t| t == tag);
        if has("shutdown") {
            Some("the test-service cannot stop the deployed service")
        } else if has("sentinel") {
            Some("the stack under test runs one Redis, without replicas or sentinels")
        } else if has("acl") {
            Some("the test-service does not hold the service's Redis password")
        } else if has("own-store") {
            Some(
                "the deployed Redis is shared: it cannot be slowed down, and its command statistics cover its whole life",
            )
        } else if has("connections") {
            Some("the deployed Redis also receives its health checks' connections")
        } else if has("recovery") && !has("hang") {
            // A paused Redis comes back by itself; a stopped one needs the Docker engine.
            Some("the test-service cannot stop and restart the deployed Redis (no Docker socket)")
        } else if has("outage") && !has("hang") && self.store_down_app_url.is_none() {
            Some("no STORE_DOWN_APP_URL is set")
        } else if has("metrics") && self.prometheus_url.is_none() {
            Some("no PROMETHEUS_URL is set: the metrics are read through Prometheus")
        } else {
            None
        }
    }

    /// Puts back the count the stack had before the run.
    pub async fn restore_views(&self) {
        if let Err(err) = wait_for_pause_end(&self.redis_url, &self.paused_until).await {
            eprintln!("bdd: {err:#}");
        }
        let result = match self.views_before {
            Some(views) => self.counter.set(views).await,
            None => self.counter.delete().await,
        };
        if let Err(err) = result {
            eprintln!("bdd: could not restore the page-view count: {err:#}");
        }
    }
}

fn required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => bail!("{name} is not set; the e2e level needs APP_URL and REDIS_URL"),
    }
}

/// Outages of the deployed stack: "down" sends visitors to the instance whose Redis
/// is unreachable; "stops answering" and "slow" pause the deployed Redis' clients.
struct StackOutages {
    base_url: BaseUrl,
    store_down_app_url: Option<String>,
    redis_url: String,
    paused_until: PausedUntil,
}

impl StackOutages {
    /// Asks Redis to hold every client's commands for `pause`; returns at once.
    async fn pause(&self, pause: Duration) -> Result<()> {
        let mut connection = redis::Client::open(self.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await
            .context("connecting to the deployed Redis")?;
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(pause.as_millis().to_string())
            .arg("ALL")
            .exec_async(&mut connection)
            .await
            .context("CLIENT PAUSE (needs Redis 6.2 or newer)")?;
        // Measured after Redis' answer, so no earlier than the pause really ends.
        *self
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + pause);
        Ok(())
    }
}

impl Outages for StackOutages {
    fn take_down(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let url = self
                .store_down_app_url
                .as_ref()
                .context("no STORE_DOWN_APP_URL is set")?;
            self.base_url.set(url.clone());
            Ok(())
        }
        .boxed()
    }

    fn freeze(&self) -> BoxFuture<'_, Result<()>> {
        self.pause(FREEZE).boxed()
    }

    fn restore(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let paused = self
                .paused_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some();
            if !paused {
                bail!("the e2e level can bring back a paused store only");
            }
            // CLIENT UNPAUSE would be held like every other command: wait the pause out.
            wait_for_pause_end(&self.redis_url, &self.paused_until).await
        }
        .boxed()
    }

    fn stall(&self, pause: Duration) -> BoxFuture<'_, Result<()>> {
        self.pause(pause).boxed()
    }
}

/// Waits until a pause asked for has ended and Redis answers PING again.
async fn wait_for_pause_end(redis_url: &str, paused_until: &PausedUntil) -> Result<()> {
    let until = *paused_until.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(until) = until else {
        return Ok(());
    };
    tokio::time::sleep_until(until.into()).await;
    super::wait_until_redis_answers(redis_url, RESUME_WAIT, "the deployed Redis after its pause")
        .await?;
    *paused_until.lock().unwrap_or_else(PoisonError::into_inner) = None;
    Ok(())
}
