//! The engine thread of the live service: takes batches of lines from every
//! source in arrival order, runs them through the engine(s), and hands the
//! alert lines to the outbox — synchronously, on one OS thread, so the live
//! service produces exactly what a replay of the same lines would.
//!
//! Around that core it does the bookkeeping that makes the service
//! production-grade:
//!
//! * group commit: it drains every batch already queued, journals them
//!   (`--state-dir`) and fsyncs the journal once, and only then processes
//!   them, fsyncs the outbox and answers the HTTP clients — a `200` means
//!   the lines are on disk;
//! * a full disk stops intake instead of losing data: a batch that cannot
//!   be journaled is not processed (HTTP answers 503 with `Retry-After`; a
//!   source's batch waits in memory and the source with it), alert lines
//!   that cannot be written wait in the outbox's memory, `/readyz` names
//!   the cause, and the engine retries until the disk takes writes again;
//! * idempotency keys (see [`super::idempotency`]);
//! * the idle watermark: with no record for `idle_timeout`, the watermark
//!   moves on with the wall clock (journaled, so recovery repeats it);
//! * rules reloads, journaled with the rules text;
//! * the dispatch book (`super::dispatch`): it decides how each alert line
//!   is notified, and its events (acks, silences, deliveries, timer ticks)
//!   are journaled and applied here, in order with the input, so that
//!   recovery repeats its decisions and its notifications exactly;
//! * checkpoints every `checkpoint_interval`, and recovery at start:
//!   restore the last checkpoint, re-run the journal after it;
//! * a [`Snapshot`] for the HTTP API and the metrics, refreshed a few times
//!   a second.
//!
//! Engines are kept per *stream* (one event-time stream each, with its own
//! watermark): HTTP, stdin and followed files feed the stream `main`; each
//! Fluvio partition is a stream of its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::dispatch::{Dispatch, DispatchState, Event, Reply};
use super::idempotency::{Check, Keys, Seen};
use super::state::{OpenAlertView, Shared, Snapshot};
use crate::alert::Alert;
use crate::checkpoint;
use crate::engine::{Engine, EngineConfig, EngineState, Outcome, Output, Stats};
use crate::journal::{EntryHeader, Journal, JournalPos};
use crate::matcher::Matcher;
use crate::metrics::Metrics;
use crate::record::RejectInfo;
use crate::rules::{Rules, load_str};
use crate::sink::outbox::Outbox;
use crate::sink::{DeadLetterQueue, JsonlWriter, dead_letter_json};

/// The stream of HTTP, stdin and followed files.
pub(crate) const MAIN: &str = "main";

/// Work for the engine thread.
pub enum Command {
    Batch(Batch),
    Reload {
        rules: Arc<Rules>,
        matcher: Arc<Matcher>,
        text: String,
        /// The rules version in force after it, or why it was not applied.
        reply: Option<oneshot::Sender<Result<String, String>>>,
    },
    /// What a reload to `rules` would do, without doing it: the rules in
    /// force and every key's fate, per stream. Not journaled.
    DryRun {
        rules: Arc<Rules>,
        reply: oneshot::Sender<DryRun>,
    },
    /// A dispatch event: answered with the book's reply once journaled and
    /// applied, or with why it was not (the state directory).
    Dispatch {
        event: Event,
        reply: Option<oneshot::Sender<Result<Reply, String>>>,
    },
    Shutdown,
}

/// The answer to [`Command::DryRun`].
pub struct DryRun {
    /// The rules in force.
    pub current: Arc<Rules>,
    /// Per stream (`main`, Fluvio partitions), each key's fate.
    pub keys: Vec<(String, Vec<crate::window::store::KeyFate>)>,
}

/// Lines from a source.
pub struct Batch {
    pub stream: String,
    /// `http`, `stdin`, `follow:<path>`, `fluvio:<topic>/<partition>`.
    pub source: String,
    /// The source's resume position after these lines.
    pub position: Option<serde_json::Value>,
    pub data: Bytes,
    pub received: Instant,
    /// The client's `Idempotency-Key` (HTTP), checked with
    /// [`super::idempotency::valid_key`].
    pub key: Option<String>,
    pub reply: Option<oneshot::Sender<Answer>>,
}

impl Batch {
    /// Its journal entry's header; `at` is when its key was first seen.
    fn header(&self, at: Option<i64>) -> EntryHeader {
        EntryHeader::Batch {
            stream: self.stream.clone(),
            source: self.source.clone(),
            position: self.position.clone(),
            key: self.key.clone(),
            at,
        }
    }
}

/// What the engine says to a batch that waits for an answer.
#[derive(Debug)]
pub enum Answer {
    /// Journaled (durable) and processed.
    Done(BatchReport),
    /// Its idempotency key was seen with the same body: the first answer,
    /// not processed again.
    Replayed(BatchReport),
    /// Its idempotency key was seen with another body.
    KeyConflict,
    /// Not journaled and not processed (the state directory cannot be
    /// written): retry later.
    Refused(String),
}

/// Rejects listed in an answer at most; `rejected` counts them all.
pub(crate) const MAX_LISTED_REJECTS: usize = 1000;

/// The answer to an HTTP batch.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchReport {
    pub lines: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub late_dropped: u64,
    pub blank: u64,
    /// Alert lines this batch caused.
    pub alerts: u64,
    /// Rejected lines (1-based line of the body), the first
    /// [`MAX_LISTED_REJECTS`]; `rejected` is the total.
    pub rejects: Vec<LineReject>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineReject {
    pub line: u64,
    pub reason: String,
    pub detail: String,
    pub at: usize,
}

