//! Integration level in Sentinel mode: a primary and a replica watched by three
//! sentinels, on a Docker network of the scenario's own. The service asks the
//! sentinels for the primary, and every data node has the deployment's Redis users
//! (deploy/redis/users.acl), so the service counts as its own least-privileged user.
//!
//! The test process reaches the containers at their addresses on that network, as
//! the sentinels announce them (Docker on Linux routes the host to its networks).

use std::{
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::future::{BoxFuture, FutureExt};
use page_tracker::{config::RedisTarget, store::PAGE_VIEWS_KEY};
use redis::aio::MultiplexedConnection;
use testcontainers_modules::testcontainers::{
    ContainerAsync, GenericImage, ImageExt, core::WaitFor, runners::AsyncRunner,
};

use super::integration::{CONTAINER_LABEL, REDIS_TAG, counting_calls, driver};
use crate::driver::{Counter, Driver, Failover};

/// The primary's name, as the sentinels monitor it and the service asks for it.
const SERVICE: &str = "page-tracker";
const REDIS_PORT: u16 = 6379;
const SENTINEL_PORT: u16 = 26379;
/// Three sentinels, two of which must agree that the primary is down.
const SENTINELS: usize = 3;
const QUORUM: usize = 2;
/// How long the primary may be silent before the sentinels call it down: short, so
/// that scenarios run quickly; deployments choose their own (README).
const DOWN_AFTER_MS: u64 = 1000;
const FAILOVER_TIMEOUT_MS: u64 = 10_000;
/// Bound on every wait for the sentinels or the replicas.
const TOPOLOGY_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);
/// How long a sentinel may take to answer PING before the harness takes it as frozen.
const SENTINEL_ANSWER: Duration = Duration::from_secs(1);

/// The Redis users of every data node, without their passwords: the same file the
/// deployments use.
const USERS: &str = include_str!("../../../deploy/redis/users.acl");

/// One password per user, made up for this scenario.
struct Passwords {
    service: String,
    test: String,
    exporter: String,
    replication: String,
    sentinel: String,
    admin: String,
    /// The sentinels' own.
    sentinels: String,
}

impl Passwords {
    fn new() -> Self {
        let password = || uuid::Uuid::new_v4().simple().to_string();
        Self {
            service: password(),
            test: password(),
            exporter: password(),
            replication: password(),
            sentinel: password(),
            admin: password(),
            sentinels: password(),
        }
    }

    /// `users.acl` with each user's password added.
    fn users(&self) -> Result<String> {
        USERS
            .lines()
            .filter(|line| line.starts_with("user "))
            .map(|line| {
                let name = line.split(' ').nth(1).unwrap_or_default();
                let password = match name {
                    "page-tracker" => &self.service,
                    "page-tracker-test" => &self.test,
                    "exporter" => &self.exporter,
                    "replication" => &self.replication,
                    "sentinel" => &self.sentinel,
                    "admin" => &self.admin,
                    "default" => return Ok(format!("{line}\n")),
                    other => bail!("deploy/redis/users.acl names an unknown user {other:?}"),
                };
                Ok(format!("{line} >{password}\n"))
            })
            .collect()
    }
}

/// The containers of one scenario and their network; removed with it.
struct Topology {
    /// The first primary, then its replicas.
    nodes: Vec<Node>,
    sentinels: Vec<ContainerAsync<GenericImage>>,
    /// The harness' view of the sentinels, signing in to the data nodes as `admin`.
    view: Arc<SentinelView>,
    passwords: Passwords,
    /// The node a step has killed or frozen.
    lost: Mutex<Option<String>>,
    /// Last, so that it is removed after the containers on it.
    _network: Network,
}

/// A Docker network made for one scenario. Made here rather than by testcontainers,
/// whose shared bookkeeping of networks deadlocks when scenarios run side by side.
struct Network(String);

