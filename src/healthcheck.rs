//! `page-tracker --healthcheck`: asks a running server for `/health`, so a container
//! image can check itself without shipping curl.

use std::{io, net::SocketAddr, time::Duration};

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
    #[error("{addr} answered {status_line:?}")]
    Status {
        addr: SocketAddr,
        status_line: String,
    },
}

/// Checks the server listening on `bind`; an unspecified address (0.0.0.0, ::) means this host.
pub async fn check(bind: SocketAddr) -> Result<(), Unhealthy> {
    let addr = local_address(bind);
    match tokio::time::timeout(TIMEOUT, status_line(addr)).await {
        Err(_) => Err(Unhealthy::TimedOut { addr }),
        Ok(Err(source)) => Err(Unhealthy::Unreachable { addr, source }),
        Ok(Ok(line)) if line.split(' ').nth(1) == Some("200") => Ok(()),
        Ok(Ok(status_line)) => Err(Unhealthy::Status { addr, status_line }),
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

async fn status_line(addr: SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
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
        assert!(check(answering("HTTP/1.1 200 OK").await).await.is_ok());
    }

    #[tokio::test]
    async fn a_server_answering_an_error_is_unhealthy() {
        for status_line in [
            "HTTP/1.1 500 Internal Server Error",
            "HTTP/1.1 503 Service Unavailable",
            "HTTP/1.1 404 Not Found",
        ] {
            let addr = answering(status_line).await;
            match check(addr).await {
                Err(Unhealthy::Status {
                    addr: reported,
                    status_line: line,
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
            check(addr).await,
            Err(Unhealthy::Unreachable { .. })
        ));
    }
}
