//! Where and how to reach a Fluvio cluster, as the settings give it: the
//! endpoint, the topics, the partitions, where a new partition starts and
//! the TLS. Plain data and its checks, built with or without the `fluvio`
//! feature, so that `service::config` can parse and check a `[fluvio]`
//! table without depending on the client; `crate::fluvio_client` (feature
//! `fluvio`) turns a [`FluvioCluster`] into a connection.
//!
//! TLS needs the `fluvio-tls` feature (rustls with aws-lc-rs, opt-in for
//! the sake of the cold build). A build without it refuses a TLS setting
//! at start ([`FluvioTls::check_build`]): the fluvio 0.50.1 client built
//! without a TLS backend would otherwise connect in plaintext.

use std::path::PathBuf;

use anyhow::{Context, bail};

/// Whether this build speaks TLS to a Fluvio cluster (the `fluvio-tls`
/// cargo feature).
pub const TLS_BUILT: bool = cfg!(feature = "fluvio-tls");

/// How to get a build that speaks TLS to Fluvio, for error messages.
pub const TLS_BUILD_HINT: &str = "cargo build --release --features fluvio-tls";

/// Where a Fluvio partition without a saved position starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest record still in the partition.
    #[default]
    Beginning,
    /// Only records produced from now on.
    End,
}

impl std::str::FromStr for StartAt {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<StartAt> {
        match s.trim() {
            "beginning" => Ok(StartAt::Beginning),
            "end" => Ok(StartAt::End),
            o => bail!("start {o:?}: expected \"beginning\" or \"end\""),
        }
    }
}

/// Fluvio settings (`[fluvio]` and the `--fluvio-*` flags). Nothing is
/// connected unless a topic is named.
#[derive(Debug, Clone, Default)]
pub struct FluvioSettings {
    pub endpoint: Option<String>,
    pub topic: Option<String>,
    /// None: every partition of the topic.
    pub partitions: Option<Vec<u32>>,
    pub alerts_topic: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub tls: FluvioTlsOptions,
    pub start: StartAt,
    /// None: the client's default.
    pub max_bytes: Option<usize>,
}

impl FluvioSettings {
    /// Whether any topic is configured.
    pub fn enabled(&self) -> bool {
        self.topic.is_some() || self.alerts_topic.is_some() || self.dead_letter_topic.is_some()
    }

    /// Checks the combination before anything connects, so that a
    /// misconfiguration is one clear line at start, never a retry loop.
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.enabled() {
            if self.partitions.is_some() {
                bail!("--partitions needs a Fluvio topic (--fluvio-topic or [fluvio] topic)");
            }
            return Ok(());
        }
        if !cfg!(feature = "fluvio") {
            bail!(
                "Fluvio topics are configured, but this build of hotspot has no Fluvio support \
                 (it was built without the `fluvio` cargo feature)"
            );
        }
        match self.endpoint.as_deref() {
            None => bail!(
                "Fluvio topics are configured but no endpoint: set --fluvio-endpoint or [fluvio] endpoint (e.g. 127.0.0.1:9003)"
            ),
            Some(e) if !valid_endpoint(e) => {
                bail!("Fluvio endpoint {e:?} is not HOST:PORT (e.g. 127.0.0.1:9003)")
            }
            Some(_) => {}
        }
        if let Some(c) = self.cluster()? {
            c.tls.check_build()?;
        }
        for (what, t) in [
            ("topic", &self.topic),
            ("alerts_topic", &self.alerts_topic),
            ("dead_letter_topic", &self.dead_letter_topic),
        ] {
            if let Some(t) = t {
                if !valid_topic(t) {
                    bail!(
                        "Fluvio {what} {t:?}: a topic name is 1-63 lower-case letters, digits and '-', not starting or ending with '-'"
                    );
                }
            }
        }
        if self.partitions.is_some() && self.topic.is_none() {
            bail!("--partitions needs a Fluvio topic (--fluvio-topic or [fluvio] topic)");
        }
        if let Some(t) = &self.topic {
            if Some(t) == self.alerts_topic.as_ref() || Some(t) == self.dead_letter_topic.as_ref() {
                bail!(
                    "Fluvio topic {t:?} is both the complaints source and an output: that would feed hotspot its own output"
                );
            }
        }
        if let Some(m) = self.max_bytes {
            if m < 1024 || m > i32::MAX as usize {
                bail!("Fluvio max_bytes {m}: expected between 1KiB and 2GiB");
            }
        }
        Ok(())
    }

    /// Where and how to connect, once [`FluvioSettings::check`] passed;
    /// `None` when no endpoint is set.
    pub fn cluster(&self) -> anyhow::Result<Option<FluvioCluster>> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(None);
        };
        Ok(Some(FluvioCluster {
            endpoint: endpoint.clone(),
            tls: self.tls.resolve(endpoint)?,
        }))
    }
}

