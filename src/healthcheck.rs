//! `page-tracker --healthcheck`: asks a running server for `/health` (or `/serving`), so a
//! container image can check itself without shipping curl.

use std::{io, net::SocketAddr, time::Duration};

use crate::config::HealthcheckPath;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The whole exchange must fit in this time.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the server is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("no answer from {addr} within {TIMEOUT:?}")]
    TimedOut { addr: SocketAddr },
    #[error("cannot reach {addr}")]
    Unreachable {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("{addr} answered {status_line:?} for {path}")]
    Status {
        addr: SocketAddr,
        path: &'static str,
        status_line: String,
    },
}

/// Asks the server listening on `bind` for `path`; healthy when it answers 200. An
/// unspecified address (0.0.0.0, ::) means this host.
pub async fn check(bind: SocketAddr, path: HealthcheckPath) -> Result<(), Unhealthy> {
    let addr = local_address(bind);
    let path = path.as_str();
    match tokio::time::timeout(TIMEOUT, status_line(addr, path)).await {
        Err(_) => Err(Unhealthy::TimedOut { addr }),
        Ok(Err(source)) => Err(Unhealthy::Unreachable { addr, source }),
        Ok(Ok(line)) if line.split(' ').nth(1) == Some("200") => Ok(()),
        Ok(Ok(status_line)) => Err(Unhealthy::Status {
            addr,
            path,
            status_line,
        }),
    }
}

fn local_address(bind: SocketAddr) -> SocketAddr {
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

async fn status_line(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.take(1024).read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_checked_on_loopback() {
        assert_eq!(
            local_address("0.0.0.0:8000".parse().unwrap()),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(
            local_address("[::]:8000".parse().unwrap()),
            "[::1]:8000".parse().unwrap()
        );
        assert_eq!(
            local_address("10.1.2.3:80".parse().unwrap()),
            "10.1.2.3:80".parse().unwrap()
        );
    }

    /// A server on loopback that answers one request with `status_line` and closes.
    async fn answering(status_line: &'static str) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0; 1024];
            let _ = stream.read(&mut request).await;
            let answer = format!("{status_line}\r\nContent-Length: 0\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        });
        addr
    }

    #[tokio::test]
    async fn a_server_answering_200_is_healthy() {
        assert!(
            check(answering("HTTP/1.1 200 OK").await, HealthcheckPath::Health)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_server_answering_an_error_is_unhealthy() {
        for status_line in [
            "HTTP/1.1 500 Internal Server Error",
            "HTTP/1.1 503 Service Unavailable",
            "HTTP/1.1 404 Not Found",
        ] {
            let addr = answering(status_line).await;
            match check(addr, HealthcheckPath::Health).await {
                Err(Unhealthy::Status {
                    addr: reported,
                    status_line: line,
                    ..
                }) => {
                    assert_eq!(reported, addr);
                    assert_eq!(line, status_line);
                }
                other => panic!("{status_line}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(matches!(
            check(addr, HealthcheckPath::Health).await,
            Err(Unhealthy::Unreachable { .. })
        ));
    }

    /// The real routes, their store a Redis that is not there: what each path
    /// reports before and after a stop signal.
    #[tokio::test]
    async fn serving_follows_the_drain_and_neither_path_follows_redis() {
        use std::{sync::Arc, time::Duration};

        use crate::{
            app::router,
            drain::Drain,
            routes::AppState,
            store::{RedisStore, RedisTimeouts},
        };

        let unreachable = "redis://127.0.0.1:1".parse::<redis::ConnectionInfo>();
        let timeouts = RedisTimeouts {
            connect: Duration::from_millis(200),
            response: Duration::from_millis(200),
        };
        let store = RedisStore::new(unreachable.unwrap(), timeouts).unwrap();
        let drain = Drain::default();
        let mut state = AppState::new(
            Arc::new(store),
            Duration::from_millis(500),
            Duration::from_secs(2),
        );
        state.drain = drain.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state, None)).await });

        check(addr, HealthcheckPath::Health).await.unwrap();
        check(addr, HealthcheckPath::Serving).await.unwrap();
        drain.start();
        check(addr, HealthcheckPath::Health).await.unwrap();
        match check(addr, HealthcheckPath::Serving).await {
            Err(Unhealthy::Status {
                path, status_line, ..
            }) => {
                assert_eq!(path, "/serving");
                assert!(status_line.contains(" 503 "), "{status_line}");
            }
            other => panic!("draining, /serving answered {other:?}"),
        }
    }
}
