//! `hotspot run`: the live service (see [`crate::service`]). Settings come
//! from `--config FILE` and these flags; flags win.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::fluvio_settings::parse_partitions;
use crate::service::config::{parse_size, parse_webhook};
use crate::service::{self, Settings};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file (TOML) with any of the settings below; flags win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rules file (TOML). Default: the embedded fixture library.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080: loopback only).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Append alert lines to this file.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// POST a department's alerts to a URL (repeatable; department `*` gets all).
    #[arg(long, value_name = "DEPARTMENT=URL")]
    pub webhook: Vec<String>,
    /// Alertmanager base URL, e.g. http://127.0.0.1:9093.
    #[arg(long, value_name = "URL")]
    pub alertmanager: Option<String>,
    /// How often open alerts are re-sent to Alertmanager (default 60s).
    #[arg(long, value_name = "DURATION")]
    pub alertmanager_resend: Option<String>,
    /// Directory for the journal, checkpoints and the outbox: nothing is
    /// lost or delivered twice across restarts.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Write rejected lines here.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Read complaint lines from standard input too.
    #[arg(long)]
    pub stdin: bool,
    /// Follow a growing file like `tail -F` (repeatable).
    #[arg(long, value_name = "FILE")]
    pub follow: Vec<PathBuf>,
    /// With no record for this long, the watermark moves on with the wall
    /// clock (default 5m; `off` disables).
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
    /// How often state is checkpointed with --state-dir (default 5s).
    #[arg(long, value_name = "DURATION")]
    pub checkpoint_interval: Option<String>,
    /// How long an `Idempotency-Key` of POST /v1/complaints is remembered
    /// (default 24h; journaled, so it survives restarts).
    #[arg(long, value_name = "DURATION")]
    pub idempotency_horizon: Option<String>,
    /// Bearer token required by POST endpoints.
    #[arg(long, env = "HOTSPOT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Log format: human or json (level from RUST_LOG, default info).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// The most (business, region) keys held at once.
    #[arg(long)]
    pub max_keys: Option<usize>,
    /// Largest accepted request body (default 16MiB).
    #[arg(long, value_name = "SIZE")]
    pub max_body: Option<String>,
    /// Batches waiting for the engine before intake answers 429.
    #[arg(long)]
    pub queue: Option<usize>,
    /// First wait after a failed delivery (default 200ms).
    #[arg(long, value_name = "DURATION")]
    pub retry_initial: Option<String>,
    /// Longest wait between delivery attempts (default 30s).
    #[arg(long, value_name = "DURATION")]
    pub retry_max: Option<String>,
    /// Fluvio SC endpoint, e.g. 127.0.0.1:9003.
    #[arg(long, value_name = "HOST:PORT")]
    pub fluvio_endpoint: Option<String>,
    /// Consume complaints from this Fluvio topic.
    #[arg(long, value_name = "TOPIC")]
    pub fluvio_topic: Option<String>,
    /// The topic's partitions this instance owns, e.g. 0,2 (default: all).
    #[arg(long, value_name = "LIST")]
    pub partitions: Option<String>,
    /// Produce alert lines to this Fluvio topic (key = alert_id).
    #[arg(long, value_name = "TOPIC")]
    pub fluvio_alerts_topic: Option<String>,
    /// Produce dead letters to this Fluvio topic (key = source).
    #[arg(long, value_name = "TOPIC")]
    pub fluvio_dead_letter_topic: Option<String>,
    /// Where a partition with no saved position starts: beginning or end
    /// (default beginning).
    #[arg(long, value_name = "WHERE")]
    pub fluvio_start: Option<String>,
    /// Largest fetch the Fluvio consumer asks for (e.g. 1MiB).
    #[arg(long, value_name = "SIZE")]
    pub fluvio_max_bytes: Option<String>,
    /// TLS to the Fluvio cluster.
    #[arg(long)]
    pub fluvio_tls: bool,
    /// The name on the cluster's certificate (default: the endpoint's host).
    #[arg(long, value_name = "NAME")]
    pub fluvio_tls_domain: Option<String>,
    /// CA certificate (PEM) that signed the cluster's certificate.
    #[arg(long, value_name = "FILE")]
    pub fluvio_tls_ca_cert: Option<PathBuf>,
    /// hotspot's client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub fluvio_tls_cert: Option<PathBuf>,
    /// hotspot's client key (PEM).
    #[arg(long, value_name = "FILE")]
    pub fluvio_tls_key: Option<PathBuf>,
}

