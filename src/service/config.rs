//! Settings of `hotspot run`: a TOML config file (`--config`) gives every
//! setting, command-line flags override it, and defaults fill the rest.
//! Relative paths in a config file are relative to the file's directory.
//! `fixtures/hotspot.toml` is a complete, commented example.
//!
//! Every value is parsed once, where it is read: the config file's by
//! serde (`deserialize_with` the parsers below), the flags' by clap value
//! parsers (`cli::run`) with the same parsers. Both layers hold typed,
//! optional values, applied over [`Settings::default`] in order: the file,
//! then the flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Deserializer};

use crate::fluvio_settings::{FluvioSettings, FluvioTlsOptions, StartAt};
use crate::retry::RetryPolicy;
use crate::sink::email::SmtpSettings;
use crate::sink::notify::Format;
use crate::sink::robot::Secret;
use crate::time::parse_duration;

/// The config file, parsed: every value typed, `None` where the file does
/// not set it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub rules: Option<PathBuf>,
    #[serde(default, deserialize_with = "de::addr")]
    pub listen: Option<SocketAddr>,
    pub alerts: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "de::optional_duration")]
    pub idle_timeout: Option<OptionalDuration>,
    #[serde(default, deserialize_with = "de::duration")]
    pub checkpoint_interval: Option<Duration>,
    #[serde(default, deserialize_with = "de::duration")]
    pub idempotency_horizon: Option<Duration>,
    pub max_keys: Option<usize>,
    pub token: Option<String>,
    #[serde(default, deserialize_with = "de::parsed")]
    pub log_format: Option<LogFormat>,
    pub stdin: Option<bool>,
    #[serde(default)]
    pub follow: Vec<PathBuf>,
    #[serde(default, deserialize_with = "de::size")]
    pub max_body: Option<usize>,
    #[serde(default, deserialize_with = "de::size")]
    pub body_budget: Option<usize>,
    #[serde(default, deserialize_with = "de::duration")]
    pub body_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "de::duration")]
    pub header_timeout: Option<Duration>,
    pub max_connections: Option<usize>,
    pub queue: Option<usize>,
    #[serde(default)]
    pub webhook: Vec<Webhook>,
    #[serde(default, deserialize_with = "de::public_url")]
    pub public_url: Option<String>,
    #[serde(default)]
    pub email: Vec<EmailRoute>,
    pub smtp: Option<SmtpConfig>,
    pub alertmanager: Option<AlertmanagerConfig>,
    pub delivery: Option<DeliveryConfig>,
    pub fluvio: Option<FluvioConfig>,
    /// The status page's time zone, `+08:00`.
    #[serde(default, deserialize_with = "de::offset")]
    pub display_offset: Option<i32>,
}

/// The `[fluvio]` table: a complaints topic as a source, and topics for
/// alert lines and dead letters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FluvioConfig {
    /// The SC's public endpoint, `HOST:PORT` (Fluvio's default is 9003).
    pub endpoint: Option<String>,
    /// Complaints are consumed from this topic.
    pub topic: Option<String>,
    /// Partitions of `topic` this instance owns (default: all).
    pub partitions: Option<Vec<u32>>,
    /// Alert lines are produced here, keyed by `alert_id`.
    pub alerts_topic: Option<String>,
    /// Rejected lines are produced here, keyed by source.
    pub dead_letter_topic: Option<String>,
    /// TLS to the cluster (default false).
    pub tls: Option<bool>,
    /// The name the cluster's certificate must carry (default: the
    /// endpoint's host).
    pub tls_domain: Option<String>,
    /// The certificate authority that signed the cluster's certificate.
    pub tls_ca_cert: Option<PathBuf>,
    /// hotspot's own certificate and key (Fluvio's verified TLS is mutual).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Where a partition without a saved position starts: `beginning` or `end`.
    #[serde(default, deserialize_with = "de::parsed")]
    pub start: Option<StartAt>,
    /// Largest fetch the consumer asks for, e.g. `1MiB`.
    #[serde(default, deserialize_with = "de::size")]
    pub max_bytes: Option<usize>,
}

/// A department's webhook: `[[webhook]]` in the file, `--webhook
/// DEPARTMENT=[FORMAT+]URL` on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WebhookConfig")]
pub struct Webhook {
    /// A department, or `*` for every alert.
    pub department: String,
    pub url: String,
    /// The message: the alert object (`json`) or a group robot's.
    pub format: Format,
    /// Signs DingTalk and Feishu requests.
    pub secret: Option<Secret>,
}

/// A `[[webhook]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub department: String,
    pub url: String,
    #[serde(default, deserialize_with = "de::parsed")]
    pub format: Option<Format>,
    pub secret: Option<String>,
}

