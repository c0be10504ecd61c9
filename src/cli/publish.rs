//! `hotspot publish`: sends a JSON Lines file (or standard input) to a
//! Fluvio topic, one record per line, keyed by the line's `region`.
//!
//! Why the key is the region: every record of a (business, region) key must
//! land in one partition, in file order, for the per-partition event time of
//! `hotspot run` to count it correctly (see `docs/fluvio.md`); the business
//! is not known before matching, but the region is. Lines without a string
//! `region` (they will be rejected by the consumer anyway) get the empty key,
//! so they too land in one fixed partition. Blank lines are not sent.
//!
//! With `--rules FILE` whose `[[region]]` table names provinces (CONTRACT
//! 8), the key of a line whose region is in the table is its **province**:
//! a (business, province) key counts every city of the province, so all of
//! them must share a partition too. A region not in the table counts in no
//! province and keeps its own name as the key.
//!
//! The producer batches and lingers for throughput; acknowledgements are
//! collected as it goes (an error stops the run with exit status 1), and
//! the run ends with a flush, so exit 0 means every record is in the topic.
//! Progress goes to standard error once a second; the last line (standard
//! output) gives records, bytes, seconds and records/s.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use fluvio::{Compression, ProduceOutput, TopicProducerConfigBuilder};
use serde::Deserialize;

use crate::fluvio_client;
use crate::fluvio_settings::{FluvioCluster, FluvioTlsOptions};
use crate::service::config::parse_size;
use crate::source::LineReader;
use crate::time::parse_duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fluvio SC endpoint, e.g. 127.0.0.1:9003.
    #[arg(
        long,
        alias = "fluvio-endpoint",
        env = "HOTSPOT_FLUVIO_ENDPOINT",
        value_name = "HOST:PORT"
    )]
    pub endpoint: String,
    /// The topic to send to.
    #[arg(long, alias = "fluvio-topic", value_name = "TOPIC")]
    pub topic: String,
    /// JSON Lines file; `-` is standard input.
    #[arg(long, default_value = "-", value_name = "FILE")]
    pub input: PathBuf,
    /// Create the topic with this many partitions if it does not exist.
    #[arg(long, value_name = "N")]
    pub create_partitions: Option<u32>,
    /// Producer batch size.
    #[arg(long, default_value = "512KiB", value_name = "SIZE")]
    pub batch_size: String,
    /// How long a batch may wait to fill.
    #[arg(long, default_value = "20ms", value_name = "DURATION")]
    pub linger: String,
    /// Compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// TLS to the cluster.
    #[arg(long, alias = "fluvio-tls")]
    pub tls: bool,
    /// The name on the cluster's certificate (default: the endpoint's host).
    #[arg(long, alias = "fluvio-tls-domain", value_name = "NAME")]
    pub tls_domain: Option<String>,
    /// CA certificate (PEM) that signed the cluster's certificate.
    #[arg(long, alias = "fluvio-tls-ca-cert", value_name = "FILE")]
    pub tls_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, alias = "fluvio-tls-cert", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, alias = "fluvio-tls-key", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The rules the consumers run: with a `[[region]]` table, records are
    /// keyed by province (regions not in the table: by region).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// No progress lines.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Deserialize)]
struct KeyOf<'a> {
    #[serde(borrow, default)]
    region: Option<Cow<'a, str>>,
}

/// The record key of a line: its `region`, or empty.
pub(crate) fn key_of(line: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<KeyOf<'_>>(line) {
        Ok(KeyOf { region: Some(r) }) => r.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

/// The record key of a line under `rules`: the province of its region when
/// the rules' region table has the region, else [`key_of`].
pub fn key_in(line: &[u8], rules: &crate::rules::Rules) -> Vec<u8> {
    if rules.provinces.is_empty() {
        return key_of(line);
    }
    match serde_json::from_slice::<KeyOf<'_>>(line) {
        Ok(KeyOf { region: Some(r) }) => match rules.province_of(rules.region_of(&r)) {
            Some(p) => rules.provinces[p].name.as_bytes().to_vec(),
            None => r.as_bytes().to_vec(),
        },
        _ => Vec::new(),
    }
}

