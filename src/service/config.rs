//! Settings of `hotspot run`: a TOML config file (`--config`) gives every
//! setting, command-line flags override it, and defaults fill the rest.
//! Relative paths in a config file are relative to the file's directory.
//! `fixtures/hotspot.toml` is a complete, commented example.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::fluvio_settings::{FluvioSettings, FluvioTlsOptions};
use crate::retry::RetryPolicy;
use crate::time::parse_duration;

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub rules: Option<PathBuf>,
    pub listen: Option<String>,
    pub alerts: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub idle_timeout: Option<String>,
    pub checkpoint_interval: Option<String>,
    pub idempotency_horizon: Option<String>,
    pub max_keys: Option<usize>,
    pub token: Option<String>,
    pub log_format: Option<String>,
    pub stdin: Option<bool>,
    #[serde(default)]
    pub follow: Vec<PathBuf>,
    pub max_body: Option<String>,
    pub queue: Option<usize>,
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    pub alertmanager: Option<AlertmanagerConfig>,
    pub delivery: Option<DeliveryConfig>,
    pub fluvio: Option<FluvioConfig>,
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
    pub start: Option<String>,
    /// Largest fetch the consumer asks for, e.g. `1MiB`.
    pub max_bytes: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub department: String,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    pub url: String,
    pub resend: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    pub retry_initial: Option<String>,
    pub retry_max: Option<String>,
    pub timeout: Option<String>,
    pub drain: Option<String>,
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
    pub max_body: usize,
    pub queue: usize,
    /// (department or `*`, URL)
    pub webhooks: Vec<(String, String)>,
    pub alertmanager: Option<String>,
    pub alertmanager_resend: Duration,
    pub retry: RetryPolicy,
    /// How long sinks may keep delivering after SIGTERM.
    pub drain: Duration,
    pub fluvio: FluvioSettings,
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
            queue: 256,
            webhooks: Vec::new(),
            alertmanager: None,
            alertmanager_resend: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            drain: Duration::from_secs(8),
            fluvio: FluvioSettings::default(),
        }
    }
}

/// Parses `10MiB`, `512KiB`, `1MB`, `65536`.
pub fn parse_size(s: &str) -> anyhow::Result<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().with_context(|| format!("invalid size {s:?}"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        u => bail!("invalid size {s:?}: unknown unit {u:?} (use B, KiB, MiB, GiB, KB, MB, GB)"),
    };
    n.checked_mul(scale)
        .with_context(|| format!("size {s:?} is too large"))
}

fn duration(s: &str, what: &str) -> anyhow::Result<Duration> {
    let ms = parse_duration(s).with_context(|| what.to_string())?;
    Ok(Duration::from_millis(ms as u64))
}

/// `0s` (or `off`) turns a duration setting off.
fn optional_duration(s: &str, what: &str) -> anyhow::Result<Option<Duration>> {
    if s.trim() == "off" {
        return Ok(None);
    }
    let d = duration(s, what)?;
    Ok((!d.is_zero()).then_some(d))
}

/// Parses `DEPARTMENT=URL`.
pub fn parse_webhook(s: &str) -> anyhow::Result<(String, String)> {
    let (d, u) = s
        .split_once('=')
        .with_context(|| format!("--webhook {s:?}: expected DEPARTMENT=URL"))?;
    if d.trim().is_empty() || !(u.starts_with("http://") || u.starts_with("https://")) {
        bail!("--webhook {s:?}: expected DEPARTMENT=URL with an http:// or https:// URL");
    }
    Ok((d.trim().to_owned(), u.trim().to_owned()))
}