impl TryFrom<WebhookConfig> for Webhook {
    type Error = String;
    fn try_from(w: WebhookConfig) -> Result<Webhook, String> {
        let mut h = Webhook::new(&w.department, &w.url).map_err(|e| format!("[[webhook]]: {e}"))?;
        if let Some(f) = w.format {
            if h.format != Format::Json && h.format != f {
                return Err(format!(
                    "[[webhook]]: format {:?} and a {}+ URL disagree",
                    f.as_str(),
                    h.format.as_str()
                ));
            }
            h.format = f;
        }
        if let Some(secret) = w.secret {
            h.set_secret(Secret(secret))
                .map_err(|e| format!("[[webhook]]: {e}"))?;
        }
        Ok(h)
    }
}

impl Webhook {
    /// `url` may start with `FORMAT+` (`dingtalk+https://…`).
    fn new(department: &str, url: &str) -> Result<Webhook, String> {
        let (d, u) = (department.trim(), url.trim());
        let (format, u) = match u.split_once('+') {
            Some((f, rest)) if !f.contains(':') && !f.contains('/') => (f.parse::<Format>()?, rest),
            _ => (Format::Json, u),
        };
        if d.is_empty() || !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(format!(
                "\"{department}={url}\": expected DEPARTMENT=URL or DEPARTMENT=FORMAT+URL with an http:// or https:// URL"
            ));
        }
        Ok(Webhook {
            department: d.to_owned(),
            url: u.to_owned(),
            format,
            secret: None,
        })
    }

    fn set_secret(&mut self, secret: Secret) -> Result<(), String> {
        if !self.format.signed() {
            return Err(format!(
                "a secret for the {} webhook of {:?}: only dingtalk and feishu requests are signed",
                self.format.as_str(),
                self.department
            ));
        }
        if secret.0.is_empty() {
            return Err(format!("an empty secret for {:?}", self.department));
        }
        self.secret = Some(secret);
        Ok(())
    }
}

/// `--webhook-secret DEPARTMENT=SECRET`: signs every DingTalk and Feishu
/// webhook of the department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    pub department: String,
    pub secret: Secret,
}

/// Parses `DEPARTMENT=SECRET`.
pub fn parse_webhook_secret(s: &str) -> Result<WebhookSecret, String> {
    match s.split_once('=') {
        Some((d, v)) if !d.trim().is_empty() && !v.is_empty() => Ok(WebhookSecret {
            department: d.trim().to_owned(),
            secret: Secret(v.to_owned()),
        }),
        _ => Err("expected DEPARTMENT=SECRET".into()),
    }
}

/// Gives each department's signed webhooks its secret; a secret for a
/// department without a DingTalk or Feishu webhook is a mistake.
pub fn apply_webhook_secrets(
    webhooks: &mut [Webhook],
    secrets: &[WebhookSecret],
) -> Result<(), String> {
    for s in secrets {
        let mut used = false;
        for w in webhooks
            .iter_mut()
            .filter(|w| w.department == s.department && w.format.signed())
        {
            w.set_secret(s.secret.clone())?;
            used = true;
        }
        if !used {
            return Err(format!(
                "--webhook-secret {}=…: the department has no dingtalk or feishu webhook",
                s.department
            ));
        }
    }
    Ok(())
}

/// `[[email]]` in the file, `--email DEPARTMENT=ADDR[,ADDR]` on the command
/// line: a department's alerts by e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "EmailConfig")]
pub struct EmailRoute {
    /// A department, or `*` for every alert.
    pub department: String,
    pub to: Vec<lettre::message::Mailbox>,
}

/// An `[[email]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub department: String,
    pub to: Vec<String>,
}

impl TryFrom<EmailConfig> for EmailRoute {
    type Error = String;
    fn try_from(e: EmailConfig) -> Result<EmailRoute, String> {
        parse_email(&format!("{}={}", e.department, e.to.join(",")))
            .map_err(|m| format!("[[email]]: {m}"))
    }
}

/// Parses `DEPARTMENT=ADDR[,ADDR]` (an address may be `名字 <a@b>`).
pub fn parse_email(s: &str) -> Result<EmailRoute, String> {
    let (d, list) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected DEPARTMENT=ADDRESS[,ADDRESS]"))?;
    let d = d.trim();
    let to = list
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("{a:?} is not an e-mail address: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if d.is_empty() || to.is_empty() {
        return Err(format!("{s:?}: expected DEPARTMENT=ADDRESS[,ADDRESS]"));
    }
    Ok(EmailRoute {
        department: d.to_owned(),
        to,
    })
}

/// The `[smtp]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `HOST:PORT` of the SMTP server.
    #[serde(default, deserialize_with = "de::smtp_server")]
    pub server: Option<(String, u16)>,
    /// The sender, e.g. `hotspot <hotspot@example.com>`.
    #[serde(default, deserialize_with = "de::mailbox")]
    pub from: Option<lettre::message::Mailbox>,
    pub starttls: Option<bool>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// SMTP settings as given, checked once all are in ([`Settings::smtp`]).
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    pub server: Option<(String, u16)>,
    pub from: Option<lettre::message::Mailbox>,
    pub starttls: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// Parses `HOST:PORT` (`HOST` alone: port 25; `[::1]:25` for IPv6).
