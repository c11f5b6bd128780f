//! Configuration: read once from the command line and the environment, then validated.

use std::{
    fmt,
    net::{Ipv6Addr, SocketAddr},
    time::Duration,
};

use clap::{Parser, ValueEnum};
use redis::{
    ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisResult, TlsMode,
    sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType},
};

use crate::{server::Limits, store::RedisTimeouts};

/// The longest timeout accepted: beyond it a visitor would rather have an answer.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Counts page views in Redis and serves the count over HTTP.
#[derive(Debug, Parser)]
#[command(name = "page-tracker", version, about)]
pub struct Args {
    /// Address to listen on, as IP:PORT (use 0.0.0.0:8000 in a container).
    #[arg(
        long,
        env = "PAGE_TRACKER_BIND",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8000"
    )]
    bind: String,

    /// Redis server, as redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or rediss:// for TLS.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "URL",
        default_value = "redis://localhost:6379",
        hide_env_values = true
    )]
    redis_url: String,

    /// Sentinels to ask which server is the Redis primary, as HOST:PORT[,HOST:PORT...].
    /// Set: REDIS_URL gives only the user, password, database and TLS for the data nodes.
    #[arg(long, env = "REDIS_SENTINELS", value_name = "HOST:PORT,...")]
    redis_sentinels: Option<String>,

    /// The primary's name as the sentinels monitor it (`sentinel monitor NAME ...`).
    #[arg(
        long,
        env = "REDIS_SENTINEL_SERVICE",
        value_name = "NAME",
        default_value = "page-tracker"
    )]
    redis_sentinel_service: String,

    /// The sentinels' password (their `requirepass`), when they have one.
    #[arg(
        long,
        env = "REDIS_SENTINEL_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    redis_sentinel_password: Option<String>,

    /// Longest wait for a connection to Redis, handshake included (e.g. 500ms, 1s).
    #[arg(
        long,
        env = "REDIS_CONNECT_TIMEOUT",
        value_name = "DURATION",
        default_value = "500ms"
    )]
    redis_connect_timeout: String,

    /// Longest wait for Redis to answer one command (e.g. 500ms, 1s).
    #[arg(
        long,
        env = "REDIS_RESPONSE_TIMEOUT",
        value_name = "DURATION",
        default_value = "500ms"
    )]
    redis_response_timeout: String,

    /// Longest time one HTTP request may take before it is answered 503.
    #[arg(
        long,
        env = "REQUEST_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s"
    )]
    request_timeout: String,

    /// Longest time a client may take to send a request's headers.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s"
    )]
    header_read_timeout: String,

    /// Open connections at most; further clients wait until one closes.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 2048,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    max_connections: u32,

    /// On SIGTERM or SIGINT, how long requests in flight may take to finish.
    #[arg(
        long,
        env = "SHUTDOWN_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s"
    )]
    shutdown_timeout: String,

    /// On SIGTERM or SIGINT, how long to keep serving while /serving and /ready answer
    /// 503, so load balancers stop sending first (0s: stop accepting at once).
    #[arg(
        long,
        env = "DRAIN_DELAY",
        value_name = "DURATION",
        default_value = "0s"
    )]
    drain_delay: String,

    /// Address of a second listener serving GET /metrics for Prometheus, as IP:PORT;
    /// unset or empty: no metrics are kept or served.
    #[arg(long, env = "METRICS_BIND", value_name = "HOST:PORT")]
    metrics_bind: Option<String>,

    /// Log line format; the level is set with RUST_LOG (default: info).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Instead of serving, ask the server on --bind for --healthcheck-path and exit 0 if it answers 200.
    #[arg(long)]
    healthcheck: bool,

    /// What --healthcheck asks: /health (the process answers; a container's liveness) or
    /// /serving (also not draining: what the load balancer checks). Never /ready: it
    /// follows Redis, and an outage would get every replica restarted.
    #[arg(long, value_enum, value_name = "PATH", default_value_t = HealthcheckPath::Health)]
    healthcheck_path: HealthcheckPath,
}

