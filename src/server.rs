//! The HTTP/1.1 server loop: bounded connections, a deadline for request headers,
//! and a graceful shutdown that cannot be held open forever.
//!
//! `axum::serve` offers neither a header timeout nor a connection limit, so a few
//! slow clients could hold the server, or its shutdown, indefinitely.

use std::{future::Future, io, sync::Arc, time::Duration};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};

/// Request heads larger than this are refused with 431: no visit needs more.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Limits that keep misbehaving clients from exhausting the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// A client must send a request's headers within this time, or it is disconnected.
    pub header_read_timeout: Duration,
    /// After a stop signal, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
    /// After a stop signal, how long the service keeps serving while it tells load
    /// balancers it is draining, before it stops accepting.
    pub drain_delay: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting,
/// lets requests in flight finish (within the grace period) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        // A client may close its sending side after the request and still read the answer.
        .half_close(true);
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit
                .map_err(|_| io::Error::other("connection limit closed"))?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    accept_failed(&err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers go out at once rather than waiting to fill a segment.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        // Reap finished connections so the set holds only open ones.
        while connections.try_join_next().is_some() {}
        connections.spawn(async move {
            if let Err(err) = connection.await {
                // Clients that hang up or time out are routine, not errors of ours.
                tracing::debug!(%err, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("no longer accepting connections; finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(
                grace = ?limits.shutdown_grace,
                open = connections.len(),
                "connections still open after the grace period are closed"
            );
            connections.abort_all();
        }
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Errors of one connection (reset before accept) are skipped; running out of
/// file descriptors gets a pause so the loop does not spin.
async fn accept_failed(err: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%err, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
