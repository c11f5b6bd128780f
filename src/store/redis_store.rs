//! The production store: one multiplexed Redis connection, re-established on demand,
//! to one server or to the primary that Redis Sentinel names.

use std::{
    convert::Infallible,
    future::Future,
    io,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{
    StreamExt,
    future::{BoxFuture, FutureExt, Shared},
    stream::FuturesUnordered,
};
use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, ErrorKind, FromRedisValue, ProtocolVersion,
    PushInfo, PushKind, RedisError, RedisResult, ServerErrorKind, aio::MultiplexedConnection,
    sentinel::SentinelClient,
};
use tokio::task::AbortHandle;

use super::{PAGE_VIEWS_KEY, Store, StoreError, StoreObserver};

/// How long the service waits for Redis before answering with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// Bound on opening a connection, handshake included.
    pub connect: Duration,
    /// Bound on the answer to one command.
    pub response: Duration,
}

/// Counts page views with `INCRBY` on a Redis server.
///
/// Why not redis-rs' `ConnectionManager`: it retries connecting with backoff
/// (seconds per request while Redis is down) and, with retries disabled, hands
/// the outcome of an attempt made during an outage to the first request after
/// Redis is back. Here a failed attempt is forgotten at once, so every request
/// sees Redis as it is now, and concurrent requests share one attempt.
pub struct RedisStore {
    source: Source,
    timeouts: RedisTimeouts,
    link: Arc<Mutex<Link>>,
    observer: Option<Arc<dyn StoreObserver>>,
    /// In Sentinel mode, the tasks that listen for a new primary, one per sentinel.
    watchers: Vec<AbortHandle>,
}

/// Where each connection attempt goes.
#[derive(Clone)]
enum Source {
    /// Always the same server.
    Server(Box<Client>),
    /// Whichever server the sentinels name as primary at the time of the attempt:
    /// one client per sentinel.
    Sentinels(Arc<[Sentinel]>),
}

/// How long the store waits before listening to the sentinels again after losing them.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);
/// The channel on which sentinels announce a new primary: `NAME OLD-IP OLD-PORT NEW-IP NEW-PORT`.
const SWITCH_CHANNEL: &str = "+switch-master";

/// A connection and whether the server has closed it.
#[derive(Clone)]
struct Connection {
    generation: u64,
    inner: MultiplexedConnection,
    closed: Arc<AtomicBool>,
}

type Sentinel = tokio::sync::Mutex<SentinelClient>;

type Attempt = Shared<BoxFuture<'static, Result<Connection, RedisError>>>;

/// The state of the link to Redis; never locked across an `.await`.
struct Link {
    /// Identifies connections and attempts, so late results cannot overwrite newer ones.
    generation: u64,
    state: LinkState,
}

enum LinkState {
    Idle,
    Connecting(Attempt),
    Ready(Connection),
}

impl RedisStore {
    /// Prepares a store for the server at `info`; nothing is connected until first use,
    /// so the service starts even while Redis is away.
    pub fn new(info: ConnectionInfo, timeouts: RedisTimeouts) -> Result<Self, RedisError> {
        // RESP3 lets the connection report its own loss, so a request after a
        // Redis restart never meets a dead socket.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))?;
        Ok(Self::from_source(
            Source::Server(Box::new(client)),
            timeouts,
        ))
    }

    /// Prepares a store that asks `sentinels`, one client per sentinel, for the
    /// primary of `service` before every connection, and drops its connection as
    /// soon as any sentinel announces a new primary. Must be called within a Tokio
    /// runtime.
    pub fn with_sentinels(
        sentinels: Vec<SentinelClient>,
        service: &str,
        timeouts: RedisTimeouts,
    ) -> Self {
        let sentinels: Arc<[Sentinel]> = sentinels.into_iter().map(Sentinel::new).collect();
        let mut store = Self::from_source(Source::Sentinels(Arc::clone(&sentinels)), timeouts);
        // Each sentinel is listened to, so that one which stops answering, or
        // misses the failover, does not keep the news from the store.
        store.watchers = (0..sentinels.len())
            .map(|index| {
                tokio::spawn(watch_switches(
                    Arc::clone(&sentinels),
                    index,
                    service.to_owned(),
                    timeouts.connect,
                    Arc::clone(&store.link),
                ))
                .abort_handle()
            })
            .collect();
        store
    }