pub fn parse_smtp_server(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{s:?}: expected HOST:PORT, e.g. 127.0.0.1:25"))?,
        ),
        _ => (s, 25),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{s:?}: expected HOST:PORT, e.g. 127.0.0.1:25"));
    }
    Ok((host.to_owned(), port))
}

/// Parses a sender such as `hotspot <hotspot@example.com>`.
pub fn parse_mailbox(s: &str) -> Result<lettre::message::Mailbox, String> {
    s.trim()
        .parse()
        .map_err(|e| format!("{s:?} is not an e-mail address: {e}"))
}

/// Parses `--public-url`: where people reach the status page
/// (`https://hotspot.example.com`), for the links in notifications.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    let u = s.trim();
    let ok = (u.starts_with("http://") || u.starts_with("https://"))
        && !u.contains(|c: char| c.is_whitespace() || "()<>\"'`".contains(c))
        && !u.contains('?')
        && !u.contains('#');
    if !ok {
        return Err(format!(
            "{s:?}: expected the status page's base URL, like https://hotspot.example.com"
        ));
    }
    Ok(u.trim_end_matches('/').to_owned())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    pub url: String,
    #[serde(default, deserialize_with = "de::duration")]
    pub resend: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    #[serde(default, deserialize_with = "de::duration")]
    pub retry_initial: Option<Duration>,
    #[serde(default, deserialize_with = "de::duration")]
    pub retry_max: Option<Duration>,
    #[serde(default, deserialize_with = "de::duration")]
    pub timeout: Option<Duration>,
    #[serde(default, deserialize_with = "de::duration")]
    pub drain: Option<Duration>,
}

/// A duration that `off` (or zero) turns off: `--idle-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

/// The log format on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<LogFormat, String> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            o => Err(format!("{o:?}: expected \"human\" or \"json\"")),
        }
    }
}

/// Everything the service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// None: the embedded fixture library.
    pub rules: Option<PathBuf>,
    pub listen: SocketAddr,
    pub alerts: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// None: no idle watermark.
    pub idle_timeout: Option<Duration>,
    pub checkpoint_interval: Duration,
    /// How long an `Idempotency-Key` of `POST /v1/complaints` is remembered.
    pub idempotency_horizon: Duration,
    pub max_keys: usize,
    pub token: Option<String>,
    pub log_json: bool,
    pub stdin: bool,
    pub follow: Vec<PathBuf>,
    /// Largest accepted request body, bytes (413 beyond).
    pub max_body: usize,
    /// Bytes of request bodies in flight at once (the larger of this and
    /// `max_body`); a request without room is answered 429.
    pub body_budget: usize,
    /// How long a request body may take to arrive (408 beyond).
    pub body_timeout: Duration,
    /// How long a request's head may take to arrive, which is also the
    /// idle keep-alive timeout.
    pub header_timeout: Duration,
    /// HTTP connections served at once.
    pub max_connections: usize,
    pub queue: usize,
    pub webhooks: Vec<Webhook>,
    /// The status page's base URL in notifications; None: `http://LISTEN`.
    pub public_url: Option<String>,
    pub emails: Vec<EmailRoute>,
    pub smtp: SmtpOptions,
    pub alertmanager: Option<String>,
    pub alertmanager_resend: Duration,
    pub retry: RetryPolicy,
    /// How long sinks may keep delivering after SIGTERM.
    pub drain: Duration,
    pub fluvio: FluvioSettings,
    /// The time zone the status page writes times in, minutes east of UTC
    /// (default +08:00, China Standard Time).
    pub display_offset_min: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rules: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            alerts: None,
            dead_letter: None,
            state_dir: None,
            idle_timeout: Some(Duration::from_secs(300)),
            checkpoint_interval: Duration::from_secs(5),
            idempotency_horizon: Duration::from_secs(24 * 3600),
            max_keys: crate::engine::EngineConfig::default().max_keys,
            token: None,
            log_json: false,
            stdin: false,
            follow: Vec::new(),
            max_body: 16 << 20,
            body_budget: 64 << 20,
            body_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
            queue: 256,
            webhooks: Vec::new(),
            public_url: None,
            emails: Vec::new(),
            smtp: SmtpOptions::default(),
            alertmanager: None,
            alertmanager_resend: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            drain: Duration::from_secs(8),
            fluvio: FluvioSettings::default(),
            display_offset_min: 8 * 60,
        }
    }
}

/// Parses `10MiB`, `512KiB`, `1MB`, `65536`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().map_err(|e| format!("invalid size {s:?}: {e}"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        u => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {u:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a duration such as `30s`, `5m`, `1h30m`, `500ms`.
pub fn parse_duration_value(s: &str) -> Result<Duration, String> {
    let ms = parse_duration(s).map_err(|e| e.to_string())?;
    Ok(Duration::from_millis(ms as u64))
}

/// A duration, or `off` (or zero) for none.
pub fn parse_optional_duration(s: &str) -> Result<OptionalDuration, String> {
    if s.trim() == "off" {
        return Ok(OptionalDuration(None));
    }
    let d = parse_duration_value(s)?;
    Ok(OptionalDuration((!d.is_zero()).then_some(d)))
}

