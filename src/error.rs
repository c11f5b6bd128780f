//! How failures become HTTP responses: in one place, logged in full, shown briefly.

use axum::{
    http::{HeaderMap, HeaderName, StatusCode},
    response::{Html, IntoResponse, Response},
};

use crate::store::StoreError;

/// The body a visitor sees when the page cannot be counted.
pub const APOLOGY: &str = "Sorry, something went wrong \u{1F614}";

/// The header that carries a request's id: taken from the load balancer when it
/// sends one, else made by the service, and returned with the answer.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The page view could not be recorded.
    #[error("could not record the page view")]
    Store(#[from] StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let failure = Failure {
            cause: error_chain(&self),
        };
        let mut response = match self {
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, Html(APOLOGY)).into_response(),
        };
        response.extensions_mut().insert(failure);
        response
    }
}

/// Why a request failed, carried on its answer to the layer that knows the
/// request's id (`metrics::ObserveLayer`), which logs it once.
#[derive(Debug, Clone)]
pub struct Failure {
    cause: String,
}

impl Failure {
    /// Logs the failure at error level with the id in the answer's headers.
    pub fn log(&self, headers: &HeaderMap) {
        let request_id = headers
            .get(&REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .unwrap_or("-");
        tracing::error!(request_id, error = %self.cause, "request failed");
    }
}

/// An error and its sources on one line, for logs. A source whose text its parent
/// already quotes (as redis-rs errors do) is not repeated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn the_chain_names_every_cause_once() {
        let err = AppError::Store(StoreError::Unreachable(Box::new(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        ))));
        assert_eq!(
            error_chain(&err),
            "could not record the page view: the store is unreachable: connection refused"
        );
    }

    #[tokio::test]
    async fn a_store_failure_answers_500_with_the_apology() {
        let err = AppError::Store(StoreError::TimedOut(std::time::Duration::from_millis(500)));
        let response = err.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            &body[..],
            "Sorry, something went wrong \u{1F614}".as_bytes()
        );
        assert_eq!(&body[body.len() - 4..], [0xf0, 0x9f, 0x98, 0x94]);
    }
}
