//! Draining: after a stop signal the service first tells load balancers to stop
//! sending visitors, keeps serving those that still arrive, and only then stops.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::Response,
};

/// Whether the service is draining; clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    /// From now on the service announces that it is going away.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a stop has begun.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// While draining, every answer asks the client to close its connection, so that a
/// load balancer's kept-alive connection does not outlive the server behind it.
pub async fn close_connections_while_draining(
    State(drain): State<Drain>,
    mut response: Response,
) -> Response {
    if drain.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
