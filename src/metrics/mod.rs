//! What operators see of the service: Prometheus metrics in one explicit registry,
//! served on a listener of their own.
//!
//! Names follow OpenTelemetry's HTTP and database conventions in Prometheus form.
//! Every handle the hot path uses is resolved once (at start, or at its first use)
//! and kept, so recording a request costs no label allocation and no map lookup.

mod http;
mod store;

use std::sync::Arc;

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::{
    encoding::prometheus_text,
    metrics::{counter::Counter, info::Info},
    registry::Registry,
};

pub use http::{HttpMetrics, ObserveLayer, UNMATCHED_ROUTE};
pub use store::{InstrumentedStore, StoreMetrics};

/// Upper bounds of the latency histograms, in seconds: from 100 µs (an answer from
/// a Redis on the same host) to 10 s (the longest a request may take by default).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The service's version, and the source revision it was built from when the build
/// was told (`PAGE_TRACKER_REVISION` at compile time, as the image build sets it).
const VERSION: &str = env!("CARGO_PKG_VERSION");
const REVISION: &str = match option_env!("PAGE_TRACKER_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

/// Every metric of one instance of the service, and the registry that exposes them.
pub struct Metrics {
    registry: Registry,
    http: Arc<HttpMetrics>,
    store: Arc<StoreMetrics>,
}

impl Metrics {
    /// A registry of its own with every metric registered: two instances in one
    /// process never share a count.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http = Arc::new(HttpMetrics::register(&mut registry));
        let store = Arc::new(StoreMetrics::register(&mut registry));
        registry.register(
            "page_tracker_build",
            "The running build: always 1, its version and source revision in the labels",
            Info::new([("version", VERSION), ("revision", REVISION)]),
        );
        Self {
            registry,
            http,
            store,
        }
    }

    /// What the router records about each request.
    pub fn http(&self) -> Arc<HttpMetrics> {
        Arc::clone(&self.http)
    }

    /// What a store records about its operations and connections.
    pub fn store(&self) -> Arc<StoreMetrics> {
        Arc::clone(&self.store)
    }

    /// The registry in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut body = String::with_capacity(16 * 1024);
        prometheus_text::encode(&mut body, &self.registry)
            .expect("writing to a String cannot fail");
        body
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The metrics listener's routes: `GET /metrics`, nothing else. Scrapes go through
/// no request metrics of their own.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode()).into_response()
}

/// A counter with no labels, as the registry wants it.
fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}
