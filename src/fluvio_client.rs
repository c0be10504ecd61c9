//! The few things every Fluvio edge of hotspot needs from a cluster:
//! connecting with a time limit, finding a topic's partitions, creating a
//! topic, finding a partition's end, opening a consumer stream at an exact
//! offset, and reading a partition back completely — with the offset check
//! that works around the 0.50.1 consumer's gaps (see
//! [`crate::source::offsets`]).
//!
//! Everything here is `async` and runtime-agnostic (the fluvio crate runs
//! its own background tasks on its own executor); callers drive it from a
//! tokio runtime. Only built with the `fluvio` feature.

use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, bail};
use fluvio::config::{TlsConfig, TlsPaths, TlsPolicy};
use fluvio::consumer::{ConsumerConfigExtBuilder, Record, RetryMode};
use fluvio::metadata::customspu::CustomSpuSpec;
use fluvio::metadata::topic::TopicSpec;
use fluvio::{Fluvio, FluvioClusterConfig, Offset};
use futures_util::{Stream, StreamExt};

pub use crate::fluvio_settings::{FluvioCluster, FluvioTls};
use crate::source::offsets::{OffsetTracker, Verdict};

/// A consumer stream of one partition.
pub(crate) type RecordStream =
    Pin<Box<dyn Stream<Item = Result<Record, fluvio::dataplane::link::ErrorCode>> + Send>>;

/// How long connecting (and each metadata call) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The fetch size when none is configured (about the client's default).
pub(crate) const DEFAULT_MAX_BYTES: usize = 1 << 20;

/// Fetch sizes are doubled up to this when a producer batch does not fit
/// (see [`crate::source::offsets`]).
pub(crate) const MAX_BYTES_CAP: usize = 256 << 20;

/// The next, larger fetch size after a fresh stream missed records; None
/// at the cap.
pub fn larger(max_bytes: usize) -> Option<usize> {
    (max_bytes < MAX_BYTES_CAP).then(|| (max_bytes.max(1024) * 2).min(MAX_BYTES_CAP))
}

/// Probes read the last batch of a partition whole: it may be as large as
/// a producer request.
const PROBE_MAX_BYTES: usize = 64 << 20;

/// Connects to the SC of `cluster`, with its TLS. TLS in a build without
/// the `fluvio-tls` feature is an error: the client would speak plaintext.
pub async fn connect(cluster: &FluvioCluster) -> anyhow::Result<Fluvio> {
    cluster.tls.check_build()?;
    let mut cfg = FluvioClusterConfig::new(cluster.endpoint.clone());
    cfg.tls = match &cluster.tls {
        FluvioTls::Off => TlsPolicy::Disabled,
        FluvioTls::Verified {
            domain,
            ca_cert,
            cert,
            key,
        } => TlsPolicy::Verified(TlsConfig::Files(TlsPaths {
            domain: domain.clone(),
            key: key.clone(),
            cert: cert.clone(),
            ca_cert: ca_cert.clone(),
        })),
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, Fluvio::connect_with_config(&cfg)).await {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => {
            let hint = tls_hint(cluster, &format!("{e:#}"));
            Err(e).with_context(|| format!("cannot connect to Fluvio at {cluster}{hint}"))
        }
        Err(_) => bail!(
            "cannot connect to Fluvio at {cluster}: no answer within {CONNECT_TIMEOUT:?}{}",
            tls_hint(cluster, "")
        ),
    }
}

/// A hint for the TLS mistakes whose errors do not say it: a plaintext
/// client at a TLS listener sees a garbled or no answer; a client whose
/// certificate the cluster rejects sees only an alert; an SPU's name is
/// `custom-spu-<id>.<domain>` (or `<spu name>.<domain>`), which the
/// certificate must carry too.
fn tls_hint(cluster: &FluvioCluster, error: &str) -> &'static str {
    match cluster.tls {
        FluvioTls::Off if !error.contains("refused") => {
            " (if the cluster speaks TLS, set tls = true / --fluvio-tls)"
        }
        FluvioTls::Verified { .. } if error.contains("fatal alert") => {
            " (the cluster rejected hotspot's certificate: is tls_cert signed by the cluster's client CA?)"
        }
        FluvioTls::Verified { .. } if error.contains("not valid for name") => {
            " (the certificates of the SC and of every SPU must carry tls_domain and *.tls_domain)"
        }
        _ => "",
    }
}

