//! The engine thread of the live service: takes batches of lines from every
//! source in arrival order, runs them through the engine(s), and hands the
//! alert lines to the outbox — synchronously, on one OS thread, so the live
//! service produces exactly what a replay of the same lines would.
//!
//! Around that core it does the bookkeeping that makes the service
//! production-grade:
//!
//! * group commit: it drains every batch already queued, journals them
//!   (`--state-dir`), processes them, fsyncs journal and outbox once, and
//!   only then answers the HTTP clients — a `200` means durable;
//! * the idle watermark: with no record for `idle_timeout`, the watermark
//!   moves on with the wall clock (journaled, so recovery repeats it);
//! * rules reloads, journaled with the rules text;
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

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::state::{OpenAlertView, Shared, Snapshot};
use crate::alert::Alert;
use crate::checkpoint;
use crate::engine::{Engine, EngineConfig, EngineState, Outcome, Output, Stats};
use crate::journal::{EntryHeader, Journal, JournalPos};
use crate::matcher::Matcher;
use crate::record::RejectInfo;
use crate::rules::{Rules, load_str};
use crate::sink::outbox::Outbox;
use crate::sink::{DeadLetterQueue, JsonlWriter, dead_letter_json};

/// The stream of HTTP, stdin and followed files.
pub const MAIN: &str = "main";

/// Work for the engine thread.
pub enum Command {
    Batch(Batch),
    Reload {
        rules: Arc<Rules>,
        matcher: Arc<Matcher>,
        text: String,
        reply: Option<oneshot::Sender<String>>,
    },
    Shutdown,
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
    pub reply: Option<oneshot::Sender<BatchReport>>,
}

/// The answer to an HTTP batch.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct BatchReport {
    pub lines: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub late_dropped: u64,
    pub blank: u64,
    /// Alert lines this batch caused.
    pub alerts: u64,
    /// Rejected lines (1-based line of the body), at most 1000.
    pub rejects: Vec<LineReject>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LineReject {
    pub line: u64,
    pub reason: String,
    pub detail: String,
    pub at: usize,
}

/// What is saved in `checkpoint.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Checkpoint {
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
}

struct Collect<'a> {
    alerts: &'a mut Vec<Alert>,
    rejects: &'a mut Vec<(u64, RejectInfo, Vec<u8>)>,
}

impl Output for Collect<'_> {
    fn alert(&mut self, alert: &Alert) {
        self.alerts.push(alert.clone());
    }
    fn reject(&mut self, line: u64, raw: &[u8], info: &RejectInfo) {
        self.rejects.push((line, *info, raw.to_vec()));
    }
}

/// Where the pipeline keeps its state on disk.
struct Durable {
    journal: Journal,
    checkpoint_path: PathBuf,
}

pub struct Pipeline {
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
}

