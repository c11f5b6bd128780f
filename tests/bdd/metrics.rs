//! What an operator reads: the service's metrics, from its registry in process,
//! from its metrics listener, or from Prometheus after it has scraped them.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use futures::future::{BoxFuture, FutureExt};
use page_tracker::metrics::Metrics;

/// One sample: a metric name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Labels Prometheus adds to say where a sample was scraped: the same series
/// from another replica is no new kind of series.
const TARGET_LABELS: [&str; 3] = ["instance", "job", "service"];

impl Sample {
    /// Whether `other` is the same series, wherever each was scraped.
    pub fn same_series(&self, other: &Sample) -> bool {
        let own = |sample: &Sample| {
            sample
                .labels
                .iter()
                .filter(|(label, _)| !TARGET_LABELS.contains(&label.as_str()))
                .map(|(label, value)| (label.clone(), value.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        self.name == other.name && own(self) == own(other)
    }

    /// Whether every `(label, value)` matches; an empty value matches a missing
    /// label, as in PromQL.
    pub fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name
            && labels
                .iter()
                .all(|(label, value)| self.labels.get(*label).map_or("", String::as_str) == *value)
    }
}

/// The sum of the samples of `name` matching `labels` (0 when there are none).
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.matches(name, labels))
        .map(|sample| sample.value)
        // An empty f64 sum is -0; the operator reads 0.
        .fold(0.0, |total, value| total + value)
}

/// Where a level reads the metrics.
pub trait MetricsView: Send + Sync {
    /// The current samples of the metrics named; where they are scraped, taken
    /// after a scrape that started after this call.
    fn samples<'a>(&'a self, names: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Sample>>>;

    /// How long figures may take to show what happened.
    fn patience(&self) -> Duration;
}

/// The registry of a router in process.
pub struct Registry(pub Arc<Metrics>);

impl MetricsView for Registry {
    fn samples<'a>(&'a self, names: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Sample>>> {
        let text = self.0.encode();
        async move { Ok(only(parse_exposition(&text)?, names)) }.boxed()
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// A metrics listener over HTTP, as Prometheus scrapes it.
pub struct Listener {
    pub client: reqwest::Client,
    pub url: String,
    /// Where the latest body is kept, for `promtool check metrics`.
    pub keep_at: Option<PathBuf>,
}

impl MetricsView for Listener {
    fn samples<'a>(&'a self, names: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Sample>>> {
        async move {
            let response = self
                .client
                .get(&self.url)
                .send()
                .await
                .with_context(|| format!("scraping {}", self.url))?;
            ensure!(
                response.status() == 200,
                "{} answered {}",
                self.url,
                response.status()
            );
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            ensure!(
                content_type.starts_with("text/plain; version=0.0.4"),
                "{} is served as {content_type:?}, not Prometheus' text format",
                self.url
            );
            let text = response.text().await?;
            if let Some(path) = &self.keep_at {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                // Scenarios scrape side by side: write apart, then rename in one step.
                static WRITES: AtomicU64 = AtomicU64::new(0);
                let partial = path.with_extension(format!(
                    "{}.partial",
                    WRITES.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&partial, &text)
                    .and_then(|()| std::fs::rename(&partial, path))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(only(parse_exposition(&text)?, names))
        }
        .boxed()
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(2)
    }
}

/// Prometheus' HTTP API, after it has scraped every replica.
pub struct Prometheus {
    pub client: reqwest::Client,
    pub url: String,
    /// The scrape job of the service.
    pub job: String,
}

impl Prometheus {
    async fn query(&self, promql: &str) -> Result<Vec<serde_json::Value>> {
        let url = format!("{}/api/v1/query?query={}", self.url, percent_encode(promql));
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("querying Prometheus at {}", self.url))?;
        let status = response.status();
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await?).context("reading Prometheus' answer")?;
        ensure!(
            status == 200 && body["status"] == "success",
            "Prometheus answered {status} to {promql}: {body}"
        );
        match &body["data"]["result"] {
            serde_json::Value::Array(result) => Ok(result.clone()),
            other => bail!("Prometheus answered {promql} with {other}"),
        }
    }

    /// Waits until every target of the job has been scraped since `after` (seconds since the epoch).
    async fn scraped_since(&self, after: f64) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.patience();
        let promql = format!("min(timestamp(up{{job=\"{}\"}}))", self.job);
        loop {
            // Prometheus may still be starting: an error is retried until the deadline.
            let oldest = match self.query(&promql).await {
                Ok(result) => Ok(result.first().and_then(value_of)),
                Err(err) => Err(err),
            };
            if matches!(oldest, Ok(Some(oldest)) if oldest >= after) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "Prometheus did not scrape every target of job {} within {:?} (oldest scrape: {oldest:?})",
                    self.job,
                    self.patience()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl MetricsView for Prometheus {
    fn samples<'a>(&'a self, names: &'a [&'a str]) -> BoxFuture<'a, Result<Vec<Sample>>> {
        async move {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
            self.scraped_since(now).await?;
            let promql = format!("{{__name__=~\"{}\",job=\"{}\"}}", names.join("|"), self.job);
            let mut samples = Vec::new();
            for series in self.query(&promql).await? {
                let serde_json::Value::Object(metric) = &series["metric"] else {
                    bail!("a series without labels: {series}");
                };
                let mut labels: BTreeMap<String, String> = metric
                    .iter()
                    .map(|(label, value)| (label.clone(), value.as_str().unwrap_or("").to_owned()))
                    .collect();
                let name = labels.remove("__name__").unwrap_or_default();
                let value = value_of(&series).context("a sample without a value")?;
                samples.push(Sample {
                    name,
                    labels,
                    value,
                });
            }
            Ok(samples)
        }
        .boxed()
    }

    fn patience(&self) -> Duration {
        // A few scrape intervals (deploy/prometheus/prometheus.yml).
        Duration::from_secs(30)
    }
}

/// The value of one instant-vector element, `[time, "value"]`.
fn value_of(series: &serde_json::Value) -> Option<f64> {
    series["value"][1].as_str()?.parse().ok()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn only(samples: Vec<Sample>, names: &[&str]) -> Vec<Sample> {
    samples
        .into_iter()
        .filter(|sample| names.contains(&sample.name.as_str()))
        .collect()
}

/// Parses Prometheus' text format (version 0.0.4): comments and `# HELP`/`# TYPE`
/// lines are skipped, every other line is one sample.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>> {
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line)
            .with_context(|| format!("line {} of the exposition: {line:?}", number + 1))?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> Result<Sample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .context("no value")?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').context("a label without '='")?;
            let label = rest[..eq].trim().to_owned();
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .context("a label value without quotes")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, escaped)) => value.push(escaped),
                        None => bail!("an unfinished escape"),
                    },
                    Some((_, c)) => value.push(c),
                    None => bail!("an unfinished label value"),
                }
            };
            rest = &rest[end + 1..];
            labels.insert(label, value);
        }
    }
    let value = rest.split_whitespace().next().context("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .with_context(|| format!("{other:?} is not a number"))?,
    };
    Ok(Sample {
        name,
        labels,
        value,
    })
}