/// Registers a custom SPU (`id`, public and private `HOST:PORT`) with the
/// SC, unless that id is registered already; returns what it did. The one
/// step of starting a loopback-only cluster that `fluvio-run` cannot do by
/// itself (see `docs/fluvio.md`); used by `examples/fluvio_local_spu.rs`
/// and the tests that start their own cluster.
pub async fn register_spu(
    cluster: &FluvioCluster,
    id: i32,
    public: &str,
    private: &str,
) -> anyhow::Result<String> {
    fn split(addr: &str) -> anyhow::Result<(String, u16)> {
        let (h, p) = addr
            .rsplit_once(':')
            .with_context(|| format!("{addr:?}: expected HOST:PORT"))?;
        let port = p
            .parse()
            .with_context(|| format!("{addr:?}: {p:?} is not a port"))?;
        Ok((h.to_owned(), port))
    }
    let (pub_host, pub_port) = split(public)?;
    let (priv_host, priv_port) = split(private)?;
    let admin = connect(cluster).await?.admin().await;
    let spus = admin
        .all::<CustomSpuSpec>()
        .await
        .context("cannot list custom SPUs")?;
    if let Some(s) = spus.iter().find(|s| s.spec.id == id) {
        return Ok(format!(
            "custom SPU {id} is already registered ({}: public {})",
            s.name, s.spec.public_endpoint
        ));
    }
    // The endpoint types are not re-exported by the fluvio crate: fill the
    // defaults (plaintext) in place.
    let mut spec = CustomSpuSpec {
        id,
        ..Default::default()
    };
    spec.public_endpoint.port = pub_port;
    spec.public_endpoint.ingress.push(Default::default());
    spec.public_endpoint.ingress[0].hostname = Some(pub_host.clone());
    spec.private_endpoint.port = priv_port;
    spec.private_endpoint.host = priv_host.clone();
    admin
        .create(format!("custom-spu-{id}"), false, spec)
        .await
        .with_context(|| format!("cannot register SPU {id}"))?;
    Ok(format!(
        "registered custom SPU {id}: public {pub_host}:{pub_port}, private {priv_host}:{priv_port}"
    ))
}

/// The number of partitions of `topic`, or `None` if it does not exist.
pub(crate) async fn partition_count(fluvio: &Fluvio, topic: &str) -> anyhow::Result<Option<u32>> {
    let admin = fluvio.admin().await;
    let list = tokio::time::timeout(
        CONNECT_TIMEOUT,
        admin.list::<TopicSpec, String>(vec![topic.to_owned()]),
    )
    .await
    .map_err(|_| anyhow::anyhow!("listing topics timed out"))?
    .with_context(|| format!("cannot look up topic {topic:?}"))?;
    Ok(list
        .into_iter()
        .find(|t| t.name == topic)
        .map(|t| t.spec.partitions()))
}

