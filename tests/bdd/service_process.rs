//! The service's real binary, run as a process of its own on a free loopback port.
//!
//! Shared by the specification's integration level (stopping the service with a
//! signal) and the process tests (exit statuses, signals, the health check).

use std::{
    net::{Ipv4Addr, TcpListener},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};

/// The binary cargo built for this package.
pub const BINARY: &str = env!("CARGO_BIN_EXE_page-tracker");
/// How long the process may take to answer `/health` after it is started.
const START_WAIT: Duration = Duration::from_secs(30);

/// A running `page-tracker`, killed if it is dropped while still running.
pub struct ServiceProcess {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    /// Copies stderr into `log` until the process closes it.
    drain: Option<JoinHandle<()>>,
}

impl ServiceProcess {
    /// Starts the service against `redis_url` with `args` added, and waits until it
    /// answers `/health`. The environment is cleared: only the flags count.
    pub async fn start(redis_url: &str, args: &[&str]) -> Result<Self> {
        Self::start_command(Command::new(BINARY), redis_url, args).await
    }

    /// As [`Self::start`], with `command` running the binary (through a shell that
    /// sets a limit, for instance).
    pub async fn start_command(
        mut command: Command,
        redis_url: &str,
        args: &[&str],
    ) -> Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let mut child = command
            .env_clear()
            .env("RUST_LOG", "info")
            .arg(format!("--bind=127.0.0.1:{port}"))
            .arg(format!("--redis-url={redis_url}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {BINARY}"))?;
        // Drained all the time, so the service never blocks on a full pipe.
        let log = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().context("no stderr pipe")?).lines();
        let sink = Arc::clone(&log);
        let drain = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut log = sink.lock().unwrap_or_else(PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut service = Self {
            child,
            port,
            log,
            drain: Some(drain),
        };
        service.wait_until_healthy().await?;
        Ok(service)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the service has logged so far.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends the signal named `name` (TERM, INT, ...) with kill(1).
    pub fn signal(&self, name: &str) -> Result<()> {
        let pid = self.child.id().context("the service has already exited")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -{name} {pid} failed: {status}");
        }
        Ok(())
    }

    /// Waits for the process to end and for its last log lines.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        let status = self.child.wait().await?;
        if let Some(drain) = self.drain.take() {
            drain.await?;
        }
        Ok(status)
    }

    async fn wait_until_healthy(&mut self) -> Result<()> {
        let url = format!("{}/health", self.base_url());
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(1))
            .build()?;
        let deadline = Instant::now() + START_WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the service exited with {status} at start:\n{}", self.log());
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the service did not answer /health within {START_WAIT:?}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