impl Network {
    async fn create() -> Result<Self> {
        let name = format!("page-tracker-bdd-{}", uuid::Uuid::new_v4().simple());
        let label = format!("{CONTAINER_LABEL}=integration-sentinel");
        let output = tokio::process::Command::new("docker")
            .args(["network", "create", "--label", &label, &name])
            .output()
            .await
            .context("running docker network create")?;
        if !output.status.success() {
            bail!(
                "docker network create failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(Self(name))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // The containers are gone by now (fields drop in order); a failure is only reported.
        let removed = std::process::Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
        if !removed.is_ok_and(|output| output.status.success()) {
            eprintln!("bdd: could not remove the Docker network {}", self.0);
        }
    }
}

struct Node {
    container: ContainerAsync<GenericImage>,
    ip: IpAddr,
}

/// A driver whose store is one Redis with the deployment's users, the service
/// signing in as its own.
pub async fn driver_with_users() -> Result<Driver> {
    let topology = Arc::new(Topology::start(0).await?);
    let url = format!(
        "redis://page-tracker:{}@{}:{REDIS_PORT}",
        topology.passwords.service, topology.nodes[0].ip
    );
    driver(
        RedisTarget::parse(&url)?,
        Box::new(Arc::clone(&topology.view)),
        None,
        Some(Box::new(topology)),
    )
    .await
}

/// A driver whose store is a primary with a replica behind three sentinels.
pub async fn driver_with_sentinels() -> Result<Driver> {
    let topology = Arc::new(Topology::start(1).await?);
    // In Sentinel mode the URL gives the user and password; the sentinels give the host.
    let url = format!(
        "redis://page-tracker:{}@primary",
        topology.passwords.service
    );
    let target = RedisTarget::parse(&url)?.with_sentinels(
        Some(&topology.view.addresses.join(",")),
        SERVICE,
        Some(topology.passwords.sentinels.clone()),
    )?;
    driver(
        target,
        Box::new(Arc::clone(&topology.view)),
        None,
        Some(Box::new(topology)),
    )
    .await
}

impl Topology {
    /// A primary with `replicas` replicas, watched by sentinels if it has any.
    async fn start(replicas: usize) -> Result<Self> {
        let network = Network::create().await?;
        let passwords = Passwords::new();
        let users = passwords.users()?;
        let primary = start_node(&network.0, &users, &passwords, None).await?;
        let primary_ip = primary.ip;
        let mut nodes = vec![primary];
        for _ in 0..replicas {
            nodes.push(start_node(&network.0, &users, &passwords, Some(primary_ip)).await?);
        }
        let watched = replicas > 0;
        let mut sentinels = Vec::with_capacity(SENTINELS);
        let mut sentinel_addresses = Vec::with_capacity(SENTINELS);
        for _ in 0..if watched { SENTINELS } else { 0 } {
            let sentinel = start_sentinel(&network.0, &passwords, primary_ip).await?;
            sentinel_addresses.push(format!(
                "{}:{SENTINEL_PORT}",
                sentinel.get_bridge_ip_address().await?
            ));
            sentinels.push(sentinel);
        }
        let view = Arc::new(SentinelView {
            addresses: sentinel_addresses,
            password: Some(passwords.sentinels.clone()),
            node_url: format!("redis://admin:{}@", passwords.admin),
            fixed_primary: (!watched).then(|| primary_ip.to_string()),
        });
        let topology = Self {
            nodes,
            sentinels,
            view,
            passwords,
            lost: Mutex::new(None),
            _network: network,
        };
        if watched {
            topology.view.await_watching(replicas).await?;
        }
        Ok(topology)
    }

    /// The node at `host`, which the sentinels named as primary at some point.
    fn container_at(&self, host: &str) -> Result<&ContainerAsync<GenericImage>> {
        self.nodes
            .iter()
            .find(|node| node.ip.to_string() == host)
            .map(|node| &node.container)
            .with_context(|| format!("no data node has the address {host}"))
    }

    /// Marks the current primary as lost and returns its container.
    async fn lose_primary(&self) -> Result<&ContainerAsync<GenericImage>> {
        let host = self.view.primary_host().await?;
        let container = self.container_at(&host)?;
        *self.lost.lock().unwrap_or_else(PoisonError::into_inner) = Some(host);
        Ok(container)
    }

    fn lost(&self) -> Result<String> {
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .context("no primary has been lost yet")
    }
}

/// The sentinels as the harness sees them: which node is primary, and the count on it.
pub struct SentinelView {
    /// `host:port` of each sentinel.
    pub addresses: Vec<String>,
    /// The sentinels' own password.
    pub password: Option<String>,
    /// `redis://user:password@`, to which a data node's `host:port` is added.
    pub node_url: String,
    /// Without sentinels: the one node.
    pub fixed_primary: Option<String>,
}

impl SentinelView {
    /// Waits until a sentinel knows the replicas and the other sentinels, so that a
    /// failover can happen.
    async fn await_watching(&self, replicas: usize) -> Result<()> {
        let (replicas, others) = (replicas.to_string(), (SENTINELS - 1).to_string());
        let (replicas, others) = (replicas.as_str(), others.as_str());
        poll(
            "the sentinels to know each other and the replicas",
            || async move {
                let fields: Vec<String> = redis::cmd("SENTINEL")
                    .arg("MASTER")
                    .arg(SERVICE)
                    .query_async(&mut self.sentinel().await?)
                    .await?;
                let field = |name: &str| {
                    fields
                        .iter()
                        .position(|field| field == name)
                        .and_then(|at| fields.get(at + 1))
                        .map(String::as_str)
                };
                let (known, sentinels) = (field("num-slaves"), field("num-other-sentinels"));
                Ok((known != Some(replicas) || sentinels != Some(others))
                    .then(|| format!("replicas {known:?}, other sentinels {sentinels:?}")))
            },
        )
        .await
    }

    fn sentinel_url(&self, address: &str) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@{address}"),
            None => format!("redis://{address}"),
        }
    }