/// What is saved in `checkpoint.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub version: u32,
    /// The journal position the state covers (entries from here are re-run).
    pub journal: JournalPos,
    /// The outbox's next line number at that point.
    pub outbox_next: u64,
    /// Lines numbered so far (engine line numbers are global).
    pub seq: u64,
    /// The rules in force, as TOML, and their name.
    pub rules_text: String,
    pub rules_source: String,
    pub engines: BTreeMap<String, EngineState>,
    /// Latest resume position per source.
    pub positions: BTreeMap<String, serde_json::Value>,
    pub written_at: String,
    /// Idempotency keys within their horizon, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idempotency: Vec<Seen>,
    /// The dispatch book: acks, silences, deadlines, decisions.
    #[serde(default, skip_serializing_if = "DispatchState::is_empty")]
    pub dispatch: DispatchState,
}

/// The engine's output for one batch. Rejects are dealt with as they come
/// (counted, dead-lettered, the first few listed), never collected: a body
/// of millions of bad lines must not cost memory per line.
struct Collect<'a> {
    alerts: &'a mut Vec<Alert>,
    rejects: Option<Rejects<'a>>,
}

struct Rejects<'a> {
    /// The engine's line number of the batch's first line.
    first: u64,
    source: &'a str,
    metrics: &'a Metrics,
    /// Dead letters are written for live lines only (not when the journal
    /// is re-run).
    dead: Option<&'a mut JsonlWriter>,
    dead_queue: Option<&'a (String, DeadLetterQueue)>,
    listed: &'a mut Vec<LineReject>,
}

impl Collect<'_> {
    fn alerts_only(alerts: &mut Vec<Alert>) -> Collect<'_> {
        Collect {
            alerts,
            rejects: None,
        }
    }
}

impl Output for Collect<'_> {
    fn alert(&mut self, alert: &Alert) {
        self.alerts.push(alert.clone());
    }
    fn reject(&mut self, line: u64, raw: &[u8], info: &RejectInfo) {
        let Some(r) = &mut self.rejects else { return };
        r.metrics
            .rejects
            .with_label_values(&[info.reason.name()])
            .inc();
        let body_line = line - r.first + 1;
        if r.dead.is_some() || r.dead_queue.is_some() {
            let json = dead_letter_json(body_line, raw, info, Some(r.source));
            if let Some(d) = &mut r.dead {
                if let Err(e) = d.write_raw(&json) {
                    tracing::error!(error = %e, "cannot write a dead letter");
                }
            }
            if let Some((name, q)) = r.dead_queue {
                // Never block the engine on a remote sink: a full queue
                // (the topic unreachable for long) drops, counted.
                if q.try_send((r.source.to_owned(), json)).is_err() {
                    r.metrics
                        .dead_letters_dropped
                        .with_label_values(&[name])
                        .inc();
                }
            }
        }
        if r.listed.len() < MAX_LISTED_REJECTS {
            r.listed.push(LineReject {
                line: body_line,
                reason: info.reason.name().to_owned(),
                detail: info.detail.to_owned(),
                at: info.at,
            });
        }
    }
}

/// Why intake is stopped.
struct Fault {
    /// `journal` or `outbox`.
    store: &'static str,
    cause: String,
    logged: Instant,
}

/// A journaled command waiting to be processed in its group.
enum Work {
    Batch(Batch, Option<i64>),
    Reload {
        rules: Arc<Rules>,
        matcher: Arc<Matcher>,
        text: String,
        reply: Option<oneshot::Sender<Result<String, String>>>,
    },
    DryRun {
        rules: Arc<Rules>,
        reply: oneshot::Sender<DryRun>,
    },
    Dispatch {
        event: Event,
        reply: Option<oneshot::Sender<Result<Reply, String>>>,
    },
}

/// Where the pipeline keeps its state on disk.
struct Durable {
    dir: PathBuf,
    journal: Journal,
    checkpoint_path: PathBuf,
}

pub(crate) struct Pipeline {
    rules: Arc<Rules>,
    rules_text: String,
    matcher: Arc<Matcher>,
    config: EngineConfig,
    engines: BTreeMap<String, Engine>,
    seq: u64,
    durable: Option<Durable>,
    outbox: Arc<Outbox>,
    dead: Option<JsonlWriter>,
    /// An asynchronous dead-letter sink (a Fluvio topic), by name.
    dead_queue: Option<(String, DeadLetterQueue)>,
    shared: Arc<Shared>,
    idle: Option<Duration>,
    /// Per stream: when the last batch arrived and the watermark after it.
    last_arrival: BTreeMap<String, (Instant, Option<i64>)>,
    checkpoint_every: Duration,
    last_checkpoint: Instant,
    changed: bool,
    positions: BTreeMap<String, serde_json::Value>,
    /// While re-running the journal: the outbox line number the next
    /// re-produced alert has.
    replay_next: Option<u64>,
    last_snapshot: Instant,
    snapshot_due: bool,
    processing: hdrhistogram::Histogram<u64>,
    matches_by_region: BTreeMap<(usize, String), u64>,
    keys: Keys,
    /// Set while the state directory cannot be written.
    fault: Option<Fault>,
    /// The largest journal entry that could not be written: the disk must
    /// take at least this much before intake reopens.
    journal_need: u64,
    /// When the state directory was last tried while at fault.
    storage_tried: Instant,
    /// Batches of sources without a reply (a followed file, Fluvio) that
    /// could not be journaled: processed first once the disk takes writes.
    held: std::collections::VecDeque<Batch>,
    /// The last checkpoint failed: try again soon, not a whole interval
    /// later.
    checkpoint_failed: bool,
    /// Acks, silences, deadlines and escalations (CONTRACT 9).
    dispatch: Dispatch,
}

/// Settings the pipeline needs.
pub(crate) struct PipelineConfig {
    pub rules: Arc<Rules>,
    pub rules_text: String,
    pub engine: EngineConfig,
    pub state_dir: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    /// Dead letters also go here (name, queue), e.g. to a Fluvio topic.
    pub dead_letter_queue: Option<(String, DeadLetterQueue)>,
    pub idle: Option<Duration>,
    pub checkpoint_every: Duration,
    /// How long an idempotency key is remembered.
    pub idempotency_horizon: Duration,
}