/// Parses a listening address such as `127.0.0.1:8080`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:8080"))
}

/// Parses a UTC offset such as `+08:00`, `-05:30` or `Z`, into minutes
/// east of UTC.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if t == "Z" || t == "+00:00" || t == "-00:00" {
        return Ok(0);
    }
    let bad = || format!("{s:?} is not a UTC offset like +08:00");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 14 || m > 59 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

/// Parses `DEPARTMENT=URL` or `DEPARTMENT=FORMAT+URL`.
pub fn parse_webhook(s: &str) -> Result<Webhook, String> {
    let (d, u) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected DEPARTMENT=URL or DEPARTMENT=FORMAT+URL"))?;
    Webhook::new(d, u)
}

/// serde `deserialize_with` functions: each reads a string and parses it
/// with the parser the flags use, so both give the same values and errors.
mod de {
    use super::*;

    fn with<'de, D, T>(
        d: D,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let s = String::deserialize(d)?;
        parse(&s).map(Some).map_err(serde::de::Error::custom)
    }

    pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        with(d, parse_duration_value)
    }

    pub fn optional_duration<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OptionalDuration>, D::Error> {
        with(d, parse_optional_duration)
    }

    pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        with(d, parse_size)
    }

    pub fn addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        with(d, parse_listen)
    }

    pub fn offset<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
        with(d, parse_offset)
    }

    pub fn public_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        with(d, parse_public_url)
    }

    pub fn smtp_server<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(String, u16)>, D::Error> {
        with(d, parse_smtp_server)
    }

    pub fn mailbox<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<lettre::message::Mailbox>, D::Error> {
        with(d, parse_mailbox)
    }

    pub fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        with(d, |s| s.parse::<T>().map_err(|e| e.to_string()))
    }
}

/// Where a config file's error is: `FILE:LINE: ` and, for a value that
/// does not parse, the key (`delivery.retry_max: `).
fn locate(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return format!("{}: {}", path.display(), e.message().trim());
    };
    let at = span.start.min(text.len());
    let line_no = 1 + text[..at].matches('\n').count();
    let msg = e.message().trim();
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('[') && !msg.starts_with("unknown field"));
    match key {
        Some(k) => {
            let table = text[..at]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['))
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
            match table {
                Some(t) => format!("{}:{line_no}: {t}.{k}: {msg}", path.display()),
                None => format!("{}:{line_no}: {k}: {msg}", path.display()),
            }
        }
        None => format!("{}:{line_no}: {msg}", path.display()),
    }
}

impl FileConfig {
    /// Reads and parses a config file; relative paths are made relative to
    /// its directory.
    pub fn read(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut file: FileConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}", locate(path, &text, &e)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &mut PathBuf| {
            if !p.is_absolute() {
                *p = base.join(&*p);
            }
        };
        for p in [
            &mut file.rules,
            &mut file.alerts,
            &mut file.dead_letter,
            &mut file.state_dir,
        ]
        .into_iter()
        .flatten()
        {
            rel(p);
        }
        file.follow.iter_mut().for_each(rel);
        if let Some(f) = &mut file.fluvio {
            for p in [&mut f.tls_ca_cert, &mut f.tls_cert, &mut f.tls_key]
                .into_iter()
                .flatten()
            {
                rel(p);
            }
        }
        Ok(file)
    }

    /// Sets what the file gives.
    pub fn apply(self, s: &mut Settings) {
        set(&mut s.rules, self.rules.map(Some));
        set(&mut s.listen, self.listen);
        set(&mut s.alerts, self.alerts.map(Some));
        set(&mut s.dead_letter, self.dead_letter.map(Some));
        set(&mut s.state_dir, self.state_dir.map(Some));
        set(&mut s.idle_timeout, self.idle_timeout.map(|d| d.0));
        set(&mut s.checkpoint_interval, self.checkpoint_interval);
        set(&mut s.idempotency_horizon, self.idempotency_horizon);
        set(&mut s.max_keys, self.max_keys);
        set(&mut s.token, self.token.map(Some));
        set(
            &mut s.log_json,
            self.log_format.map(|f| f == LogFormat::Json),
        );
        set(&mut s.stdin, self.stdin);
        s.follow.extend(self.follow);
        set(&mut s.max_body, self.max_body);
        set(&mut s.body_budget, self.body_budget);
        set(&mut s.body_timeout, self.body_timeout);
        set(&mut s.header_timeout, self.header_timeout);
        set(
            &mut s.max_connections,
            self.max_connections.map(|n| n.max(1)),
        );
        set(&mut s.queue, self.queue.map(|q| q.max(1)));
        s.webhooks.extend(self.webhook);
        set(&mut s.display_offset_min, self.display_offset);
        set(&mut s.public_url, self.public_url.map(Some));
        s.emails.extend(self.email);
        if let Some(m) = self.smtp {
            set(&mut s.smtp.server, m.server.map(Some));
            set(&mut s.smtp.from, m.from.map(Some));
            set(&mut s.smtp.starttls, m.starttls);
            set(&mut s.smtp.username, m.username.map(Some));
            set(&mut s.smtp.password, m.password.map(|p| Some(Secret(p))));
        }
        if let Some(am) = self.alertmanager {
            s.alertmanager = Some(am.url);
            set(&mut s.alertmanager_resend, am.resend);
        }
        if let Some(d) = self.delivery {
            set(&mut s.retry.initial, d.retry_initial);
            set(&mut s.retry.max, d.retry_max);
            set(&mut s.retry.timeout, d.timeout);
            set(&mut s.drain, d.drain);
        }
        if let Some(f) = self.fluvio {
            let fl = &mut s.fluvio;
            fl.endpoint = f.endpoint;
            fl.topic = f.topic;
            if let Some(mut p) = f.partitions {
                p.sort_unstable();
                p.dedup();
                fl.partitions = Some(p);
            }
            fl.alerts_topic = f.alerts_topic;
            fl.dead_letter_topic = f.dead_letter_topic;
            fl.tls = FluvioTlsOptions {
                on: f.tls.unwrap_or(false),
                domain: f.tls_domain,
                ca_cert: f.tls_ca_cert,
                cert: f.tls_cert,
                key: f.tls_key,
            };
            set(&mut fl.start, f.start);
            set(&mut fl.max_bytes, f.max_bytes.map(Some));
        }
    }
}

