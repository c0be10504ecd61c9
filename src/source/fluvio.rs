//! A Fluvio topic as a live source (`hotspot run --fluvio-topic T
//! [--partitions 0,2]`).
//!
//! Each partition is read by its own thread into its own event-time stream
//! `fluvio:<topic>/<partition>` (one engine, one watermark per partition;
//! see `docs/fluvio.md`). A record's value is one complaint line. Batches
//! carry the partition's next offset as their position, which the journal
//! and checkpoints keep: a restarted service resumes each partition at the
//! offset after the last batch it journaled, so nothing is read twice or
//! skipped across `kill -9`.
//!
//! Every record's offset is checked (see [`super::offsets`]): a gap left by
//! the client is re-read from the first missing offset (with a larger fetch
//! when the same fetch size would miss it again), a repeat is dropped; a
//! quiet stream that stopped short of the partition's end is re-opened.
//! All are counted in `/metrics`.
//!
//! A lost connection is never fatal: the partition is marked down
//! (`hotspot_source_up` 0, `/readyz` 503 with the reason), retried with
//! capped, jittered backoff, and resumed at the exact offset. The probe of
//! a quiet stream also notices a silently dead link.
//!
//! Threads, not tokio tasks: sending a batch to the engine blocks when its
//! queue is full (that is the backpressure), and blocking must not stall the
//! service's runtime. Each thread drives its partition with a small
//! current-thread runtime; the fluvio crate runs its own I/O tasks on its
//! own executor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fluvio::{Fluvio, Offset};
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};

use super::offsets::{OffsetTracker, Verdict};
use super::{Shutdown, SourceContext};
use crate::fluvio_client::{self, FluvioCluster, RecordStream};
use crate::fluvio_settings::StartAt;
use crate::retry::RetryPolicy;
use crate::service::pipeline::Batch;
use crate::service::state::SourceHealthBook;

/// Where a partition is read up to: the next offset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FluvioPos {
    pub offset: i64,
}

/// The stream and source name of a partition.
pub fn source_name(topic: &str, partition: u32) -> String {
    format!("fluvio:{topic}/{partition}")
}

/// A batch goes to the engine at this size, or sooner when the stream has
/// nothing more ready.
const MAX_BATCH_BYTES: usize = 1 << 20;
const MAX_BATCH_RECORDS: usize = 8192;
/// A stream with no record for this long is probed (is it stuck behind a
/// skipped batch, or dead?); the wait doubles up to [`PROBE_MAX`] while
/// the partition has nothing new.
const PROBE_FIRST: Duration = Duration::from_millis(300);
const PROBE_MAX: Duration = Duration::from_secs(5);
/// How often a waiting reader looks at the shutdown flag.
const TICK: Duration = Duration::from_millis(200);

/// The source: a topic, the partitions this instance owns, and where each
/// one resumes.
pub struct FluvioSource {
    pub cluster: FluvioCluster,
    pub topic: String,
    /// None: every partition of the topic.
    pub partitions: Option<Vec<u32>>,
    pub start: StartAt,
    pub max_bytes: Option<usize>,
    /// Saved positions by source name (from [`Pipeline::positions`]).
    ///
    /// [`Pipeline::positions`]: crate::service::pipeline::Pipeline::positions
    pub positions: BTreeMap<String, serde_json::Value>,
}

/// Reconnects back off from 200 ms to 5 s.
const BACKOFF: RetryPolicy = RetryPolicy {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(5),
    timeout: Duration::from_secs(10),
};