impl Pipeline {
    /// Builds the pipeline and, with a state directory, recovers: restores
    /// the last checkpoint and re-runs the journal after it.
    pub fn start(
        cfg: PipelineConfig,
        outbox: Arc<Outbox>,
        shared: Arc<Shared>,
    ) -> anyhow::Result<Pipeline> {
        let matcher = Arc::new(Matcher::new(&cfg.rules)?);
        let dead = match &cfg.dead_letter {
            Some(p) => Some(JsonlWriter::append(p).map_err(|e| {
                anyhow::anyhow!("cannot open dead-letter file {}: {e}", p.display())
            })?),
            None => None,
        };
        let dispatch = Dispatch::new(&shared.metrics.registry);
        let mut p = Pipeline {
            rules: cfg.rules.clone(),
            rules_text: cfg.rules_text.clone(),
            matcher,
            config: cfg.engine,
            engines: BTreeMap::new(),
            seq: 0,
            durable: None,
            outbox,
            dead,
            dead_queue: cfg.dead_letter_queue.clone(),
            shared,
            idle: cfg.idle,
            last_arrival: BTreeMap::new(),
            checkpoint_every: cfg.checkpoint_every,
            last_checkpoint: Instant::now(),
            changed: false,
            positions: BTreeMap::new(),
            replay_next: None,
            last_snapshot: Instant::now(),
            snapshot_due: true,
            processing: crate::metrics::LatencyBook::processing_histogram(),
            matches_by_region: BTreeMap::new(),
            keys: Keys::new(cfg.idempotency_horizon.as_millis() as i64),
            fault: None,
            journal_need: 0,
            storage_tried: Instant::now(),
            held: std::collections::VecDeque::new(),
            checkpoint_failed: false,
            dispatch,
        };
        if let Some(dir) = &cfg.state_dir {
            p.recover(dir, &cfg)?;
        }
        p.publish();
        Ok(p)
    }

    fn recover(&mut self, dir: &std::path::Path, cfg: &PipelineConfig) -> anyhow::Result<()> {
        checkpoint::create_private_dir(dir)?;
        let checkpoint_path = dir.join("checkpoint.json");
        let journal = Journal::open(&dir.join("journal"))?;
        let saved: Option<Checkpoint> = checkpoint::read(&checkpoint_path)?;
        let mut from = JournalPos {
            segment: 1,
            offset: 0,
        };
        let mut replay_next = self.outbox.next_seq();
        if let Some(ck) = saved {
            tracing::info!(journal = ?ck.journal, outbox_next = ck.outbox_next, streams = ck.engines.len(), "restoring checkpoint");
            // The rules in force when the checkpoint was taken.
            let rules = Arc::new(
                load_str(&ck.rules_text, &ck.rules_source)
                    .map_err(|e| anyhow::anyhow!("checkpointed rules: {e:?}"))?,
            );
            self.matcher = Arc::new(Matcher::new(&rules)?);
            self.rules = rules;
            self.rules_text = ck.rules_text;
            self.seq = ck.seq;
            self.positions = ck.positions;
            self.keys.restore(ck.idempotency);
            self.dispatch.restore(ck.dispatch);
            replay_next = ck.outbox_next;
            let mut ignored = Vec::new();
            for (stream, state) in ck.engines {
                let mut e = Engine::restore(
                    self.rules.clone(),
                    self.matcher.clone(),
                    self.config,
                    state,
                    self.seq,
                    &mut Collect::alerts_only(&mut ignored),
                );
                e.set_tracking(true);
                for a in e.keys().open_alerts() {
                    self.dispatch.adopt(&a.firing);
                }
                self.engines.insert(stream, e);
            }
            from = ck.journal;
        } else if journal.position() != from {
            tracing::info!("no checkpoint: re-running the whole journal");
        }
        self.replay_next = Some(replay_next);
        let mut entries = Vec::new();
        journal.read_from(from, |_, e| {
            entries.push(e);
            Ok(())
        })?;
        let n = entries.len();
        for e in entries {
            match e.header {
                EntryHeader::Batch {
                    stream,
                    source,
                    position,
                    key,
                    at,
                } => {
                    let b = Batch {
                        stream,
                        source,
                        position,
                        data: Bytes::from(e.data),
                        received: Instant::now(),
                        key,
                        reply: None,
                    };
                    self.process(b, at, false);
                }
                EntryHeader::Idle { stream, watermark } => {
                    self.run_idle(&stream, watermark);
                }
                EntryHeader::Reload { source, rules } => {
                    if let Ok(r) = load_str(&rules, &source) {
                        if let Ok(m) = Matcher::new(&r) {
                            self.run_reload(Arc::new(r), Arc::new(m), rules);
                        }
                    }
                }
                EntryHeader::Dispatch { event } => match serde_json::from_value::<Event>(event) {
                    Ok(e) => {
                        self.run_dispatch(e);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a dispatch event in the journal cannot be read; skipped");
                    }
                },
            }
        }
        self.replay_next = None;
        self.keys.expire(crate::time::now_ms());
        self.outbox.sync()?;
        self.durable = Some(Durable {
            dir: dir.to_owned(),
            journal,
            checkpoint_path,
        });
        if n > 0 {
            tracing::info!(entries = n, "re-ran the journal after the checkpoint");
        }
        // The rules file may have changed while we were down.
        if cfg.rules.version != self.rules.version {
            tracing::info!(from = %self.rules.version, to = %cfg.rules.version, "rules changed since the checkpoint; reloading");
            let m = Arc::new(Matcher::new(&cfg.rules)?);
            if let Some(d) = &mut self.durable {
                let h = EntryHeader::Reload {
                    source: cfg.rules.source.clone(),
                    rules: cfg.rules_text.clone(),
                };
                d.journal
                    .append(&h, b"")
                    .and_then(|_| d.journal.sync())
                    .with_context(|| {
                        format!("cannot journal the rules reload in {}", dir.display())
                    })?;
            }
            self.apply_reload(cfg.rules.clone(), m, cfg.rules_text.clone());
            self.outbox.sync()?;
        }
        self.write_checkpoint();
        Ok(())
    }