/// Creates `topic` with `partitions` partitions (replication 1) unless it
/// exists; returns whether it was created. Waits until its partitions
/// accept records.
pub async fn ensure_topic(fluvio: &Fluvio, topic: &str, partitions: u32) -> anyhow::Result<bool> {
    if partition_count(fluvio, topic).await?.is_some() {
        return Ok(false);
    }
    let admin = fluvio.admin().await;
    let spec = TopicSpec::new_computed(partitions.max(1), 1, None);
    if let Err(e) = admin.create(topic.to_owned(), false, spec).await {
        // Someone else may have created it in the meantime.
        if partition_count(fluvio, topic).await?.is_none() {
            return Err(e).with_context(|| format!("cannot create topic {topic:?}"));
        }
        return Ok(false);
    }
    // The SC answers before the SPU has the replicas: wait until every
    // partition can be read.
    let t0 = std::time::Instant::now();
    for p in 0..partitions.max(1) {
        loop {
            match end_offset(fluvio, topic, p).await {
                Ok(_) => break,
                Err(e) if t0.elapsed() > Duration::from_secs(30) => {
                    return Err(e).context(format!("topic {topic:?} created but not ready"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
    Ok(true)
}

/// Opens a stream of `topic`/`partition` from `offset`. Fluvio's own
/// reconnecting wrapper is off: the caller sees every error and decides
/// (and reports it), which is what a service with a readiness probe needs.
pub async fn open(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
    offset: Offset,
    max_bytes: Option<usize>,
    continuous: bool,
) -> anyhow::Result<RecordStream> {
    let mut b = ConsumerConfigExtBuilder::default();
    b.topic(topic.to_owned())
        .partition(partition)
        .offset_start(offset)
        .retry_mode(RetryMode::Disabled)
        .disable_continuous(!continuous);
    if let Some(m) = max_bytes {
        b.max_bytes(m.min(i32::MAX as usize) as i32);
    }
    let cfg = b.build()?;
    let s = tokio::time::timeout(CONNECT_TIMEOUT, fluvio.consumer_with_config(cfg))
        .await
        .map_err(|_| anyhow::anyhow!("opening {topic}/{partition} timed out"))?
        .with_context(|| format!("cannot read {topic}/{partition}"))?;
    Ok(Box::pin(s))
}

/// The offset after the last record of `topic`/`partition` (`None` when it
/// holds no record).
pub(crate) async fn end_offset(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
) -> anyhow::Result<Option<i64>> {
    let mut s = open(
        fluvio,
        topic,
        partition,
        Offset::from_end(1),
        Some(PROBE_MAX_BYTES),
        false,
    )
    .await?;
    let mut last = None;
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, s.next()).await {
            Err(_) => bail!("reading the end of {topic}/{partition} timed out"),
            Ok(None) => break,
            Ok(Some(Ok(r))) => last = Some(r.offset() + 1),
            Ok(Some(Err(e))) => bail!("reading the end of {topic}/{partition}: {e}"),
        }
    }
    Ok(last)
}

/// The offset of the first record still in `topic`/`partition` (`None`
/// when it holds none).
pub(crate) async fn start_offset(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
) -> anyhow::Result<Option<i64>> {
    if end_offset(fluvio, topic, partition).await?.is_none() {
        return Ok(None);
    }
    let mut s = open(
        fluvio,
        topic,
        partition,
        Offset::beginning(),
        Some(PROBE_MAX_BYTES),
        true,
    )
    .await?;
    match tokio::time::timeout(CONNECT_TIMEOUT, s.next()).await {
        Ok(Some(Ok(r))) => Ok(Some(r.offset())),
        Ok(Some(Err(e))) => bail!("reading the start of {topic}/{partition}: {e}"),
        _ => bail!("reading the start of {topic}/{partition}: no record"),
    }
}

/// What [`read_partition`] found.
#[derive(Debug, Default)]
pub struct ReadBack {
    /// (offset, value) in offset order, each offset once.
    pub records: Vec<(i64, Vec<u8>)>,
    /// Gaps the consumer left and that were re-read.
    pub gaps: u64,
    /// Streams that stopped short of the end and were re-opened.
    pub stalls: u64,
    /// Records the consumer delivered twice (dropped).
    pub duplicates: u64,
    /// The largest fetch size it took.
    pub max_bytes: usize,
}

/// Reads `topic`/`partition` from its beginning to its current end, every
/// offset exactly once: a gap left by the client is re-read from the first
/// missing offset, with a larger fetch when a fresh stream misses again.
/// For tests, benchmarks and tools (it holds the partition in memory).
pub async fn read_partition(
    fluvio: &Fluvio,
    topic: &str,
    partition: u32,
    max_bytes: Option<usize>,
) -> anyhow::Result<ReadBack> {
    let mut out = ReadBack {
        max_bytes: max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
        ..Default::default()
    };
    let Some(end) = end_offset(fluvio, topic, partition).await? else {
        return Ok(out);
    };
    let mut tracker = OffsetTracker::new(start_offset(fluvio, topic, partition).await?);
    let t0 = std::time::Instant::now();
    while tracker.next().is_none_or(|n| n < end) {
        if t0.elapsed() > Duration::from_secs(600) {
            bail!("reading {topic}/{partition}: no progress");
        }
        let at = match tracker.next() {
            Some(n) => Offset::absolute(n)?,
            None => Offset::beginning(),
        };
        let mut s = open(fluvio, topic, partition, at, Some(out.max_bytes), true).await?;
        tracker.reopened();
        let mut boost = false;
        while tracker.next().is_none_or(|n| n < end) {
            let r = match tokio::time::timeout(Duration::from_secs(2), s.next()).await {
                Err(_) | Ok(None) => {
                    // Stopped short of the end.
                    out.stalls += 1;
                    boost = tracker.fresh();
                    break;
                }
                Ok(Some(Err(e))) => bail!("reading {topic}/{partition}: {e}"),
                Ok(Some(Ok(r))) => r,
            };
            match tracker.check(r.offset()) {
                Verdict::Take => out.records.push((r.offset(), r.value().to_vec())),
                Verdict::Duplicate => out.duplicates += 1,
                Verdict::Gap { fresh, .. } => {
                    out.gaps += 1;
                    boost = fresh;
                    break;
                }
            }
        }
        if boost {
            match larger(out.max_bytes) {
                Some(m) => out.max_bytes = m,
                None => {
                    bail!("reading {topic}/{partition}: a batch larger than {MAX_BYTES_CAP} bytes")
                }
            }
        }
    }
    Ok(out)
}

/// The same calls for tests, tools and examples that have no runtime of
/// their own: each runs on a current-thread runtime of its own and
/// connects first.
///
/// Why plain functions: a crate that awaits the `async fn`s above
/// compiles their bodies, and the fluvio client's generic code under
/// them, again for itself (an `async fn`'s body is instantiated where it
/// is awaited). Calling these costs the caller nothing: they are compiled
/// once, here. The Fluvio test binary and `examples/fluvio_local_spu.rs`
/// took 166 s and 78 s of a `cargo test --release` build before they used
/// them.
pub mod blocking {
    use std::future::Future;
    use std::time::{Duration, Instant};

    use fluvio::Offset;
    use fluvio::metadata::topic::TopicSpec;
    use futures_util::StreamExt;

    use super::{FluvioCluster, ReadBack};

    fn run<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(f)
    }

    /// [`super::register_spu`].
    #[inline(never)]
    pub fn register_spu(
        cluster: &FluvioCluster,
        id: i32,
        public: &str,
        private: &str,
    ) -> anyhow::Result<String> {
        run(super::register_spu(cluster, id, public, private))
    }

    /// [`super::ensure_topic`].
    #[inline(never)]
    pub fn ensure_topic(
        cluster: &FluvioCluster,
        topic: &str,
        partitions: u32,
    ) -> anyhow::Result<bool> {
        run(async {
            let f = super::connect(cluster).await?;
            super::ensure_topic(&f, topic, partitions).await
        })
    }

    /// Deletes `topic` (an error if it does not exist).
    #[inline(never)]
    pub fn delete_topic(cluster: &FluvioCluster, topic: &str) -> anyhow::Result<()> {
        run(async {
            let f = super::connect(cluster).await?;
            f.admin().await.delete::<TopicSpec>(topic.to_owned()).await
        })
    }

    /// [`super::read_partition`].
    #[inline(never)]
    pub fn read_partition(
        cluster: &FluvioCluster,
        topic: &str,
        partition: u32,
        max_bytes: Option<usize>,
    ) -> anyhow::Result<ReadBack> {
        run(async {
            let f = super::connect(cluster).await?;
            super::read_partition(&f, topic, partition, max_bytes).await
        })
    }

    /// The offsets that one plain consumer stream of `topic`/`partition`
    /// delivers from the beginning, with no gap repair, until it reaches
    /// `end`, stops, or is quiet for `quiet`, within `limit` in all: the
    /// bare client's behaviour, for comparisons.
    #[inline(never)]
    pub fn bare_offsets(
        cluster: &FluvioCluster,
        topic: &str,
        partition: u32,
        max_bytes: usize,
        end: i64,
        quiet: Duration,
        limit: Duration,
    ) -> anyhow::Result<Vec<i64>> {
        run(async {
            let f = super::connect(cluster).await?;
            let mut s = super::open(
                &f,
                topic,
                partition,
                Offset::beginning(),
                Some(max_bytes),
                true,
            )
            .await?;
            let mut offsets = Vec::new();
            let t0 = Instant::now();
            while offsets.last().is_none_or(|&o| o + 1 < end) && t0.elapsed() < limit {
                match tokio::time::timeout(quiet, s.next()).await {
                    Ok(Some(Ok(r))) => offsets.push(r.offset()),
                    _ => break,
                }
            }
            Ok(offsets)
        })
    }
}