impl FluvioSource {
    /// Starts the readers (finding the topic's partitions first, if none
    /// were given, in a thread of its own that retries until it can). Each
    /// partition's connection state goes to `health` (`/readyz`).
    pub fn spawn(self, ctx: SourceContext, health: Arc<SourceHealthBook>) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("fluvio-source".into())
            .spawn(move || self.supervise(ctx, health))?;
        Ok(())
    }

    fn supervise(self, ctx: SourceContext, health: Arc<SourceHealthBook>) {
        let partitions = match &self.partitions {
            Some(p) => p.clone(),
            None => match self.discover(&health, &ctx.shutdown) {
                Some(p) => p,
                None => return,
            },
        };
        tracing::info!(topic = %self.topic, partitions = ?partitions, cluster = %self.cluster, "consuming Fluvio partitions");
        for p in partitions {
            let name = source_name(&self.topic, p);
            let next = self
                .positions
                .get(&name)
                .and_then(|v| serde_json::from_value::<FluvioPos>(v.clone()).ok())
                .map(|p| p.offset);
            if let Some(n) = next {
                tracing::info!(source = %name, offset = n, "resuming at the saved offset");
            }
            health.set_source(&name, false, "connecting");
            let r = Reader {
                cluster: self.cluster.clone(),
                topic: self.topic.clone(),
                partition: p,
                start: self.start,
                max_bytes: self.max_bytes,
                fetch: self.max_bytes.unwrap_or(fluvio_client::DEFAULT_MAX_BYTES),
                tracker: OffsetTracker::new(next),
                name: name.clone(),
                ctx: ctx.clone(),
                health: health.clone(),
                attempt: 0,
                was_up: false,
            };
            if let Err(e) = std::thread::Builder::new()
                .name(format!("fluvio-{p}"))
                .spawn(move || r.run())
            {
                tracing::error!(source = %name, error = %e, "cannot start a reader thread");
                health.set_source(&name, false, &format!("cannot start a reader thread: {e}"));
            }
        }
    }

    /// Every partition of the topic, retrying until the cluster answers and
    /// the topic exists; None at shutdown.
    fn discover(&self, health: &SourceHealthBook, shutdown: &Shutdown) -> Option<Vec<u32>> {
        let name = format!("fluvio:{}", self.topic);
        health.set_source(&name, false, "connecting");
        let rt = runtime(&name, health)?;
        let mut attempt = 0;
        loop {
            if shutdown.requested() {
                return None;
            }
            let found = rt.block_on(async {
                let f = fluvio_client::connect(&self.cluster).await?;
                fluvio_client::partition_count(&f, &self.topic).await
            });
            let why = match found {
                Ok(Some(n)) if n > 0 => {
                    health.remove_source(&name);
                    return Some((0..n).collect());
                }
                Ok(_) => format!("topic {:?} does not exist", self.topic),
                Err(e) => format!("{e:#}"),
            };
            if attempt == 0 || attempt % 20 == 0 {
                tracing::warn!(source = %name, error = %why, "cannot list the topic's partitions; retrying");
            }
            health.set_source(&name, false, &why);
            if !sleep_unless_stopping(BACKOFF.backoff(attempt), shutdown) {
                return None;
            }
            attempt += 1;
        }
    }
}

fn runtime(name: &str, health: &SourceHealthBook) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            tracing::error!(source = %name, error = %e, "cannot start a runtime for the source");
            health.set_source(name, false, &format!("cannot start a runtime: {e}"));
            None
        }
    }
}

/// Sleeps `d` in short steps; false if shutdown began.
fn sleep_unless_stopping(d: Duration, shutdown: &Shutdown) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if shutdown.requested() {
            return false;
        }
        std::thread::sleep(TICK.min(until.saturating_duration_since(Instant::now())));
    }
    !shutdown.requested()
}

/// What a stream's pump asks for.
enum Next {
    /// Open a new stream at the next offset; `larger`: with a larger fetch
    /// size (a fresh stream missed records).
    Reopen {
        larger: bool,
    },
    Stop,
}

/// Lines on their way to the engine.
#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    records: usize,
    /// When the oldest record in `data` arrived.
    since: Option<Instant>,
}

struct Reader {
    cluster: FluvioCluster,
    topic: String,
    partition: u32,
    start: StartAt,
    /// The configured fetch size.
    max_bytes: Option<usize>,
    /// The fetch size in use (grows when batches do not fit; reset per
    /// connection).
    fetch: usize,
    tracker: OffsetTracker,
    name: String,
    ctx: SourceContext,
    health: Arc<SourceHealthBook>,
    /// Failed sessions in a row.
    attempt: u32,
    /// Whether a stream was ever open (reconnects are counted after that).
    was_up: bool,
}

impl Reader {
    fn run(mut self) {
        let Some(rt) = runtime(&self.name, &self.health) else {
            return;
        };
        loop {
            if self.ctx.shutdown.requested() {
                break;
            }
            match rt.block_on(self.session()) {
                Ok(()) => break,
                Err(e) => {
                    let why = format!("{e:#}");
                    if self.attempt == 0 || self.attempt % 20 == 0 {
                        tracing::warn!(source = %self.name, error = %why, next_offset = ?self.tracker.next(), attempt = self.attempt + 1, "Fluvio source disconnected; reconnecting");
                    }
                    self.health.set_source(&self.name, false, &why);
                    let wait = BACKOFF.backoff(self.attempt);
                    self.attempt += 1;
                    if !sleep_unless_stopping(wait, &self.ctx.shutdown) {
                        break;
                    }
                }
            }
        }
        tracing::info!(source = %self.name, next_offset = ?self.tracker.next(), "Fluvio source stopped");
    }