impl Settings {
    /// Applies a config file over the defaults.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count())
                .unwrap_or(0);
            anyhow::anyhow!("{}:{line}: {}", path.display(), e.message().trim())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let ctx = |what: &str| format!("{}: {what}", path.display());
        let mut s = Settings {
            rules: file.rules.map(rel),
            ..Settings::default()
        };
        if let Some(l) = file.listen {
            s.listen = l.parse().with_context(|| {
                ctx(&format!(
                    "listen {l:?} is not an address like 127.0.0.1:8080"
                ))
            })?;
        }
        s.alerts = file.alerts.map(rel);
        s.dead_letter = file.dead_letter.map(rel);
        s.state_dir = file.state_dir.map(rel);
        if let Some(t) = file.idle_timeout {
            s.idle_timeout = optional_duration(&t, &ctx("idle_timeout"))?;
        }
        if let Some(t) = file.checkpoint_interval {
            s.checkpoint_interval = duration(&t, &ctx("checkpoint_interval"))?;
        }
        if let Some(t) = file.idempotency_horizon {
            s.idempotency_horizon = duration(&t, &ctx("idempotency_horizon"))?;
        }
        if let Some(m) = file.max_keys {
            s.max_keys = m;
        }
        s.token = file.token;
        match file.log_format.as_deref() {
            None | Some("human") => {}
            Some("json") => s.log_json = true,
            Some(o) => bail!(
                "{}: log_format {o:?}: expected \"human\" or \"json\"",
                path.display()
            ),
        }
        s.stdin = file.stdin.unwrap_or(false);
        s.follow = file.follow.into_iter().map(rel).collect();
        if let Some(b) = file.max_body {
            s.max_body = parse_size(&b).with_context(|| ctx("max_body"))?;
        }
        if let Some(q) = file.queue {
            s.queue = q.max(1);
        }
        for w in file.webhook {
            s.webhooks.push(
                parse_webhook(&format!("{}={}", w.department, w.url))
                    .with_context(|| ctx("[[webhook]]"))?,
            );
        }
        if let Some(am) = file.alertmanager {
            s.alertmanager = Some(am.url);
            if let Some(r) = am.resend {
                s.alertmanager_resend = duration(&r, &ctx("alertmanager.resend"))?;
            }
        }
        if let Some(d) = file.delivery {
            if let Some(v) = d.retry_initial {
                s.retry.initial = duration(&v, &ctx("delivery.retry_initial"))?;
            }
            if let Some(v) = d.retry_max {
                s.retry.max = duration(&v, &ctx("delivery.retry_max"))?;
            }
            if let Some(v) = d.timeout {
                s.retry.timeout = duration(&v, &ctx("delivery.timeout"))?;
            }
            if let Some(v) = d.drain {
                s.drain = duration(&v, &ctx("delivery.drain"))?;
            }
        }
        if let Some(f) = file.fluvio {
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
                ca_cert: f.tls_ca_cert.map(rel),
                cert: f.tls_cert.map(rel),
                key: f.tls_key.map(rel),
            };
            if let Some(st) = f.start {
                fl.start = st.parse().with_context(|| ctx("fluvio.start"))?;
            }
            if let Some(m) = f.max_bytes {
                fl.max_bytes = Some(parse_size(&m).with_context(|| ctx("fluvio.max_bytes"))?);
            }
        }
        Ok(s)
    }

    /// Applies the `idle_timeout`-style duration flags.
    pub fn set_idle_timeout(&mut self, s: &str) -> anyhow::Result<()> {
        self.idle_timeout = optional_duration(s, "--idle-timeout")?;
        Ok(())
    }

    pub fn set_checkpoint_interval(&mut self, s: &str) -> anyhow::Result<()> {
        self.checkpoint_interval = duration(s, "--checkpoint-interval")?;
        Ok(())
    }

    pub fn set_idempotency_horizon(&mut self, s: &str) -> anyhow::Result<()> {
        self.idempotency_horizon = duration(s, "--idempotency-horizon")?;
        Ok(())
    }

    pub fn set_retry(&mut self, initial: Option<&str>, max: Option<&str>) -> anyhow::Result<()> {
        if let Some(i) = initial {
            self.retry.initial = duration(i, "--retry-initial")?;
        }
        if let Some(m) = max {
            self.retry.max = duration(m, "--retry-max")?;
        }
        Ok(())
    }

    pub fn set_resend(&mut self, s: &str) -> anyhow::Result<()> {
        self.alertmanager_resend = duration(s, "--alertmanager-resend")?;
        Ok(())
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
            ("vas".into(), "http://127.0.0.1:9/x".into())
        );
        assert!(parse_webhook("vas").is_err());
        assert!(parse_webhook("vas=ftp://x").is_err());
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