/// Acknowledgements are checked in generations of this many records, so
/// that waiting never holds up batching.
const GENERATION: usize = 20_000;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tls = FluvioTlsOptions {
        on: args.tls,
        domain: args.tls_domain.clone(),
        ca_cert: args.tls_ca_cert.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
    };
    let cluster = FluvioCluster {
        endpoint: args.endpoint.clone(),
        tls: tls.resolve(&args.endpoint)?,
    };
    cluster.tls.check_build()?;
    let batch_size =
        parse_size(&args.batch_size).map_err(|e| anyhow::anyhow!("--batch-size: {e}"))?;
    let linger = Duration::from_millis(
        parse_duration(&args.linger)
            .map_err(|e| anyhow::anyhow!("--linger {:?}: {e}", args.linger))? as u64,
    );
    let compression: Compression = args.compression.parse().map_err(|_| {
        anyhow::anyhow!(
            "--compression {:?}: expected none, gzip, snappy, lz4 or zstd",
            args.compression
        )
    })?;
    let rules = match &args.rules {
        Some(p) => Some(crate::cli::replay::load_rules(Some(p))?),
        None => None,
    };
    if let Some(r) = &rules {
        if !r.provinces.is_empty() && !args.quiet {
            eprintln!(
                "keying records by province ({} provinces, {} regions in the table; other regions by region)",
                r.provinces.len(),
                r.regions.len()
            );
        }
    }
    let input: Box<dyn Read> = if args.input.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.input)
                .with_context(|| format!("cannot open {}", args.input.display()))?,
        )
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(publish(
        &args,
        rules.as_deref(),
        &cluster,
        input,
        batch_size,
        linger,
        compression,
        !args.quiet,
    ))?;
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    println!(
        "published {} records ({} bytes) to {} in {:.2} s: {:.0} records/s; by partition: {}",
        r.records,
        r.bytes,
        args.topic,
        secs,
        r.records as f64 / secs,
        r.partitions
            .iter()
            .map(|(p, n)| format!("{p}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(ExitCode::SUCCESS)
}

/// What a publish run did.
#[derive(Debug, Default)]
pub(crate) struct Published {
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Records per partition.
    pub partitions: BTreeMap<u32, u64>,
}

async fn wait_all(outs: Vec<ProduceOutput>, parts: &mut BTreeMap<u32, u64>) -> anyhow::Result<()> {
    for o in outs {
        let md = o.wait().await.context("a record was not acknowledged")?;
        *parts.entry(md.partition_id()).or_default() += 1;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn publish(
    args: &Args,
    rules: Option<&crate::rules::Rules>,
    cluster: &FluvioCluster,
    input: Box<dyn Read>,
    batch_size: usize,
    linger: Duration,
    compression: Compression,
    progress: bool,
) -> anyhow::Result<Published> {
    let fluvio = fluvio_client::connect(cluster).await?;
    match args.create_partitions {
        Some(n) => {
            if fluvio_client::ensure_topic(&fluvio, &args.topic, n).await? {
                eprintln!("created topic {} with {n} partitions", args.topic);
            } else if let Some(have) = fluvio_client::partition_count(&fluvio, &args.topic).await? {
                if have != n {
                    eprintln!(
                        "topic {} exists with {have} partitions (not {n}); publishing to it as it is",
                        args.topic
                    );
                }
            }
        }
        None => {
            if fluvio_client::partition_count(&fluvio, &args.topic)
                .await?
                .is_none()
            {
                anyhow::bail!(
                    "topic {:?} does not exist (add --create-partitions N to create it)",
                    args.topic
                );
            }
        }
    }
    let cfg = TopicProducerConfigBuilder::default()
        .batch_size(batch_size)
        .max_request_size(batch_size.max(1 << 20))
        .linger(linger)
        .compression(compression)
        .build()
        .context("producer settings")?;
    let producer = fluvio
        .topic_producer_with_config(args.topic.clone(), cfg)
        .await
        .with_context(|| format!("cannot produce to {}", args.topic))?;
    let t0 = Instant::now();
    let mut out = Published::default();
    let mut reader = LineReader::new(input);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut older: Vec<ProduceOutput> = Vec::new();
    let mut current: Vec<ProduceOutput> = Vec::with_capacity(GENERATION);
    let mut last_report = Instant::now();
    loop {
        let more = reader
            .next_chunk(|_, line| {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    lines.push(line.to_vec());
                }
            })
            .with_context(|| format!("cannot read {}", args.input.display()))?;
        for line in lines.drain(..) {
            out.bytes += line.len() as u64;
            out.records += 1;
            let key = match rules {
                Some(r) => key_in(&line, r),
                None => key_of(&line),
            };
            current.push(
                producer
                    .send(key, line)
                    .await
                    .context("cannot send a record")?,
            );
            if current.len() >= GENERATION {
                wait_all(std::mem::take(&mut older), &mut out.partitions).await?;
                older = std::mem::replace(&mut current, Vec::with_capacity(GENERATION));
            }
        }
        if progress && last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "published {} records in {s:.1} s ({:.0} records/s)",
                out.records,
                out.records as f64 / s
            );
        }
        if !more {
            break;
        }
    }
    producer
        .flush()
        .await
        .context("cannot flush the producer")?;
    wait_all(older, &mut out.partitions).await?;
    wait_all(current, &mut out.partitions).await?;
    out.elapsed = t0.elapsed();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_region() {
        assert_eq!(
            key_of(br#"{"id":"1","region":"\u676d\u5dde","text":"x"}"#),
            "杭州".as_bytes()
        );
        assert_eq!(key_of(r#"{"region":"杭州"}"#.as_bytes()), "杭州".as_bytes());
        assert!(key_of(br#"{"region":5}"#).is_empty());
        assert!(key_of(b"not json").is_empty());
        assert!(key_of(br#"{"id":"1"}"#).is_empty());
    }

    #[test]
    fn with_provinces_the_key_is_the_province() {
        let rules = crate::rules::load_str(
            "[[department]]\nid = \"vas\"\n\n[[business]]\nid = \"crbt\"\ndepartment = \"vas\"\nthreshold = 8\nprovince_threshold = 20\n\n[[template]]\nid = \"t\"\nbusiness = \"crbt\"\nall_of = [[\"彩铃\"]]\n\n[[region]]\nid = \"杭州\"\nprovince = \"浙江\"\n\n[[region]]\nid = \"衢州\"\nprovince = \"浙江\"\n\n[[region]]\nid = \"银川\"\nprovince = \"宁夏\"\n",
            "rules.toml",
        )
        .unwrap();
        let key = |l: &str| String::from_utf8(key_in(l.as_bytes(), &rules)).unwrap();
        // Every city of a province shares the province's key ...
        assert_eq!(key(r#"{"id":"1","region":"杭州","text":"x"}"#), "浙江");
        assert_eq!(key(r#"{"id":"2","region":"\u8862\u5dde"}"#), "浙江");
        assert_eq!(key(r#"{"region":"银川"}"#), "宁夏");
        // ... a region not in the table keeps today's key, and so do lines
        // without a string region.
        assert_eq!(key(r#"{"region":"上海"}"#), "上海");
        assert_eq!(key(r#"{"region":5}"#), "");
        assert_eq!(key("not json"), "");
        // Rules without a region table: exactly `key_of`.
        let plain = crate::rules::embedded().unwrap();
        for l in [r#"{"region":"杭州"}"#, r#"{"region":"上海"}"#, "x"] {
            assert_eq!(key_in(l.as_bytes(), &plain), key_of(l.as_bytes()));
        }
    }
}
