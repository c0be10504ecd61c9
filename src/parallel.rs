//! Parallel replay (`hotspot replay --threads N`): the same alert bytes as
//! the sequential engine, for any number of threads.
//!
//! The per-record work splits into three kinds, and only one of them is
//! inherently sequential:
//!
//! ```text
//! reader ──chunks──▶ workers (N) ──parsed chunks──▶ sequencer ──per-shard work──▶ shards (K)
//!  read, cut at       decode, validate,              in input order:              windows and alerts
//!  line ends          normalise, match               watermark, lateness,         for the keys whose
//!                     (no shared state)              counts, dead letters;        region hashes to
//!                                                    routes matched records       the shard
//!                                                    by region          ◀──alerts── merged in output order
//! ```
//!
//! * **Workers** do what costs most — JSON, normalisation, the automaton —
//!   on whole chunks, with nothing shared.
//! * The **sequencer** walks each chunk's valid timestamps in input order:
//!   the watermark is the running maximum of accepted timestamps, and a
//!   late record can never raise it, so this is a few nanoseconds per line.
//!   It numbers lines, counts, writes dead letters, and sends every matched,
//!   accepted record to the shard that owns its region, together with the
//!   list of records that moved the watermark (every shard needs those:
//!   resolutions happen at them, 5.5).
//! * **Shards** own disjoint sets of keys (all businesses of one region live
//!   in one shard, so one record's firings come from one shard) and run the
//!   same [`KeyStore`] as the sequential engine, merging their records and
//!   the watermark steps by input position.
//! * Alerts carry (input position, firing before resolution, business,
//!   region); sorting a chunk's alerts from all shards by that key gives
//!   exactly the sequential order of 5.7.
//!
//! The output is therefore byte-identical whatever N, K, chunk size or
//! scheduling — the property tests and the conformance test check it. (One
//! caveat: `--max-keys` is enforced per shard.)

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::alert::{Alert, output_order};
use crate::engine::{EngineConfig, Scratch, Stats};
use crate::matcher::Matcher;
use crate::record::{Decoded, RejectInfo};
use crate::replay::ReplayOutputs;
use crate::rules::Rules;
use crate::sink::dead_letter_json;
use crate::topics::{TopicDoc, Topics, partition_of};
use crate::window::key::{SAMPLE_BYTES, caller_id, floor_char_boundary};
use crate::window::store::Counted;
use crate::window::{Geometry, KeyStore, Resolver};

/// Bytes per chunk handed to a worker.
pub const CHUNK_BYTES: usize = 256 << 10;

/// How a parallel replay is laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Decode/match workers.
    pub workers: usize,
    /// Key shards.
    pub shards: usize,
    /// Bytes per chunk (about; a chunk always ends at a line end).
    pub chunk_bytes: usize,
}

impl Layout {
    /// A layout for `threads` threads: all of them decode and match; one
    /// key shard per four threads (the keyed work is a fraction of the
    /// decoding).
    pub fn for_threads(threads: usize) -> Self {
        let threads = threads.max(1);
        Layout {
            workers: threads,
            shards: threads.div_ceil(4).max(1),
            chunk_bytes: CHUNK_BYTES,
        }
    }
}

struct Chunk {
    index: u64,
    data: Vec<u8>,
}

/// A matched valid record of a chunk.
struct Matched {
    /// Index among the chunk's valid records.
    valid: u32,
    region: (u32, u32),
    text: (u32, u32),
    caller: Option<u128>,
    /// Range into `Parsed::bus`.
    bus: (u32, u32),
}

/// A valid record of a chunk that no template covers (kept only with
/// `[discovery]`, for the new-topic detector).
struct Unmatched {
    /// Index among the chunk's valid records.
    valid: u32,
    region: (u32, u32),
    /// The text, cut where the detector stops reading.
    text: (u32, u32),
    caller: Option<u128>,
}

/// What a worker makes of a chunk.
struct Parsed {
    index: u64,
    lines: u64,
    bytes: u64,
    blank: u64,
    rejected: [u64; 4],
    /// Local (0-based) line index of each valid record, and its ts.
    valid_line: Vec<u32>,
    ts: Vec<i64>,
    /// Ids of valid records: `arena[id_at[i].0..id_at[i].1]`.
    id_at: Vec<(u32, u32)>,
    /// Regions, texts and ids, UTF-8.
    arena: String,
    matched: Vec<Matched>,
    unmatched: Vec<Unmatched>,
    /// (business, range into `templates`).
    bus: Vec<(u16, u32, u32)>,
    templates: Vec<u32>,
    /// Rejected lines: local line index, reason, raw bytes (only kept when
    /// dead letters are written).
    rejects: Vec<(u32, RejectInfo, Vec<u8>)>,
}