/// Where and how to reach a Fluvio cluster: the SC's public endpoint and
/// the TLS to speak there. Plain data; `crate::fluvio_client::connect`
/// turns it into a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluvioCluster {
    pub endpoint: String,
    pub tls: FluvioTls,
}

impl FluvioCluster {
    /// A plaintext endpoint.
    pub fn plain(endpoint: impl Into<String>) -> FluvioCluster {
        FluvioCluster {
            endpoint: endpoint.into(),
            tls: FluvioTls::Off,
        }
    }
}

impl std::fmt::Display for FluvioCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.endpoint)?;
        match &self.tls {
            FluvioTls::Off => Ok(()),
            FluvioTls::Verified { domain, .. } => write!(f, " (TLS, {domain})"),
        }
    }
}

/// TLS to a Fluvio cluster, resolved from [`FluvioTlsOptions`].
///
/// Why TLS is always mutual and always verified: the fluvio 0.50.1 client
/// loads a client certificate whenever it checks the server's, and its
/// unchecked ("anonymous") mode cannot connect to an IP address at all —
/// so the one mode offered is the way Fluvio's own TLS clusters are set up
/// (`--enable-client-cert`), where nobody talks to an unknown party.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FluvioTls {
    /// Plaintext: loopback or a trusted network.
    #[default]
    Off,
    /// The cluster's certificate must chain to `ca_cert` and carry the name
    /// `domain` (a DNS name or an IP address); hotspot presents `cert` and
    /// `key` (PEM).
    Verified {
        domain: String,
        ca_cert: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

impl FluvioTls {
    /// Refuses TLS in a build without the `fluvio-tls` feature: one clear
    /// line at start that names the feature, never a plaintext connection
    /// to a cluster that was meant to be reached over TLS.
    pub fn check_build(&self) -> anyhow::Result<()> {
        match self {
            FluvioTls::Verified { .. } if !TLS_BUILT => bail!(
                "Fluvio TLS is configured, but this build of hotspot has no Fluvio TLS support \
                 (it was built without the `fluvio-tls` cargo feature): build it with `{TLS_BUILD_HINT}`"
            ),
            _ => Ok(()),
        }
    }
}

/// The TLS settings as given (`[fluvio] tls*`, `--fluvio-tls*` of `hotspot
/// run`, `--tls*` of `hotspot publish`), before they are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FluvioTlsOptions {
    pub on: bool,
    pub domain: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl FluvioTlsOptions {
    /// Checks the combination (and that the files are there) and resolves
    /// it for `endpoint`: one clear line for every mistake, before anything
    /// connects.
    pub fn resolve(&self, endpoint: &str) -> anyhow::Result<FluvioTls> {
        let files = [
            ("tls_ca_cert", &self.ca_cert),
            ("tls_cert", &self.cert),
            ("tls_key", &self.key),
        ];
        if !self.on {
            let given: Vec<&str> = files
                .iter()
                .filter(|(_, p)| p.is_some())
                .map(|(n, _)| *n)
                .chain(self.domain.as_ref().map(|_| "tls_domain"))
                .collect();
            if !given.is_empty() {
                bail!(
                    "Fluvio {} given but TLS is off: set tls = true (--fluvio-tls, or --tls for hotspot publish)",
                    given.join(", ")
                );
            }
            return Ok(FluvioTls::Off);
        }
        if !cfg!(feature = "fluvio") {
            bail!("Fluvio TLS is on, but this build of hotspot has no Fluvio support");
        }
        let need = |name: &str, p: &Option<PathBuf>| -> anyhow::Result<PathBuf> {
            let Some(p) = p else {
                bail!(
                    "Fluvio TLS needs tls_ca_cert, tls_cert and tls_key (--fluvio-tls-ca-cert, --fluvio-tls-cert, --fluvio-tls-key): {name} is missing (Fluvio's TLS is mutual: hotspot checks the cluster's certificate and shows its own)"
                );
            };
            if let Err(e) = std::fs::File::open(p) {
                bail!("Fluvio {name} {}: {e}", p.display());
            }
            Ok(p.clone())
        };
        let (ca_cert, cert, key) = (
            need("tls_ca_cert", &self.ca_cert)?,
            need("tls_cert", &self.cert)?,
            need("tls_key", &self.key)?,
        );
        let domain = match &self.domain {
            Some(d) if d.trim().is_empty() => bail!("Fluvio tls_domain is empty"),
            Some(d) => d.trim().to_owned(),
            None => endpoint
                .rsplit_once(':')
                .map_or(endpoint, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        };
        Ok(FluvioTls::Verified {
            domain,
            ca_cert,
            cert,
            key,
        })
    }
}

fn valid_endpoint(e: &str) -> bool {
    match e.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// Fluvio's own rule for topic names (DNS-1123 labels).
fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 63
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !t.starts_with('-')
        && !t.ends_with('-')
}

/// Parses `0,2` (or `0, 2`): sorted, without repeats.
pub fn parse_partitions(s: &str) -> anyhow::Result<Vec<u32>> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let n: u32 = part.parse().with_context(|| {
            format!("{s:?}: {part:?} is not a partition number (expected e.g. 0,2)")
        })?;
        v.push(n);
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified() -> FluvioTls {
        FluvioTls::Verified {
            domain: "fluvio.local".into(),
            ca_cert: "ca.crt".into(),
            cert: "client.crt".into(),
            key: "client.key".into(),
        }
    }

    #[test]
    fn tls_needs_the_fluvio_tls_feature() {
        assert!(FluvioTls::Off.check_build().is_ok());
        let r = verified().check_build();
        if TLS_BUILT {
            r.unwrap();
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("--features fluvio-tls"), "{e}");
        }
    }

    #[test]
    fn a_tls_config_is_refused_at_start_without_the_feature() {
        let d = tempfile::tempdir().unwrap();
        for f in ["ca.crt", "client.crt", "client.key"] {
            std::fs::write(d.path().join(f), "pem").unwrap();
        }
        let s = FluvioSettings {
            endpoint: Some("127.0.0.1:9003".into()),
            alerts_topic: Some("alerts".into()),
            tls: FluvioTlsOptions {
                on: true,
                domain: None,
                ca_cert: Some(d.path().join("ca.crt")),
                cert: Some(d.path().join("client.crt")),
                key: Some(d.path().join("client.key")),
            },
            ..Default::default()
        };
        let r = s.check();
        match (cfg!(feature = "fluvio"), TLS_BUILT) {
            (true, true) => r.unwrap(),
            (true, false) => {
                let e = r.unwrap_err().to_string();
                assert!(
                    e.contains("fluvio-tls") && e.contains(TLS_BUILD_HINT),
                    "{e}"
                );
            }
            (false, _) => {
                assert!(r.unwrap_err().to_string().contains("no Fluvio support"));
            }
        }
        // Plaintext is fine in every build with Fluvio.
        let plain = FluvioSettings {
            tls: FluvioTlsOptions::default(),
            ..s
        };
        assert_eq!(plain.check().is_ok(), cfg!(feature = "fluvio"));
    }
}
