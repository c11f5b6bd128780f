//! The production store: one multiplexed Redis connection, re-established on demand.

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::future::{BoxFuture, FutureExt, Shared};
use redis::{
    AsyncConnectionConfig, Client, ConnectionInfo, ErrorKind, FromRedisValue, ProtocolVersion,
    PushInfo, PushKind, RedisError, aio::MultiplexedConnection,
};

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
    client: Client,
    timeouts: RedisTimeouts,
    link: Arc<Mutex<Link>>,
    observer: Option<Arc<dyn StoreObserver>>,
}

/// A connection and whether the server has closed it.
#[derive(Clone)]
struct Connection {
    generation: u64,
    inner: MultiplexedConnection,
    closed: Arc<AtomicBool>,
}

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
        Ok(Self {
            client,
            timeouts,
            link: Arc::new(Mutex::new(Link {
                generation: 0,
                state: LinkState::Idle,
            })),
            observer: None,
        })
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
                // An error reply leaves the connection usable; anything else
                // (timeout, reset) means its state is unknown, so start afresh.
                if !is_error_reply(&err) {
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
        let client = self.client.clone();
        let link = Arc::clone(&self.link);
        let observer = self.observer.clone().filter(|_| generation > 1);

        let attempt = async move {
            let outcome = client
                .get_multiplexed_async_connection_with_config(&config)
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
