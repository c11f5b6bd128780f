//! How failures become HTTP responses: in one place, logged in full, shown briefly.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use crate::store::StoreError;

/// The body a visitor sees when the page cannot be counted.
pub const APOLOGY: &str = "Sorry, something went wrong \u{1F614}";

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The page view could not be recorded.
    #[error("could not record the page view")]
    Store(#[from] StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %error_chain(&self), "request failed");
        match self {
            Self::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, Html(APOLOGY)).into_response(),
        }
    }
}

/// An error and its sources on one line, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
