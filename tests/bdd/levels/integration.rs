//! Integration level: the real application on a loopback port, talking to a real
//! Redis started with testcontainers.
//!
//! Ordinary scenarios share one Redis, each with a database of its own, so they
//! run side by side. Outage scenarios stop, kill or pause Redis, so each gets a
//! Redis of its own, on a fixed host port that survives a restart.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use futures::future::{BoxFuture, FutureExt};
use page_tracker::{
    app::Application,
    config::{Config, HealthcheckPath, LogFormat, RedisTarget},
    server::Limits,
    store::{PAGE_VIEWS_KEY, RedisTimeouts},
};
use redis::{AsyncTypedCommands, aio::MultiplexedConnection};
use testcontainers_modules::{
    redis::{REDIS_PORT, Redis},
    testcontainers::{
        ContainerAsync, ContainerRequest, ImageExt, core::IntoContainerPort, runners::AsyncRunner,
    },
};
use tokio::sync::oneshot;

use crate::{
    driver::{App, BaseUrl, Counter, Driver, Failover, Outages, Stoppable},
    metrics::Listener,
    service_process::ServiceProcess,
};

/// The Redis image every level and the compose stack use (see scripts/build-base-images.sh).
pub const REDIS_TAG: &str = "7.0.15-bookworm";
/// Redis' default number of databases: one per concurrent ordinary scenario.
const DATABASES: i64 = 16;
/// The service's own defaults, so the level exercises what production runs.
const TIMEOUTS: RedisTimeouts = RedisTimeouts {
    connect: Duration::from_millis(500),
    response: Duration::from_millis(500),
};
/// How long a stopped server keeps serving while it says it is draining: long
/// enough for a scenario to watch, short enough to cost little.
const DRAIN_DELAY: Duration = Duration::from_millis(1500);
/// How long a restarted Redis may take to answer again.
const RESTART_WAIT: Duration = Duration::from_secs(30);
/// Marks our containers, so that leftovers of a crashed run can be found.
pub const CONTAINER_LABEL: &str = "page-tracker.bdd";

/// The Redis shared by ordinary scenarios, and which of its databases are free.
pub struct SharedRedis {
    container: Mutex<Option<ContainerAsync<Redis>>>,
    url: String,
    free_databases: Arc<Mutex<Vec<i64>>>,
}

impl SharedRedis {
    pub async fn start() -> Result<Self> {
        let container = redis_image().start().await.context(START_HINT)?;
        let port = container.get_host_port_ipv4(REDIS_PORT).await?;
        Ok(Self {
            container: Mutex::new(Some(container)),
            url: format!("redis://127.0.0.1:{port}"),
            free_databases: Arc::new(Mutex::new((0..DATABASES).rev().collect())),
        })
    }

    /// A driver on a database of its own, emptied first.
    pub async fn driver(&self) -> Result<Driver> {
        let database = self
            .free_databases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .context("every Redis database is in use; run fewer scenarios at once")?;
        let lease = DatabaseLease {
            database,
            free: Arc::clone(&self.free_databases),
        };
        let url = format!("{}/{database}", self.url);
        let counter = RedisCounter::connect(&url, Some(lease)).await?;
        redis::cmd("FLUSHDB")
            .exec_async(&mut counter.connection.clone())
            .await
            .context("emptying the scenario's database")?;
        driver(RedisTarget::parse(&url)?, Box::new(counter), None, None).await
    }

    /// Removes the container; later calls do nothing.
    pub async fn stop(&self) {
        let container = self
            .container
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(container) = container
            && let Err(err) = container.rm().await
        {
            eprintln!("bdd: could not remove the shared Redis container: {err}");
        }
    }
}

/// A driver with a Redis of its own that the scenario may stop, kill or pause.
pub async fn driver_with_own_redis() -> Result<Driver> {
    let (url, counter, outages) = own_redis().await?;
    driver(RedisTarget::parse(&url)?, counter, Some(outages), None).await
}

/// A driver with a Redis of its own and the service's real binary, started as a
/// process of its own and stopped with SIGTERM, as an orchestrator stops it.
pub async fn driver_with_own_redis_and_process() -> Result<Driver> {
    let (url, counter, outages) = own_redis().await?;
    let drain_delay = format!("{}ms", DRAIN_DELAY.as_millis());
    let service = ServiceProcess::start(&url, &["--drain-delay", &drain_delay]).await?;
    Ok(Driver {
        app: App::Http {
            client: http_client()?,
            base_url: BaseUrl::new(service.base_url()),
        },
        counter,
        outages: Some(outages),
        failover: None,
        server: Some(stoppable(service)),
        store_wait: TIMEOUTS.connect + TIMEOUTS.response,
        // Stopping scenarios read no figures; the in-process driver serves those that do.
        metrics: None,
    })
}

