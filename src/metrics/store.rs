//! What the store records: the duration of each operation by outcome, the errors
//! by kind and the reconnections. [`InstrumentedStore`] times any [`Store`] from
//! outside; reconnections are told by the store itself through [`StoreObserver`].

use std::time::Instant;

use futures::future::{BoxFuture, FutureExt};
use prometheus_client::{
    encoding::{EncodeLabelSet, LabelSetEncoder},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

use super::{LATENCY_BUCKETS, counter};
use crate::store::{Store, StoreError, StoreObserver};

/// The system the operations go to, as OpenTelemetry names it.
const DB_SYSTEM: &str = "redis";

/// The operations of [`Store`], named by the Redis command each one sends.
#[derive(Clone, Copy)]
enum Operation {
    AddViews,
    Ping,
}

impl Operation {
    const ALL: [Self; 2] = [Self::AddViews, Self::Ping];

    fn name(self) -> &'static str {
        match self {
            Self::AddViews => "INCRBY",
            Self::Ping => "PING",
        }
    }
}

/// How an operation ended; every value but `Ok` is an `error_type`.
#[derive(Clone, Copy)]
enum Outcome {
    Ok,
    Error(ErrorType),
}

#[derive(Clone, Copy)]
enum ErrorType {
    Unreachable,
    Timeout,
    Rejected,
    /// The caller stopped waiting (its own deadline, or the visitor left) before the store answered.
    Cancelled,
}

impl ErrorType {
    const ALL: [Self; 4] = [
        Self::Unreachable,
        Self::Timeout,
        Self::Rejected,
        Self::Cancelled,
    ];

    fn of(err: &StoreError) -> Self {
        match err {
            StoreError::Unreachable(_) => Self::Unreachable,
            StoreError::TimedOut(_) => Self::Timeout,
            StoreError::Rejected(_) => Self::Rejected,
            StoreError::Shared(err) => Self::of(err),
            StoreError::Abandoned => Self::Cancelled,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }
}

/// `db_system_name`, `db_operation_name` and, on failure only, `error_type`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct DbLabels {
    operation: &'static str,
    error_type: Option<&'static str>,
}

impl EncodeLabelSet for DbLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeLabel;
        ("db_system_name", DB_SYSTEM).encode(encoder.encode_label())?;
        ("db_operation_name", self.operation).encode(encoder.encode_label())?;
        if let Some(error_type) = self.error_type {
            ("error_type", error_type).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error_type: &'static str,
}

/// One operation's histograms: success first, then one per error type.
struct OperationHandles {
    ok: Histogram,
    errors: [Histogram; ErrorType::ALL.len()],
}

/// The store's metrics, every series bound at start.
pub struct StoreMetrics {
    operations: [OperationHandles; Operation::ALL.len()],
    errors: [Counter; ErrorType::ALL.len()],
    reconnects: Counter,
}

impl StoreMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let duration =
            Family::<DbLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(LATENCY_BUCKETS)
            });
        registry.register(
            "db_client_operation_duration_seconds",
            "Duration of operations on the page-view store, as the service waits for them, \
             by command and, on failure, error type",
            duration.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "page_tracker_store_errors",
            "Operations on the page-view store that failed, by error type",
            errors.clone(),
        );
        let reconnects = counter(
            registry,
            "page_tracker_redis_reconnects",
            "Connections to Redis opened after the first attempt: after a lost connection \
             or failed attempts",
        );
        let operations = Operation::ALL.map(|operation| {
            let handle = |error_type: Option<ErrorType>| {
                duration.get_or_create_owned(&DbLabels {
                    operation: operation.name(),
                    error_type: error_type.map(ErrorType::name),
                })
            };
            OperationHandles {
                ok: handle(None),
                errors: ErrorType::ALL.map(|error_type| handle(Some(error_type))),
            }
        });
        Self {
            operations,
            errors: ErrorType::ALL.map(|error_type| {
                errors.get_or_create_owned(&ErrorLabels {
                    error_type: error_type.name(),
                })
            }),
            reconnects,
        }
    }

    fn record(&self, operation: Operation, outcome: Outcome, seconds: f64) {
        let handles = &self.operations[operation as usize];
        match outcome {
            Outcome::Ok => handles.ok.observe(seconds),
            Outcome::Error(error_type) => {
                handles.errors[error_type as usize].observe(seconds);
                self.errors[error_type as usize].inc();
            }
        }
    }
}

impl StoreObserver for StoreMetrics {
    fn reconnected(&self) {
        self.reconnects.inc();
    }
}

/// Times every operation of the store it wraps, whatever that store is.
pub struct InstrumentedStore<S> {
    inner: S,
    metrics: std::sync::Arc<StoreMetrics>,
}

impl<S: Store> InstrumentedStore<S> {
    pub fn new(inner: S, metrics: std::sync::Arc<StoreMetrics>) -> Self {
        Self { inner, metrics }
    }

    fn timed<'a, T: Send + 'a>(
        &'a self,
        operation: Operation,
        call: BoxFuture<'a, Result<T, StoreError>>,
    ) -> BoxFuture<'a, Result<T, StoreError>> {
        let mut timing = Timing {
            metrics: &self.metrics,
            operation,
            started: Instant::now(),
            done: false,
        };
        async move {
            let result = call.await;
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(err) => Outcome::Error(ErrorType::of(err)),
            };
            timing.finish(outcome);
            result
        }
        .boxed()
    }
}

impl<S: Store> Store for InstrumentedStore<S> {
    fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
        self.timed(Operation::AddViews, self.inner.add_views(views))
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.timed(Operation::Ping, self.inner.ping())
    }
}

/// One operation being timed; one dropped before the store answered counts as cancelled.
struct Timing<'a> {
    metrics: &'a StoreMetrics,
    operation: Operation,
    started: Instant,
    done: bool,
}

impl Timing<'_> {
    fn finish(&mut self, outcome: Outcome) {
        self.done = true;
        self.metrics.record(
            self.operation,
            outcome,
            self.started.elapsed().as_secs_f64(),
        );
    }
}

impl Drop for Timing<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::Error(ErrorType::Cancelled));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::FutureExt;

    use super::*;
    use crate::metrics::Metrics;

    /// A store that answers nothing.
    struct Silent;

    impl Store for Silent {
        fn add_views(&self, _views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
            std::future::pending().boxed()
        }
        fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            std::future::pending().boxed()
        }
    }

    /// An operation the service stops waiting for (a readiness check whose client
    /// hung up) is counted once, as cancelled, and timed.
    #[tokio::test]
    async fn an_operation_given_up_is_counted_as_cancelled() {
        let metrics = Arc::new(Metrics::new());
        let store = InstrumentedStore::new(Silent, metrics.store());
        let ping = store.ping();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(10), ping).await;
        assert!(waited.is_err());
        let text = metrics.encode();
        let counted = |parts: &[&str]| {
            text.lines()
                .any(|line| parts.iter().all(|part| line.contains(part)) && line.ends_with(" 1"))
        };
        assert!(
            counted(&[r#"page_tracker_store_errors_total{error_type="cancelled"}"#]),
            "{text}"
        );
        assert!(
            counted(&[
                "db_client_operation_duration_seconds_count{",
                r#"db_operation_name="PING""#,
                r#"error_type="cancelled""#
            ]),
            "{text}"
        );
    }
}