/// The endpoint `--healthcheck` asks; only those that never touch Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HealthcheckPath {
    /// The process serves HTTP.
    #[value(name = "/health")]
    Health,
    /// The process serves and is not draining after a stop signal.
    #[value(name = "/serving")]
    Serving,
}

impl HealthcheckPath {
    /// The request path.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Health => "/health",
            Self::Serving => "/serving",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated settings of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens.
    pub bind: SocketAddr,
    /// The Redis server; printing it never shows the password.
    pub redis: RedisTarget,
    /// Bounds on every wait for Redis.
    pub redis_timeouts: RedisTimeouts,
    /// Bound on one HTTP request, whatever it waits for.
    pub request_timeout: Duration,
    /// Limits on connections and slow clients.
    pub limits: Limits,
    /// Where the metrics listener listens; `None`: no metrics.
    pub metrics_bind: Option<SocketAddr>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Check a running server instead of serving.
    pub healthcheck: bool,
    /// What that check asks.
    pub healthcheck_path: HealthcheckPath,
}

/// Where the count is kept: one Redis server, or the primary that sentinels name.
/// `Display` names it without credentials.
#[derive(Clone)]
pub struct RedisTarget {
    /// The server, or in Sentinel mode the credentials, database and TLS for every data node.
    node: ConnectionInfo,
    sentinels: Option<Sentinels>,
}

/// Sentinels that name the primary, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct Sentinels {
    addresses: Vec<(String, u16)>,
    service: String,
    password: Option<String>,
}

/// A setting that cannot be used, named as the operator wrote it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The metrics address is not IP:PORT, or is the service's own.
    #[error("invalid --metrics-bind / METRICS_BIND {value:?}: {reason}")]
    MetricsBind { value: String, reason: &'static str },
    /// The bind address is not IP:PORT.
    #[error(
        "invalid --bind / PAGE_TRACKER_BIND {value:?}: expected IP:PORT such as 127.0.0.1:8000"
    )]
    Bind { value: String },
    /// The Redis URL cannot be used; the value is not echoed as it may hold a password.
    #[error("invalid --redis-url / REDIS_URL: {reason}")]
    RedisUrl { reason: String },
    /// The sentinels' addresses or the primary's name cannot be used.
    #[error("invalid {setting} {value:?}: {reason}")]
    Sentinels {
        setting: &'static str,
        value: String,
        reason: &'static str,
    },
    /// A timeout is not a positive duration within bounds.
    #[error("invalid {setting} {value:?}: {reason}")]
    Timeout {
        setting: &'static str,
        value: String,
        reason: String,
    },
}

impl Config {
    /// Reads the command line and the environment; prints help, version or a
    /// usage error and exits when clap says so.
    pub fn from_env_and_args() -> Result<Self, ConfigError> {
        Self::try_from(Args::parse())
    }
}

impl TryFrom<Args> for Config {
    type Error = ConfigError;

    fn try_from(args: Args) -> Result<Self, ConfigError> {
        let bind = parse_bind(&args.bind)?;
        Ok(Self {
            bind,
            metrics_bind: parse_metrics_bind(args.metrics_bind.as_deref(), bind)?,
            redis: RedisTarget::parse(&args.redis_url)?.with_sentinels(
                args.redis_sentinels.as_deref(),
                &args.redis_sentinel_service,
                args.redis_sentinel_password,
            )?,
            redis_timeouts: RedisTimeouts {
                connect: parse_timeout(
                    "--redis-connect-timeout / REDIS_CONNECT_TIMEOUT",
                    &args.redis_connect_timeout,
                )?,
                response: parse_timeout(
                    "--redis-response-timeout / REDIS_RESPONSE_TIMEOUT",
                    &args.redis_response_timeout,
                )?,
            },
            request_timeout: parse_timeout(
                "--request-timeout / REQUEST_TIMEOUT",
                &args.request_timeout,
            )?,
            limits: Limits {
                max_connections: args.max_connections as usize,
                header_read_timeout: parse_timeout(
                    "--header-read-timeout / HEADER_READ_TIMEOUT",
                    &args.header_read_timeout,
                )?,
                shutdown_grace: parse_timeout(
                    "--shutdown-timeout / SHUTDOWN_TIMEOUT",
                    &args.shutdown_timeout,
                )?,
                drain_delay: parse_delay("--drain-delay / DRAIN_DELAY", &args.drain_delay)?,
            },
            log_format: args.log_format,
            healthcheck: args.healthcheck,
            healthcheck_path: args.healthcheck_path,
        })
    }
}