/// Overwrites `to` with a value that was given.
pub fn set<T>(to: &mut T, given: Option<T>) {
    if let Some(v) = given {
        *to = v;
    }
}

impl Settings {
    /// Applies a config file over the defaults.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        FileConfig::read(path)?.apply(&mut s);
        Ok(s)
    }

    /// The SMTP server to send e-mail through: None without `--email`;
    /// an error when e-mail is asked for without a server or a sender, or
    /// a server is given with nothing to send.
    pub fn smtp(&self) -> anyhow::Result<Option<SmtpSettings>> {
        let o = &self.smtp;
        if self.emails.is_empty() {
            if o.server.is_some() {
                anyhow::bail!(
                    "--smtp (or [smtp]) is set but no --email (or [[email]]) says who gets mail"
                );
            }
            return Ok(None);
        }
        let Some((host, port)) = o.server.clone() else {
            anyhow::bail!("--email needs an SMTP server: --smtp HOST:PORT (or server in [smtp])");
        };
        let Some(from) = o.from.clone() else {
            anyhow::bail!("--email needs a sender: --smtp-from ADDRESS (or from in [smtp])");
        };
        if o.username.is_some() != o.password.is_some() {
            anyhow::bail!("an SMTP login needs both a user name and a password");
        }
        if o.starttls && !cfg!(feature = "tls") {
            anyhow::bail!(
                "smtp starttls needs a build with TLS: cargo build --release --features tls"
            );
        }
        Ok(Some(SmtpSettings {
            host,
            port,
            from,
            starttls: o.starttls,
            username: o.username.clone(),
            password: o.password.clone(),
        }))
    }

    /// Webhook URLs this build can reach: `https://` needs the `tls`
    /// feature (every group robot's URL is https).
    pub fn check_webhooks(&self) -> anyhow::Result<()> {
        if cfg!(feature = "tls") {
            return Ok(());
        }
        if let Some(w) = self.webhooks.iter().find(|w| w.url.starts_with("https://")) {
            anyhow::bail!(
                "the {} webhook of {:?} is https: that needs a build with TLS: cargo build --release --features tls",
                w.format.as_str(),
                w.department
            );
        }
        Ok(())
    }

    /// The e-mail routes merged by department (one message per alert line
    /// to all of a department's addresses), in the order first given.
    pub fn email_routes(&self) -> Vec<EmailRoute> {
        let mut out: Vec<EmailRoute> = Vec::new();
        for r in &self.emails {
            match out.iter_mut().find(|o| o.department == r.department) {
                Some(o) => {
                    for a in &r.to {
                        if !o.to.contains(a) {
                            o.to.push(a.clone());
                        }
                    }
                }
                None => out.push(r.clone()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fluvio_settings::{FluvioTls, StartAt, parse_partitions};

    #[test]
    fn sizes_and_webhooks() {
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert!(parse_size("16 parsecs").is_err());
        assert_eq!(
            parse_webhook("vas=http://127.0.0.1:9/x").unwrap(),
            Webhook {
                department: "vas".into(),
                url: "http://127.0.0.1:9/x".into(),
                format: Format::Json,
                secret: None,
            }
        );
        assert!(parse_webhook("vas").is_err());
        assert!(parse_webhook("vas=ftp://x").is_err());
    }

    #[test]
    fn webhook_formats_secrets_email_and_smtp_from_flags() {
        let w = parse_webhook("net=dingtalk+https://oapi.dingtalk.com/robot/send?access_token=x")
            .unwrap();
        assert_eq!(w.format, Format::Dingtalk);
        assert_eq!(w.url, "https://oapi.dingtalk.com/robot/send?access_token=x");
        let plain = parse_webhook("net=http://h/a+b").unwrap();
        assert_eq!(
            (plain.format, plain.url.as_str()),
            (Format::Json, "http://h/a+b")
        );
        assert!(
            parse_webhook("vas=slack+http://h")
                .unwrap_err()
                .contains("json, wecom, dingtalk or feishu")
        );
        let mut hooks = vec![
            w,
            plain,
            parse_webhook("net=feishu+https://f/hook/1").unwrap(),
        ];
        apply_webhook_secrets(&mut hooks, &[parse_webhook_secret("net=SEC1=").unwrap()]).unwrap();
        let secrets: Vec<Option<&str>> = hooks
            .iter()
            .map(|h| h.secret.as_ref().map(|s| s.0.as_str()))
            .collect();
        assert_eq!(secrets, [Some("SEC1="), None, Some("SEC1=")]);
        let e = apply_webhook_secrets(&mut hooks, &[parse_webhook_secret("vas=S").unwrap()])
            .unwrap_err();
        assert!(e.contains("has no dingtalk or feishu webhook"), "{e}");
        assert!(parse_webhook_secret("net").is_err());
        assert!(parse_webhook_secret("net=").is_err());
        assert!(
            !format!("{hooks:?}").contains("SEC1"),
            "secrets do not print"
        );

        assert_eq!(
            parse_smtp_server("mail.example.com:587").unwrap(),
            ("mail.example.com".into(), 587)
        );
        assert_eq!(parse_smtp_server("mail").unwrap(), ("mail".into(), 25));
        assert_eq!(
            parse_smtp_server("[::1]:2525").unwrap(),
            ("::1".into(), 2525)
        );
        assert!(parse_smtp_server("mail:x").is_err());
        let e = parse_email("vas=值班 <a@example.com>, b@example.com").unwrap();
        assert_eq!(e.department, "vas");
        assert_eq!(e.to.len(), 2);
        assert_eq!(e.to[0].name.as_deref(), Some("值班"));
        assert!(parse_email("vas=").is_err());
        assert!(
            parse_email("vas=nobody")
                .unwrap_err()
                .contains("is not an e-mail address")
        );
        assert_eq!(
            parse_public_url("https://h.example/").unwrap(),
            "https://h.example"
        );
        assert!(parse_public_url("https://h.example/(x)").is_err());
        assert!(parse_public_url("h.example").is_err());
    }

    #[test]
    fn webhook_formats_email_and_smtp_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotspot.toml");
        std::fs::write(
            &p,
            "public_url = \"https://hotspot.example.com/\"\n\n[[webhook]]\ndepartment = \"mkt\"\nformat = \"feishu\"\nurl = \"https://open.feishu.cn/open-apis/bot/v2/hook/x\"\nsecret = \"s1\"\n\n[[webhook]]\ndepartment = \"vas\"\nurl = \"wecom+https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k\"\n\n[[email]]\ndepartment = \"vas\"\nto = [\"a@example.com\"]\n\n[[email]]\ndepartment = \"vas\"\nto = [\"b@example.com\", \"a@example.com\"]\n\n[smtp]\nserver = \"127.0.0.1:2525\"\nfrom = \"hotspot <hotspot@example.com>\"\n",
        )
        .unwrap();
        let s = Settings::from_file(&p).unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://hotspot.example.com"));
        assert_eq!(s.webhooks[0].format, Format::Feishu);
        assert_eq!(s.webhooks[0].secret, Some(Secret("s1".into())));
        assert_eq!(s.webhooks[1].format, Format::Wecom);
        let routes = s.email_routes();
        assert_eq!(routes.len(), 1, "one sink per department");
        let to: Vec<String> = routes[0].to.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(to, ["a@example.com", "b@example.com"]);
        let smtp = s.smtp().unwrap().unwrap();
        assert_eq!((smtp.host.as_str(), smtp.port), ("127.0.0.1", 2525));
        assert_eq!(smtp.from.email.to_string(), "hotspot@example.com");
        assert!(!smtp.starttls);
        for (text, want) in [
            (
                "[[webhook]]\ndepartment = \"vas\"\nformat = \"wecom\"\nurl = \"http://h/\"\nsecret = \"s\"\n",
                "only dingtalk and feishu requests are signed",
            ),
            (
                "[[webhook]]\ndepartment = \"vas\"\nformat = \"feishu\"\nurl = \"dingtalk+http://h/\"\n",
                "disagree",
            ),
            (
                "[[webhook]]\ndepartment = \"vas\"\nformat = \"slack\"\nurl = \"http://h/\"\n",
                "hotspot.toml:3: webhook.format: \"slack\": expected a format",
            ),
            (
                "[smtp]\nserver = \"h:x\"\n",
                "hotspot.toml:2: smtp.server: \"h:x\": expected HOST:PORT",
            ),
            (
                "[smtp]\nfrom = \"nobody\"\n",
                "smtp.from: \"nobody\" is not an e-mail address",
            ),
            ("[smtp]\nhost = \"h\"\n", "unknown field"),
            (
                "[[email]]\ndepartment = \"vas\"\nto = [\"x\"]\n",
                "is not an e-mail address",
            ),
            ("public_url = \"ftp://h\"\n", "hotspot.toml:1: public_url: "),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = Settings::from_file(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        // E-mail without a server or a sender, a server without e-mail.
        std::fs::write(
            &p,
            "[[email]]\ndepartment = \"vas\"\nto = [\"a@example.com\"]\n",
        )
        .unwrap();
        let mut s = Settings::from_file(&p).unwrap();
        assert!(
            s.smtp()
                .unwrap_err()
                .to_string()
                .contains("needs an SMTP server")
        );
        s.smtp.server = Some(("h".into(), 25));
        assert!(s.smtp().unwrap_err().to_string().contains("needs a sender"));
        s.emails.clear();
        assert!(s.smtp().unwrap_err().to_string().contains("no --email"));
    }

    #[test]
    fn config_file_with_relative_paths_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotspot.toml");
        std::fs::write(
            &p,
            "rules = \"r.toml\"\nlisten = \"127.0.0.1:9999\"\nidle_timeout = \"off\"\nmax_body = \"1MiB\"\n\n[[webhook]]\ndepartment = \"vas\"\nurl = \"http://127.0.0.1:1/h\"\n\n[alertmanager]\nurl = \"http://127.0.0.1:9093\"\nresend = \"30s\"\n\n[delivery]\nretry_max = \"5s\"\n",
        )
        .unwrap();
        let s = Settings::from_file(&p).unwrap();
        assert_eq!(s.rules, Some(dir.path().join("r.toml")));
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.idle_timeout, None);
        assert_eq!(s.max_body, 1 << 20);
        assert_eq!(s.webhooks.len(), 1);
        assert_eq!(s.alertmanager_resend, Duration::from_secs(30));
        assert_eq!(s.retry.max, Duration::from_secs(5));
        std::fs::write(&p, "listen = \"127.0.0.1:9999\"\nlisen = 1\n").unwrap();
        let e = Settings::from_file(&p).unwrap_err().to_string();
        assert!(
            e.contains("hotspot.toml:2") && e.contains("unknown field"),
            "{e}"
        );
    }

    #[test]
    fn intake_limits_default_and_come_from_the_file() {
        let d = Settings::default();
        assert_eq!(d.max_body, 16 << 20);
        assert_eq!(d.body_budget, 64 << 20);
        assert_eq!(d.body_timeout, Duration::from_secs(30));
        assert_eq!(d.header_timeout, Duration::from_secs(10));
        assert_eq!(d.max_connections, 512);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotspot.toml");
        std::fs::write(
            &p,
            "body_budget = \"128MiB\"\nbody_timeout = \"5s\"\nheader_timeout = \"2s\"\nmax_connections = 0\n",
        )
        .unwrap();
        let s = Settings::from_file(&p).unwrap();
        assert_eq!(s.body_budget, 128 << 20);
        assert_eq!(s.body_timeout, Duration::from_secs(5));
        assert_eq!(s.header_timeout, Duration::from_secs(2));
        assert_eq!(s.max_connections, 1, "at least one connection");
    }

    #[test]
    fn a_value_that_does_not_parse_is_located_by_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotspot.toml");
        for (text, want) in [
            (
                "listen = \"127.0.0.1:8080\"\nidle_timeout = \"5 minutes\"\n",
                "hotspot.toml:2: idle_timeout: invalid duration \"5 minutes\"",
            ),
            (
                "queue = 1\n\n[delivery]\nretry_initial = \"1s\"\nretry_max = \"x\"\n",
                "hotspot.toml:5: delivery.retry_max: invalid duration \"x\"",
            ),
            (
                "max_body = \"16 parsecs\"\n",
                "hotspot.toml:1: max_body: invalid size \"16 parsecs\"",
            ),
            (
                "listen = \"localhost\"\n",
                "hotspot.toml:1: listen: \"localhost\" is not an address like 127.0.0.1:8080",
            ),
            (
                "log_format = \"xml\"\n",
                "hotspot.toml:1: log_format: \"xml\": expected \"human\" or \"json\"",
            ),
            (
                "[fluvio]\nstart = \"middle\"\n",
                "hotspot.toml:2: fluvio.start: start \"middle\": expected",
            ),
            (
                "[[webhook]]\ndepartment = \"vas\"\nurl = \"ftp://x\"\n",
                "expected DEPARTMENT=URL or DEPARTMENT=FORMAT+URL with an http:// or https:// URL",
            ),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = Settings::from_file(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        // Flags and the file share the parsers.
        assert_eq!(
            parse_optional_duration("off").unwrap(),
            OptionalDuration(None)
        );
        assert_eq!(
            parse_optional_duration("0s").unwrap(),
            OptionalDuration(None)
        );
        assert_eq!(
            parse_optional_duration("90s").unwrap(),
            OptionalDuration(Some(Duration::from_secs(90)))
        );
        assert!(parse_listen("127.0.0.1").is_err());
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
    }

    #[test]
    fn fluvio_table_flags_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hotspot.toml");
        std::fs::write(
            &p,
            "[fluvio]\nendpoint = \"127.0.0.1:9003\"\ntopic = \"complaints\"\npartitions = [2, 0, 2]\nalerts_topic = \"alerts\"\nstart = \"end\"\nmax_bytes = \"64KiB\"\n",
        )
        .unwrap();
        let s = Settings::from_file(&p).unwrap();
        assert_eq!(s.fluvio.partitions, Some(vec![0, 2]));
        assert_eq!(s.fluvio.start, StartAt::End);
        assert_eq!(s.fluvio.max_bytes, Some(64 << 10));
        assert!(s.fluvio.enabled());
        if cfg!(feature = "fluvio") {
            s.fluvio.check().unwrap();
        } else {
            assert!(s.fluvio.check().is_err());
        }
        let mut f = s.fluvio.clone();
        f.tls.on = true;
        let e = f.check().unwrap_err().to_string();
        assert!(
            e.contains("tls_ca_cert is missing") || e.contains("no Fluvio support"),
            "{e}"
        );
        let mut f = s.fluvio.clone();
        f.endpoint = None;
        assert!(f.check().is_err());
        let mut f = s.fluvio.clone();
        f.alerts_topic = Some("complaints".into());
        assert!(f.check().is_err(), "source and sink on one topic");
        let mut f = s.fluvio.clone();
        f.topic = Some("Bad_Topic".into());
        assert!(f.check().is_err());
        assert_eq!(parse_partitions("2, 0,2").unwrap(), vec![0, 2]);
        assert!(parse_partitions("0,x").is_err());
        assert!(parse_partitions("").is_err());
        assert!("middle".parse::<StartAt>().is_err());
        std::fs::write(&p, "[fluvio]\ntopics = \"x\"\n").unwrap();
        assert!(Settings::from_file(&p).is_err(), "unknown key in [fluvio]");
        let none = FluvioSettings {
            partitions: Some(vec![0]),
            ..Default::default()
        };
        assert!(none.check().is_err(), "--partitions without a topic");
    }

    #[test]
    fn fluvio_tls_settings_resolve_or_say_what_is_wrong() {
        let d = tempfile::tempdir().unwrap();
        for f in ["ca.crt", "client.crt", "client.key"] {
            std::fs::write(d.path().join(f), "pem").unwrap();
        }
        let p = d.path().join("hotspot.toml");
        std::fs::write(
            &p,
            "[fluvio]\nendpoint = \"127.0.0.1:9003\"\ntopic = \"complaints\"\ntls = true\ntls_ca_cert = \"ca.crt\"\ntls_cert = \"client.crt\"\ntls_key = \"client.key\"\n",
        )
        .unwrap();
        let s = Settings::from_file(&p).unwrap();
        if !cfg!(feature = "fluvio") {
            assert!(s.fluvio.check().is_err());
            return;
        }
        if cfg!(feature = "fluvio-tls") {
            s.fluvio.check().unwrap();
        } else {
            // Without a TLS backend the client would connect in plaintext.
            let e = s.fluvio.check().unwrap_err().to_string();
            assert!(e.contains("--features fluvio-tls"), "{e}");
        }
        // Relative paths are relative to the config file; the domain
        // defaults to the endpoint's host.
        let c = s.fluvio.cluster().unwrap().unwrap();
        assert_eq!(
            c.tls,
            FluvioTls::Verified {
                domain: "127.0.0.1".into(),
                ca_cert: d.path().join("ca.crt"),
                cert: d.path().join("client.crt"),
                key: d.path().join("client.key"),
            }
        );
        assert_eq!(c.to_string(), "127.0.0.1:9003 (TLS, 127.0.0.1)");
        let mut o = s.fluvio.tls.clone();
        o.domain = Some("fluvio.local".into());
        assert!(matches!(o.resolve("[::1]:9003").unwrap(),
            FluvioTls::Verified { domain, .. } if domain == "fluvio.local"));
        o.domain = None;
        assert!(matches!(o.resolve("[::1]:9003").unwrap(),
            FluvioTls::Verified { domain, .. } if domain == "::1"));
        // A missing file is named.
        let mut o = s.fluvio.tls.clone();
        o.key = Some(d.path().join("nope.key"));
        let e = o.resolve("h:1").unwrap_err().to_string();
        assert!(e.contains("tls_key") && e.contains("nope.key"), "{e}");
        let o = FluvioTlsOptions {
            on: true,
            ..Default::default()
        };
        assert!(
            o.resolve("h:1")
                .unwrap_err()
                .to_string()
                .contains("tls_ca_cert is missing")
        );
        // Certificates with TLS off are a mistake, not silently ignored.
        let mut o = s.fluvio.tls.clone();
        o.on = false;
        let e = o.resolve("h:1").unwrap_err().to_string();
        assert!(e.contains("TLS is off") && e.contains("tls_ca_cert"), "{e}");
        assert_eq!(
            FluvioTlsOptions::default().resolve("h:1").unwrap(),
            FluvioTls::Off
        );
    }
}