    /// The latest known position of every source (for sources that resume).
    pub(crate) fn positions(&self) -> BTreeMap<String, serde_json::Value> {
        self.positions.clone()
    }

    fn engine(&mut self, stream: &str) -> &mut Engine {
        if !self.engines.contains_key(stream) {
            let mut e = Engine::with_matcher(self.rules.clone(), self.matcher.clone(), self.config);
            e.set_tracking(true);
            self.engines.insert(stream.to_owned(), e);
        }
        self.engines.get_mut(stream).expect("inserted above")
    }

    /// Puts a line in the outbox (by position while re-running the
    /// journal).
    fn push(
        &mut self,
        a: Alert,
        notice: Option<crate::sink::notice::Notice>,
        received: Option<Instant>,
    ) {
        match self.replay_next.as_mut() {
            Some(next) => {
                let r = self.outbox.push_replayed(*next, a, notice, received);
                *next += 1;
                if let Err(e) = r {
                    tracing::error!(error = %e, "cannot put a re-produced alert line in the outbox");
                }
            }
            None => {
                self.outbox.push_with(a, notice, received);
            }
        }
    }

    /// Applies a dispatch event (journaled already, or being re-run) and
    /// queues the notifications it makes.
    fn run_dispatch(&mut self, event: Event) -> Reply {
        let (reply, steps) = self.dispatch.apply(event, &self.rules);
        for (alert, notice) in steps {
            self.push(alert, Some(notice), None);
        }
        self.changed = true;
        self.snapshot_due = true;
        reply
    }

    /// Hands alert lines to the outbox (by position while re-running the
    /// journal) and counts them.
    fn emit(&mut self, alerts: Vec<Alert>, received: Option<Instant>) {
        for a in alerts {
            let dept = a.department.clone();
            let state = a.state.as_str();
            let (kind, scope) = crate::metrics::Metrics::alert_labels(&a);
            let notice = self.dispatch.on_line(&a, &self.rules);
            self.push(a, notice, received);
            self.shared
                .metrics
                .alerts_total
                .with_label_values(&[&dept, state, kind, scope])
                .inc();
            self.snapshot_due = true;
        }
    }

    /// Runs one batch of lines through its stream's engine.
    fn run_batch(
        &mut self,
        stream: &str,
        source: &str,
        position: Option<serde_json::Value>,
        data: &[u8],
        received: Option<Instant>,
    ) -> BatchReport {
        let mut alerts = Vec::new();
        let mut report = BatchReport::default();
        let mut counts = BatchReport::default();
        let first = self.seq + 1;
        let live = self.replay_next.is_none();
        let track = live;
        let engine_start = Instant::now();
        {
            let seq = &mut self.seq;
            let processing = &mut self.processing;
            let matches = &mut self.matches_by_region;
            let engines = &mut self.engines;
            if !engines.contains_key(stream) {
                let mut e =
                    Engine::with_matcher(self.rules.clone(), self.matcher.clone(), self.config);
                e.set_tracking(true);
                engines.insert(stream.to_owned(), e);
            }
            let engine = engines.get_mut(stream).expect("inserted above");
            let mut out = Collect {
                alerts: &mut alerts,
                rejects: Some(Rejects {
                    first,
                    source,
                    metrics: &self.shared.metrics,
                    dead: if live { self.dead.as_mut() } else { None },
                    dead_queue: if live { self.dead_queue.as_ref() } else { None },
                    listed: &mut report.rejects,
                }),
            };
            let mut lines = data.split(|&b| b == b'\n').peekable();
            let counts = &mut counts;
            while let Some(line) = lines.next() {
                if line.is_empty() && lines.peek().is_none() {
                    break; // the newline ending the last line
                }
                *seq += 1;
                let t = if live { Some(Instant::now()) } else { None };
                let before = out.alerts.len();
                let outcome = engine.process_line(*seq, line, &mut out);
                if let Some(t) = t {
                    let _ = processing.record(t.elapsed().as_nanos() as u64);
                }
                counts.lines += 1;
                match outcome {
                    Outcome::Blank => counts.blank += 1,
                    Outcome::Late => counts.late_dropped += 1,
                    Outcome::Rejected(_) => counts.rejected += 1,
                    Outcome::Accepted { matched } => {
                        counts.accepted += 1;
                        if matched && track {
                            for &b in engine.last_businesses() {
                                *matches
                                    .entry((b, engine.last_region().to_owned()))
                                    .or_default() += 1;
                            }
                        }
                    }
                }
                counts.alerts += (out.alerts.len() - before) as u64;
            }
            if let Some(wm) = engine.watermark() {
                self.last_arrival
                    .insert(stream.to_owned(), (Instant::now(), Some(wm)));
            }
        }
        report = BatchReport {
            rejects: report.rejects,
            ..counts
        };
        let per_record = engine_start.elapsed().as_secs_f64() / report.lines.max(1) as f64;
        let m = &self.shared.metrics;
        if live {
            m.batch_processing.observe(per_record);
        }
        let src = if source.starts_with("follow:") {
            "follow"
        } else if source.starts_with("fluvio:") {
            "fluvio"
        } else {
            source
        };
        m.records
            .with_label_values(&[src, "accepted"])
            .inc_by(report.accepted);
        m.records
            .with_label_values(&[src, "rejected"])
            .inc_by(report.rejected);
        m.records
            .with_label_values(&[src, "late"])
            .inc_by(report.late_dropped);
        m.records
            .with_label_values(&[src, "blank"])
            .inc_by(report.blank);
        m.late_dropped.inc_by(report.late_dropped);
        if let Some(d) = &mut self.dead {
            let _ = d.flush();
        }
        if let Some(p) = position {
            self.positions.insert(source.to_owned(), p);
        }
        self.emit(alerts, received);
        self.changed = true;
        report
    }

    fn run_idle(&mut self, stream: &str, wm: i64) {
        let mut alerts = Vec::new();
        let seq = self.seq;
        let moved =
            self.engine(stream)
                .advance_idle(wm, seq, &mut Collect::alerts_only(&mut alerts));
        if moved {
            self.changed = true;
            self.snapshot_due = true;
        }
        self.emit(alerts, None);
    }

