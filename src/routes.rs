//! HTTP handlers: the page itself and the probes orchestrators call.

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use crate::{
    drain::Drain,
    error::{AppError, error_chain},
    store::{BatchedCounter, Store, StoreError},
};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Where views are counted.
    pub store: Arc<dyn Store>,
    /// The longest a request waits for the store, whatever the store does.
    pub store_deadline: Duration,
    /// The longest any request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Set once a stop signal has arrived.
    pub drain: Drain,
    /// Visits on their way to the store, counted together while a command is in flight.
    views: BatchedCounter,
}

impl AppState {
    /// The state for `store`: every visit goes through one [`BatchedCounter`] in front
    /// of it, whose commands are bounded by `store_deadline` as each request is.
    pub fn new(store: Arc<dyn Store>, store_deadline: Duration, request_timeout: Duration) -> Self {
        Self {
            views: BatchedCounter::new(Arc::clone(&store), store_deadline),
            store,
            store_deadline,
            request_timeout,
            drain: Drain::default(),
        }
    }

    /// Runs one store call, bounded by the deadline so that no store can stall a visitor.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.store_deadline, call)
            .await
            .unwrap_or(Err(StoreError::TimedOut(self.store_deadline)))
    }
}

/// The page needs only the counter from the state.
impl FromRef<AppState> for BatchedCounter {
    fn from_ref(state: &AppState) -> Self {
        state.views.clone()
    }
}

/// `GET /`: counts this view and tells the visitor the total. The counter itself
/// bounds the wait by the store deadline, so no timer of the visitor's own is needed.
pub async fn page(State(counter): State<BatchedCounter>) -> Result<Html<String>, AppError> {
    let views = counter.count_visit().await?;
    // One allocation of the right size; `format!` costs the hottest path a few hundred
    // instructions more (callgrind, README "Performance").
    let mut digits = itoa::Buffer::new();
    let views = digits.format(views);
    Ok(Html(
        ["This page has been seen ", views, " times."].concat(),
    ))
}

/// `GET /health`: the process is up and serving; never touches the store.
pub async fn health() -> &'static str {
    "ok"
}

/// `GET /serving`: whether a load balancer should send visitors here. Answers from the
/// process alone, never the store: while a shared store is down every copy of the
/// service would fail it, and visitors would get the load balancer's error page
/// instead of the apology.
pub async fn serving(State(state): State<AppState>) -> Response {
    if state.drain.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else {
        "serving".into_response()
    }
}

/// `GET /ready`: the store answers and the service is not stopping, so visitors can be served.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.drain.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response();
    }
    match state.call(state.store.ping()).await {
        Ok(()) => "ready".into_response(),
        Err(err) => {
            tracing::warn!(error = %error_chain(&err), "not ready: the store does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
        }
    }
}

/// Any method but GET on `/`, including HEAD: checking the page must not count a view.
pub async fn method_not_allowed() -> impl IntoResponse {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET")])
}

/// Any path the service does not serve.
pub async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "Not Found")
}