/// Stopping `service` sends it SIGTERM; it has stopped well when it exits with status 0.
fn stoppable(mut service: ServiceProcess) -> Stoppable {
    let (stop, stop_requested) = oneshot::channel::<()>();
    let stopped = tokio::spawn(async move {
        // Also resolves when the sender is dropped with the driver.
        let _ = stop_requested.await;
        service.signal("TERM").map_err(io::Error::other)?;
        let status = service.wait().await.map_err(io::Error::other)?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "the service exited with {status}; its log:\n{}",
                service.log()
            )))
        }
    });
    Stoppable { stop, stopped }
}

/// A Redis container of its own: its URL, a counter on it, and its outages.
async fn own_redis() -> Result<(String, Box<dyn Counter>, Box<dyn Outages>)> {
    let port = free_port()?;
    let container = redis_image()
        .with_mapped_port(port, REDIS_PORT.tcp())
        // Every write reaches the disk before it is acknowledged, so a killed
        // Redis comes back with the count it had.
        .with_cmd([
            "redis-server",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            // Lets a scenario stall the server with DEBUG SLEEP.
            "--enable-debug-command",
            "yes",
        ])
        .start()
        .await
        .context(START_HINT)?;
    let url = format!("redis://127.0.0.1:{port}");
    let counter = RedisCounter::connect(&url, None).await?;
    let outages = ContainerOutages {
        container,
        url: url.clone(),
        state: Mutex::new(Availability::Up),
        own_connections: AtomicU64::new(0),
    };
    Ok((url, Box::new(counter), Box::new(outages)))
}

const START_HINT: &str = "starting a Redis container (without registry access, build the image first \
     with scripts/build-base-images.sh)";

fn redis_image() -> ContainerRequest<Redis> {
    Redis::default()
        .with_tag(REDIS_TAG)
        .with_label(CONTAINER_LABEL, "integration")
        .with_startup_timeout(Duration::from_secs(60))
}

/// The application as `main` builds it, served on a free loopback port until the driver is dropped.
pub(super) async fn driver(
    redis: RedisTarget,
    counter: Box<dyn Counter>,
    outages: Option<Box<dyn Outages>>,
    failover: Option<Box<dyn Failover>>,
) -> Result<Driver> {
    let config = Config {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        redis,
        redis_timeouts: TIMEOUTS,
        request_timeout: Duration::from_secs(10),
        limits: Limits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            drain_delay: DRAIN_DELAY,
        },
        metrics_bind: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        log_format: LogFormat::Text,
        healthcheck: false,
        healthcheck_path: HealthcheckPath::Health,
    };
    let app = Application::build(&config).await?;
    let base_url = format!("http://{}", app.local_addr()?);
    let metrics_addr = app
        .metrics_addr()
        .context("the application opened no metrics listener")?;
    let (stop, stop_requested) = oneshot::channel::<()>();
    let stopped = tokio::spawn(app.run_until(async move {
        // Also resolves when the sender is dropped with the driver.
        let _ = stop_requested.await;
    }));
    Ok(Driver {
        app: App::Http {
            client: http_client()?,
            base_url: BaseUrl::new(base_url),
        },
        counter,
        outages,
        failover,
        server: Some(Stoppable { stop, stopped }),
        store_wait: TIMEOUTS.connect + TIMEOUTS.response,
        metrics: Some(Box::new(Listener {
            client: http_client()?,
            url: format!("http://{metrics_addr}/metrics"),
            // A real body for `promtool check metrics` (scripts/gate.sh).
            keep_at: Some(crate::report_dir().join("integration").join("metrics.prom")),
        })),
    })
}

/// A client that talks straight to the address given, whatever proxy the environment names.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// A port nobody listens on right now, for a container that must keep its port across restarts.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Returns its database to the pool when the scenario ends.
pub struct DatabaseLease {
    database: i64,
    free: Arc<Mutex<Vec<i64>>>,
}

impl Drop for DatabaseLease {
    fn drop(&mut self) {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.database);
    }
}

/// Reads and writes the counter with a connection of its own.
pub struct RedisCounter {
    connection: MultiplexedConnection,
    _lease: Option<DatabaseLease>,
}

impl RedisCounter {
    pub async fn connect(url: &str, lease: Option<DatabaseLease>) -> Result<Self> {
        let connection = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        Ok(Self {
            connection,
            _lease: lease,
        })
    }
}

impl RedisCounter {
    /// The stored value as it is, `None` when the key does not exist.
    pub async fn get_raw(&self) -> Result<Option<i64>> {
        let views: Option<String> = self.connection.clone().get(PAGE_VIEWS_KEY).await?;
        views
            .map(|views| {
                views
                    .parse()
                    .with_context(|| format!("{PAGE_VIEWS_KEY} holds {views:?}, not a number"))
            })
            .transpose()
    }

    pub async fn delete(&self) -> Result<()> {
        self.connection.clone().del(PAGE_VIEWS_KEY).await?;
        Ok(())
    }
}

