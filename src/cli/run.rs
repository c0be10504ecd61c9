//! `hotspot run`: the live service (see [`crate::service`]). Settings come
//! from `--config FILE` and these flags; flags win.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::fluvio_settings::{StartAt, parse_partitions};
use crate::service::config::{
    EmailRoute, FileConfig, LogFormat, OptionalDuration, Webhook, WebhookSecret,
    apply_webhook_secrets, parse_duration_value, parse_email, parse_listen, parse_mailbox,
    parse_offset, parse_optional_duration, parse_public_url, parse_size, parse_smtp_server,
    parse_webhook, parse_webhook_secret, set,
};
use crate::service::{self, Settings};
use crate::sink::robot::Secret;

/// The partitions of `--partitions 0,2`.
#[derive(Debug, Clone)]
pub struct PartitionList(pub Vec<u32>);

fn partition_list(s: &str) -> Result<PartitionList, String> {
    parse_partitions(s)
        .map(PartitionList)
        .map_err(|e| format!("{e:#}"))
}

fn log_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}

fn start_at(s: &str) -> Result<StartAt, String> {
    s.parse::<StartAt>().map_err(|e| format!("{e:#}"))
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file (TOML) with any of the settings below; flags win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rules file (TOML). Default: the embedded fixture library.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080: loopback only).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Append alert lines to this file.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// POST a department's alerts to a URL (repeatable; department `*` gets
    /// all): the alert object, or with FORMAT+ (wecom, dingtalk, feishu) that
    /// group robot's message.
    #[arg(long, value_name = "DEPARTMENT=[FORMAT+]URL", value_parser = parse_webhook)]
    pub webhook: Vec<Webhook>,
    /// Sign the department's DingTalk and Feishu webhook requests with this
    /// secret (repeatable).
    #[arg(long, value_name = "DEPARTMENT=SECRET", value_parser = parse_webhook_secret)]
    pub webhook_secret: Vec<WebhookSecret>,
    /// The status page's address as people reach it, for the links in
    /// notifications (default http://LISTEN).
    #[arg(long, value_name = "URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// E-mail a department's alerts to these addresses (repeatable;
    /// department `*` gets all). Needs --smtp and --smtp-from.
    #[arg(long, value_name = "DEPARTMENT=ADDR[,ADDR]", value_parser = parse_email)]
    pub email: Vec<EmailRoute>,
    /// SMTP server for --email, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_smtp_server)]
    pub smtp: Option<(String, u16)>,
    /// Sender of the e-mails, e.g. "hotspot <hotspot@example.com>".
    #[arg(long, value_name = "ADDRESS", value_parser = parse_mailbox)]
    pub smtp_from: Option<lettre::message::Mailbox>,
    /// Upgrade the SMTP connection with STARTTLS (builds with `--features tls`).
    #[arg(long)]
    pub smtp_starttls: bool,
    /// SMTP login user name (the password from HOTSPOT_SMTP_PASSWORD).
    #[arg(long, value_name = "USER")]
    pub smtp_user: Option<String>,
    /// SMTP login password.
    #[arg(
        long,
        env = "HOTSPOT_SMTP_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    pub smtp_password: Option<String>,
    /// Alertmanager base URL, e.g. http://127.0.0.1:9093.
    #[arg(long, value_name = "URL")]
    pub alertmanager: Option<String>,
    /// How often open alerts are re-sent to Alertmanager (default 60s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_value)]
    pub alertmanager_resend: Option<Duration>,
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
    #[arg(long, value_name = "DURATION", value_parser = parse_optional_duration)]
    pub idle_timeout: Option<OptionalDuration>,
    /// How often state is checkpointed with --state-dir (default 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_value)]
    pub checkpoint_interval: Option<Duration>,
    /// How long an `Idempotency-Key` of POST /v1/complaints is remembered
    /// (default 24h; journaled, so it survives restarts).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_value)]
    pub idempotency_horizon: Option<Duration>,
    /// Bearer token required by POST endpoints.
    #[arg(long, env = "HOTSPOT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The time zone of the status page's times, a UTC offset (default
    /// +08:00).
    #[arg(long, value_name = "OFFSET", value_parser = parse_offset, allow_hyphen_values = true)]
    pub display_offset: Option<i32>,
    /// Log format: human or json (level from RUST_LOG, default info).
    #[arg(long, value_name = "FORMAT", value_parser = log_format)]
    pub log_format: Option<LogFormat>,
    /// The most (business, region) keys held at once.
    #[arg(long)]
    pub max_keys: Option<usize>,
    /// Largest accepted request body (default 16MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_body: Option<usize>,
    /// Bytes of request bodies being read or processed at once, the larger
    /// of this and --max-body (default 64MiB); beyond it intake answers 429.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub body_budget: Option<usize>,
    /// How long a request body may take to arrive (default 30s; 408 beyond).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_value)]
    pub body_timeout: Option<Duration>,
    /// How long a request's head may take to arrive, also the idle
    /// keep-alive timeout (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_value)]
    pub header_timeout: Option<Duration>,
    /// HTTP connections served at once; more wait (default 512).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Batches waiting for the engine before intake answers 429.
    #[arg(long)]
    pub queue: Option<usize>,
    /// First wait after a failed delivery (default 200ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_value)]
    pub retry_initial: Option<Duration>,
    /// Longest wait between delivery attempts (default 30s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_value)]
    pub retry_max: Option<Duration>,
    /// Fluvio SC endpoint, e.g. 127.0.0.1:9003.
    #[arg(long, value_name = "HOST:PORT")]
    pub fluvio_endpoint: Option<String>,
    /// Consume complaints from this Fluvio topic.
    #[arg(long, value_name = "TOPIC")]
    pub fluvio_topic: Option<String>,
    /// The topic's partitions this instance owns, e.g. 0,2 (default: all).
    #[arg(long, value_name = "LIST", value_parser = partition_list)]
    pub partitions: Option<PartitionList>,
    /// Produce alert lines to this Fluvio topic (key = alert_id).
    #[arg(long, value_name = "TOPIC")]
    pub fluvio_alerts_topic: Option<String>,
    /// Produce dead letters to this Fluvio topic (key = source).
    #[arg(long, value_name = "TOPIC")]
    pub fluvio_dead_letter_topic: Option<String>,
    /// Where a partition with no saved position starts: beginning or end
    /// (default beginning).
    #[arg(long, value_name = "WHERE", value_parser = start_at)]
    pub fluvio_start: Option<StartAt>,
    /// Largest fetch the Fluvio consumer asks for (e.g. 1MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub fluvio_max_bytes: Option<usize>,
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
        let mut s = Settings::default();
        if let Some(p) = &self.config {
            FileConfig::read(p)?.apply(&mut s);
        }
        self.apply(&mut s);
        apply_webhook_secrets(&mut s.webhooks, &self.webhook_secret).map_err(anyhow::Error::msg)?;
        s.smtp()?;
        s.check_webhooks()?;
        s.fluvio.check()?;
        Ok(s)
    }

    /// Sets what the flags give.
    fn apply(&self, s: &mut Settings) {
        set(&mut s.rules, self.rules.clone().map(Some));
        set(&mut s.listen, self.listen);
        set(&mut s.alerts, self.alerts.clone().map(Some));
        s.webhooks.extend(self.webhook.iter().cloned());
        set(&mut s.public_url, self.public_url.clone().map(Some));
        s.emails.extend(self.email.iter().cloned());
        let m = &mut s.smtp;
        set(&mut m.server, self.smtp.clone().map(Some));
        set(&mut m.from, self.smtp_from.clone().map(Some));
        m.starttls |= self.smtp_starttls;
        set(&mut m.username, self.smtp_user.clone().map(Some));
        set(
            &mut m.password,
            self.smtp_password.clone().map(|p| Some(Secret(p))),
        );
        set(&mut s.alertmanager, self.alertmanager.clone().map(Some));
        set(&mut s.alertmanager_resend, self.alertmanager_resend);
        set(&mut s.state_dir, self.state_dir.clone().map(Some));
        set(&mut s.dead_letter, self.dead_letter.clone().map(Some));
        s.stdin |= self.stdin;
        s.follow.extend(self.follow.iter().cloned());
        set(&mut s.idle_timeout, self.idle_timeout.map(|d| d.0));
        set(&mut s.checkpoint_interval, self.checkpoint_interval);
        set(&mut s.idempotency_horizon, self.idempotency_horizon);
        set(&mut s.token, self.token.clone().map(Some));
        set(&mut s.display_offset_min, self.display_offset);
        set(
            &mut s.log_json,
            self.log_format.map(|f| f == LogFormat::Json),
        );
        set(&mut s.max_keys, self.max_keys);
        set(&mut s.max_body, self.max_body);
        set(&mut s.body_budget, self.body_budget);
        set(&mut s.body_timeout, self.body_timeout);
        set(&mut s.header_timeout, self.header_timeout);
        set(
            &mut s.max_connections,
            self.max_connections.map(|n| n.max(1)),
        );
        set(&mut s.queue, self.queue.map(|q| q.max(1)));
        set(&mut s.retry.initial, self.retry_initial);
        set(&mut s.retry.max, self.retry_max);
        let f = &mut s.fluvio;
        set(&mut f.endpoint, self.fluvio_endpoint.clone().map(Some));
        set(&mut f.topic, self.fluvio_topic.clone().map(Some));
        set(
            &mut f.partitions,
            self.partitions.clone().map(|p| Some(p.0)),
        );
        set(
            &mut f.alerts_topic,
            self.fluvio_alerts_topic.clone().map(Some),
        );
        set(
            &mut f.dead_letter_topic,
            self.fluvio_dead_letter_topic.clone().map(Some),
        );
        set(&mut f.start, self.fluvio_start);
        set(&mut f.max_bytes, self.fluvio_max_bytes.map(Some));
        let t = &mut f.tls;
        t.on |= self.fluvio_tls;
        set(&mut t.domain, self.fluvio_tls_domain.clone().map(Some));
        set(&mut t.ca_cert, self.fluvio_tls_ca_cert.clone().map(Some));
        set(&mut t.cert, self.fluvio_tls_cert.clone().map(Some));
        set(&mut t.key, self.fluvio_tls_key.clone().map(Some));
    }
}