impl Args {
    /// The settings: defaults, then the config file, then flags.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = match &self.config {
            Some(p) => Settings::from_file(p)?,
            None => Settings::default(),
        };
        if let Some(r) = &self.rules {
            s.rules = Some(r.clone());
        }
        if let Some(l) = &self.listen {
            s.listen = l.parse().map_err(|_| {
                anyhow::anyhow!("--listen {l:?} is not an address like 127.0.0.1:8080")
            })?;
        }
        if let Some(a) = &self.alerts {
            s.alerts = Some(a.clone());
        }
        for w in &self.webhook {
            s.webhooks.push(parse_webhook(w)?);
        }
        if let Some(a) = &self.alertmanager {
            s.alertmanager = Some(a.clone());
        }
        if let Some(r) = &self.alertmanager_resend {
            s.set_resend(r)?;
        }
        if let Some(d) = &self.state_dir {
            s.state_dir = Some(d.clone());
        }
        if let Some(d) = &self.dead_letter {
            s.dead_letter = Some(d.clone());
        }
        s.stdin |= self.stdin;
        s.follow.extend(self.follow.iter().cloned());
        if let Some(t) = &self.idle_timeout {
            s.set_idle_timeout(t)?;
        }
        if let Some(t) = &self.checkpoint_interval {
            s.set_checkpoint_interval(t)?;
        }
        if let Some(t) = &self.idempotency_horizon {
            s.set_idempotency_horizon(t)?;
        }
        if let Some(t) = &self.token {
            s.token = Some(t.clone());
        }
        match self.log_format.as_deref() {
            None => {}
            Some("human") => s.log_json = false,
            Some("json") => s.log_json = true,
            Some(o) => anyhow::bail!("--log-format {o:?}: expected human or json"),
        }
        if let Some(m) = self.max_keys {
            s.max_keys = m;
        }
        if let Some(b) = &self.max_body {
            s.max_body = parse_size(b)?;
        }
        if let Some(q) = self.queue {
            s.queue = q.max(1);
        }
        s.set_retry(self.retry_initial.as_deref(), self.retry_max.as_deref())?;
        let f = &mut s.fluvio;
        if let Some(e) = &self.fluvio_endpoint {
            f.endpoint = Some(e.clone());
        }
        if let Some(t) = &self.fluvio_topic {
            f.topic = Some(t.clone());
        }
        if let Some(p) = &self.partitions {
            f.partitions = Some(parse_partitions(p)?);
        }
        if let Some(t) = &self.fluvio_alerts_topic {
            f.alerts_topic = Some(t.clone());
        }
        if let Some(t) = &self.fluvio_dead_letter_topic {
            f.dead_letter_topic = Some(t.clone());
        }
        if let Some(st) = &self.fluvio_start {
            f.start = st
                .parse()
                .map_err(|e| anyhow::anyhow!("--fluvio-start: {e}"))?;
        }
        if let Some(m) = &self.fluvio_max_bytes {
            f.max_bytes = Some(parse_size(m)?);
        }
        let t = &mut f.tls;
        t.on |= self.fluvio_tls;
        if let Some(d) = &self.fluvio_tls_domain {
            t.domain = Some(d.clone());
        }
        for (to, from) in [
            (&mut t.ca_cert, &self.fluvio_tls_ca_cert),
            (&mut t.cert, &self.fluvio_tls_cert),
            (&mut t.key, &self.fluvio_tls_key),
        ] {
            if let Some(p) = from {
                *to = Some(p.clone());
            }
        }
        f.check()?;
        Ok(s)
    }
}

/// Sets up `tracing` (RUST_LOG, default `info`, with the fluvio client's
/// chatty connection messages at `warn`), human or JSON, on stderr.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,fluvio=warn,fluvio_socket=warn,fluvio_future=warn,fluvio_protocol=warn",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = args.settings()?;
    init_logging(settings.log_json);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .thread_name("hotspot-io")
        .build()?;
    rt.block_on(service::run(settings))?;
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    Ok(ExitCode::SUCCESS)
}