impl Parsed {
    fn str(&self, r: (u32, u32)) -> &str {
        &self.arena[r.0 as usize..r.1 as usize]
    }
}

fn push_str(arena: &mut String, s: &str) -> (u32, u32) {
    let a = arena.len() as u32;
    arena.push_str(s);
    (a, arena.len() as u32)
}

/// What workers keep besides matched records.
#[derive(Clone, Copy)]
struct Keep {
    /// Raw rejected lines (dead letters are written).
    raw: bool,
    /// Records no template covers (`[discovery]`).
    unmatched: bool,
}

fn parse_chunk(c: &Chunk, matcher: &Matcher, scratch: &mut Scratch, keep: Keep) -> Parsed {
    let mut p = Parsed {
        index: c.index,
        lines: 0,
        bytes: c.data.len() as u64,
        blank: 0,
        rejected: [0; 4],
        valid_line: Vec::with_capacity(4096),
        ts: Vec::with_capacity(4096),
        id_at: Vec::with_capacity(4096),
        arena: String::with_capacity(c.data.len() / 2),
        matched: Vec::with_capacity(2048),
        unmatched: Vec::new(),
        bus: Vec::with_capacity(2048),
        templates: Vec::with_capacity(4096),
        rejects: Vec::new(),
    };
    let data = &c.data;
    let mut start = 0usize;
    let mut local = 0u32;
    for nl in memchr::memchr_iter(b'\n', data) {
        let line = &data[start..nl];
        start = nl + 1;
        handle_line(&mut p, local, line, matcher, scratch, keep);
        local += 1;
    }
    if start < data.len() {
        // The last line of the input, without a newline.
        handle_line(&mut p, local, &data[start..], matcher, scratch, keep);
        local += 1;
    }
    p.lines = local as u64;
    p
}

fn handle_line(
    p: &mut Parsed,
    local: u32,
    line: &[u8],
    matcher: &Matcher,
    s: &mut Scratch,
    keep: Keep,
) {
    let Scratch {
        decoder,
        normalizer,
        matches,
    } = s;
    match decoder.decode(line) {
        Decoded::Blank => p.blank += 1,
        Decoded::Rejected(info) => {
            p.rejected[info.reason.index()] += 1;
            p.rejects.push((
                local,
                info,
                if keep.raw { line.to_vec() } else { Vec::new() },
            ));
        }
        Decoded::Record(r) => {
            let valid = p.ts.len() as u32;
            p.valid_line.push(local);
            p.ts.push(r.ts);
            let id = push_str(&mut p.arena, r.id);
            p.id_at.push(id);
            matcher.find_text(r.text, normalizer, matches);
            if matches.is_empty() {
                if keep.unmatched && !matches.is_known() {
                    let region = push_str(&mut p.arena, r.region);
                    let text = push_str(
                        &mut p.arena,
                        &r.text[..floor_char_boundary(r.text, SAMPLE_BYTES)],
                    );
                    p.unmatched.push(Unmatched {
                        valid,
                        region,
                        text,
                        caller: r.caller.map(caller_id),
                    });
                }
                return;
            }
            let region = push_str(&mut p.arena, r.region);
            let text = push_str(
                &mut p.arena,
                &r.text[..floor_char_boundary(r.text, SAMPLE_BYTES)],
            );
            let b0 = p.bus.len() as u32;
            for (b, t) in matches.businesses() {
                let t0 = p.templates.len() as u32;
                p.templates.extend_from_slice(t);
                p.bus.push((b as u16, t0, p.templates.len() as u32));
            }
            p.matched.push(Matched {
                valid,
                region,
                text,
                caller: r.caller.map(caller_id),
                bus: (b0, p.bus.len() as u32),
            });
        }
    }
}

/// A watermark step: the record at `seq` (valid index `valid`) raised the
/// watermark to `ts`.
#[derive(Clone, Copy)]
struct Step {
    seq: u64,
    ts: i64,
    valid: u32,
}

/// What a shard gets for one chunk.
struct ShardWork {
    index: u64,
    first_line: u64,
    parsed: Arc<Parsed>,
    /// Indices into `parsed.matched` of accepted records for this shard,
    /// with the stream's volume scale each was accepted at.
    records: Vec<(u32, f32)>,
    /// Indices into `parsed.unmatched` of accepted records whose new-topic
    /// partition is this shard's.
    docs: Vec<u32>,
    steps: Arc<Vec<Step>>,
}