    /// One connection: streams until an error (re-opening after gaps);
    /// Ok at shutdown or when the engine is gone.
    async fn session(&mut self) -> anyhow::Result<()> {
        let fluvio = fluvio_client::connect(&self.cluster).await?;
        self.fetch = self.max_bytes.unwrap_or(fluvio_client::DEFAULT_MAX_BYTES);
        if self.tracker.next().is_none() && self.start == StartAt::End {
            // Pin "the end" to an offset and journal it, so a restart
            // before the first record does not move it.
            if let Some(end) =
                fluvio_client::end_offset(&fluvio, &self.topic, self.partition).await?
            {
                self.tracker = OffsetTracker::new(Some(end));
                if !self.send_position() {
                    return Ok(());
                }
            }
        }
        loop {
            let at = match self.tracker.next() {
                Some(n) => Offset::absolute(n)?,
                None => match self.start {
                    StartAt::Beginning => Offset::beginning(),
                    StartAt::End => Offset::end(),
                },
            };
            let mut stream = fluvio_client::open(
                &fluvio,
                &self.topic,
                self.partition,
                at,
                Some(self.fetch),
                true,
            )
            .await?;
            self.tracker.reopened();
            if self.was_up && self.attempt > 0 {
                self.ctx
                    .metrics
                    .source_reconnects
                    .with_label_values(&[&self.name])
                    .inc();
                tracing::info!(source = %self.name, next_offset = ?self.tracker.next(), "Fluvio source reconnected");
            }
            self.was_up = true;
            self.attempt = 0;
            self.health.set_source(&self.name, true, "");
            match self.pump(&fluvio, &mut stream).await? {
                Next::Reopen { larger: false } => {}
                Next::Reopen { larger: true } => match fluvio_client::larger(self.fetch) {
                    Some(f) => {
                        tracing::info!(source = %self.name, from = self.fetch, to = f, next_offset = ?self.tracker.next(), "a producer batch is larger than the fetch size; fetching more");
                        self.fetch = f;
                    }
                    None => anyhow::bail!(
                        "offset {:?} of {}/{} cannot be read even with {} byte fetches",
                        self.tracker.next(),
                        self.topic,
                        self.partition,
                        self.fetch
                    ),
                },
                Next::Stop => return Ok(()),
            }
        }
    }

    /// Whether the stream stopped short of the partition's end (records
    /// exist that it does not deliver). Errors mean the link is dead.
    async fn stalled(&self, fluvio: &Fluvio) -> anyhow::Result<bool> {
        let end = fluvio_client::end_offset(fluvio, &self.topic, self.partition)
            .await
            .map_err(|e| e.context("the quiet stream's probe failed"))?;
        Ok(match (end, self.tracker.next()) {
            (Some(end), Some(next)) => end > next,
            (Some(_), None) => self.start == StartAt::Beginning,
            (None, _) => false,
        })
    }