fn parse_bind(value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Bind {
        value: value.to_owned(),
    })
}

fn parse_metrics_bind(
    value: Option<&str>,
    bind: SocketAddr,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(value) = value.map(str::trim).filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    let invalid = |reason| ConfigError::MetricsBind {
        value: value.to_owned(),
        reason,
    };
    let addr: SocketAddr = value
        .parse()
        .map_err(|_| invalid("expected IP:PORT such as 0.0.0.0:9000"))?;
    if addr == bind && addr.port() != 0 {
        return Err(invalid("must differ from --bind / PAGE_TRACKER_BIND"));
    }
    Ok(Some(addr))
}

fn parse_timeout(setting: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let timeout = parse_delay(setting, value)?;
    if timeout.is_zero() {
        return Err(ConfigError::Timeout {
            setting,
            value: value.to_owned(),
            reason: "must be greater than zero".to_owned(),
        });
    }
    Ok(timeout)
}

/// A duration with units, zero allowed, at most `MAX_TIMEOUT`.
fn parse_delay(setting: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let invalid = |reason: String| ConfigError::Timeout {
        setting,
        value: value.to_owned(),
        reason,
    };
    let timeout = humantime::parse_duration(value.trim())
        .map_err(|err| invalid(format!("{err} (write e.g. 500ms or 2s)")))?;
    if timeout > MAX_TIMEOUT {
        return Err(invalid(format!(
            "must be at most {}",
            humantime::format_duration(MAX_TIMEOUT)
        )));
    }
    Ok(timeout)
}