    /// A connection to the first sentinel that answers.
    async fn sentinel(&self) -> Result<MultiplexedConnection> {
        let mut last = None;
        for address in &self.addresses {
            match self.answering(address).await {
                Ok(connection) => return Ok(connection),
                Err(err) => last = Some(err),
            }
        }
        Err(last.context("no sentinel configured")?)
    }

    /// A connection to the sentinel at `address`, if it answers at once: a scenario
    /// may have frozen it.
    pub async fn answering(&self, address: &str) -> Result<MultiplexedConnection> {
        tokio::time::timeout(SENTINEL_ANSWER, async {
            let mut connection = connect(&self.sentinel_url(address)).await?;
            redis::cmd("PING").exec_async(&mut connection).await?;
            Ok(connection)
        })
        .await
        .with_context(|| {
            format!("the sentinel at {address} did not answer within {SENTINEL_ANSWER:?}")
        })?
    }

    /// The host the sentinels name as primary now.
    pub async fn primary_host(&self) -> Result<String> {
        if let Some(host) = &self.fixed_primary {
            return Ok(host.clone());
        }
        named_primary(&mut self.sentinel().await?).await
    }

    /// A connection to the data node at `host`.
    pub async fn node(&self, host: &str) -> Result<MultiplexedConnection> {
        connect(&format!("{}{host}:{REDIS_PORT}", self.node_url)).await
    }

    /// A connection to the current primary.
    pub async fn primary(&self) -> Result<MultiplexedConnection> {
        self.node(&self.primary_host().await?).await
    }

    /// Removes the count from the current primary.
    pub async fn delete(&self) -> Result<()> {
        redis::cmd("DEL")
            .arg(PAGE_VIEWS_KEY)
            .exec_async(&mut self.primary().await?)
            .await?;
        Ok(())
    }

    /// Waits until the replicas have every write the primary has acknowledged.
    pub async fn sync_replicas(&self) -> Result<()> {
        let acknowledged: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(TOPOLOGY_WAIT.as_millis() as u64)
            .query_async(&mut self.primary().await?)
            .await?;
        if acknowledged < 1 {
            bail!("no replica acknowledged the writes within {TOPOLOGY_WAIT:?}");
        }
        Ok(())
    }