impl Counter for RedisCounter {
    fn set(&self, views: i64) -> BoxFuture<'_, Result<()>> {
        let mut connection = self.connection.clone();
        async move { Ok(connection.set(PAGE_VIEWS_KEY, views).await?) }.boxed()
    }

    fn get(&self) -> BoxFuture<'_, Result<i64>> {
        async move { Ok(self.get_raw().await?.unwrap_or(0)) }.boxed()
    }

    fn set_text(&self, text: &str) -> BoxFuture<'_, Result<()>> {
        let mut connection = self.connection.clone();
        let text = text.to_owned();
        async move { Ok(connection.set(PAGE_VIEWS_KEY, text).await?) }.boxed()
    }
    fn counting_commands(&self) -> BoxFuture<'_, Result<u64>> {
        async move {
            // Server-wide figures: meaningful where the scenario has the Redis to itself.
            let stats: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut self.connection.clone())
                .await?;
            Ok(counting_calls(&stats))
        }
        .boxed()
    }
}

/// Calls of INCR and INCRBY in the text of `INFO commandstats`.
pub(super) fn counting_calls(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|line| {
            let (command, figures) = line.split_once(':')?;
            matches!(command, "cmdstat_incr" | "cmdstat_incrby").then_some(figures)
        })
        .filter_map(|figures| figures.split(',').find_map(|f| f.strip_prefix("calls=")))
        .filter_map(|calls| calls.parse::<u64>().ok())
        .sum()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Availability {
    Up,
    Killed,
    Paused,
}

/// Outages made for real: the container is killed or paused.
struct ContainerOutages {
    container: ContainerAsync<Redis>,
    url: String,
    state: Mutex<Availability>,
    /// Connections opened by `connections_received` itself.
    own_connections: AtomicU64,
}

impl ContainerOutages {
    fn set_state(&self, state: Availability) -> Availability {
        std::mem::replace(
            &mut self.state.lock().unwrap_or_else(PoisonError::into_inner),
            state,
        )
    }

    /// Sends `REPLICAOF host port` on a connection of its own (counted as such).
    async fn replicate(&self, host: &str, port: &str) -> Result<()> {
        let mut connection = redis::Client::open(self.url.as_str())?
            .get_multiplexed_async_connection()
            .await?;
        self.own_connections.fetch_add(1, Ordering::SeqCst);
        redis::cmd("REPLICAOF")
            .arg(host)
            .arg(port)
            .exec_async(&mut connection)
            .await?;
        Ok(())
    }

    /// Waits until Redis answers PING again.
    async fn wait_until_answering(&self) -> Result<()> {
        super::wait_until_redis_answers(&self.url, RESTART_WAIT, "Redis coming back").await
    }
}

impl Outages for ContainerOutages {
    fn take_down(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            // No grace period: Redis is killed as a crash would.
            self.container.stop_with_timeout(Some(0)).await?;
            self.set_state(Availability::Killed);
            Ok(())
        }
        .boxed()
    }

    fn freeze(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.container.pause().await?;
            self.set_state(Availability::Paused);
            Ok(())
        }
        .boxed()
    }

    fn stall(&self, pause: Duration) -> BoxFuture<'_, Result<()>> {
        async move {
            // DEBUG SLEEP blocks the whole server, as a long-running command would.
            let mut connection = redis::Client::open(self.url.as_str())?
                .get_multiplexed_async_connection()
                .await?;
            let seconds = format!("{:.3}", pause.as_secs_f64());
            let sleeping = tokio::spawn(async move {
                redis::cmd("DEBUG")
                    .arg("SLEEP")
                    .arg(seconds)
                    .exec_async(&mut connection)
                    .await
            });
            // A refused DEBUG answers at once; one that is sleeping does not.
            tokio::time::sleep(Duration::from_millis(20)).await;
            if sleeping.is_finished() {
                if let Err(err) = sleeping.await? {
                    bail!("Redis refused DEBUG SLEEP: {err}");
                }
                bail!("Redis did not stall");
            }
            Ok(())
        }
        .boxed()
    }

    fn demote(&self) -> BoxFuture<'_, Result<()>> {
        // Nothing listens there: the replica keeps its data and refuses writes.
        self.replicate("127.0.0.1", "1").boxed()
    }

    fn promote(&self) -> BoxFuture<'_, Result<()>> {
        self.replicate("NO", "ONE").boxed()
    }

    fn connections_received(&self) -> BoxFuture<'_, Result<u64>> {
        async move {
            let mut connection = redis::Client::open(self.url.as_str())?
                .get_multiplexed_async_connection()
                .await?;
            let stats: String = redis::cmd("INFO")
                .arg("stats")
                .query_async(&mut connection)
                .await?;
            let total: u64 = stats
                .lines()
                .find_map(|line| line.strip_prefix("total_connections_received:"))
                .context("INFO stats has no total_connections_received")?
                .trim()
                .parse()?;
            // Every call opens one connection of its own: count only the others.
            let own = self.own_connections.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(total - own)
        }
        .boxed()
    }

    fn restore(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            match self.set_state(Availability::Up) {
                Availability::Up => {}
                Availability::Killed => self.container.start().await?,
                Availability::Paused => self.container.unpause().await?,
            }
            self.wait_until_answering().await
        }
        .boxed()
    }
}