/// Sets up `tracing` (RUST_LOG, default `info`, with the fluvio client's
/// chatty connection messages at `warn`), human or JSON, on stderr.
pub(crate) fn init_logging(json: bool) {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn args(argv: &[&str]) -> Result<super::Args, clap::Error> {
        let cli = Cli::try_parse_from([&["hotspot", "run"], argv].concat())?;
        match cli.command {
            Some(Command::Run(a)) => Ok(*a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotspot.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:9999\"\nidle_timeout = \"1m\"\nbody_timeout = \"5s\"\nlog_format = \"json\"\n\n[[webhook]]\ndepartment = \"net\"\nurl = \"http://127.0.0.1:1/net\"\n",
        )
        .unwrap();
        let a = args(&[
            "--config",
            p.to_str().unwrap(),
            "--idle-timeout",
            "off",
            "--header-timeout",
            "3s",
            "--log-format",
            "human",
            "--webhook",
            "vas=http://127.0.0.1:1/vas",
            "--partitions",
            "2,0,2",
            "--fluvio-topic",
            "complaints",
            "--fluvio-endpoint",
            "127.0.0.1:9003",
            "--max-connections",
            "8",
        ])
        .unwrap();
        let s = a.settings().unwrap();
        assert_eq!(s.listen.port(), 9999, "from the file");
        assert_eq!(s.idle_timeout, None, "the flag wins");
        assert_eq!(s.body_timeout, Duration::from_secs(5), "from the file");
        assert_eq!(s.header_timeout, Duration::from_secs(3), "from the flag");
        assert!(!s.log_json, "the flag wins");
        assert_eq!(s.max_connections, 8);
        assert_eq!(s.body_budget, 64 << 20, "the default");
        let deps: Vec<&str> = s.webhooks.iter().map(|w| w.department.as_str()).collect();
        assert_eq!(deps, ["net", "vas"], "the flags add to the file's");
        assert_eq!(s.fluvio.partitions, Some(vec![0, 2]));
    }

    #[test]
    fn webhook_secrets_from_flags_sign_the_files_robots_too() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotspot.toml");
        std::fs::write(
            &p,
            "[[webhook]]\ndepartment = \"net\"\nformat = \"feishu\"\nurl = \"http://127.0.0.1:1/f\"\nsecret = \"from-file\"\n\n[smtp]\nserver = \"127.0.0.1:25\"\n",
        )
        .unwrap();
        let a = args(&[
            "--config",
            p.to_str().unwrap(),
            "--webhook",
            "net=dingtalk+http://127.0.0.1:1/d",
            "--webhook-secret",
            "net=from-flag",
            "--email",
            "net=noc@example.com",
            "--smtp-from",
            "hotspot@example.com",
        ])
        .unwrap();
        let s = a.settings().unwrap();
        let secrets: Vec<&str> = s
            .webhooks
            .iter()
            .map(|w| w.secret.as_ref().unwrap().0.as_str())
            .collect();
        assert_eq!(secrets, ["from-flag", "from-flag"], "the flag wins");
        let smtp = s.smtp().unwrap().unwrap();
        assert_eq!(smtp.port, 25, "the file's server, the flag's sender");
        assert_eq!(smtp.from.email.to_string(), "hotspot@example.com");
        let e = args(&[
            "--webhook",
            "net=http://127.0.0.1:1/j",
            "--webhook-secret",
            "net=s",
        ])
        .unwrap()
        .settings()
        .unwrap_err()
        .to_string();
        assert!(e.contains("no dingtalk or feishu webhook"), "{e}");
    }

    #[test]
    fn a_bad_flag_value_is_refused_by_its_parser() {
        for (flag, value, want) in [
            ("--max-body", "16 parsecs", "invalid size"),
            (
                "--listen",
                "localhost",
                "is not an address like 127.0.0.1:8080",
            ),
            ("--idle-timeout", "5 minutes", "invalid duration"),
            ("--body-timeout", "soon", "invalid duration"),
            ("--webhook", "vas", "expected DEPARTMENT=URL"),
            ("--webhook", "vas=ftp://x", "http:// or https://"),
            ("--log-format", "xml", "expected \"human\" or \"json\""),
            (
                "--webhook",
                "vas=slack+http://x",
                "expected a format of json",
            ),
            ("--webhook-secret", "vas", "expected DEPARTMENT=SECRET"),
            ("--email", "vas=nobody", "is not an e-mail address"),
            ("--smtp", "mail:x", "expected HOST:PORT"),
            ("--smtp-from", "nobody", "is not an e-mail address"),
            (
                "--public-url",
                "status.example",
                "the status page's base URL",
            ),
            ("--partitions", "0,x", "is not a partition number"),
            (
                "--fluvio-start",
                "middle",
                "expected \"beginning\" or \"end\"",
            ),
        ] {
            let e = args(&[flag, value]).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{flag} {value}"
            );
            let why = std::error::Error::source(&e).unwrap().to_string();
            assert!(why.contains(want), "{flag} {value}: {why}");
        }
    }
}