    /// Waits until every sentinel that answers, a majority at least, names the same
    /// primary, other than `lost`: each has then announced the switch to its listeners.
    pub async fn await_new_primary(&self, lost: &str) -> Result<()> {
        poll(
            "the sentinels to name the same new primary",
            || async move {
                let mut named = Vec::with_capacity(self.addresses.len());
                for address in &self.addresses {
                    if let Ok(mut sentinel) = self.answering(address).await {
                        named.push(named_primary(&mut sentinel).await?);
                    }
                }
                let agreed = named.len() * 2 > self.addresses.len()
                    && named.iter().all(|host| host != lost && *host == named[0]);
                Ok((!agreed).then(|| format!("{named:?}")))
            },
        )
        .await
    }

    /// Waits until the node at `old` replicates the current primary and holds `views`.
    pub async fn await_follower(&self, old: &str, views: i64) -> Result<()> {
        let what = format!("{old} to replicate the new primary and hold {views}");
        poll(&what, || async move {
            let primary = self.primary_host().await?;
            let mut node = self.node(old).await?;
            // A replica's ROLE: slave, its primary's host and port, the link's state, offset.
            let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut node).await?;
            let text = |at: usize| match role.get(at) {
                Some(redis::Value::BulkString(bytes)) => {
                    String::from_utf8_lossy(bytes).into_owned()
                }
                Some(redis::Value::SimpleString(text)) => text.clone(),
                other => format!("{other:?}"),
            };
            let held: Option<i64> = redis::cmd("GET")
                .arg(PAGE_VIEWS_KEY)
                .query_async(&mut node)
                .await?;
            let follows = text(0) == "slave" && text(1) == primary && text(3) == "connected";
            Ok((!follows || held != Some(views)).then(|| {
                format!(
                    "role {} of {} ({}) holding {held:?}",
                    text(0),
                    text(1),
                    text(3)
                )
            }))
        })
        .await
    }
}