    /// Reads one stream: batches records to the engine, checks offsets.
    async fn pump(&mut self, fluvio: &Fluvio, stream: &mut RecordStream) -> anyhow::Result<Next> {
        let m = self.ctx.metrics.clone();
        let mut pending = Pending::default();
        let mut quiet_since = Instant::now();
        let mut probe_after = PROBE_FIRST;
        loop {
            if self.ctx.shutdown.requested() {
                self.send(std::mem::take(&mut pending));
                return Ok(Next::Stop);
            }
            let item = if pending.records == 0 {
                match tokio::time::timeout(TICK, stream.next()).await {
                    Ok(item) => item,
                    Err(_) => {
                        if quiet_since.elapsed() >= probe_after {
                            // A quiet stream may be stuck behind a skipped
                            // batch, or a dead link: ask for the end.
                            if self.stalled(fluvio).await? {
                                m.source_gaps.with_label_values(&[&self.name]).inc();
                                tracing::debug!(source = %self.name, next = ?self.tracker.next(), "the stream stopped short of the end; re-reading");
                                return Ok(Next::Reopen {
                                    larger: self.tracker.fresh(),
                                });
                            }
                            quiet_since = Instant::now();
                            probe_after = (probe_after * 2).min(PROBE_MAX);
                        }
                        continue;
                    }
                }
            } else {
                match stream.next().now_or_never() {
                    Some(item) => item,
                    None => {
                        // Nothing more ready: hand over what we have.
                        if !self.send(std::mem::take(&mut pending)) {
                            return Ok(Next::Stop);
                        }
                        continue;
                    }
                }
            };
            let r = match item {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    if !self.send(std::mem::take(&mut pending)) {
                        return Ok(Next::Stop);
                    }
                    return self.stream_error(fluvio, e).await;
                }
                None => {
                    self.send(std::mem::take(&mut pending));
                    anyhow::bail!(
                        "the stream of {}/{} ended (connection closed)",
                        self.topic,
                        self.partition
                    );
                }
            };
            quiet_since = Instant::now();
            probe_after = PROBE_FIRST;
            match self.tracker.check(r.offset()) {
                Verdict::Take => {}
                Verdict::Duplicate => {
                    m.source_duplicates.with_label_values(&[&self.name]).inc();
                    continue;
                }
                Verdict::Gap { missing, fresh } => {
                    m.source_gaps.with_label_values(&[&self.name]).inc();
                    m.source_reread
                        .with_label_values(&[&self.name])
                        .inc_by(missing as u64);
                    tracing::debug!(source = %self.name, expected = ?self.tracker.next(), got = r.offset(), fresh, "offset gap; re-reading from the first missing offset");
                    if !self.send(std::mem::take(&mut pending)) {
                        return Ok(Next::Stop);
                    }
                    return Ok(Next::Reopen { larger: fresh });
                }
            }
            let v = r.value();
            pending.data.extend_from_slice(v);
            if v.last() != Some(&b'\n') {
                pending.data.push(b'\n');
            }
            pending.records += 1;
            pending.since.get_or_insert_with(Instant::now);
            if (pending.data.len() >= MAX_BATCH_BYTES || pending.records >= MAX_BATCH_RECORDS)
                && !self.send(std::mem::take(&mut pending))
            {
                return Ok(Next::Stop);
            }
        }
    }

    /// An error from the stream: offsets gone from the log are skipped (with
    /// a warning); anything else ends the connection.
    async fn stream_error(
        &mut self,
        fluvio: &Fluvio,
        e: fluvio::dataplane::link::ErrorCode,
    ) -> anyhow::Result<Next> {
        use fluvio::dataplane::link::ErrorCode;
        let gone_to = match &e {
            ErrorCode::OffsetEvicted { next_available, .. } => Some(*next_available),
            ErrorCode::OffsetOutOfRange => {
                match fluvio_client::start_offset(fluvio, &self.topic, self.partition).await? {
                    Some(start) if self.tracker.next().is_some_and(|n| n < start) => Some(start),
                    _ => None,
                }
            }
            _ => None,
        };
        match gone_to {
            Some(to) => {
                tracing::warn!(source = %self.name, from = ?self.tracker.next(), to, "records are no longer in the partition (retention); going on from the oldest one there is");
                self.tracker.skip_to(to);
                Ok(Next::Reopen { larger: false })
            }
            None => anyhow::bail!(
                "reading {}/{} at offset {:?}: {e}",
                self.topic,
                self.partition,
                self.tracker.next()
            ),
        }
    }

    /// Hands lines to the engine with the resume position; false when the
    /// engine is gone.
    fn send(&mut self, p: Pending) -> bool {
        if p.records == 0 {
            return true;
        }
        self.send_batch(p)
    }

    /// Journals the resume position alone (an empty batch).
    fn send_position(&mut self) -> bool {
        self.send_batch(Pending::default())
    }

    fn send_batch(&mut self, p: Pending) -> bool {
        let Some(next) = self.tracker.next() else {
            return true;
        };
        let b = Batch {
            stream: self.name.clone(),
            source: self.name.clone(),
            position: serde_json::to_value(FluvioPos { offset: next }).ok(),
            data: Bytes::from(p.data),
            received: p.since.unwrap_or_else(Instant::now),
            key: None,
            reply: None,
        };
        self.ctx.submit.send(b).is_ok()
    }
}
