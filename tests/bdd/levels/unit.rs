//! Unit level: the real router in process, the store replaced by a double.

use std::{
    io,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use futures::future::{self, BoxFuture, FutureExt};
use page_tracker::{
    app::router,
    metrics::{InstrumentedStore, Metrics},
    routes::AppState,
    store::{Store, StoreError},
};

use crate::{
    driver::{App, Counter, Driver, Outages},
    metrics::Registry,
};

/// Redis' response timeout, so that a slow store holds a count as long as it may there.
const STORE_WAIT: Duration = Duration::from_millis(500);

/// A fresh application, store double and metrics registry for one scenario.
pub fn driver() -> Driver {
    let store = Arc::new(StoreDouble::default());
    let metrics = Arc::new(Metrics::new());
    let state = AppState::new(
        Arc::new(InstrumentedStore::new(store.clone(), metrics.store())),
        STORE_WAIT,
        Duration::from_secs(10),
    );
    Driver {
        app: App::InProcess(router(state, Some(&metrics))),
        counter: Box::new(store.clone()),
        outages: Some(Box::new(store)),
        failover: None,
        server: None,
        store_wait: STORE_WAIT,
        metrics: Some(Box::new(Registry(metrics))),
    }
}

/// What the double does when asked to count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Health {
    #[default]
    Up,
    /// Fails at once, as a refused connection does.
    Down,
    /// Never answers.
    Frozen,
    /// Answers once this moment has passed.
    StalledUntil(tokio::time::Instant),
}

/// An in-memory store that counts like `INCRBY` and fails on demand.
#[derive(Debug, Default)]
pub struct StoreDouble {
    views: AtomicI64,
    /// Counting commands received, as Redis' command statistics count them.
    commands: AtomicU64,
    health: Mutex<Health>,
}

impl StoreDouble {
    fn health(&self) -> Health {
        *self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = health;
    }

    /// Like Redis, runs each command when it is sent, in the order they are sent, also
    /// while stalled (as a long command holds Redis): only the answer waits.
    fn answer<T: Send + 'static>(
        &self,
        value: impl FnOnce() -> Result<T, StoreError>,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        match self.health() {
            Health::Up => future::ready(value()).boxed(),
            Health::Down => future::ready(Err(StoreError::Unreachable(Box::new(io::Error::from(
                io::ErrorKind::ConnectionRefused,
            )))))
            .boxed(),
            Health::Frozen => future::pending().boxed(),
            Health::StalledUntil(until) => {
                let outcome = value();
                async move {
                    tokio::time::sleep_until(until).await;
                    outcome
                }
                .boxed()
            }
        }
    }

    /// Adds `views` unless the total would pass the largest count, as `INCRBY` refuses to.
    fn add(&self, views: u64) -> Result<i64, StoreError> {
        let overflow = || {
            StoreError::Rejected(Box::new(io::Error::other(
                "increment or decrement would overflow",
            )))
        };
        let views = i64::try_from(views).map_err(|_| overflow())?;
        self.views
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |total| {
                total.checked_add(views)
            })
            .map(|before| before + views)
            .map_err(|_| overflow())
    }
}

impl Store for StoreDouble {
    fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.commands.fetch_add(1, Ordering::SeqCst);
        self.answer(|| self.add(views))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.answer(|| Ok(()))
    }
}

impl Counter for Arc<StoreDouble> {
    fn set(&self, views: i64) -> BoxFuture<'_, Result<()>> {
        self.views.store(views, Ordering::SeqCst);
        async { Ok(()) }.boxed()
    }

    fn get(&self) -> BoxFuture<'_, Result<i64>> {
        let views = self.views.load(Ordering::SeqCst);
        async move { Ok(views) }.boxed()
    }

    fn counting_commands(&self) -> BoxFuture<'_, Result<u64>> {
        let commands = self.commands.load(Ordering::SeqCst);
        async move { Ok(commands) }.boxed()
    }
}

impl Outages for Arc<StoreDouble> {
    fn take_down(&self) -> BoxFuture<'_, Result<()>> {
        self.set_health(Health::Down);
        async { Ok(()) }.boxed()
    }

    fn freeze(&self) -> BoxFuture<'_, Result<()>> {
        self.set_health(Health::Frozen);
        async { Ok(()) }.boxed()
    }

    fn restore(&self) -> BoxFuture<'_, Result<()>> {
        self.set_health(Health::Up);
        async { Ok(()) }.boxed()
    }

    fn stall(&self, pause: Duration) -> BoxFuture<'_, Result<()>> {
        self.set_health(Health::StalledUntil(tokio::time::Instant::now() + pause));
        async { Ok(()) }.boxed()
    }
}
