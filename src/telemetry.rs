//! Logging through `tracing`: level from RUST_LOG, text or JSON lines on stderr.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, filter::LevelFilter};

use crate::config::LogFormat;

/// RUST_LOG names a level or target that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("invalid RUST_LOG")]
pub struct InvalidLogFilter(#[source] tracing_subscriber::filter::FromEnvError);

/// Installs the global subscriber; call once, before anything logs.
pub fn init(format: LogFormat) -> Result<(), InvalidLogFilter> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()
        .map_err(InvalidLogFilter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files or log collectors.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}
