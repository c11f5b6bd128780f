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
//!
//! `REDIS_SENTINELS` (and `REDIS_SENTINEL_PASSWORD`), when set, say the stack keeps
//! the count behind Sentinel (the `ha` stack): the run then checks its failover
//! only. The count is read from whichever node the sentinels name, with the user
//! and password of `REDIS_URL`; "the primary stops answering" pauses it with
//! `CLIENT PAUSE` for longer than the sentinels wait before promoting a replica.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::future::{BoxFuture, FutureExt};

use crate::{
    driver::{App, BaseUrl, Counter, Driver, Failover, Outages},
    levels::{
        integration::{RedisCounter, http_client},
        sentinel::SentinelView,
    },
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
    /// In the `ha` stack: the sentinels, to find the primary.
    sentinels: Option<Arc<SentinelView>>,
}

type PausedUntil = Arc<Mutex<Option<Instant>>>;

/// How long "the store stops answering" lasts: longer than any visit waits for it.
const FREEZE: Duration = Duration::from_secs(3);
/// How long Redis may take to answer again after its pause has ended.
const RESUME_WAIT: Duration = Duration::from_secs(30);
/// How long "the primary stops answering" lasts in the `ha` stack: well beyond the
/// sentinels' down-after time plus a failover.
const PRIMARY_FREEZE: Duration = Duration::from_secs(15);

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
        let sentinels = match std::env::var("REDIS_SENTINELS") {
            Ok(list) if !list.trim().is_empty() => Some(Arc::new(SentinelView {
                addresses: list
                    .split(',')
                    .map(|address| address.trim().to_owned())
                    .collect(),
                password: std::env::var("REDIS_SENTINEL_PASSWORD")
                    .ok()
                    .filter(|password| !password.is_empty()),
                // The user and password of REDIS_URL, for whichever node is primary.
                node_url: match redis_url.rsplit_once('@') {
                    Some((credentials, _host)) => format!("{credentials}@"),
                    None => "redis://".to_owned(),
                },
                fixed_primary: None,
            })),
            _ => None,
        };
        Ok(Self {
            app_url: app_url.trim_end_matches('/').to_owned(),
            redis_url,
            store_down_app_url,
            prometheus_url,
            views_before,
            counter,
            paused_until: PausedUntil::default(),
            sentinels,
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
            counter: match &self.sentinels {
                Some(view) => Box::new(Arc::clone(view)),
                None => Box::new(RedisCounter::connect(&self.redis_url, None).await?),
            },
            outages: Some(Box::new(outages)),
            failover: self.sentinels.as_ref().map(|view| {
                Box::new(StackFailover {
                    view: Arc::clone(view),
                    lost: Mutex::default(),
                    paused_until: Arc::clone(&self.paused_until),
                }) as Box<dyn Failover>
            }),
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
        if self.sentinels.is_some() {
            return if !has("sentinel") {
                Some(
                    "this run checks the ha stack's failover; the single-Redis stack's run checks the rest",
                )
            } else if has("crash") {
                Some("the test-service cannot kill a Redis container (no Docker socket)")
            } else {
                None
            };
        }
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
            Some(
                "the deployed Redis also receives its health checks' connections, and every copy of the service connects to it",
            )
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
        let result = match (&self.sentinels, self.views_before) {
            // After a failover the first primary is a replica: write to the current one.
            (Some(view), Some(views)) => view.set(views).await,
            (Some(view), None) => view.delete().await,
            (None, Some(views)) => self.counter.set(views).await,
            (None, None) => self.counter.delete().await,
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
    /// Asks the deployed Redis to hold every client's commands for `pause`; returns at once.
    async fn pause(&self, pause: Duration) -> Result<()> {
        let mut connection = redis::Client::open(self.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await
            .context("connecting to the deployed Redis")?;
        pause_clients(&mut connection, pause, &self.paused_until).await
    }
}

/// Sends `CLIENT PAUSE pause ALL` on `connection` and records when the pause ends.
async fn pause_clients(
    connection: &mut redis::aio::MultiplexedConnection,
    pause: Duration,
    paused_until: &PausedUntil,
) -> Result<()> {
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause.as_millis().to_string())
        .arg("ALL")
        .exec_async(connection)
        .await
        .context("CLIENT PAUSE (needs Redis 6.2 or newer)")?;
    // Measured after Redis' answer, so no earlier than the pause really ends.
    *paused_until.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + pause);
    Ok(())
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

/// The `ha` stack's failover, caused by pausing its primary's clients.
struct StackFailover {
    view: Arc<SentinelView>,
    /// The primary that was paused.
    lost: Mutex<Option<String>>,
    paused_until: PausedUntil,
}

impl StackFailover {
    fn lost(&self) -> Result<String> {
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .context("no primary has been paused yet")
    }
}

impl Failover for StackFailover {
    fn sync_replicas(&self) -> BoxFuture<'_, Result<()>> {
        self.view.sync_replicas().boxed()
    }

    fn kill_primary(&self) -> BoxFuture<'_, Result<()>> {
        async { bail!("the test-service cannot kill a Redis container") }.boxed()
    }

    fn freeze_primary(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let host = self.view.primary_host().await?;
            let mut primary = self.view.node(&host).await?;
            pause_clients(&mut primary, PRIMARY_FREEZE, &self.paused_until).await?;
            *self.lost.lock().unwrap_or_else(PoisonError::into_inner) = Some(host);
            Ok(())
        }
        .boxed()
    }

    fn await_new_primary(&self) -> BoxFuture<'_, Result<()>> {
        async move { self.view.await_new_primary(&self.lost()?).await }.boxed()
    }

    fn freeze_first_sentinel(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let address = self
                .view
                .addresses
                .first()
                .context("no sentinel is configured")?;
            let mut sentinel = self.view.answering(address).await?;
            pause_clients(&mut sentinel, PRIMARY_FREEZE, &self.paused_until).await
        }
        .boxed()
    }

    fn thaw_old_primary(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            // CLIENT UNPAUSE would be held like every other command: wait the pause out.
            let until = *self
                .paused_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(until) = until {
                tokio::time::sleep_until(until.into()).await;
            }
            Ok(())
        }
        .boxed()
    }

    fn old_primary_follows(&self, views: i64) -> BoxFuture<'_, Result<()>> {
        async move { self.view.await_follower(&self.lost()?, views).await }.boxed()
    }

    fn as_service_user(&self, _command: &str) -> BoxFuture<'_, Result<Option<String>>> {
        async { bail!("the test-service does not hold the service's Redis password") }.boxed()
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