    fn run_reload(&mut self, rules: Arc<Rules>, matcher: Arc<Matcher>, text: String) {
        let mut alerts = Vec::new();
        let seq = self.seq;
        for e in self.engines.values_mut() {
            e.reload(
                rules.clone(),
                matcher.clone(),
                seq,
                &mut Collect::alerts_only(&mut alerts),
            );
        }
        self.rules = rules;
        self.matcher = matcher;
        self.rules_text = text;
        self.changed = true;
        self.snapshot_due = true;
        self.emit(alerts, None);
    }

    /// What a reload to `rules` would do now (see [`Command::DryRun`]).
    fn dry_run(&self, rules: &Rules) -> DryRun {
        DryRun {
            current: self.rules.clone(),
            keys: self
                .engines
                .iter()
                .map(|(stream, e)| (stream.clone(), e.keys().reload_plan(rules)))
                .collect(),
        }
    }

    /// Puts journaled new rules in force (live: after the journal entry is
    /// durable).
    fn apply_reload(&mut self, rules: Arc<Rules>, matcher: Arc<Matcher>, text: String) {
        let old = self.rules.version.clone();
        self.run_reload(rules, matcher, text);
        let m = &self.shared.metrics;
        m.rules_info.reset();
        m.rules_info
            .with_label_values(&[&self.rules.version, &self.rules.source])
            .set(1);
        tracing::info!(from = %old, to = %self.rules.version, source = %self.rules.source, "rules reloaded");
    }

    /// Processes one journaled batch (live, or re-run from the journal):
    /// a batch whose idempotency key was seen gets the first answer and is
    /// not run again. `at` is when its key was first seen.
    fn process(&mut self, b: Batch, at: Option<i64>, live: bool) -> Answer {
        let body = b.key.as_ref().map(|_| Keys::body_hash(&b.data));
        if let (Some(k), Some(h)) = (&b.key, body) {
            match self.keys.check(k, h) {
                Check::New => {}
                Check::Replay(r) => return Answer::Replayed(r.clone()),
                Check::Conflict => return Answer::KeyConflict,
            }
        }
        let received = live.then_some(b.received);
        let report = self.run_batch(&b.stream, &b.source, b.position, &b.data, received);
        if let (Some(key), Some(body)) = (b.key, body) {
            self.keys.insert(Seen {
                key,
                at: at.unwrap_or_else(crate::time::now_ms),
                body,
                report: report.clone(),
            });
        }
        Answer::Done(report)
    }