/// Calls `check` until it says it waits for nothing more, for at most `TOPOLOGY_WAIT`.
async fn poll<F: Future<Output = Result<Option<String>>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> Result<()> {
    let deadline = Instant::now() + TOPOLOGY_WAIT;
    loop {
        let outcome = check().await;
        match outcome {
            Ok(None) => return Ok(()),
            _ if Instant::now() > deadline => {
                let last = outcome.map_or_else(|err| format!("{err:#}"), Option::unwrap_or_default);
                bail!("waited {TOPOLOGY_WAIT:?} for {what}; last seen: {last}");
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}

async fn named_primary(sentinel: &mut MultiplexedConnection) -> Result<String> {
    let (host, _port): (String, u16) = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(SERVICE)
        .query_async(sentinel)
        .await?;
    Ok(host)
}

async fn connect(url: &str) -> Result<MultiplexedConnection> {
    // Answers may take as long as the longest WAIT a step sends.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(TOPOLOGY_WAIT + Duration::from_secs(5)));
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

fn redis_image() -> GenericImage {
    GenericImage::new("redis", REDIS_TAG)
}

/// A data node: the primary when `primary` is `None`, else its replica.
async fn start_node(
    network: &str,
    users: &str,
    passwords: &Passwords,
    primary: Option<IpAddr>,
) -> Result<Node> {
    // Every node can become a replica after a failover: each knows how to sign in to a primary.
    let mut config = format!(
        "appendonly yes\nmasteruser replication\nmasterauth {}\n{users}",
        passwords.replication
    );
    if let Some(primary) = primary {
        config.push_str(&format!("replicaof {primary} {REDIS_PORT}\n"));
    }
    let container = redis_image()
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .with_network(network)
        .with_label(CONTAINER_LABEL, "integration-sentinel")
        .with_copy_to("/data/redis.conf", config.into_bytes())
        .with_cmd(["redis-server", "/data/redis.conf"])
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .context(START_HINT)?;
    let ip = container.get_bridge_ip_address().await?;
    Ok(Node { container, ip })
}

async fn start_sentinel(
    network: &str,
    passwords: &Passwords,
    primary: IpAddr,
) -> Result<ContainerAsync<GenericImage>> {
    // Sentinels rewrite their configuration as they learn: it must be a writable file.
    let config = format!(
        "port {SENTINEL_PORT}\n\
         requirepass {sentinels}\n\
         sentinel sentinel-pass {sentinels}\n\
         sentinel monitor {SERVICE} {primary} {REDIS_PORT} {QUORUM}\n\
         sentinel auth-user {SERVICE} sentinel\n\
         sentinel auth-pass {SERVICE} {sentinel}\n\
         sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n\
         sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n",
        sentinels = passwords.sentinels,
        sentinel = passwords.sentinel,
    );
    redis_image()
        .with_wait_for(WaitFor::message_on_stdout("+monitor master"))
        .with_network(network)
        .with_label(CONTAINER_LABEL, "integration-sentinel")
        .with_copy_to("/data/sentinel.conf", config.into_bytes())
        .with_cmd(["redis-server", "/data/sentinel.conf", "--sentinel"])
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .context(START_HINT)
}

const START_HINT: &str = "starting a Redis container for the sentinel topology (without registry \
     access, build the image first with scripts/build-base-images.sh)";

/// The count, read from whichever node is primary now.
impl Counter for Arc<SentinelView> {
    fn set(&self, views: i64) -> BoxFuture<'_, Result<()>> {
        async move {
            redis::cmd("SET")
                .arg(PAGE_VIEWS_KEY)
                .arg(views)
                .exec_async(&mut self.primary().await?)
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn get(&self) -> BoxFuture<'_, Result<i64>> {
        async move {
            let views: Option<i64> = redis::cmd("GET")
                .arg(PAGE_VIEWS_KEY)
                .query_async(&mut self.primary().await?)
                .await?;
            Ok(views.unwrap_or(0))
        }
        .boxed()
    }

    fn counting_commands(&self) -> BoxFuture<'_, Result<u64>> {
        async move {
            let stats: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut self.primary().await?)
                .await?;
            Ok(counting_calls(&stats))
        }
        .boxed()
    }
}

impl Failover for Arc<Topology> {
    fn sync_replicas(&self) -> BoxFuture<'_, Result<()>> {
        self.view.sync_replicas().boxed()
    }

    fn kill_primary(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            // No grace period: the process dies as with its machine.
            self.lose_primary()
                .await?
                .stop_with_timeout(Some(0))
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn freeze_primary(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.lose_primary().await?.pause().await?;
            Ok(())
        }
        .boxed()
    }

    fn await_new_primary(&self) -> BoxFuture<'_, Result<()>> {
        async move { self.view.await_new_primary(&self.lost()?).await }.boxed()
    }

    fn freeze_first_sentinel(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.sentinels
                .first()
                .context("this topology has no sentinel")?
                .pause()
                .await?;
            Ok(())
        }
        .boxed()
    }

    fn thaw_old_primary(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.container_at(&self.lost()?)?.unpause().await?;
            Ok(())
        }
        .boxed()
    }

    fn old_primary_follows(&self, views: i64) -> BoxFuture<'_, Result<()>> {
        async move { self.view.await_follower(&self.lost()?, views).await }.boxed()
    }

    fn as_service_user(&self, command: &str) -> BoxFuture<'_, Result<Option<String>>> {
        let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        async move {
            let (name, args) = words.split_first().context("an empty command")?;
            let host = self.view.primary_host().await?;
            let mut node = connect(&format!(
                "redis://page-tracker:{}@{host}:{REDIS_PORT}",
                self.passwords.service
            ))
            .await?;
            let outcome: redis::RedisResult<redis::Value> =
                redis::cmd(name).arg(args).query_async(&mut node).await;
            // The error code first (NOPERM), then redis-rs' description.
            Ok(outcome
                .err()
                .map(|err| format!("{} ({err})", err.code().unwrap_or("no error code"))))
        }
        .boxed()
    }
}
