//! Assembling the application: the router every level of testing uses, and the server around it.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use axum::{Router, http::StatusCode, routing::get};
use tokio::net::TcpListener;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, TraceLayer},
};
use tracing::Level;

use crate::{
    config::Config,
    drain::{self, Drain},
    error::REQUEST_ID,
    metrics::{self, InstrumentedStore, Metrics, ObserveLayer},
    routes::{self, AppState},
    server::{self, Limits},
    store::{RedisStore, Store},
};

/// The one place the HTTP interface is assembled, whatever the store behind it.
/// With `metrics`, every request is recorded there.
pub fn router(state: AppState, metrics: Option<&Metrics>) -> Router {
    let router = Router::new()
        .route(
            "/",
            get(routes::page)
                .head(routes::method_not_allowed)
                .fallback(routes::method_not_allowed),
        )
        .route("/health", get(routes::health))
        .route("/ready", get(routes::ready))
        .route("/serving", get(routes::serving))
        .fallback(routes::not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.request_timeout,
        ));
    // The request span and events are all at DEBUG: when nothing would record them the
    // layer is left out, as it still costs every request a clock read and a wrapped body.
    let router = if request_tracing_enabled() {
        // Failures are logged once, with their cause, where they are mapped to a status.
        router.layer(
            TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
    } else {
        router
    };
    // Outermost first: the request gets its id, is observed (and its failure logged
    // with that id), and its answer carries the id back and, while draining, asks the
    // client to close its connection.
    router
        .layer(axum::middleware::map_response_with_state(
            state.drain.clone(),
            drain::close_connections_while_draining,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(ObserveLayer::new(metrics.map(Metrics::http)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Whether the installed subscriber records any of TraceLayer's output at DEBUG
/// (as with `RUST_LOG=debug` or `RUST_LOG=tower_http=debug`). Decided when the router
/// is built, after logging is set up; the filter does not change afterwards.
fn request_tracing_enabled() -> bool {
    tracing::enabled!(target: "tower_http::trace::make_span", Level::DEBUG)
        || tracing::enabled!(target: "tower_http::trace::on_request", Level::DEBUG)
        || tracing::enabled!(target: "tower_http::trace::on_response", Level::DEBUG)
        || tracing::enabled!(target: "tower_http::trace::on_failure", Level::DEBUG)
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The Redis client could not be set up (for example a TLS setting).
    #[error("cannot set up the Redis client")]
    Store(#[source] redis::RedisError),
}

/// A bound server, ready to run.
pub struct Application {
    listener: TcpListener,
    router: Router,
    limits: Limits,
    drain: Drain,
    metrics: Option<MetricsListener>,
}

/// The second listener, serving `GET /metrics`.
struct MetricsListener {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Builds the production service from its configuration: a Redis store and a
    /// listener, and the metrics listener when one is configured.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        let redis = match config.redis.sentinels() {
            None => RedisStore::new(
                config.redis.connection_info().clone(),
                config.redis_timeouts,
            ),
            Some(sentinels) => config.redis.sentinel_clients(sentinels).map(|clients| {
                RedisStore::with_sentinels(clients, sentinels.service(), config.redis_timeouts)
            }),
        }
        .map_err(StartError::Store)?;
        let metrics = config.metrics_bind.map(|_| Arc::new(Metrics::new()));
        // Timed under the batched counter, so that each command Redis runs is one sample.
        let store: Arc<dyn Store> = match &metrics {
            Some(metrics) => Arc::new(InstrumentedStore::new(
                redis.with_observer(metrics.store()),
                metrics.store(),
            )),
            None => Arc::new(redis),
        };
        let state = AppState::new(
            store,
            // Redis' own timeouts fire first; this bound only guards against the unforeseen.
            config.redis_timeouts.connect + config.redis_timeouts.response,
            config.request_timeout,
        );
        let mut app = Self::bind(config.bind, state, config.limits, metrics.as_deref()).await?;
        if let (Some(addr), Some(metrics)) = (config.metrics_bind, metrics) {
            app.metrics = Some(MetricsListener {
                listener: listen(addr).await?,
                router: metrics::router(metrics),
            });
        }
        Ok(app)
    }

    /// Binds `addr` (port 0 picks a free port) and serves `state` there, recording
    /// requests in `metrics` when given.
    pub async fn bind(
        addr: SocketAddr,
        state: AppState,
        limits: Limits,
        metrics: Option<&Metrics>,
    ) -> Result<Self, StartError> {
        Ok(Self {
            listener: listen(addr).await?,
            drain: state.drain.clone(),
            router: router(state, metrics),
            limits,
            metrics: None,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address the metrics listener bound, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|metrics| metrics.listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then drains: `/serving` and `/ready` answer
    /// 503 and answers close their connections, while visitors are still served for
    /// the drain delay. Then it stops accepting and finishes the requests in flight.
    /// The metrics listener serves until the end, so the shutdown itself can be watched.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let metrics = self.metrics.map(|metrics| {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let serving = tokio::spawn(server::serve(
                metrics.listener,
                metrics.router,
                self.limits,
                async move {
                    let _ = stopped.await;
                },
            ));
            (stop, serving)
        });
        let drain = self.drain.clone();
        let delay = self.limits.drain_delay;
        let drained = async move {
            shutdown.await;
            drain.start();
            if !delay.is_zero() {
                tracing::info!(
                    ?delay,
                    "draining: still serving while load balancers stop sending"
                );
                tokio::time::sleep(delay).await;
            }
        };
        let served = server::serve(self.listener, self.router, self.limits, drained).await;
        if let Some((stop, serving)) = metrics {
            let _ = stop.send(());
            if let Ok(Err(err)) = serving.await {
                tracing::warn!(%err, "the metrics listener stopped with an error");
            }
        }
        served
    }
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM, the signals orchestrators send to stop a service.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Completes on the first stop signal; a second one ends the process at once,
/// for an operator who will not wait for the grace period.
pub async fn shutdown_signal_with_escape() {
    shutdown_signal().await;
    tokio::spawn(async {
        shutdown_signal().await;
        tracing::warn!("second stop signal: exiting without waiting for requests in flight");
        std::process::exit(1);
    });
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicI64, Ordering},
        time::Duration,
    };

    use axum::{body::Body, http::Request};
    use futures::future::{BoxFuture, FutureExt};
    use tower::ServiceExt;

    use super::*;
    use crate::store::{Store, StoreError};

    /// Counts in memory; the properties below need nothing else.
    #[derive(Default)]
    struct Tally(AtomicI64);

    impl Store for Tally {
        fn add_views(&self, views: u64) -> BoxFuture<'_, Result<i64, StoreError>> {
            let views = views as i64;
            let total = self.0.fetch_add(views, Ordering::SeqCst) + views;
            async move { Ok(total) }.boxed()
        }

        fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            async { Ok(()) }.boxed()
        }
    }

    fn state(store: Arc<Tally>) -> AppState {
        AppState::new(store, Duration::from_secs(1), Duration::from_secs(5))
    }

    /// Methods nobody registered are one label value, and two applications in one
    /// process never share a count.
    #[tokio::test]
    async fn unknown_methods_are_other_and_registries_stay_apart() {
        let (one, two) = (Metrics::new(), Metrics::new());
        let app = router(state(Arc::default()), Some(&one));
        let _other = router(state(Arc::default()), Some(&two));
        let request = Request::builder()
            .method("BREW")
            .uri("/")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let series = r#"http_server_request_duration_seconds_count{http_request_method="_OTHER",http_route="/",http_response_status_code="405"} 1"#;
        assert!(one.encode().contains(series), "{}", one.encode());
        assert!(!two.encode().contains("_OTHER"));
    }

    /// The id the load balancer sent comes back; without one, the service makes one.
    #[tokio::test]
    async fn every_answer_carries_a_request_id() {
        let app = router(state(Arc::default()), None);
        let sent = Request::builder()
            .uri("/")
            .header("x-request-id", "lb-42")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(sent).await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "lb-42");
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/nowhere")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let made = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(made.len(), 36, "{made}");
    }

    const METHODS: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Only `GET /` counts, whatever else arrives, and the server answers everything.
        #[test]
        fn only_reading_the_page_counts(
            requests in proptest::collection::vec(
                (0..METHODS.len(), "/[ -~]{0,24}|/|/health|/ready|/serving|/\\?[a-z=&]{0,10}"),
                1..20,
            ),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let store = Arc::new(Tally::default());
                let state = AppState::new(store.clone(), Duration::from_secs(1), Duration::from_secs(5));
                let app = router(state, None);
                let mut expected = 0;
                for (method, path) in requests {
                    let Ok(request) = Request::builder()
                        .method(METHODS[method])
                        .uri(path.as_str())
                        .body(Body::empty())
                    else {
                        continue; // not a URI any client could send
                    };
                    let is_page = request.uri().path() == "/";
                    let response = app.clone().oneshot(request).await.unwrap();
                    let status = response.status();
                    if is_page && METHODS[method] == "GET" {
                        expected += 1;
                        assert_eq!(status, StatusCode::OK);
                    } else {
                        assert!(status != StatusCode::OK || !is_page, "{} {path} answered 200", METHODS[method]);
                        assert!(!status.is_server_error(), "{} {path} answered {status}", METHODS[method]);
                    }
                }
                assert_eq!(store.0.load(Ordering::SeqCst), expected);
            });
        }
    }
}
