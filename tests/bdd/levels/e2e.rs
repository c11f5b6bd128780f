//! E2e level: the deployed service over real HTTP, its Redis read and seeded directly.
//!
//! Configured by environment: `APP_URL` (the web service), `REDIS_URL` (its Redis)
//! and, optionally, `STORE_DOWN_APP_URL`: a second instance of the service whose
//! Redis is unreachable. "The store is down" sends the visitor there, so the
//! apology is checked against a real failing service without a Docker socket.
//! `PROMETHEUS_URL`, when set, is the Prometheus that scrapes every instance: the
//! operator's figures are read there.

use anyhow::{Result, bail};
use futures::future::{BoxFuture, FutureExt};

use crate::{
    driver::{App, BaseUrl, Counter, Driver, Outages},
    levels::integration::{RedisCounter, http_client},
    metrics::Prometheus,
};

/// The scrape job of the service's instances in deploy/prometheus/prometheus.yml.
const SCRAPE_JOB: &str = "page-tracker";

/// Where the deployed stack is.
pub struct Stack {
    app_url: String,
    redis_url: String,
    store_down_app_url: Option<String>,
    prometheus_url: Option<String>,
    /// The count before the run, put back afterwards: the run must not lose real views.
    views_before: Option<i64>,
    counter: RedisCounter,
}

impl Stack {
    pub async fn from_env() -> Result<Self> {
        let app_url = required("APP_URL")?;
        let redis_url = required("REDIS_URL")?;
        let store_down_app_url = std::env::var("STORE_DOWN_APP_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| url.trim_end_matches('/').to_owned());
        let prometheus_url = std::env::var("PROMETHEUS_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(|url| url.trim_end_matches('/').to_owned());
        let counter = RedisCounter::connect(&redis_url, None).await?;
        let views_before = counter.get_raw().await?;
        Ok(Self {
            app_url: app_url.trim_end_matches('/').to_owned(),
            redis_url,
            store_down_app_url,
            prometheus_url,
            views_before,
            counter,
        })
    }

    pub async fn driver(&self) -> Result<Driver> {
        let base_url = BaseUrl::new(self.app_url.clone());
        let outages: Option<Box<dyn Outages>> =
            self.store_down_app_url.as_ref().map(|store_down_app_url| {
                Box::new(Redirect {
                    base_url: base_url.clone(),
                    store_down_app_url: store_down_app_url.clone(),
                }) as Box<dyn Outages>
            });
        Ok(Driver {
            app: App::Http {
                client: http_client()?,
                base_url,
            },
            counter: Box::new(RedisCounter::connect(&self.redis_url, None).await?),
            outages,
            server: None,
            // The compose file leaves the service's Redis timeouts at their defaults.
            store_wait: std::time::Duration::from_secs(1),
            metrics: match &self.prometheus_url {
                Some(url) => Some(Box::new(Prometheus {
                    client: http_client()?,
                    url: url.clone(),
                    job: SCRAPE_JOB.to_owned(),
                })),
                None => None,
            },
        })
    }

    /// Why a scenario needs more than this level can do.
    pub fn cannot_run(&self, tags: &[String]) -> Option<&'static str> {
        let has = |tag: &str| tags.iter().any(|t| t == tag);
        if has("outage") && self.store_down_app_url.is_none() {
            Some("no STORE_DOWN_APP_URL is set")
        } else if has("metrics") && self.prometheus_url.is_none() {
            Some("no PROMETHEUS_URL is set: the metrics are read through Prometheus")
        } else if has("hang") {
            Some("the test-service cannot freeze the deployed Redis")
        } else if has("recovery") {
            Some("the test-service cannot bring the deployed Redis back")
        } else if has("shutdown") {
            Some("the test-service cannot stop the deployed service")
        } else {
            None
        }
    }

    /// Puts back the count the stack had before the run.
    pub async fn restore_views(&self) {
        let result = match self.views_before {
            Some(views) => self.counter.set(views).await,
            None => self.counter.delete().await,
        };
        if let Err(err) = result {
            eprintln!("bdd: could not restore the page-view count: {err:#}");
        }
    }
}

fn required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => bail!("{name} is not set; the e2e level needs APP_URL and REDIS_URL"),
    }
}

/// "The store is down": visitors are sent to the instance whose Redis is unreachable.
struct Redirect {
    base_url: BaseUrl,
    store_down_app_url: String,
}

impl Outages for Redirect {
    fn take_down(&self) -> BoxFuture<'_, Result<()>> {
        self.base_url.set(self.store_down_app_url.clone());
        async { Ok(()) }.boxed()
    }

    fn freeze(&self) -> BoxFuture<'_, Result<()>> {
        async { bail!("the e2e level cannot freeze the store") }.boxed()
    }

    fn restore(&self) -> BoxFuture<'_, Result<()>> {
        async { bail!("the e2e level cannot bring the store back") }.boxed()
    }

    fn stall(&self, _: std::time::Duration) -> BoxFuture<'_, Result<()>> {
        async { bail!("the e2e level cannot stall the store") }.boxed()
    }
}
