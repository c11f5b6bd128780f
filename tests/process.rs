//! The service as an operator runs it: the real binary, its exit statuses, its
//! answer to stop signals and its `--healthcheck`. Scenarios would be unnatural
//! here: these are promises to whoever runs the process, not to visitors.

#[path = "bdd/service_process.rs"]
mod service_process;

use std::{net::SocketAddr, process::Output, time::Duration};

use anyhow::{Context, Result, ensure};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use service_process::{BINARY, ServiceProcess};

/// A Redis address where nothing listens: connections are refused at once.
const NO_REDIS: &str = "redis://127.0.0.1:1";

/// Runs the binary to the end with `args` and an empty environment.
async fn run(args: &[&str]) -> Result<Output> {
    Ok(tokio::process::Command::new(BINARY)
        .env_clear()
        .args(args)
        .output()
        .await?)
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn an_unusable_setting_stops_the_service_with_status_2_and_one_line_naming_it() -> Result<()>
{
    for (arg, named) in [
        (
            "--request-timeout=2h",
            "invalid --request-timeout / REQUEST_TIMEOUT",
        ),
        ("--bind=localhost", "invalid --bind / PAGE_TRACKER_BIND"),
        (
            "--redis-url=http://u:s3cret@x",
            "invalid --redis-url / REDIS_URL",
        ),
    ] {
        let output = run(&[arg]).await?;
        assert_eq!(output.status.code(), Some(2), "{arg}: {output:?}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{arg}: {lines:?}");
        assert!(
            lines[0].starts_with(&format!("page-tracker: error: {named}")),
            "{arg}: {lines:?}"
        );
        assert!(!lines[0].contains("s3cret"), "{arg}: {lines:?}");
    }
    Ok(())
}

#[tokio::test]
async fn the_health_check_reports_a_running_service_as_healthy() -> Result<()> {
    let service = ServiceProcess::start(NO_REDIS, &[]).await?;
    let bind = service.base_url().replace("http://", "--bind=");
    let output = run(&["--healthcheck", &bind]).await?;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    Ok(())
}

/// A server on loopback that answers every request with `status_line`.
async fn answering(status_line: &'static str) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0; 1024];
            let _ = stream.read(&mut request).await;
            let answer = format!("{status_line}\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    Ok(addr)
}

#[tokio::test]
async fn the_health_check_reports_errors_and_absence_as_unhealthy() -> Result<()> {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?
    };
    for (addr, what) in [
        (
            answering("HTTP/1.1 500 Internal Server Error").await?,
            "500",
        ),
        (answering("HTTP/1.1 503 Service Unavailable").await?, "503"),
        (closed, "cannot reach"),
    ] {
        let output = run(&["--healthcheck", &format!("--bind={addr}")]).await?;
        assert_eq!(output.status.code(), Some(1), "{what}: {output:?}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{what}: {lines:?}");
        assert!(lines[0].contains(what), "{what}: {lines:?}");
    }
    Ok(())
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_service_with_status_0() -> Result<()> {
    for signal in ["TERM", "INT"] {
        let mut service = ServiceProcess::start(NO_REDIS, &[]).await?;
        service.signal(signal)?;
        let status = service.wait().await?;
        assert!(status.success(), "SIG{signal}: {status}\n{}", service.log());
        let log = service.log();
        assert!(log.contains(&format!("SIG{signal} received")), "{log}");
        assert!(log.contains("stopped"), "{log}");
    }
    Ok(())
}

/// Waits until `service` has logged `needle`.
async fn logged(service: &ServiceProcess, needle: &str) -> Result<()> {
    for _ in 0..1500 {
        if service.log().contains(needle) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the service never logged {needle:?}:\n{}", service.log())
}

#[tokio::test]
async fn a_second_signal_ends_the_service_without_waiting_for_visits_in_flight() -> Result<()> {
    // A "Redis" that accepts connections and never answers: the visit waits on it.
    let silent = TcpListener::bind("127.0.0.1:0").await?;
    let silent_url = format!("redis://{}", silent.local_addr()?);
    let (accepted_tx, accepted) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        let mut accepted_tx = Some(accepted_tx);
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
            if let Some(tx) = accepted_tx.take() {
                let _ = tx.send(());
            }
        }
    });
    let mut service = ServiceProcess::start(
        &silent_url,
        &[
            "--redis-connect-timeout=60s",
            "--redis-response-timeout=60s",
            "--request-timeout=60s",
            "--shutdown-timeout=60s",
        ],
    )
    .await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let visit = tokio::spawn(client.get(service.base_url()).send());
    accepted
        .await
        .context("the visit never reached the store")?;

    service.signal("TERM")?;
    logged(&service, "finishing requests in flight").await?;
    // The first signal's handler has run; give the second listener time to be installed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.signal("TERM")?;
    let status = service.wait().await?;

    ensure!(
        status.code() == Some(1),
        "expected exit status 1, got {status}\n{}",
        service.log()
    );
    assert!(
        service.log().contains("second stop signal"),
        "{}",
        service.log()
    );
    assert!(visit.await?.is_err(), "the visit in flight was answered");
    Ok(())
}

#[tokio::test]
async fn running_out_of_file_descriptors_is_logged_and_the_service_carries_on() -> Result<()> {
    // Few descriptors: a handful of connections exhausts them.
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"ulimit -n 24 && exec "$0" "$@""#)
        .arg(BINARY);
    let service = ServiceProcess::start_command(command, NO_REDIS, &[]).await?;
    let addr = service.base_url().replace("http://", "");
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(tokio::net::TcpStream::connect(&addr).await?);
    }
    logged(&service, "cannot accept connections").await?;
    drop(held);
    // Once connections close, it accepts again.
    let client = reqwest::Client::builder().no_proxy().build()?;
    let health = client
        .get(format!("{}/health", service.base_url()))
        .send()
        .await?;
    assert_eq!(health.status(), 200);
    Ok(())
}

/// A visit the store cannot count is apologised for, and the log tells the
/// operator why, with the request's id.
#[tokio::test]
async fn a_failed_visit_is_logged_with_its_cause_and_the_request_id() -> Result<()> {
    let service = ServiceProcess::start(NO_REDIS, &[]).await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let answer = client
        .get(service.base_url())
        .header("x-request-id", "visit-from-the-test")
        .send()
        .await?;
    ensure!(answer.status() == 500, "answered {}", answer.status());
    logged(&service, "request failed").await?;
    let line = service
        .log()
        .lines()
        .find(|line| line.contains("request failed"))
        .map(str::to_owned)
        .unwrap_or_default();
    for needed in [
        "visit-from-the-test",
        "could not record the page view",
        "refused",
    ] {
        ensure!(line.contains(needed), "no {needed:?} in the line: {line}");
    }
    Ok(())
}