    /// The engine thread's loop; returns at [`Command::Shutdown`] or when
    /// every sender is gone.
    pub fn run(mut self, rx: Receiver<Command>) {
        self.shared.set_ready(true);
        let tick = Duration::from_millis(200);
        loop {
            if self.fault.is_some() && self.storage_tried.elapsed() >= Duration::from_millis(500) {
                self.storage_tried = Instant::now();
                self.retry_storage();
            }
            let first = if !self.held.is_empty() {
                // A source's batch waits for the disk: take nothing newer
                // (the sources wait on the full queue), but see a shutdown.
                if self.shared.shutting_down() {
                    break;
                }
                std::thread::sleep(tick);
                None
            } else {
                match rx.recv_timeout(tick) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            let mut stop = false;
            if let Some(first) = first {
                // Group commit: everything already waiting goes together.
                let mut cmds = vec![first];
                while cmds.len() < 1024 {
                    match rx.try_recv() {
                        Ok(c) => cmds.push(c),
                        Err(_) => break,
                    }
                }
                self.shared.metrics.intake_queue.set(0);
                stop = self.run_group(cmds);
            }
            if self.fault.is_none() {
                self.idle_tick();
            }
            if self.last_snapshot.elapsed() >= Duration::from_millis(250)
                || (self.snapshot_due && self.last_snapshot.elapsed() >= Duration::from_millis(20))
            {
                self.publish();
            }
            let due = if self.checkpoint_failed {
                Duration::from_secs(1).min(self.checkpoint_every)
            } else {
                self.checkpoint_every
            };
            if self.changed && self.last_checkpoint.elapsed() >= due {
                self.write_checkpoint();
            }
            if stop {
                break;
            }
        }
        // Drain: whatever is still queued was accepted before shutdown.
        self.publish();
        if self.durable.is_some() {
            self.write_checkpoint();
        }
        if let Err(e) = self.outbox.sync() {
            tracing::error!(error = %e, pending = self.outbox.pending(), "stopping with alert lines not written to the outbox; they are re-produced from the journal at the next start");
        }
        self.shared.set_ready(false);
        tracing::info!("engine stopped");
    }

    /// One group of commands: journal them all and sync once, then process
    /// those that are durable, in order, then make their alert lines
    /// durable, then answer. Returns whether a shutdown was asked for.
    fn run_group(&mut self, cmds: Vec<Command>) -> bool {
        let mut stop = false;
        let now = crate::time::now_ms();
        self.keys.expire(now);
        let start = self.durable.as_ref().map(|d| d.journal.position());
        // Set once a write fails (or while intake is stopped): every later
        // command of the group is refused or held, in order.
        let mut failed: Option<String> = self.fault.as_ref().map(|f| f.cause.clone());
        let mut work = Vec::with_capacity(cmds.len());
        for c in cmds {
            match c {
                Command::Shutdown => stop = true,
                Command::Batch(b) => {
                    if let Some(k) = &b.key {
                        // Answer a repeat at once, without journaling it.
                        match self.keys.check(k, Keys::body_hash(&b.data)) {
                            Check::New => {}
                            Check::Replay(r) => {
                                let r = r.clone();
                                reply(b, Answer::Replayed(r));
                                continue;
                            }
                            Check::Conflict => {
                                reply(b, Answer::KeyConflict);
                                continue;
                            }
                        }
                    }
                    if let Some(cause) = &failed {
                        self.refuse_or_hold(b, cause);
                        continue;
                    }
                    let at = b.key.as_ref().map(|_| now);
                    if let Some(d) = &mut self.durable {
                        if let Err(e) = d.journal.append(&b.header(at), &b.data) {
                            self.journal_need = self.journal_need.max(b.data.len() as u64);
                            let cause = self.storage_error("journal", &e);
                            // Stop intake before the client hears of it.
                            self.set_fault("journal", cause.clone());
                            self.refuse_or_hold(b, &cause);
                            failed = Some(cause);
                            continue;
                        }
                    }
                    work.push(Work::Batch(b, at));
                }
                Command::Reload {
                    rules,
                    matcher,
                    text,
                    reply,
                } => {
                    let mut refused = failed.clone();
                    if let (None, Some(d)) = (&refused, &mut self.durable) {
                        let h = EntryHeader::Reload {
                            source: rules.source.clone(),
                            rules: text.clone(),
                        };
                        if let Err(e) = d.journal.append(&h, b"") {
                            let cause = self.storage_error("journal", &e);
                            self.set_fault("journal", cause.clone());
                            failed = Some(cause.clone());
                            refused = Some(cause);
                        }
                    }
                    match refused {
                        Some(cause) => {
                            if let Some(r) = reply {
                                let _ = r.send(Err(format!("not reloaded: {cause}")));
                            }
                        }
                        None => work.push(Work::Reload {
                            rules,
                            matcher,
                            text,
                            reply,
                        }),
                    }
                }
                // In its place among the group's work: it sees the state
                // that the commands before it leave.
                Command::DryRun { rules, reply } => work.push(Work::DryRun { rules, reply }),
                Command::Dispatch { event, reply } => {
                    let mut refused = failed.clone();
                    if let (None, Some(d)) = (&refused, &mut self.durable) {
                        let h = EntryHeader::Dispatch {
                            event: serde_json::to_value(&event).unwrap_or_default(),
                        };
                        if let Err(e) = d.journal.append(&h, b"") {
                            let cause = self.storage_error("journal", &e);
                            self.set_fault("journal", cause.clone());
                            failed = Some(cause.clone());
                            refused = Some(cause);
                        }
                    }
                    match refused {
                        Some(cause) => {
                            if let Some(r) = reply {
                                let _ = r.send(Err(cause));
                            }
                        }
                        None => work.push(Work::Dispatch { event, reply }),
                    }
                }
            }
        }
        if let (Some(d), Some(start)) = (&mut self.durable, start) {
            if !work.is_empty() {
                if let Err(e) = d.journal.sync() {
                    // Not durable: take the whole group back.
                    if let Err(e) = d.journal.rollback(start) {
                        tracing::error!(error = %e, "cannot cut the journal back after a failed sync");
                    }
                    let cause = self.storage_error("journal", &e);
                    let size: usize = work
                        .iter()
                        .map(|w| match w {
                            Work::Batch(b, _) => b.data.len(),
                            Work::Reload { text, .. } => text.len(),
                            Work::DryRun { .. } => 0,
                            Work::Dispatch { .. } => 1024,
                        })
                        .sum();
                    self.journal_need = self.journal_need.max(size as u64);
                    self.set_fault("journal", cause.clone());
                    for w in std::mem::take(&mut work) {
                        match w {
                            Work::Batch(b, _) => self.refuse_or_hold(b, &cause),
                            Work::Reload { reply, .. } => {
                                if let Some(r) = reply {
                                    let _ = r.send(Err(format!("not reloaded: {cause}")));
                                }
                            }
                            Work::DryRun { rules, reply } => {
                                let _ = reply.send(self.dry_run(&rules));
                            }
                            Work::Dispatch { reply, .. } => {
                                if let Some(r) = reply {
                                    let _ = r.send(Err(cause.clone()));
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut replies = Vec::new();
        let mut dispatch_replies = Vec::new();
        for w in work {
            match w {
                Work::Batch(mut b, at) => {
                    let r = b.reply.take();
                    let answer = self.process(b, at, true);
                    if let Some(r) = r {
                        replies.push((r, answer));
                    }
                }
                Work::Reload {
                    rules,
                    matcher,
                    text,
                    reply,
                } => {
                    self.apply_reload(rules, matcher, text);
                    self.publish();
                    if let Some(r) = reply {
                        let _ = r.send(Ok(self.rules.version.clone()));
                    }
                }
                Work::DryRun { rules, reply } => {
                    let _ = reply.send(self.dry_run(&rules));
                }
                Work::Dispatch { event, reply } => {
                    let answer = self.run_dispatch(event);
                    if let Some(r) = reply {
                        dispatch_replies.push((r, answer));
                    }
                }
            }
        }
        if let Err(e) = self.outbox.sync() {
            // The lines are journaled, so these answers stand; the alert
            // lines wait in memory and intake stops until they are written.
            let cause = self.storage_error("outbox", &e);
            self.set_fault("outbox", cause);
        }
        // Read-your-writes: a client that got its answer sees its
        // records in /v1/*. A snapshot is cheap (it walks the live
        // keys), but with very many keys it is rate-limited.
        let keys: usize = self.engines.values().map(|e| e.keys().len()).sum();
        // An ack is on /v1/alerts and the status page once answered.
        if keys < 20_000
            || self.last_snapshot.elapsed() >= Duration::from_millis(250)
            || !dispatch_replies.is_empty()
        {
            self.publish();
        }
        for (r, answer) in replies {
            let _ = r.send(answer);
        }
        for (r, answer) in dispatch_replies {
            let _ = r.send(Ok(answer));
        }
        stop
    }

    /// A batch that could not be journaled: an HTTP client is told to retry;
    /// a source's batch waits (the source resumes from its last journaled
    /// position after a restart, so nothing is lost either way).
    fn refuse_or_hold(&mut self, b: Batch, cause: &str) {
        if b.reply.is_some() {
            reply(b, Answer::Refused(cause.to_owned()));
        } else {
            self.held.push_back(b);
        }
    }

    /// Counts a failed write and says what failed, for the log and /readyz.
    fn storage_error(&self, store: &'static str, e: &std::io::Error) -> String {
        self.shared
            .metrics
            .storage_errors
            .with_label_values(&[store])
            .inc();
        let dir = self
            .durable
            .as_ref()
            .map(|d| d.dir.display().to_string())
            .unwrap_or_default();
        format!("cannot write the {store} in {dir}: {e}")
    }

    /// Stops intake: `/readyz` and HTTP intake answer 503 with the cause.
    fn set_fault(&mut self, store: &'static str, cause: String) {
        let m = &self.shared.metrics;
        m.storage_fault.with_label_values(&[store]).set(1);
        let changed = self.fault.as_ref().is_none_or(|f| f.cause != cause);
        let stale = self
            .fault
            .as_ref()
            .is_some_and(|f| f.logged.elapsed() >= Duration::from_secs(60));
        if changed || stale {
            tracing::error!(store, cause = %cause, pending_alerts = self.outbox.pending(), held_batches = self.held.len(), "state directory cannot be written: intake stopped until it can");
        }
        let logged = if changed || stale {
            Instant::now()
        } else {
            self.fault
                .as_ref()
                .map(|f| f.logged)
                .unwrap_or_else(Instant::now)
        };
        self.shared.set_storage_fault(Some(cause.clone()));
        self.fault = Some(Fault {
            store,
            cause,
            logged,
        });
    }

    /// While intake is stopped: writes what waits (alert lines, then held
    /// batches), then checks that the journal takes writes again; resumes
    /// intake when all of that succeeded.
    fn retry_storage(&mut self) {
        if let Err(e) = self.outbox.sync() {
            let cause = self.storage_error("outbox", &e);
            self.set_fault("outbox", cause);
            return;
        }
        while let Some(b) = self.held.pop_front() {
            let Some(d) = &mut self.durable else {
                self.process(b, None, true);
                continue;
            };
            let start = d.journal.position();
            let written = d
                .journal
                .append(&b.header(None), &b.data)
                .and_then(|_| d.journal.sync());
            if let Err(e) = written {
                let _ = d.journal.rollback(start);
                self.journal_need = self.journal_need.max(b.data.len() as u64);
                self.held.push_front(b);
                let cause = self.storage_error("journal", &e);
                self.set_fault("journal", cause);
                return;
            }
            self.process(b, None, true);
            if let Err(e) = self.outbox.sync() {
                let cause = self.storage_error("outbox", &e);
                self.set_fault("outbox", cause);
                return;
            }
        }
        if let (Some(f), Some(d)) = (&self.fault, &self.durable) {
            let store = f.store;
            if let Err(e) = probe(&d.dir, self.journal_need) {
                let cause = self.storage_error(store, &e);
                self.set_fault(store, cause);
                return;
            }
        }
        if let Some(f) = self.fault.take() {
            self.journal_need = 0;
            let m = &self.shared.metrics;
            for store in ["journal", "outbox"] {
                m.storage_fault.with_label_values(&[store]).set(0);
            }
            self.shared.set_storage_fault(None);
            tracing::info!(
                store = f.store,
                "state directory writable again: intake resumed"
            );
            self.snapshot_due = true;
        }
    }

    fn idle_tick(&mut self) {
        let Some(idle) = self.idle else { return };
        let now = Instant::now();
        let due: Vec<(String, i64)> = self
            .last_arrival
            .iter()
            .filter_map(|(s, (at, wm))| {
                let quiet = now.duration_since(*at);
                (quiet >= idle).then(|| (s.clone(), wm.map(|w| w + quiet.as_millis() as i64)))
            })
            .filter_map(|(s, wm)| wm.map(|w| (s, w)))
            .collect();
        for (stream, wm) in due {
            let current = self.engines.get(&stream).and_then(|e| e.watermark());
            // Step in whole seconds: enough for minute windows, and it keeps
            // the journal small.
            if current.is_some_and(|c| wm < c + 1000) {
                continue;
            }
            if let Some(d) = &mut self.durable {
                let start = d.journal.position();
                let h = EntryHeader::Idle {
                    stream: stream.clone(),
                    watermark: wm,
                };
                if let Err(e) = d.journal.append(&h, b"").and_then(|_| d.journal.sync()) {
                    // Not journaled, so not done: recovery must repeat
                    // exactly what ran. Tried again at the next tick.
                    let _ = d.journal.rollback(start);
                    let cause = self.storage_error("journal", &e);
                    self.set_fault("journal", cause);
                    return;
                }
            }
            self.run_idle(&stream, wm);
            if let Err(e) = self.outbox.sync() {
                let cause = self.storage_error("outbox", &e);
                self.set_fault("outbox", cause);
                return;
            }
        }
    }

    /// Saves the engine state. Only when every alert line is on disk: the
    /// checkpoint's outbox position must never be ahead of the outbox file.
    /// A failed write keeps the old checkpoint (and the journal after it)
    /// and is tried again a second later.
    fn write_checkpoint(&mut self) {
        if self.durable.is_none() {
            return;
        }
        let synced = self.outbox.sync().map_err(|e| ("outbox", e)).and_then(|_| {
            let d = self.durable.as_mut().expect("checked above");
            d.journal.sync().map_err(|e| ("journal", e))
        });
        if let Err((store, e)) = synced {
            let cause = self.storage_error(store, &e);
            self.set_fault(store, cause);
            self.checkpoint_failed = true;
            return;
        }
        let d = self.durable.as_mut().expect("checked above");
        let ck = Checkpoint {
            version: 1,
            journal: d.journal.position(),
            outbox_next: self.outbox.next_seq(),
            seq: self.seq,
            rules_text: self.rules_text.clone(),
            rules_source: self.rules.source.clone(),
            engines: self
                .engines
                .iter()
                .map(|(k, e)| (k.clone(), e.export()))
                .collect(),
            positions: self.positions.clone(),
            written_at: crate::time::format_cst(crate::time::now_ms()),
            idempotency: self.keys.export(),
            dispatch: self.dispatch.export(),
        };
        let result = checkpoint::write_atomic(&d.checkpoint_path, &ck)
            .and_then(|_| d.journal.truncate_before(ck.journal));
        let m = &self.shared.metrics;
        match result {
            Ok(()) => {
                m.checkpoints.with_label_values(&["ok"]).inc();
                self.changed = false;
                self.checkpoint_failed = false;
            }
            Err(e) => {
                m.checkpoints.with_label_values(&["error"]).inc();
                m.storage_errors.with_label_values(&["checkpoint"]).inc();
                if !self.checkpoint_failed {
                    tracing::error!(error = %e, "cannot write a checkpoint; the journal is kept and it is tried again");
                }
                self.checkpoint_failed = true;
            }
        }
        self.last_checkpoint = Instant::now();
    }

    /// Refreshes the API snapshot and the gauges.
    fn publish(&mut self) {
        self.last_snapshot = Instant::now();
        self.snapshot_due = false;
        let m = &self.shared.metrics;
        self.shared.latency.add_processing(&self.processing);
        self.processing.reset();
        for ((b, region), n) in std::mem::take(&mut self.matches_by_region) {
            let label = m.region_label(&region);
            m.matches
                .with_label_values(&[&self.rules.businesses[b].id, label])
                .inc_by(n);
        }
        let mut stats = Stats::default();
        let mut open = Vec::new();
        let mut hot = Vec::new();
        let mut keys = 0;
        let mut overflow = 0;
        let mut watermarks = BTreeMap::new();
        let mut recent = 0;
        for (stream, e) in &self.engines {
            let s = e.stats();
            overflow += s.keys_overflow;
            stats.add(&s);
            keys += e.keys().len();
            for a in e.keys().open_alerts() {
                let mut v = OpenAlertView::new(&a.firing, a.max_count, a.hot_end, stream);
                if let Some(d) = self.dispatch.view(&a.firing.alert_id, &self.rules) {
                    v.dispatch = d;
                }
                open.push(v);
            }
            // New topics (`[discovery]`) after the businesses' alerts.
            if let Some(t) = e.topics() {
                recent += t.recent_docs();
                for (firing, max_count, hot_end) in t.open_alerts() {
                    open.push(OpenAlertView::new(firing, max_count, hot_end, stream));
                }
            }
            if let Some(wm) = e.watermark() {
                hot.extend(e.keys().hotspots(wm, crate::metrics::HOT_KEYS));
                watermarks.insert(stream.clone(), wm);
            }
        }
        hot.sort_by(|a, b| {
            b.ratio
                .partial_cmp(&a.ratio)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| (&a.business, &a.region).cmp(&(&b.business, &b.region)))
        });
        hot.truncate(crate::metrics::HOT_KEYS);
        m.key_callers.reset();
        m.key_threshold.reset();
        m.key_ratio.reset();
        for h in &hot {
            let region = m.region_label(&h.region);
            m.key_callers
                .with_label_values(&[&h.business, region])
                .set(h.distinct_callers as i64);
            m.key_threshold
                .with_label_values(&[&h.business, region])
                .set(h.threshold as i64);
            m.key_ratio
                .with_label_values(&[&h.business, region])
                .set(h.ratio);
        }
        m.alerts_firing.reset();
        let classes = crate::metrics::Metrics::alert_classes(&self.rules);
        for d in &self.rules.departments {
            for (kind, scope) in &classes {
                m.alerts_firing
                    .with_label_values(&[d.id.as_str(), kind, scope])
                    .set(0);
            }
        }
        for a in &open {
            let (kind, scope) = crate::metrics::Metrics::alert_labels(&a.alert);
            m.alerts_firing
                .with_label_values(&[&a.alert.department, kind, scope])
                .inc();
        }
        m.keys.set(keys as i64);
        if let Some(t) = &stats.new_topics {
            m.topics_state_bytes.set(t.state_bytes as i64);
            m.topics_recent.set(recent as i64);
            for (c, now) in [(&m.topics_complaints, t.docs), (&m.topics_checks, t.checks)] {
                if now > c.get() {
                    c.inc_by(now - c.get());
                }
            }
        }
        let prev_overflow = m.keys_overflow.get();
        if overflow > prev_overflow {
            m.keys_overflow.inc_by(overflow - prev_overflow);
        }
        let wm = watermarks.values().copied().max();
        if let Some(w) = wm {
            m.watermark.set(w as f64 / 1000.0);
            m.watermark_lag
                .set((crate::time::now_ms() - w) as f64 / 1000.0);
        }
        let board = self.dispatch.board(&self.rules, crate::time::now_ms());
        let due = self.dispatch.next_due(&self.rules);
        self.shared.dispatch_due.send_if_modified(|d| {
            let changed = *d != due;
            *d = due;
            changed
        });
        self.shared.publish(Snapshot {
            watermark: wm,
            watermarks,
            stats,
            open_alerts: open,
            hotspots: hot,
            rules: self.rules.clone(),
            keys,
            updated: SystemTime::now(),
            dispatch: board,
        });
    }
}

/// Sends a batch its answer, if it waits for one.
fn reply(b: Batch, answer: Answer) {
    if let Some(r) = b.reply {
        let _ = r.send(answer);
    }
}

/// Whether `dir` takes a write again: the size of the entry that failed
/// plus 1 MiB of headroom, written, synced and removed. The headroom keeps
/// intake from reopening, and flapping, on a disk that has just a few
/// bytes free (a checkpoint that shrank, a rolled-back frame).
fn probe(dir: &std::path::Path, need: u64) -> std::io::Result<()> {
    const PROBE_HEADROOM: u64 = 1 << 20;
    use std::io::Write;
    let path = dir.join(".probe");
    let written = (|| {
        let mut f = checkpoint::private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let block = [0u8; 64 << 10];
        let mut left = need.saturating_add(PROBE_HEADROOM);
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n])?;
            left -= n as u64;
        }
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    written
}