enum ShardMsg {
    Work(ShardWork),
    /// End of input at this watermark.
    Finish(Option<i64>),
}

struct ShardOut {
    index: u64,
    alerts: Vec<Alert>,
    overflow: u64,
    /// At the end of input: the shard's new-topic detector's counts.
    topics: Option<crate::topics::TopicStats>,
}

fn run_shard(
    rules: Arc<Rules>,
    config: EngineConfig,
    rx: Receiver<ShardMsg>,
    tx: Sender<ShardOut>,
) {
    let mut keys = KeyStore::new(rules.clone(), config.max_keys);
    let mut topics = Topics::new(rules.clone());
    // The watermark as of the last step taken (the new-topic detector
    // reads it as the engine does: before the record moves it).
    let mut wm: Option<i64> = None;
    for msg in rx {
        match msg {
            ShardMsg::Work(w) => {
                let p = &w.parsed;
                let mut alerts = Vec::new();
                let (mut r, mut d, mut s) = (0usize, 0usize, 0usize);
                let seq_of = |valid: u32| w.first_line + p.valid_line[valid as usize] as u64;
                loop {
                    let rseq = w
                        .records
                        .get(r)
                        .map(|&(m, _)| seq_of(p.matched[m as usize].valid));
                    let dseq = w
                        .docs
                        .get(d)
                        .map(|&u| seq_of(p.unmatched[u as usize].valid));
                    let sseq = w.steps.get(s).map(|st| st.seq);
                    // A record is counted before the watermark step it
                    // causes; a record is matched or not, never both.
                    let next = [rseq, dseq, sseq]
                        .into_iter()
                        .enumerate()
                        .filter_map(|(k, q)| q.map(|q| (q, k)))
                        .min();
                    let Some((seq, kind)) = next else { break };
                    match kind {
                        0 => {
                            let (k, scale) = w.records[r];
                            let m = &p.matched[k as usize];
                            let vi = m.valid as usize;
                            let counted = Counted {
                                seq,
                                id: p.str(p.id_at[vi]),
                                ts: p.ts[vi],
                                region: p.str(m.region),
                                text: p.str(m.text),
                                caller: m.caller,
                            };
                            let bus = &p.bus[m.bus.0 as usize..m.bus.1 as usize];
                            keys.count_record(
                                &rules,
                                || {
                                    bus.iter().map(|&(b, t0, t1)| {
                                        (b as usize, &p.templates[t0 as usize..t1 as usize])
                                    })
                                },
                                &counted,
                                scale,
                                &mut alerts,
                            );
                            r += 1;
                        }
                        1 => {
                            let u = &p.unmatched[w.docs[d] as usize];
                            let vi = u.valid as usize;
                            if let Some(t) = &mut topics {
                                t.observe(
                                    &TopicDoc {
                                        seq,
                                        id: p.str(p.id_at[vi]),
                                        ts: p.ts[vi],
                                        region: p.str(u.region),
                                        text: p.str(u.text),
                                        caller: u.caller,
                                    },
                                    wm,
                                    &mut alerts,
                                );
                            }
                            d += 1;
                        }
                        _ => {
                            let st = w.steps[s];
                            wm = Some(st.ts);
                            keys.sweep(st.ts);
                            let by = Resolver {
                                seq: st.seq,
                                id: Some(p.str(p.id_at[st.valid as usize])),
                                ts: st.ts,
                            };
                            keys.resolve(st.ts, by, &mut alerts);
                            if let Some(t) = &mut topics {
                                t.resolve(st.ts, by, &mut alerts);
                            }
                            s += 1;
                        }
                    }
                }
                if tx
                    .send(ShardOut {
                        index: w.index,
                        alerts,
                        overflow: keys.overflow,
                        topics: None,
                    })
                    .is_err()
                {
                    return;
                }
            }
            ShardMsg::Finish(wm) => {
                let mut alerts = Vec::new();
                if let Some(wm) = wm {
                    keys.finish(wm, &mut alerts);
                    if let Some(t) = &mut topics {
                        t.finish(wm, &mut alerts);
                    }
                }
                let _ = tx.send(ShardOut {
                    index: u64::MAX,
                    alerts,
                    overflow: keys.overflow,
                    topics: topics.as_ref().map(Topics::stats),
                });
                return;
            }
        }
    }
}

