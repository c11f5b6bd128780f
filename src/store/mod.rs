//! Where page views are kept: the [`Store`] trait, its Redis implementation, and the
//! [`BatchedCounter`] that lets concurrent visits share one command.

mod batch;
mod redis_store;

use std::{error::Error as StdError, sync::Arc, time::Duration};

use futures::future::BoxFuture;

pub use batch::BatchedCounter;
pub use redis_store::{RedisStore, RedisTimeouts};

/// The Redis key holding the number of page views.
pub const PAGE_VIEWS_KEY: &str = "page_views";

/// A boxed error from whatever backs a store.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A place that counts page views.
///
/// Methods return boxed futures so that the application can hold any store as
/// `Arc<dyn Store>`: Redis in production, a double in unit tests.
pub trait Store: Send + Sync + 'static {
    /// Adds `views` (at least one) in one command and returns the new total.
    ///
    /// Implementations must never retry an increment whose outcome is unknown:
    /// a retried increment may count the same visits twice. Commands should be applied
    /// in the order their futures are first polled, as Redis applies one connection's
    /// (those that wait together for a connection may go out in either order): the
    /// [`BatchedCounter`]'s batches rely on it for their counts to rise in the order
    /// the visitors came.
    fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>>;

    /// Adds one view and returns the new total.
    fn record_view(&self) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.add_views(1)
    }

    /// Checks that the store answers, without changing anything.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// A shared store is a store: one can be decorated and still be reached directly.
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
        (**self).add_views(views)
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        (**self).ping()
    }
}

/// Told by a store about what its callers cannot see, such as reconnections.
pub trait StoreObserver: Send + Sync + 'static {
    /// A connection was opened after the first attempt: the previous one was lost,
    /// or earlier attempts failed.
    fn reconnected(&self);
}

/// Why the store could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection to the store could be made or kept.
    #[error("the store is unreachable")]
    Unreachable(#[source] BoxError),
    /// The store did not answer in time; the command may or may not have run.
    #[error("the store did not answer within {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// The store answered with an error.
    #[error("the store rejected the command")]
    Rejected(#[source] BoxError),
    /// The one command that counted this visit together with others failed.
    #[error(transparent)]
    Shared(Arc<StoreError>),
    /// The command meant to count this visit was dropped before it was sent or
    /// answered, as when the service stops.
    #[error("the count was abandoned before the store answered")]
    Abandoned,
}
