//! What the step definitions drive: the application, the counter behind it and,
//! where a level can, the store's availability. Each level builds one per scenario.

use std::{
    fmt,
    sync::{Arc, PoisonError, RwLock},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use axum::{Router, body::Body, http::Request};
use futures::future::BoxFuture;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tower::ServiceExt;

use crate::metrics::MetricsView;

/// The header the testing stack's load balancer adds to name the copy that answered.
pub const SERVED_BY: &str = "x-served-by";
/// The header that names a request, in the request and in its answer.
pub const REQUEST_ID: &str = "x-request-id";

/// How long a raw request may wait for an answer or a closed connection.
const RAW_ANSWER_WAIT: Duration = Duration::from_secs(15);

/// One HTTP answer as a visitor's browser sees it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
    /// Which copy of the service answered, where a load balancer in front names it.
    pub served_by: Option<String>,
    /// Whether the answer asked the client to close the connection.
    pub closes_connection: bool,
    /// The id of the request the answer names.
    pub request_id: Option<String>,
    /// From sending the request to having the whole body.
    pub elapsed: Duration,
}

/// How requests reach the application.
pub enum App {
    /// The router called in process: no socket, no network.
    InProcess(Router),
    /// A server reached over HTTP.
    Http {
        client: reqwest::Client,
        base_url: BaseUrl,
    },
}

/// Where a server is, such as `http://127.0.0.1:8000`; a level may point it elsewhere mid-scenario.
#[derive(Debug, Clone)]
pub struct BaseUrl(Arc<RwLock<String>>);

impl BaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(Arc::new(RwLock::new(url.into())))
    }

    pub fn get(&self) -> String {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set(&self, url: impl Into<String>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = url.into();
    }
}

/// Direct access to the page-view counter, bypassing the application.
pub trait Counter: Send + Sync {
    /// Sets the number of views the page has had so far.
    fn set(&self, views: i64) -> BoxFuture<'_, Result<()>>;
    /// The number of views recorded so far (0 when none).
    fn get(&self) -> BoxFuture<'_, Result<i64>>;
    /// How many commands have added views so far, however many each added.
    fn counting_commands(&self) -> BoxFuture<'_, Result<u64>>;
    /// Stores `text` as the count, as a mistaken script might.
    fn set_text(&self, _text: &str) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { bail!("this level's store holds numbers only") })
    }
}

/// Ways a level can take the store away and bring it back.
pub trait Outages: Send + Sync {
    /// The store refuses connections, as when its process is down.
    fn take_down(&self) -> BoxFuture<'_, Result<()>>;
    /// The store accepts connections but never answers, as when its process is frozen.
    fn freeze(&self) -> BoxFuture<'_, Result<()>>;
    /// The store is back, with the data it had.
    fn restore(&self) -> BoxFuture<'_, Result<()>>;
    /// The store stops answering for `pause`, then carries on by itself; returns at once.
    fn stall(&self, pause: Duration) -> BoxFuture<'_, Result<()>>;
    /// The store becomes a replica, refusing writes with READONLY, as a primary
    /// does after a failover; `promote` makes it a primary again.
    fn demote(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { bail!("this level cannot make the store a replica") })
    }
    /// The store is a primary again, with the data it had.
    fn promote(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { bail!("this level cannot make the store a replica") })
    }
    /// How many connections from the service the store has received so far.
    fn connections_received(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async { bail!("this level cannot count the store's connections") })
    }
}

/// A store kept by a primary with a replica, watched by sentinels that promote the
/// replica when the primary is lost.
pub trait Failover: Send + Sync {
    /// Waits until the replicas have every write the primary has acknowledged.
    fn sync_replicas(&self) -> BoxFuture<'_, Result<()>>;
    /// Kills the primary, as a crash of its machine would; it does not come back.
    fn kill_primary(&self) -> BoxFuture<'_, Result<()>>;
    /// Freezes the primary: connections to it stay open but nothing answers.
    fn freeze_primary(&self) -> BoxFuture<'_, Result<()>>;
    /// Waits until the sentinels name a primary other than the first one.
    fn await_new_primary(&self) -> BoxFuture<'_, Result<()>>;
    /// Freezes the first sentinel in the service's list: connections to it stay
    /// open but it answers nothing.
    fn freeze_first_sentinel(&self) -> BoxFuture<'_, Result<()>>;
    /// Thaws the frozen primary.
    fn thaw_old_primary(&self) -> BoxFuture<'_, Result<()>>;
    /// Waits until the old primary replicates the new one and holds `views`.
    fn old_primary_follows(&self, views: i64) -> BoxFuture<'_, Result<()>>;
    /// Sends `command` to the primary as the service's own Redis user, and returns
    /// Redis' error, or `None` when Redis ran it.
    fn as_service_user(&self, command: &str) -> BoxFuture<'_, Result<Option<String>>>;
}

