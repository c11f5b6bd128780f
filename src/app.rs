//! Assembling the application: the router every level of testing uses, and the server around it.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use axum::{Router, http::StatusCode, routing::get};
use tokio::net::TcpListener;
use tower_http::{
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, TraceLayer},
};
use tracing::Level;

use crate::{
    config::Config,
    drain::{self, Drain},
    routes::{self, AppState},
    server::{self, Limits},
    store::RedisStore,
};

/// The one place the HTTP interface is assembled, whatever the store behind it.
pub fn router(state: AppState) -> Router {
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
    router
        .layer(axum::middleware::map_response_with_state(
            state.drain.clone(),
            drain::close_connections_while_draining,
        ))
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
}

impl Application {
    /// Builds the production service from its configuration: a Redis store and a listener.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        let store = RedisStore::new(
            config.redis.connection_info().clone(),
            config.redis_timeouts,
        )
        .map_err(StartError::Store)?;
        let state = AppState::new(
            Arc::new(store),
            // Redis' own timeouts fire first; this bound only guards against the unforeseen.
            config.redis_timeouts.connect + config.redis_timeouts.response,
            config.request_timeout,
        );
        Self::bind(config.bind, state, config.limits).await
    }

    /// Binds `addr` (port 0 picks a free port) and serves `state` there.
    pub async fn bind(
        addr: SocketAddr,
        state: AppState,
        limits: Limits,
    ) -> Result<Self, StartError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Self {
            listener,
            drain: state.drain.clone(),
            router: router(state),
            limits,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then drains: `/serving` and `/ready` answer
    /// 503 and answers close their connections, while visitors are still served for
    /// the drain delay. Then it stops accepting and finishes the requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
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
        server::serve(self.listener, self.router, self.limits, drained).await
    }
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
                let app = router(AppState::new(
                    store.clone(),
                    Duration::from_secs(1),
                    Duration::from_secs(5),
                ));
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