    fn from_source(source: Source, timeouts: RedisTimeouts) -> Self {
        Self {
            source,
            timeouts,
            link: Arc::new(Mutex::new(Link {
                generation: 0,
                state: LinkState::Idle,
            })),
            observer: None,
            watchers: Vec::new(),
        }
    }

    /// Tells `observer` about every reconnection.
    pub fn with_observer(mut self, observer: Arc<dyn StoreObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self
            .connection()
            .await
            .map_err(|err| to_store_error(err, self.timeouts.connect))?;
        command
            .query_async(&mut connection.inner)
            .await
            .map_err(|err| {
                // An error reply leaves the connection usable, except READONLY: the
                // server is no longer the primary. Anything else (timeout, reset)
                // means its state is unknown. Either way start afresh.
                if !is_error_reply(&err)
                    || err.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly)
                {
                    self.forget(connection.generation);
                }
                to_store_error(err, self.timeouts.response)
            })
    }

    /// The current connection, or the outcome of one attempt to open it.
    async fn connection(&self) -> Result<Connection, RedisError> {
        let attempt = {
            let mut link = lock(&self.link);
            match &link.state {
                LinkState::Ready(connection) if !connection.closed.load(Ordering::Acquire) => {
                    return Ok(connection.clone());
                }
                LinkState::Connecting(attempt) => attempt.clone(),
                LinkState::Idle | LinkState::Ready(_) => {
                    link.generation += 1;
                    let attempt = self.connect(link.generation);
                    link.state = LinkState::Connecting(attempt.clone());
                    attempt
                }
            }
        };
        attempt.await
    }

    /// Starts one connection attempt. It runs to the end on its own task, so a
    /// visitor who hangs up does not leave it half done, and it records its
    /// outcome in the link itself.
    fn connect(&self, generation: u64) -> Attempt {
        let closed = Arc::new(AtomicBool::new(false));
        let on_push = {
            let closed = Arc::clone(&closed);
            move |push: PushInfo| {
                if push.kind == PushKind::Disconnection {
                    closed.store(true, Ordering::Release);
                }
                Ok::<(), Infallible>(())
            }
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response))
            .set_push_sender(on_push);
        let source = self.source.clone();
        let connect_timeout = self.timeouts.connect;
        let link = Arc::clone(&self.link);
        let observer = self.observer.clone().filter(|_| generation > 1);

        let attempt = async move {
            let outcome = async {
                source
                    .client(connect_timeout)
                    .await?
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
            }
            .await
            .map(|inner| Connection {
                generation,
                inner,
                closed,
            });
            if let (Ok(_), Some(observer)) = (&outcome, &observer) {
                observer.reconnected();
            }
            let mut link = lock(&link);
            if link.generation == generation {
                link.state = match &outcome {
                    Ok(connection) => LinkState::Ready(connection.clone()),
                    Err(_) => LinkState::Idle,
                };
            }
            outcome
        }
        .boxed()
        .shared();
        tokio::spawn(attempt.clone());
        attempt
    }

    /// Drops the connection of `generation` if it is still the current one.
    fn forget(&self, generation: u64) {
        let mut link = lock(&self.link);
        if link.generation == generation {
            link.state = LinkState::Idle;
        }
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        for watcher in &self.watchers {
            watcher.abort();
        }
    }
}

impl Source {
    /// A client for the server to connect to now.
    async fn client(&self, wait: Duration) -> RedisResult<Client> {
        match self {
            Self::Server(client) => Ok(Client::clone(client)),
            Self::Sentinels(sentinels) => {
                // All at once, the first primary named wins: a sentinel that stopped
                // answering costs nothing while another one answers.
                let mut lookups: FuturesUnordered<_> = sentinels
                    .iter()
                    .map(|sentinel| async move { sentinel.lock().await.async_get_client().await })
                    .collect();
                let client = bounded(wait, async {
                    let mut failure = None;
                    while let Some(lookup) = lookups.next().await {
                        match lookup {
                            Ok(client) => return Ok(client),
                            Err(err) => failure = Some(err),
                        }
                    }
                    Err(failure.unwrap_or_else(|| {
                        RedisError::from((ErrorKind::InvalidClientConfig, "no sentinel to ask"))
                    }))
                })
                .await?;
                tracing::debug!(primary = %client.get_connection_info().addr(), "the sentinels named the primary");
                Ok(client)
            }
        }
    }
}