/// Settings the pipeline needs.
pub struct PipelineConfig {
    pub rules: Arc<Rules>,
    pub rules_text: String,
    pub engine: EngineConfig,
    pub state_dir: Option<PathBuf>,
    pub dead_letter: Option<PathBuf>,
    /// Dead letters also go here (name, queue), e.g. to a Fluvio topic.
    pub dead_letter_queue: Option<(String, DeadLetterQueue)>,
    pub idle: Option<Duration>,
    pub checkpoint_every: Duration,
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
        };
        if let Some(dir) = &cfg.state_dir {
            p.recover(dir, &cfg)?;
        }
        p.publish();
        Ok(p)
    }

    fn recover(&mut self, dir: &std::path::Path, cfg: &PipelineConfig) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
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
            replay_next = ck.outbox_next;
            let mut ignored = Vec::new();
            let mut rejects = Vec::new();
            for (stream, state) in ck.engines {
                let mut e = Engine::restore(
                    self.rules.clone(),
                    self.matcher.clone(),
                    self.config,
                    state,
                    self.seq,
                    &mut Collect {
                        alerts: &mut ignored,
                        rejects: &mut rejects,
                    },
                );
                e.set_tracking(true);
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
                } => {
                    self.run_batch(&stream, &source, position, &e.data, None);
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
            }
        }
        self.replay_next = None;
        self.outbox.sync()?;
        self.durable = Some(Durable {
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
            self.reload(cfg.rules.clone(), m, cfg.rules_text.clone());
        }
        self.write_checkpoint();
        Ok(())
    }

    /// The latest known position of every source (for sources that resume).
    pub fn positions(&self) -> BTreeMap<String, serde_json::Value> {
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

    /// Hands alert lines to the outbox (by position while re-running the
    /// journal) and counts them.
    fn emit(&mut self, alerts: Vec<Alert>, received: Option<Instant>) {
        for a in alerts {
            let dept = a.department.clone();
            let state = a.state.as_str();
            let pushed = match self.replay_next.as_mut() {
                Some(next) => {
                    let r = self.outbox.push_replayed(*next, a, received);
                    *next += 1;
                    r.map(|_| ())
                }
                None => self.outbox.push(a, received).map(|_| ()),
            };
            if let Err(e) = pushed {
                tracing::error!(error = %e, "cannot write to the outbox");
            }
            self.shared
                .metrics
                .alerts_total
                .with_label_values(&[&dept, state])
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
        let mut rejects = Vec::new();
        let mut report = BatchReport::default();
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
                rejects: &mut rejects,
            };
            let mut lines = data.split(|&b| b == b'\n').peekable();
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
                report.lines += 1;
                match outcome {
                    Outcome::Blank => report.blank += 1,
                    Outcome::Late => report.late_dropped += 1,
                    Outcome::Rejected(_) => report.rejected += 1,
                    Outcome::Accepted { matched } => {
                        report.accepted += 1;
                        if matched && track {
                            for &b in engine.last_businesses() {
                                *matches
                                    .entry((b, engine.last_region().to_owned()))
                                    .or_default() += 1;
                            }
                        }
                    }
                }
                report.alerts += (out.alerts.len() - before) as u64;
            }
            if let Some(wm) = engine.watermark() {
                self.last_arrival
                    .insert(stream.to_owned(), (Instant::now(), Some(wm)));
            }
        }
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
        for (line, info, raw) in &rejects {
            m.rejects.with_label_values(&[info.reason.name()]).inc();
            if live && (self.dead.is_some() || self.dead_queue.is_some()) {
                let json = dead_letter_json(*line - first + 1, raw, info, Some(source));
                if let Some(d) = &mut self.dead {
                    if let Err(e) = d.write_raw(&json) {
                        tracing::error!(error = %e, "cannot write a dead letter");
                    }
                }
                if let Some((name, q)) = &self.dead_queue {
                    // Never block the engine on a remote sink: a full queue
                    // (the topic unreachable for long) drops, counted.
                    if q.try_send((source.to_owned(), json)).is_err() {
                        m.dead_letters_dropped.with_label_values(&[name]).inc();
                    }
                }
            }
            if report.rejects.len() < 1000 {
                report.rejects.push(LineReject {
                    line: line - first + 1,
                    reason: info.reason.name().to_owned(),
                    detail: info.detail.to_owned(),
                    at: info.at,
                });
            }
        }
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
        let mut rejects = Vec::new();
        let seq = self.seq;
        let moved = self.engine(stream).advance_idle(
            wm,
            seq,
            &mut Collect {
                alerts: &mut alerts,
                rejects: &mut rejects,
            },
        );
        if moved {
            self.changed = true;
            self.snapshot_due = true;
        }
        self.emit(alerts, None);
    }

    fn run_reload(&mut self, rules: Arc<Rules>, matcher: Arc<Matcher>, text: String) {
        let mut alerts = Vec::new();
        let mut rejects = Vec::new();
        let seq = self.seq;
        for e in self.engines.values_mut() {
            e.reload(
                rules.clone(),
                matcher.clone(),
                seq,
                &mut Collect {
                    alerts: &mut alerts,
                    rejects: &mut rejects,
                },
            );
        }
        self.rules = rules;
        self.matcher = matcher;
        self.rules_text = text;
        self.changed = true;
        self.snapshot_due = true;
        self.emit(alerts, None);
    }

    fn reload(&mut self, rules: Arc<Rules>, matcher: Arc<Matcher>, text: String) {
        if let Some(d) = &mut self.durable {
            let h = EntryHeader::Reload {
                source: rules.source.clone(),
                rules: text.clone(),
            };
            if let Err(e) = d.journal.append(&h, b"").and_then(|_| d.journal.sync()) {
                tracing::error!(error = %e, "cannot journal a rules reload");
            }
        }
        let old = self.rules.version.clone();
        self.run_reload(rules, matcher, text);
        let _ = self.outbox.sync();
        let m = &self.shared.metrics;
        m.rules_info.reset();
        m.rules_info
            .with_label_values(&[&self.rules.version, &self.rules.source])
            .set(1);
        tracing::info!(from = %old, to = %self.rules.version, source = %self.rules.source, "rules reloaded");
    }

    /// The engine thread's loop; returns at [`Command::Shutdown`] or when
    /// every sender is gone.
    pub fn run(mut self, rx: Receiver<Command>) {
        self.shared.set_ready(true);
        let tick = Duration::from_millis(200);
        loop {
            let first = match rx.recv_timeout(tick) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
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
                let mut replies = Vec::new();
                for c in cmds {
                    match c {
                        Command::Batch(b) => {
                            if let Some(d) = &mut self.durable {
                                let h = EntryHeader::Batch {
                                    stream: b.stream.clone(),
                                    source: b.source.clone(),
                                    position: b.position.clone(),
                                };
                                if let Err(e) = d.journal.append(&h, &b.data) {
                                    tracing::error!(error = %e, "cannot journal a batch");
                                }
                            }
                            let report = self.run_batch(
                                &b.stream,
                                &b.source,
                                b.position,
                                &b.data,
                                Some(b.received),
                            );
                            if let Some(r) = b.reply {
                                replies.push((r, report));
                            }
                        }
                        Command::Reload {
                            rules,
                            matcher,
                            text,
                            reply,
                        } => {
                            self.reload(rules, matcher, text);
                            self.publish();
                            if let Some(r) = reply {
                                let _ = r.send(self.rules.version.clone());
                            }
                        }
                        Command::Shutdown => stop = true,
                    }
                }
                if let Some(d) = &mut self.durable {
                    if let Err(e) = d.journal.sync() {
                        tracing::error!(error = %e, "cannot sync the journal");
                    }
                }
                if let Err(e) = self.outbox.sync() {
                    tracing::error!(error = %e, "cannot sync the outbox");
                }
                // Read-your-writes: a client that got its answer sees its
                // records in /v1/*. A snapshot is cheap (it walks the live
                // keys), but with very many keys it is rate-limited.
                let keys: usize = self.engines.values().map(|e| e.keys().len()).sum();
                if keys < 20_000 || self.last_snapshot.elapsed() >= Duration::from_millis(250) {
                    self.publish();
                }
                for (r, report) in replies {
                    let _ = r.send(report);
                }
            }
            self.idle_tick();
            if self.last_snapshot.elapsed() >= Duration::from_millis(250)
                || (self.snapshot_due && self.last_snapshot.elapsed() >= Duration::from_millis(20))
            {
                self.publish();
            }
            if self.changed && self.last_checkpoint.elapsed() >= self.checkpoint_every {
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
        let _ = self.outbox.sync();
        self.shared.set_ready(false);
        tracing::info!("engine stopped");
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
                let h = EntryHeader::Idle {
                    stream: stream.clone(),
                    watermark: wm,
                };
                if let Err(e) = d.journal.append(&h, b"").and_then(|_| d.journal.sync()) {
                    tracing::error!(error = %e, "cannot journal an idle watermark step");
                }
            }
            self.run_idle(&stream, wm);
            let _ = self.outbox.sync();
        }
    }

    fn write_checkpoint(&mut self) {
        let Some(d) = &mut self.durable else { return };
        if let Err(e) = d.journal.sync() {
            tracing::error!(error = %e, "cannot sync the journal");
            return;
        }
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
        };
        let result = checkpoint::write_atomic(&d.checkpoint_path, &ck)
            .and_then(|_| d.journal.truncate_before(ck.journal));
        let m = &self.shared.metrics;
        match result {
            Ok(()) => m.checkpoints.with_label_values(&["ok"]).inc(),
            Err(e) => {
                m.checkpoints.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "cannot write a checkpoint");
            }
        }
        self.changed = false;
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
        for (stream, e) in &self.engines {
            let s = e.stats();
            overflow += s.keys_overflow;
            stats.add(&s);
            keys += e.keys().len();
            for a in e.keys().open_alerts() {
                open.push(OpenAlertView::new(
                    &a.firing,
                    a.max_count,
                    a.hot_end,
                    stream,
                ));
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
        for d in &self.rules.departments {
            m.alerts_firing.with_label_values(&[&d.id]).set(0);
        }
        for a in &open {
            m.alerts_firing
                .with_label_values(&[&a.alert.department])
                .inc();
        }
        m.keys.set(keys as i64);
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
        self.shared.publish(Snapshot {
            watermark: wm,
            watermarks,
            stats,
            open_alerts: open,
            hotspots: hot,
            rules: self.rules.clone(),
            keys,
            updated: SystemTime::now(),
        });
    }
}