impl RedisTarget {
    /// Parses a Redis URL as redis-rs accepts it.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        if url.is_empty() {
            return Err(ConfigError::RedisUrl {
                reason: "it is empty".to_owned(),
            });
        }
        url.into_connection_info()
            .map(|node| Self {
                node,
                sentinels: None,
            })
            .map_err(|err| ConfigError::RedisUrl {
                // redis-rs' parse errors describe the problem without quoting the URL.
                reason: err.to_string(),
            })
    }

    /// Sentinel mode when `addresses` is set and not blank: the sentinels at
    /// `addresses` name the primary of `service`.
    pub fn with_sentinels(
        self,
        addresses: Option<&str>,
        service: &str,
        password: Option<String>,
    ) -> Result<Self, ConfigError> {
        let Some(list) = addresses.map(str::trim).filter(|list| !list.is_empty()) else {
            return Ok(self);
        };
        let invalid = |setting, value: &str, reason| ConfigError::Sentinels {
            setting,
            value: value.to_owned(),
            reason,
        };
        const ADDRESSES: &str = "--redis-sentinels / REDIS_SENTINELS";
        let addresses = list
            .split(',')
            .map(|address| {
                parse_host_port(address.trim())
                    .ok_or_else(|| invalid(ADDRESSES, list, "expected HOST:PORT[,HOST:PORT...]"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let service = service.trim();
        if service.is_empty() || service.contains(char::is_whitespace) {
            return Err(invalid(
                "--redis-sentinel-service / REDIS_SENTINEL_SERVICE",
                service,
                "expected the name the sentinels monitor, without spaces",
            ));
        }
        if matches!(self.node.addr(), ConnectionAddr::Unix(_)) {
            return Err(ConfigError::RedisUrl {
                reason: "with sentinels it must be redis:// or rediss://".to_owned(),
            });
        }
        Ok(Self {
            sentinels: Some(Sentinels {
                addresses,
                service: service.to_owned(),
                password: password.filter(|password| !password.is_empty()),
            }),
            ..self
        })
    }

    /// The server's connection details, credentials included; in Sentinel mode
    /// those of every data node, whose address the sentinels give.
    pub fn connection_info(&self) -> &ConnectionInfo {
        &self.node
    }

    /// The sentinels, in Sentinel mode.
    pub fn sentinels(&self) -> Option<&Sentinels> {
        self.sentinels.as_ref()
    }

    /// One client per sentinel, each able to ask its sentinel for the primary and
    /// to connect to it with the data nodes' credentials, database, TLS and RESP3.
    /// One each, so that the store can ask them all at once: a single client asks
    /// its sentinels one after the other, and one that no longer answers would
    /// hold every lookup.
    pub fn sentinel_clients(&self, sentinels: &Sentinels) -> RedisResult<Vec<SentinelClient>> {
        sentinels
            .addresses
            .iter()
            .map(|(host, port)| self.sentinel_client(sentinels, host, *port))
            .collect()
    }

    fn sentinel_client(
        &self,
        sentinels: &Sentinels,
        host: &str,
        port: u16,
    ) -> RedisResult<SentinelClient> {
        let settings = self.node.redis_settings();
        let address = ConnectionAddr::Tcp(host.to_owned(), port);
        let mut builder =
            SentinelClientBuilder::new([address], &sentinels.service, SentinelServerType::Master)?
                .set_client_to_redis_protocol(ProtocolVersion::RESP3)
                .set_client_to_redis_db(settings.db());
        if let Some(username) = settings.username() {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = settings.password() {
            builder = builder.set_client_to_redis_password(password);
        }
        if let ConnectionAddr::TcpTls { insecure, .. } = self.node.addr() {
            builder = builder.set_client_to_redis_tls_mode(if *insecure {
                TlsMode::Insecure
            } else {
                TlsMode::Secure
            });
        }
        if let Some(password) = &sentinels.password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        builder.build()
    }
}

impl Sentinels {
    /// The primary's name as the sentinels monitor it.
    pub fn service(&self) -> &str {
        &self.service
    }
}

/// `host:port` or `[v6]:port`, with a port above zero.
fn parse_host_port(value: &str) -> Option<(String, u16)> {
    let (host, port) = value.rsplit_once(':')?;
    let port = port.parse().ok().filter(|port| *port > 0)?;
    let host = match host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
    {
        Some(v6) => v6.parse::<Ipv6Addr>().ok()?.to_string(),
        None if !host.is_empty() && !host.contains([':', '/', '@', ' ']) => host.to_owned(),
        None => return None,
    };
    Some((host, port))
}

impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let db = self.node.redis_settings().db();
        if let Some(sentinels) = &self.sentinels {
            let scheme = match self.node.addr() {
                ConnectionAddr::TcpTls { .. } => "rediss",
                _ => "redis",
            };
            write!(
                f,
                "{scheme} primary {:?} named by sentinels ",
                sentinels.service
            )?;
            for (index, (host, port)) in sentinels.addresses.iter().enumerate() {
                let separator = if index == 0 { "" } else { "," };
                write!(f, "{separator}{host}:{port}")?;
            }
            return write!(f, " (db {db})");
        }
        match self.node.addr() {
            ConnectionAddr::Tcp(host, port) => write!(f, "redis://{host}:{port}/{db}"),
            ConnectionAddr::TcpTls { host, port, .. } => write!(f, "rediss://{host}:{port}/{db}"),
            ConnectionAddr::Unix(path) => write!(f, "unix://{}?db={db}", path.display()),
            other => write!(f, "{other}/{db}"),
        }
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["page-tracker"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("arguments parse")
    }

    fn config(extra: &[&str]) -> Result<Config, ConfigError> {
        Config::try_from(args(extra))
    }

    #[test]
    fn defaults_match_the_documented_values() {
        use clap::CommandFactory;
        // Read from the definition, so settings in the test's environment do not interfere.
        let command = Args::command();
        let default = |id: &str| {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .unwrap();
            arg.get_default_values()[0].to_str().unwrap().to_owned()
        };
        assert_eq!(default("bind"), "127.0.0.1:8000");
        assert_eq!(default("redis_url"), "redis://localhost:6379");
        assert_eq!(default("redis_connect_timeout"), "500ms");
        assert_eq!(default("redis_response_timeout"), "500ms");
        assert_eq!(default("request_timeout"), "10s");
        assert_eq!(default("header_read_timeout"), "10s");
        assert_eq!(default("max_connections"), "2048");
        assert_eq!(default("shutdown_timeout"), "10s");
        assert_eq!(default("drain_delay"), "0s");
        assert_eq!(default("log_format"), "text");
        assert_eq!(default("healthcheck_path"), "/health");
    }

    #[test]
    fn the_healthcheck_asks_only_endpoints_that_never_touch_redis() {
        assert_eq!(
            config(&["--healthcheck"]).unwrap().healthcheck_path,
            HealthcheckPath::Health
        );
        assert_eq!(
            config(&["--healthcheck", "--healthcheck-path", "/serving"])
                .unwrap()
                .healthcheck_path,
            HealthcheckPath::Serving
        );
        for refused in ["/ready", "/", "serving", "/health/"] {
            let err = Args::try_parse_from(["page-tracker", "--healthcheck-path", refused])
                .expect_err(refused);
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::InvalidValue,
                "{refused}"
            );
            let shown = err.to_string();
            assert!(
                shown.contains("/health") && shown.contains("/serving"),
                "{shown}"
            );
        }
    }

    #[test]
    fn every_setting_can_come_from_the_environment() {
        use clap::CommandFactory;
        let command = Args::command();
        let without_env: Vec<_> = command
            .get_arguments()
            // The self-check's flags describe one invocation, not the service.
            .filter(|arg| {
                arg.get_long()
                    .is_some_and(|long| !long.starts_with("healthcheck"))
            })
            .filter(|arg| arg.get_env().is_none())
            .map(|arg| arg.get_id().to_string())
            .collect();
        assert!(without_env.is_empty(), "{without_env:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever an operator writes, the answer is a configuration or an error
        /// naming the setting, never a panic, and never the password.
        #[test]
        fn any_input_is_accepted_or_named_without_leaking_the_password(
            bind in proptest::prop_oneof![proptest::strategy::Just("127.0.0.1:8000".to_owned()), ".{0,40}"],
            host in "[a-z0-9.:@/%?=_-]{0,30}",
            timeout in proptest::prop_oneof![proptest::strategy::Just("500ms".to_owned()), ".{0,12}"],
        ) {
            let url = format!("redis://:Pw-s3cret@{host}");
            let argv = [
                "page-tracker".to_owned(),
                format!("--bind={bind}"),
                format!("--redis-url={url}"),
                format!("--redis-response-timeout={timeout}"),
            ];
            if let Ok(args) = Args::try_parse_from(argv) {
                match Config::try_from(args) {
                    Ok(config) => {
                        let shown = format!("{config:?}");
                        proptest::prop_assert!(!shown.contains("Pw-s3cret"));
                        proptest::prop_assert!(!config.redis.to_string().contains("Pw-s3cret"));
                    }
                    Err(err) => {
                        let message = err.to_string();
                        proptest::prop_assert!(message.starts_with("invalid "), "{}", message);
                        proptest::prop_assert!(!message.contains("Pw-s3cret"), "{}", message);
                    }
                }
            }
        }
    }

    #[test]
    fn a_connection_limit_of_zero_is_rejected() {
        assert!(Args::try_parse_from(["page-tracker", "--max-connections=0"]).is_err());
    }

    #[test]
    fn a_bind_address_without_a_port_is_rejected_by_name() {
        let err = config(&["--bind=0.0.0.0"]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Bind {
                value: "0.0.0.0".to_owned()
            }
        );
        assert!(err.to_string().contains("PAGE_TRACKER_BIND"));
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_given() {
        assert_eq!(config(&[]).unwrap().metrics_bind, None);
        assert_eq!(config(&["--metrics-bind="]).unwrap().metrics_bind, None);
        assert_eq!(
            config(&["--metrics-bind=0.0.0.0:9000"])
                .unwrap()
                .metrics_bind,
            Some("0.0.0.0:9000".parse().unwrap())
        );
    }

    #[test]
    fn a_metrics_address_that_is_not_usable_is_rejected_by_name() {
        for bad in ["9000", "localhost:9000"] {
            let err = config(&[&format!("--metrics-bind={bad}")]).unwrap_err();
            assert!(err.to_string().contains("METRICS_BIND"), "{err}");
        }
        let err = config(&["--bind=0.0.0.0:8000", "--metrics-bind=0.0.0.0:8000"]).unwrap_err();
        assert!(err.to_string().contains("must differ"), "{err}");
    }

    #[test]
    fn ipv6_bind_addresses_are_accepted() {
        assert_eq!(config(&["--bind=[::]:8000"]).unwrap().bind.port(), 8000);
    }

    #[test]
    fn a_redis_url_with_an_unknown_scheme_is_rejected_without_echoing_it() {
        let err = config(&["--redis-url=http://user:s3cret@example:6379"]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("invalid --redis-url / REDIS_URL"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
    }

    #[test]
    fn an_empty_redis_url_is_rejected() {
        assert!(matches!(
            config(&["--redis-url="]),
            Err(ConfigError::RedisUrl { .. })
        ));
    }

    #[test]
    fn passwords_and_database_indexes_are_understood_and_never_displayed() {
        let config = config(&["--redis-url=redis://:s3cret@cache.internal:6380/2"]).unwrap();
        let info = config.redis.connection_info();
        assert_eq!(info.redis_settings().password(), Some("s3cret"));
        assert_eq!(config.redis.to_string(), "redis://cache.internal:6380/2");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn tls_urls_are_accepted() {
        let config = config(&["--redis-url=rediss://cache.internal:6380"]).unwrap();
        assert_eq!(config.redis.to_string(), "rediss://cache.internal:6380/0");
    }

    #[test]
    fn timeouts_take_units() {
        let config = config(&[
            "--redis-connect-timeout=2s",
            "--redis-response-timeout=250ms",
        ])
        .unwrap();
        assert_eq!(config.redis_timeouts.connect, Duration::from_secs(2));
        assert_eq!(config.redis_timeouts.response, Duration::from_millis(250));
    }

    #[test]
    fn the_drain_delay_may_be_zero_but_not_unitless_or_huge() {
        assert_eq!(config(&[]).unwrap().limits.drain_delay, Duration::ZERO);
        assert_eq!(
            config(&["--drain-delay=5s"]).unwrap().limits.drain_delay,
            Duration::from_secs(5)
        );
        for bad in ["5", "2h", "-1s"] {
            let err = config(&[&format!("--drain-delay={bad}")]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Timeout { setting, .. } if setting.contains("DRAIN_DELAY")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn timeouts_may_be_anywhere_from_one_millisecond_to_sixty_seconds() {
        for (written, expected) in [
            ("1ms", Duration::from_millis(1)),
            ("60s", Duration::from_secs(60)),
            ("1m", Duration::from_secs(60)),
        ] {
            let config = config(&[&format!("--request-timeout={written}")]).unwrap();
            assert_eq!(config.request_timeout, expected, "{written}");
        }
        let err = config(&["--request-timeout=60001ms"]).unwrap_err();
        assert!(err.to_string().contains("must be at most 1m"), "{err}");
    }

    #[test]
    fn the_redis_target_prints_without_its_password() {
        let config = config(&["--redis-url=redis://admin:s3cret@cache.internal:6380/2"]).unwrap();
        assert_eq!(
            format!("{:?}", config.redis),
            "redis://cache.internal:6380/2"
        );
    }

    #[test]
    fn zero_unitless_and_huge_timeouts_are_rejected() {
        for bad in ["0s", "500", "2h", "soon"] {
            let err = config(&[&format!("--redis-response-timeout={bad}")]).unwrap_err();
            assert!(
                matches!(err, ConfigError::Timeout { setting, .. } if setting.contains("REDIS_RESPONSE_TIMEOUT")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn sentinels_are_read_as_a_list_and_blank_means_one_server() {
        let parsed = config(&[
            "--redis-url=rediss://page-tracker:s3cret@ignored/3",
            "--redis-sentinels= s1:26379, 10.0.0.2:26380,[::1]:26381 ",
            "--redis-sentinel-service=counts",
            "--redis-sentinel-password=hush",
        ])
        .unwrap();
        let sentinels = parsed.redis.sentinels().unwrap();
        assert_eq!(
            sentinels.addresses,
            [
                ("s1".to_owned(), 26379),
                ("10.0.0.2".to_owned(), 26380),
                ("::1".to_owned(), 26381)
            ]
        );
        assert_eq!(sentinels.service(), "counts");
        assert_eq!(sentinels.password.as_deref(), Some("hush"));
        let shown = format!("{:?}", parsed.redis);
        assert_eq!(
            shown,
            r#"rediss primary "counts" named by sentinels s1:26379,10.0.0.2:26380,::1:26381 (db 3)"#
        );
        assert_eq!(parsed.redis.sentinel_clients(sentinels).unwrap().len(), 3);

        for blank in ["", "  "] {
            let parsed = config(&[&format!("--redis-sentinels={blank}")]).unwrap();
            assert!(parsed.redis.sentinels().is_none(), "{blank:?}");
        }
        let parsed = config(&["--redis-sentinels=s1:26379"]).unwrap();
        let sentinels = parsed.redis.sentinels().unwrap();
        assert_eq!(sentinels.service(), "page-tracker");
        assert_eq!(sentinels.password, None);
    }

    #[test]
    fn unusable_sentinel_settings_are_named() {
        for bad in [
            "s1",
            "s1:0",
            "s1:99999",
            ":26379",
            "s1:26379,,s2:26379",
            "redis://s1:26379",
            "user@s1:26379",
            "[not-v6]:26379",
            "a b:26379",
        ] {
            let err = config(&[&format!("--redis-sentinels={bad}")]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Sentinels { setting, value, .. }
                    if setting.contains("REDIS_SENTINELS") && value == bad.trim()),
                "{bad}: {err}"
            );
        }
        for bad in ["", "two words"] {
            let err = config(&[
                "--redis-sentinels=s1:26379",
                &format!("--redis-sentinel-service={bad}"),
            ])
            .unwrap_err();
            assert!(
                matches!(&err, ConfigError::Sentinels { setting, .. } if setting.contains("REDIS_SENTINEL_SERVICE")),
                "{bad:?}: {err}"
            );
        }
        let err = config(&[
            "--redis-url=unix:///run/redis.sock",
            "--redis-sentinels=s1:26379",
        ])
        .unwrap_err();
        assert!(matches!(err, ConfigError::RedisUrl { .. }), "{err}");
    }
}