/// Adds a shard's output for a chunk.
fn collect(o: ShardOut, merging: &mut BTreeMap<u64, (usize, Vec<Alert>)>) {
    let e = merging.entry(o.index).or_insert_with(|| (0, Vec::new()));
    e.0 += 1;
    e.1.extend(o.alerts);
}

/// Replays `input` on `layout.workers` + `layout.shards` threads; the
/// output is byte-identical to [`crate::replay::replay`].
pub fn replay_parallel(
    rules: Arc<Rules>,
    mut input: impl Read + Send,
    outs: &mut ReplayOutputs<'_>,
    config: EngineConfig,
    layout: Layout,
    mut progress: Option<crate::replay::Progress<'_>>,
) -> io::Result<Stats> {
    let matcher = Arc::new(Matcher::new(&rules).map_err(io::Error::other)?);
    let geo = Geometry::new(rules.window);
    let keep = Keep {
        raw: outs.dead_letters.is_some(),
        unmatched: rules.discovery.is_some(),
    };
    let workers = layout.workers.max(1);
    let shards = layout.shards.max(1);
    let chunk_bytes = layout.chunk_bytes.max(64);
    let (chunk_tx, chunk_rx) = bounded::<Chunk>(workers * 2);
    // Chunk buffers go back to the reader once parsed: a fresh 256 KiB
    // buffer per chunk cost a zeroing pass, and the allocator handed its
    // pages back to the kernel and faulted them in again (a tenth of the
    // parallel overhead on two threads).
    let (recycle_tx, recycle_rx) = bounded::<Vec<u8>>(workers * 4);
    let (parsed_tx, parsed_rx) = bounded::<Parsed>(workers * 2);
    // Chunks between the reader and the sequencer, at most: a ticket is
    // taken for each chunk read and given back once the sequencer has
    // dispatched it. The queues alone do not bound this: the sequencer
    // holds chunks that arrive ahead of their turn, and while one worker
    // is descheduled (more threads than cores, or a busy machine) the
    // others would parse on and that reorder buffer would grow without
    // limit (a 5M-event replay with 16 threads on 2 cores peaked at
    // 160 MB). Two per worker keeps every worker fed; the reader holds
    // one more, filled, while it waits for a ticket.
    let in_flight = workers * 2 + 2;
    let (ticket_tx, ticket_rx) = bounded::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = ticket_tx.send(());
    }
    let (out_tx, out_rx) = bounded::<ShardOut>(shards * 8);
    thread::scope(|scope| -> io::Result<Stats> {
        // Every channel end this thread holds lives in this closure, so an
        // early return (an output that fails: a full disk) drops them before
        // the scope joins the other threads, and each of them stops on a
        // closed channel instead of waiting on this one forever.
        let (chunk_rx, parsed_rx, out_rx, ticket_tx) = (chunk_rx, parsed_rx, out_rx, ticket_tx);
        let mut shard_txs = Vec::new();
        for _ in 0..workers {
            let (rx, tx, m) = (chunk_rx.clone(), parsed_tx.clone(), matcher.clone());
            let recycle = recycle_tx.clone();
            scope.spawn(move || {
                let mut scratch = Scratch::new(&m);
                for mut c in rx {
                    let parsed = parse_chunk(&c, &m, &mut scratch, keep);
                    // A full pool just drops the buffer.
                    let _ = recycle.try_send(std::mem::take(&mut c.data));
                    if tx.send(parsed).is_err() {
                        return;
                    }
                }
            });
        }
        drop((chunk_rx, parsed_tx, recycle_tx));
        for _ in 0..shards {
            let (tx, rx) = bounded::<ShardMsg>(4);
            let (out, r) = (out_tx.clone(), rules.clone());
            scope.spawn(move || run_shard(r, config, rx, out));
            shard_txs.push(tx);
        }
        drop(out_tx);
        // The reader.
        let reader = scope.spawn(move || -> io::Result<u64> {
            let mut carry: Vec<u8> = Vec::new();
            let mut index = 0u64;
            let mut first = true;
            let mut total = 0u64;
            loop {
                // A recycled buffer keeps (about) its length, so growing it
                // back to a chunk zeroes only a few bytes: only a buffer's
                // first use pays for zeroing it.
                let mut buf = recycle_rx.try_recv().unwrap_or_default();
                let start = carry.len();
                if buf.len() < start + chunk_bytes {
                    buf.resize(start + chunk_bytes, 0);
                }
                buf.truncate(start + chunk_bytes);
                buf[..start].copy_from_slice(&carry);
                carry.clear();
                let mut filled = start;
                let mut eof = false;
                while filled < buf.len() {
                    match input.read(&mut buf[filled..]) {
                        Ok(0) => {
                            eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf.truncate(filled);
                total += (filled - start) as u64;
                if first {
                    first = false;
                    if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                        buf.drain(..3);
                    }
                }
                if !eof {
                    // Keep the unfinished last line for the next chunk.
                    match memchr::memrchr(b'\n', &buf) {
                        Some(nl) => {
                            carry.extend_from_slice(&buf[nl + 1..]);
                            buf.truncate(nl + 1);
                        }
                        None => {
                            carry = buf; // one line longer than a chunk
                            continue;
                        }
                    }
                }
                // A chunk goes out with a ticket; none coming, or no worker
                // left, means the sequencer gave up (an error): stop reading.
                if !buf.is_empty()
                    && (ticket_rx.recv().is_err()
                        || chunk_tx.send(Chunk { index, data: buf }).is_err())
                {
                    return Ok(total);
                }
                index += 1;
                if eof {
                    return Ok(total);
                }
            }
        });

        // The sequencer: in input order.
        let mut stats = Stats::default();
        let mut pending: BTreeMap<u64, Parsed> = BTreeMap::new();
        let mut next = 0u64;
        let mut line = 0u64;
        let mut wm: Option<i64> = None;
        // The stream's volume, in input order, for surge tests.
        let mut volume = rules
            .has_surge()
            .then(crate::window::baseline::Volume::default);
        let mut merging: BTreeMap<u64, (usize, Vec<Alert>)> = BTreeMap::new();
        let mut next_out = 0u64;
        let mut sent = 0u64;
        let mut error: Option<io::Error> = None;
        let mut bytes_done = 0u64;
        let write_ready = |merging: &mut BTreeMap<u64, (usize, Vec<Alert>)>,
                           next_out: &mut u64,
                           outs: &mut ReplayOutputs<'_>,
                           stats: &mut Stats,
                           error: &mut Option<io::Error>| {
            while let Some((n, _)) = merging.get(next_out) {
                if *n < shards {
                    break;
                }
                let (_, mut alerts) = merging.remove(next_out).unwrap_or_default();
                alerts.sort_by(output_order);
                for a in &alerts {
                    if a.is_firing() {
                        stats.alerts_firing += 1;
                    } else {
                        stats.alerts_resolved += 1;
                    }
                    if let Err(e) = outs.alerts.write(a) {
                        error.get_or_insert(e);
                    }
                }
                *next_out += 1;
            }
        };
        for parsed in parsed_rx.iter() {
            pending.insert(parsed.index, parsed);
            while let Some(p) = pending.remove(&next) {
                next += 1;
                let first_line = line + 1;
                line += p.lines;
                stats.lines += p.lines;
                stats.bytes += p.bytes;
                stats.blank += p.blank;
                for (a, b) in stats.rejected.iter_mut().zip(p.rejected) {
                    *a += b;
                }
                if let Some(dl) = outs.dead_letters.as_deref_mut() {
                    for (local, info, raw) in &p.rejects {
                        if let Err(e) = dl.write_raw(&dead_letter_json(
                            first_line + *local as u64,
                            raw,
                            info,
                            None,
                        )) {
                            error.get_or_insert(e);
                        }
                    }
                }
                // Watermark and lateness in input order.
                let mut accepted = vec![false; p.ts.len()];
                let mut scales = vec![1.0f32; if volume.is_some() { p.ts.len() } else { 0 }];
                let mut steps = Vec::new();
                for (i, &ts) in p.ts.iter().enumerate() {
                    if geo.is_late(ts, wm) {
                        stats.late_dropped += 1;
                        continue;
                    }
                    stats.accepted += 1;
                    accepted[i] = true;
                    if let Some(v) = &mut volume {
                        scales[i] = v.observe(ts, wm);
                    }
                    if wm.is_none_or(|w| ts > w) {
                        wm = Some(ts);
                        steps.push(Step {
                            seq: first_line + p.valid_line[i] as u64,
                            ts,
                            valid: i as u32,
                        });
                    }
                }
                let mut per_shard: Vec<Vec<(u32, f32)>> = vec![Vec::new(); shards];
                for (k, m) in p.matched.iter().enumerate() {
                    if !accepted[m.valid as usize] {
                        continue;
                    }
                    stats.matched_records += 1;
                    stats.matched += (m.bus.1 - m.bus.0) as u64;
                    let region = p.str(m.region);
                    let shard = if shards == 1 {
                        0
                    } else {
                        // A province's keys and all its regions' keys live
                        // in one shard (section 8 roll-ups).
                        let home = match rules.province_of(rules.region_of(region)) {
                            Some(pr) => rules.provinces[pr].name.as_str(),
                            None => region,
                        };
                        (xxhash_rust::xxh3::xxh3_64(home.as_bytes()) % shards as u64) as usize
                    };
                    let scale = scales.get(m.valid as usize).copied().unwrap_or(1.0);
                    per_shard[shard].push((k as u32, scale));
                }
                // Records no template covers go to the shard of their
                // new-topic partition.
                let mut docs_per_shard: Vec<Vec<u32>> = vec![Vec::new(); shards];
                for (k, u) in p.unmatched.iter().enumerate() {
                    if accepted[u.valid as usize] {
                        let part = partition_of(&rules, p.str(u.region));
                        docs_per_shard[part % shards].push(k as u32);
                    }
                }
                bytes_done += p.bytes;
                let index = p.index;
                let parsed = Arc::new(p);
                let steps = Arc::new(steps);
                for (s, (records, docs)) in per_shard.into_iter().zip(docs_per_shard).enumerate() {
                    let w = ShardWork {
                        index,
                        first_line,
                        parsed: parsed.clone(),
                        records,
                        docs,
                        steps: steps.clone(),
                    };
                    // Keep draining shard output while shards are busy, so
                    // neither side waits on the other.
                    let mut msg = ShardMsg::Work(w);
                    loop {
                        match shard_txs[s].try_send(msg) {
                            Ok(()) => break,
                            Err(crossbeam_channel::TrySendError::Full(m)) => {
                                msg = m;
                                if let Ok(o) =
                                    out_rx.recv_timeout(std::time::Duration::from_millis(1))
                                {
                                    collect(o, &mut merging);
                                    write_ready(
                                        &mut merging,
                                        &mut next_out,
                                        outs,
                                        &mut stats,
                                        &mut error,
                                    );
                                }
                            }
                            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                                return Err(io::Error::other("a shard stopped"));
                            }
                        }
                    }
                }
                sent += 1;
                // The chunk is with the shards (their queues are bounded):
                // the reader may read another.
                let _ = ticket_tx.send(());
                while let Ok(o) = out_rx.try_recv() {
                    collect(o, &mut merging);
                }
                write_ready(&mut merging, &mut next_out, outs, &mut stats, &mut error);
                if let Some(pr) = progress.as_deref_mut() {
                    pr(bytes_done);
                }
            }
            if let Some(e) = error.take() {
                return Err(e);
            }
        }
        let read = reader
            .join()
            .map_err(|_| io::Error::other("the reader thread panicked"))??;
        let _ = read;
        // The rest of the shard output, then end of input.
        while next_out < sent {
            match out_rx.recv() {
                Ok(o) => collect(o, &mut merging),
                Err(_) => return Err(io::Error::other("a shard stopped")),
            }
            write_ready(&mut merging, &mut next_out, outs, &mut stats, &mut error);
        }
        for tx in &shard_txs {
            let _ = tx.send(ShardMsg::Finish(wm));
        }
        let mut end: Vec<Alert> = Vec::new();
        let mut finished = 0;
        let mut total_overflow = 0;
        while finished < shards {
            match out_rx.recv() {
                Ok(o) => {
                    total_overflow += o.overflow;
                    if let Some(t) = &o.topics {
                        stats.new_topics.get_or_insert_with(Default::default).add(t);
                    }
                    end.extend(o.alerts);
                    finished += 1;
                }
                Err(_) => return Err(io::Error::other("a shard stopped")),
            }
        }
        end.sort_by(output_order);
        for a in &end {
            stats.alerts_resolved += 1;
            if let Err(e) = outs.alerts.write(a) {
                error.get_or_insert(e);
            }
        }
        stats.keys_overflow = total_overflow;
        if let Some(e) = error.take() {
            return Err(e);
        }
        outs.alerts.flush()?;
        if let Some(dl) = outs.dead_letters.as_deref_mut() {
            dl.flush()?;
        }
        drop(shard_txs);
        Ok(stats)
    })
}

/// How many threads `--threads 0` (the default) uses.
pub fn default_threads() -> usize {
    thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(64)
}
