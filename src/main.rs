use std::process::ExitCode;

use page_tracker::{
    app::{Application, shutdown_signal_with_escape},
    config::Config,
    error::error_chain,
    healthcheck, telemetry,
};

// Each request allocates a few short-lived buffers and futures; jemalloc's thread
// cache serves them in fewer instructions than glibc's malloc (scripts/bench.sh).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// One thread runs everything. On the 2 cores the service shares with Redis (and, when
// measured, the load generator) a second worker only added cross-thread wake-ups
// (futex, context switches), and its LIFO-slot scheduling ran the Redis pipeline task
// after every single request, so each INCR went out in a write of its own. Here the
// requests that arrive together are written to Redis together, and Redis itself is one
// thread: see scripts/bench.sh.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let config = match Config::from_env_and_args() {
        Ok(config) => config,
        Err(err) => return fail(&err, USAGE),
    };
    if config.healthcheck {
        return match healthcheck::check(config.bind, config.healthcheck_path).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err, FAILURE),
        };
    }
    if let Err(err) = telemetry::init(config.log_format) {
        return fail(&err, USAGE);
    }
    let app = match Application::build(&config).await {
        Ok(app) => app,
        Err(err) => return fail(&err, FAILURE),
    };
    let addr = app.local_addr().unwrap_or(config.bind);
    match app.metrics_addr() {
        Some(metrics) => {
            tracing::info!(%addr, %metrics, redis = %config.redis, "page-tracker listening");
        }
        None => tracing::info!(%addr, redis = %config.redis, "page-tracker listening"),
    }
    match app.run_until(shutdown_signal_with_escape()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, FAILURE),
    }
}

/// Exit status for unusable configuration, as clap uses for usage errors.
const USAGE: u8 = 2;
/// Exit status for a failure while starting or serving.
const FAILURE: u8 = 1;

/// One line on stderr naming what is wrong.
fn fail(err: &dyn std::error::Error, status: u8) -> ExitCode {
    eprintln!("page-tracker: error: {}", error_chain(err));
    ExitCode::from(status)
}