/// redis-rs bounds no wait on the sentinels: a silent one would hold every visitor.
async fn bounded<T>(wait: Duration, work: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(wait, work)
        .await
        .unwrap_or_else(|_| Err(io::Error::from(io::ErrorKind::TimedOut).into()))
}

/// Listens to the sentinel at `index` until the store is dropped (which aborts it);
/// whenever it announces a new primary of `service`, the current connection is
/// dropped, so the next visitor is counted by the new primary rather than failed
/// by the old one.
async fn watch_switches(
    sentinels: Arc<[Sentinel]>,
    index: usize,
    service: String,
    wait: Duration,
    link: Arc<Mutex<Link>>,
) {
    loop {
        if let Err(err) = listen_for_switches(&sentinels[index], &service, wait, &link).await {
            tracing::warn!(error = %err, sentinel = index + 1, "cannot hear a sentinel; trying again");
        }
        tokio::time::sleep(RELISTEN_DELAY).await;
    }
}

async fn listen_for_switches(
    sentinel: &Sentinel,
    service: &str,
    wait: Duration,
    link: &Mutex<Link>,
) -> RedisResult<()> {
    let mut pubsub = bounded(wait, async {
        let sentinel = sentinel.lock().await.async_get_sentinel_client().await?;
        let mut pubsub = sentinel.get_async_pubsub().await?;
        pubsub.subscribe(SWITCH_CHANNEL).await?;
        Ok(pubsub)
    })
    .await?;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let switch: String = message.get_payload()?;
        if switch.split(' ').next() == Some(service) {
            tracing::info!(%switch, "the sentinels named a new primary");
            // The next visitor starts a new attempt, whose generation also
            // discards one that may be reaching the old primary.
            lock(link).state = LinkState::Idle;
        }
    }
    Err(io::Error::from(io::ErrorKind::ConnectionReset).into())
}

impl Store for RedisStore {
    fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
        // Sent once: an INCRBY that timed out may still have run, so a retry could count twice.
        async move {
            self.query(redis::cmd("INCRBY").arg(PAGE_VIEWS_KEY).arg(views))
                .await
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move { self.query::<String>(&redis::cmd("PING")).await.map(drop) }.boxed()
    }
}

fn lock(link: &Mutex<Link>) -> MutexGuard<'_, Link> {
    // The guarded state is replaced whole, so it is consistent even after a panic.
    link.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_error_reply(err: &RedisError) -> bool {
    matches!(err.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}

fn to_store_error(err: RedisError, waited: Duration) -> StoreError {
    if err.is_timeout() {
        StoreError::TimedOut(waited)
    } else if is_error_reply(&err) {
        StoreError::Rejected(Box::new(err))
    } else {
        StoreError::Unreachable(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use redis::{
        ConnectionAddr,
        sentinel::{SentinelClientBuilder, SentinelServerType},
    };
    use tokio::net::TcpListener;

    use super::*;

    /// A store that is dropped stops calling its sentinels: its listeners do not
    /// outlive it (the service drops its store only at the end, the tests after
    /// every scenario).
    #[tokio::test]
    async fn a_dropped_store_stops_calling_its_sentinels() {
        let sentinel = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = sentinel.local_addr().unwrap().port();
        let client = SentinelClientBuilder::new(
            [ConnectionAddr::Tcp("127.0.0.1".to_owned(), port)],
            "page-tracker",
            SentinelServerType::Master,
        )
        .unwrap()
        .build()
        .unwrap();
        let wait = Duration::from_millis(100);
        let store = RedisStore::with_sentinels(
            vec![client],
            "page-tracker",
            RedisTimeouts {
                connect: wait,
                response: wait,
            },
        );
        // The listener calls at once and, answered by nothing, again after each delay.
        let call = tokio::time::timeout(Duration::from_secs(10), sentinel.accept()).await;
        assert!(call.is_ok(), "the store never called its sentinel");
        drop(store);
        // Calls already on their way when the store was dropped may still arrive.
        for _ in 0..5 {
            if tokio::time::timeout(wait * 3, sentinel.accept())
                .await
                .is_err()
            {
                break;
            }
        }
        let later = tokio::time::timeout(RELISTEN_DELAY * 3, sentinel.accept()).await;
        assert!(later.is_err(), "the dropped store still calls its sentinel");
    }
}
