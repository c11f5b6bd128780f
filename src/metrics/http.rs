//! What the router records about each request: its duration by method, route and
//! status, the requests in flight, and one error line with the request's id for
//! every request that failed.

use std::{
    borrow::Cow,
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    http::{Method, StatusCode},
    response::Response,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tower::{Layer, Service};

use super::LATENCY_BUCKETS;
use crate::error::Failure;

/// Methods with a label value of their own; any other is `_OTHER`, so a client
/// cannot create series by inventing methods.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];
const OTHER_METHOD: &str = "_OTHER";

/// The routes the service serves, and the one value every other path is recorded as.
const ROUTES: [&str; 4] = ["/", "/health", "/ready", "/serving"];
/// The `http_route` of a request no route matched, whatever its path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Statuses the router answers; their handles are kept once used. Others (none
/// today) are looked up in the family each time.
const STATUSES: [u16; 6] = [200, 404, 405, 408, 500, 503];

const METHOD_SLOTS: usize = METHODS.len() + 1;
const ROUTE_SLOTS: usize = ROUTES.len() + 1;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    http_request_method: &'static str,
    http_route: Cow<'static, str>,
    http_response_status_code: u16,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The HTTP server's metrics, registered once per registry.
pub struct HttpMetrics {
    duration: HistogramFamily,
    active: Gauge,
    /// One handle per method, route and known status, taken from the family at first use.
    handles: Box<[OnceLock<Histogram>]>,
}

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let duration = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_server_request_duration_seconds",
            "Duration of HTTP requests, from the first byte the router sees to the answer, \
             by method, matched route and status",
            duration.clone(),
        );
        let active = Gauge::default();
        registry.register(
            "http_server_active_requests",
            "HTTP requests being served right now",
            active.clone(),
        );
        let metrics = Self {
            duration,
            active,
            handles: (0..METHOD_SLOTS * ROUTE_SLOTS * STATUSES.len())
                .map(|_| OnceLock::new())
                .collect(),
        };
        // The page's success and failure series exist from the start, so an error
        // ratio is 0 rather than absent before the first failure.
        let page = RouteKey::Known(0);
        for status in [200, 500] {
            metrics.observe_with(0, &page, status, |_| ());
        }
        metrics
    }

    /// Hands `record` the histogram of this method, route and status.
    fn observe_with(
        &self,
        method: usize,
        route: &RouteKey,
        status: u16,
        record: impl FnOnce(&Histogram),
    ) {
        let known_route = match route {
            RouteKey::Known(index) => Some(*index),
            RouteKey::Unmatched => Some(ROUTES.len()),
            RouteKey::Other(_) => None,
        };
        let known_status = STATUSES.iter().position(|known| *known == status);
        if let (Some(route_slot), Some(status_slot)) = (known_route, known_status) {
            let slot = (method * ROUTE_SLOTS + route_slot) * STATUSES.len() + status_slot;
            let histogram = self.handles[slot].get_or_init(|| {
                self.duration
                    .get_or_create_owned(&labels(method, route, status))
            });
            return record(histogram);
        }
        record(&self.duration.get_or_create(&labels(method, route, status)));
    }
}

fn labels(method: usize, route: &RouteKey, status: u16) -> HttpLabels {
    HttpLabels {
        http_request_method: METHODS.get(method).map_or(OTHER_METHOD, Method::as_str),
        http_route: match route {
            RouteKey::Known(index) => Cow::Borrowed(ROUTES[*index]),
            RouteKey::Unmatched => Cow::Borrowed(UNMATCHED_ROUTE),
            RouteKey::Other(route) => Cow::Owned(route.as_str().to_owned()),
        },
        http_response_status_code: status,
    }
}

/// Which route served a request, without copying its name.
enum RouteKey {
    Known(usize),
    Unmatched,
    /// A route added to the router but not to [`ROUTES`]: still one series per route.
    Other(MatchedPath),
}

impl RouteKey {
    fn of(request: &Request) -> Self {
        match request.extensions().get::<MatchedPath>() {
            None => Self::Unmatched,
            Some(matched) => match ROUTES.iter().position(|route| *route == matched.as_str()) {
                Some(index) => Self::Known(index),
                None => Self::Other(matched.clone()),
            },
        }
    }
}

fn method_slot(method: &Method) -> usize {
    METHODS
        .iter()
        .position(|known| known == method)
        .unwrap_or(METHODS.len())
}

/// Records every request passing through it, and logs each failure once with the
/// request's id. Without metrics it only logs.
#[derive(Clone, Default)]
pub struct ObserveLayer {
    metrics: Option<Arc<HttpMetrics>>,
}

impl ObserveLayer {
    pub fn new(metrics: Option<Arc<HttpMetrics>>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`ObserveLayer`] wraps around each route.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Option<Arc<HttpMetrics>>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let timing = self.metrics.as_ref().map(|metrics| {
            metrics.active.inc();
            Timing {
                metrics: Arc::clone(metrics),
                method: method_slot(request.method()),
                route: RouteKey::of(&request),
                // The request's only clock read before the answer.
                started: Instant::now(),
            }
        });
        ObserveFuture {
            inner: self.inner.call(request),
            timing,
        }
    }
}

/// One request being timed; leaving the active requests however it ends.
struct Timing {
    metrics: Arc<HttpMetrics>,
    method: usize,
    route: RouteKey,
    started: Instant,
}

impl Timing {
    fn finish(&self, status: StatusCode) {
        let elapsed = self.started.elapsed().as_secs_f64();
        self.metrics
            .observe_with(self.method, &self.route, status.as_u16(), |histogram| {
                histogram.observe(elapsed);
            });
    }
}

impl Drop for Timing {
    fn drop(&mut self) {
        self.metrics.active.dec();
    }
}

pin_project_lite::pin_project! {
    /// The answer of the wrapped service, recorded when it is ready.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        timing: Option<Timing>,
    }
}

impl<F, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            if let Some(timing) = this.timing.take() {
                timing.finish(response.status());
            }
            if let Some(failure) = response.extensions().get::<Failure>() {
                failure.log(response.headers());
            }
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    /// Every method, route and status the handle cache keeps gets a series of its
    /// own: no two of them share a slot, so no request is counted under another's labels.
    #[test]
    fn every_cached_method_route_and_status_is_a_series_of_its_own() {
        let mut registry = Registry::default();
        let metrics = HttpMetrics::register(&mut registry);
        // Every known method and `_OTHER`, every known route and the unmatched one.
        for method in 0..=METHODS.len() {
            for route in (0..ROUTES.len())
                .map(RouteKey::Known)
                .chain([RouteKey::Unmatched])
            {
                for status in STATUSES {
                    metrics.observe_with(method, &route, status, |histogram| {
                        histogram.observe(0.001);
                    });
                }
            }
        }
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let counts: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("http_server_request_duration_seconds_count"))
            .collect();
        assert_eq!(
            counts.len(),
            (METHODS.len() + 1) * (ROUTES.len() + 1) * STATUSES.len()
        );
        let twice: Vec<_> = counts.iter().filter(|line| !line.ends_with(" 1")).collect();
        assert!(
            twice.is_empty(),
            "series not counted exactly once: {twice:?}"
        );
    }
}
