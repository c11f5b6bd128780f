//! page-tracker: counts page views in Redis and serves the count over HTTP.
//!
//! `main` reads the [`config`], builds the [`app`] and runs it; every level of
//! testing builds the same router with [`app::router`].

pub mod app;
pub mod config;
pub mod drain;
pub mod error;
pub mod healthcheck;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod store;
pub mod telemetry;
