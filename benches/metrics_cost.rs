//! What recording metrics costs one request, measured in process where nothing else
//! shares the clock: the application's router (`app::router`), built once without
//! and once with metrics (the store timed as `Application::build` times it), answers
//! `GET /` from a store that answers at once, one request after another on one
//! thread, as the service runs. Rounds alternate off and on; the figures are medians.
//!
//!   cargo bench --profile dist --bench metrics_cost [-- ROUNDS REQUESTS]
//!
//! Requests here come one at a time, so every visit is a store command of its own and
//! is timed as one: at c=64, where about 30 visits share a command, the store's part
//! is smaller. The figure is an upper bound of the service's own extra CPU per request;
//! set against the CPU the whole machine spends per visit at c=64 (`scripts/bench.sh`,
//! the cpu columns over req/s) it gives the share of throughput metrics can cost.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, body::Body, http::Request};
use futures::future::{BoxFuture, FutureExt};
use page_tracker::{
    app,
    metrics::{InstrumentedStore, Metrics},
    routes::AppState,
    store::{Store, StoreError},
};
use tower::ServiceExt;

// The service's allocator, as in `main`: allocations are part of what is measured.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A store that counts in memory and answers at once.
#[derive(Default)]
struct MemoryStore {
    total: AtomicI64,
}

impl Store for MemoryStore {
    fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
        let total = self.total.fetch_add(views as i64, Ordering::Relaxed) + views as i64;
        futures::future::ready(Ok(total)).boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        futures::future::ready(Ok(())).boxed()
    }
}

fn state(store: Arc<dyn Store>) -> AppState {
    AppState::new(store, Duration::from_secs(1), Duration::from_secs(10))
}

/// Nanoseconds per request over `requests` sequential `GET /`.
async fn per_request(router: &Router, requests: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..requests {
        let response = router
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
    }
    started.elapsed().as_nanos() as f64 / f64::from(requests)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"));
    let rounds: usize = args
        .next()
        .map_or(101, |n| n.parse().expect("ROUNDS: a number"));
    let requests: u32 = args
        .next()
        .map_or(20_000, |n| n.parse().expect("REQUESTS: a number"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let off = app::router(state(Arc::new(MemoryStore::default())), None);
        let metrics = Metrics::new();
        let timed = InstrumentedStore::new(MemoryStore::default(), metrics.store());
        let on = app::router(state(Arc::new(timed)), Some(&metrics));

        per_request(&off, requests / 10).await;
        per_request(&on, requests / 10).await;
        let (mut offs, mut ons, mut extras) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first, so a drift in the machine favours neither.
            let (a, b) = if round % 2 == 0 {
                let a = per_request(&off, requests).await;
                (a, per_request(&on, requests).await)
            } else {
                let b = per_request(&on, requests).await;
                (per_request(&off, requests).await, b)
            };
            println!(
                "round {:>2}: off {a:7.1} ns  on {b:7.1} ns  extra {:+6.1} ns",
                round + 1,
                b - a
            );
            offs.push(a);
            ons.push(b);
            extras.push(b - a);
        }
        let scraped = metrics.encode();
        assert!(
            scraped.contains("http_server_request_duration_seconds_count{"),
            "the requests with metrics on were not recorded"
        );
        println!(
            "metrics cost per request (median of {rounds} rounds of {requests}): {:.1} ns \
             (off {:.1} ns, on {:.1} ns)",
            median(&mut extras),
            median(&mut offs),
            median(&mut ons),
        );
    });
}