/// A server the scenario may stop, as an orchestrator would.
pub struct Stoppable {
    /// Dropping or sending stops the server gracefully.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// Completes when the server has stopped.
    pub stopped: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// What came back for bytes sent straight down a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawOutcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// The server closed the connection without answering.
    Closed,
}

/// Everything a scenario needs, built by one level.
pub struct Driver {
    pub app: App,
    pub counter: Box<dyn Counter>,
    /// `None` where the level cannot change the store's availability.
    pub outages: Option<Box<dyn Outages>>,
    /// `Some` where the store is a primary with replicas behind sentinels.
    pub failover: Option<Box<dyn Failover>>,
    /// `Some` where the scenario runs a server of its own that it may stop.
    pub server: Option<Stoppable>,
    /// The longest the application should make a visitor wait for the store.
    pub store_wait: Duration,
    /// Where the operator reads the service's metrics; `None` where the level cannot.
    pub metrics: Option<Box<dyn MetricsView>>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let app = match &self.app {
            App::InProcess(_) => "in process".to_owned(),
            App::Http { base_url, .. } => base_url.get(),
        };
        f.debug_struct("Driver")
            .field("app", &app)
            .field("outages", &self.outages.is_some())
            .field("failover", &self.failover.is_some())
            .field("server", &self.server.is_some())
            .field("store_wait", &self.store_wait)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

impl Driver {
    /// Sends `method path` with an empty body and reads the whole answer.
    pub async fn request(&self, method: &str, path: &str) -> Result<Reply> {
        self.request_named(method, path, None).await
    }

    /// [`Self::request`], the request carrying `id` as its id when there is one.
    pub async fn request_named(&self, method: &str, path: &str, id: Option<&str>) -> Result<Reply> {
        let started = Instant::now();
        let (status, headers, body) = match &self.app {
            App::InProcess(router) => {
                let mut request = Request::builder().method(method).uri(path);
                if let Some(id) = id {
                    request = request.header(REQUEST_ID, id);
                }
                let request = request
                    .body(Body::empty())
                    .context("building the request")?;
                let response = router.clone().oneshot(request).await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
                (status, headers, String::from_utf8(bytes.to_vec())?)
            }
            App::Http { client, base_url } => {
                let base_url = base_url.get();
                let method = reqwest::Method::from_bytes(method.as_bytes())?;
                let mut request = client.request(method, format!("{base_url}{path}"));
                if let Some(id) = id {
                    request = request.header(REQUEST_ID, id);
                }
                let response = request
                    .send()
                    .await
                    .with_context(|| format!("sending a request to {base_url}{path}"))?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                (status, headers, response.text().await?)
            }
        };
        Ok(Reply {
            status,
            content_type: header_text(&headers, axum::http::header::CONTENT_TYPE.as_str()),
            served_by: header_text(&headers, SERVED_BY),
            closes_connection: header_text(&headers, axum::http::header::CONNECTION.as_str())
                .is_some_and(|value| value.eq_ignore_ascii_case("close")),
            request_id: header_text(&headers, REQUEST_ID),
            body,
            elapsed: started.elapsed(),
        })
    }

    /// Sends `bytes` as they are on a new connection and reads the first line of the answer.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<RawOutcome> {
        let App::Http { base_url, .. } = &self.app else {
            bail!("this level has no socket to send raw bytes to");
        };
        let base_url = base_url.get();
        let authority = base_url
            .strip_prefix("http://")
            .context("raw requests need an http:// address")?;
        let mut stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        // The server may refuse before reading everything: a reset while writing is an answer too.
        let _ = stream.write_all(bytes).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(RAW_ANSWER_WAIT, stream.read_to_end(&mut answer)).await;
        if read.is_err() {
            bail!(
                "the server neither answered nor closed the connection within {RAW_ANSWER_WAIT:?}"
            );
        }
        let text = String::from_utf8_lossy(&answer);
        match text.lines().next().and_then(|line| line.split(' ').nth(1)) {
            Some(status) => Ok(RawOutcome::Status(
                status.parse().context("reading the status")?,
            )),
            None => Ok(RawOutcome::Closed),
        }
    }

    /// Where the level reads the metrics, or a clear failure where it cannot.
    pub fn metrics(&self) -> Result<&dyn MetricsView> {
        match &self.metrics {
            Some(metrics) => Ok(metrics.as_ref()),
            None => bail!("this level cannot read the service's metrics"),
        }
    }

    /// The level's primary and sentinels, or a clear failure where it has none.
    pub fn failover(&self) -> Result<&dyn Failover> {
        match &self.failover {
            Some(failover) => Ok(failover.as_ref()),
            None => bail!("this level's store has no sentinels"),
        }
    }

    /// The level's outage controls, or a clear failure where it has none.
    pub fn outages(&self) -> Result<&dyn Outages> {
        match &self.outages {
            Some(outages) => Ok(outages.as_ref()),
            None => bail!("this level cannot change the store's availability"),
        }
    }
}

fn header_text(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}
