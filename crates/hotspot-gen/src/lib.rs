//! The traffic generator behind `hotspot gen`: realistic complaint traffic
//! for a provincial complaint centre, with injected incidents and traps and
//! a ground-truth file saying what a correct detector must report.
//!
//! How a run goes:
//!
//! 1. [`world`] reads the rule library and decides what customers complain
//!    about and in which words ([`bank`] for the fixture library, the
//!    templates' keywords otherwise).
//! 2. [`incidents`] plans the incidents and traps, sized from the
//!    thresholds and laid out in the rules' window geometry.
//! 3. The driver walks the days minute by minute. Each minute receives its
//!    share of the background volume (a daily load curve — night trough,
//!    morning and afternoon peaks — times three on the surge day, with a
//!    little noise) plus the injected records due in it; they are written
//!    in event-time order, get their work-order ids, and wait in a small
//!    reorder heap until their channel delivers them ([`channel`]). Every
//!    minute, what has arrived is written out in arrival order. Channel
//!    delays are bounded, so the heap holds only minutes of traffic: memory
//!    does not grow with the run.
//! 4. While writing, the driver replays the contract's watermark rule to
//!    count exactly which records a detector drops as late, and [`dirty`]
//!    slips in bad lines.
//! 5. [`truth`] collects the counts, incidents, traps and a bound on what
//!    the background alone may do.
//!
//! [`field`] is the other scenario (`--scenario field`): days of background
//! with a learning period, incidents a fixed threshold catches or misses,
//! and rules of its own calibrated on the biggest city; it shares the
//! driver (step 3) and the planner's machinery.
//!
//! Determinism: one seed gives byte-identical output. All randomness comes
//! from ChaCha8 streams of the seed (background, dirty lines, plan, volume
//! noise, sampling — separate streams, so `--dirty` adds lines without
//! changing the clean ones), nothing iterates a hash map, and nothing reads
//! the clock. Speed: lines are rendered into recycled buffers and written
//! through one large `BufWriter`; a million events take a few seconds.

pub mod bank;
pub mod callers;
pub mod channel;
pub mod dirty;
pub mod field;
pub mod incidents;
pub mod line;
pub mod regions;
pub mod text;
pub mod truth;
pub mod world;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use self::callers::{Caller, RecentCallers, new_caller};
use self::channel::{Channel, Delays};
use self::incidents::{Plan, Setup};
use self::line::{CallerField, Line, Overrides, cst_date, pick_ts_fmt, write_line};
use self::regions::{REGIONS, RegionPicker};
use self::text::{Frame, Place, Since, TextCtx, compose, compose_plain};
use self::truth::{Background, Busiest, Counts, Truth};
use self::world::{Checker, TopicKind, World};
use hotspot_core::matcher::Matcher;
use hotspot_core::rules::Rules;
use hotspot_core::time::{CST_OFFSET_MS, days_from_civil, format_duration};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Valid complaint records to write (incidents and traps included).
    pub events: u64,
    pub days: u32,
    /// The first day, as days since 1970-01-01 (a local date).
    pub start_day: i64,
    /// The surge day (days since 1970-01-01), if any.
    pub surge_day: Option<i64>,
    /// Extra bad lines, as a fraction of `events`.
    pub dirty: f64,
    /// How the rules were named on the command line (for the truth).
    pub rules_name: String,
}

/// Parses `2026-03-14` into days since 1970-01-01.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let days = days_from_civil(y, m, d);
    (hotspot_core::time::civil_from_days(days) == (y, m as u32, d as u32)).then_some(days)
}

/// `yyyy-mm-dd` of a day number.
pub fn format_date(day: i64) -> String {
    let (y, m, d) = hotspot_core::time::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Local midnight of a day number, epoch ms.
pub(crate) fn midnight(day: i64) -> i64 {
    day * 86_400_000 - CST_OFFSET_MS
}

/// Relative complaint volume per local hour: a night trough, a morning peak
/// around 10:00, an afternoon peak around 15:00 and a quieter evening.
const HOURLY: [f64; 24] = [
    0.35, 0.22, 0.15, 0.12, 0.12, 0.18, 0.35, 0.75, 1.30, 1.75, 1.85, 1.60, 1.15, 1.30, 1.65, 1.75,
    1.60, 1.35, 1.10, 1.15, 1.20, 1.00, 0.75, 0.50,
];

/// The load curve at minute `m` of the day, interpolated between hours.
pub(crate) fn curve(m: usize) -> f64 {
    let h = m / 60;
    let f = (m % 60) as f64 / 60.0;
    // Each hour's value sits at its middle.
    let (a, b, t) = if f < 0.5 {
        ((h + 23) % 24, h, f + 0.5)
    } else {
        (h, (h + 1) % 24, f - 0.5)
    };
    HOURLY[a] * (1.0 - t) + HOURLY[b] * t
}

/// Splits `total` over slots in proportion to cumulative weights, exactly:
/// slot `i` gets `round(total * C[i+1]) - round(total * C[i])`.
struct Allocator {
    total: f64,
    sum: f64,
    acc: f64,
    given: u64,
}

impl Allocator {
    fn new(total: u64, sum: f64) -> Self {
        Allocator {
            total: total as f64,
            sum,
            acc: 0.0,
            given: 0,
        }
    }

    fn take(&mut self, weight: f64) -> u64 {
        self.acc += weight;
        let upto = ((self.acc / self.sum * self.total).round() as u64).min(self.total as u64);
        let n = upto.saturating_sub(self.given);
        self.given += n;
        n
    }
}

/// What waits in the reorder heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// A rendered record in buffer `slot`; `item` is its incident or trap
    /// (`u16::MAX` for background).
    Record {
        slot: u32,
        item: u16,
    },
    Dirty(dirty::Kind),
}

/// Ordered by arrival, then event time, then generation order (unique).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    arrival: i64,
    ts: i64,
    seq: u64,
    what: What,
}

/// The category an agent picks for a request that is no complaint.
fn plain_label(text: &str) -> &'static str {
    if text.contains("咨询") {
        "咨询"
    } else if text.contains("表扬") {
        "表扬"
    } else if text.contains("要求") {
        "业务办理"
    } else if text.contains("反映") || text.contains("投诉") {
        "服务质量"
    } else {
        "其他"
    }
}

/// Progress: (minutes done, minutes in all).
pub type Progress<'p> = &'p mut dyn FnMut(u64, u64);

struct Driver<'a, W: Write> {
    rules: &'a Rules,
    world: &'a World,
    checker: Checker<'a>,
    out: W,
    rng: ChaCha8Rng,
    dirty_rng: ChaCha8Rng,
    delays: Delays,
    picker: RegionPicker,
    recent: RecentCallers,
    heap: BinaryHeap<Reverse<Pending>>,
    bufs: Vec<Vec<u8>>,
    free: Vec<u32>,
    seq: u64,
    /// The work-order counter of the current local day.
    day: u32,
    day_seq: u32,
    dirty_seq: u32,
    dealer: dirty::Dealer,
    text: String,
    scratch: Vec<u8>,
    zones: Vec<incidents::Zone>,
    watermark: Option<i64>,
    counts: Counts,
    item_late: Vec<u64>,
}

impl<W: Write> Driver<'_, W> {
    fn slot(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            self.bufs.push(Vec::with_capacity(512));
            (self.bufs.len() - 1) as u32
        })
    }

    /// The next work-order number of the local day of `ts`.
    fn next_id(&mut self, ts: i64) -> u32 {
        let day = cst_date(ts);
        if day != self.day {
            self.day = day;
            self.day_seq = 0;
        }
        self.day_seq += 1;
        self.day_seq
    }

    fn push(&mut self, arrival: i64, ts: i64, what: What) {
        self.seq += 1;
        self.heap.push(Reverse(Pending {
            arrival,
            ts,
            seq: self.seq,
            what,
        }));
    }

    /// One background complaint at `ts`; returns its topic.
    fn background(&mut self, ts: i64) -> usize {
        let rng = &mut self.rng;
        let region = self.picker.pick(rng.random());
        let channel = Channel::pick(rng);
        let (caller, mut topic, call_no) = match self.recent.pick(rng, region) {
            Some((c, t)) if rng.random_bool(0.07) => (c, t as usize, rng.random_range(2..4)),
            _ => (
                new_caller(rng, channel.hashed_caller_share()),
                self.world.pick(rng),
                0,
            ),
        };
        let ts_fmt = pick_ts_fmt(rng, channel);
        let ts = if ts_fmt.keeps_millis() {
            ts
        } else {
            ts - ts.rem_euclid(1000)
        };
        let held = !self.zones.is_empty()
            && self
                .zones
                .iter()
                .any(|z| z.region == region && (z.from..=z.to).contains(&ts));
        for attempt in 0..2 {
            self.write_text(topic, region, channel, &caller, call_no, ts);
            if !held
                || !self.zones.iter().any(|z| {
                    z.region == region
                        && (z.from..=z.to).contains(&ts)
                        && self.checker.hits_business(&self.text, z.business)
                })
            {
                break;
            }
            // Ordinary traffic of a held key becomes a plain request.
            debug_assert_eq!(attempt, 0);
            topic = self.world.plain();
        }
        let rng = &mut self.rng;
        let caller_field = match rng.random_range(0..100u32) {
            0..3 => CallerField::Absent,
            3..4 => CallerField::Null,
            _ => CallerField::Str(caller.as_str()),
        };
        let label = match self.world.topics[topic].kind {
            TopicKind::Template { business, .. } if rng.random_bool(0.35) => {
                Some(self.rules.businesses[business].name.as_str())
            }
            TopicKind::Plain if rng.random_bool(0.2) => Some(plain_label(&self.text)),
            _ => None,
        };
        let extra = rng.random();
        let arrival = self.delays.arrival(rng, channel, ts);
        self.recent.remember(region, caller, topic as u32);
        let seq = self.next_id(ts);
        let slot = self.slot();
        let buf = &mut self.bufs[slot as usize];
        buf.clear();
        write_line(
            buf,
            &Line {
                channel,
                seq,
                ts,
                ts_fmt,
                region: REGIONS[region].name,
                text: &self.text,
                caller: caller_field,
                label,
                extra,
                ov: Overrides::default(),
            },
        );
        self.push(
            arrival,
            ts,
            What::Record {
                slot,
                item: u16::MAX,
            },
        );
        topic
    }

    /// Writes the text of a background complaint at `ts` into `self.text`.
    fn write_text(
        &mut self,
        topic: usize,
        region: usize,
        channel: Channel,
        caller: &Caller,
        call_no: u32,
        ts: i64,
    ) {
        let t = &self.world.topics[topic];
        let rng = &mut self.rng;
        let phrase = self.world.phrase(rng, topic);
        let place = (t.place && rng.random_bool(0.8)).then(|| Place::random(rng, region));
        // Sometimes a clock time earlier the same day ("从7点左右开始").
        let local = (ts + CST_OFFSET_MS).rem_euclid(86_400_000) / 60_000;
        let since = match local.checked_sub(rng.random_range(10..300)) {
            Some(m) if m >= 6 * 60 && rng.random_bool(0.3) => {
                Since::At((m / 60) as u32, (m % 60) as u32)
            }
            _ => Since::Vague,
        };
        let ctx = TextCtx {
            region,
            channel,
            phone: Some(&caller.phone),
            place,
            since,
            call_no,
            fee: t.fee,
            frame: Frame::Complaint,
        };
        match t.kind {
            TopicKind::Template { .. } => compose(&mut self.text, rng, phrase, &ctx),
            TopicKind::Plain => compose_plain(&mut self.text, rng, phrase, &ctx),
        }
    }

    /// One injected record.
    fn injected(&mut self, r: &incidents::Injected) {
        let seq = self.next_id(r.ts);
        let arrival = r
            .arrival
            .unwrap_or_else(|| self.delays.arrival(&mut self.rng, r.channel, r.ts));
        let slot = self.slot();
        let buf = &mut self.bufs[slot as usize];
        buf.clear();
        write_line(
            buf,
            &Line {
                channel: r.channel,
                seq,
                ts: r.ts,
                ts_fmt: r.ts_fmt,
                region: REGIONS[r.region as usize].name,
                text: &r.text,
                caller: CallerField::Str(r.caller.as_str()),
                label: r
                    .label
                    .map(|b| self.rules.businesses[b as usize].name.as_str()),
                extra: r.extra,
                ov: Overrides::default(),
            },
        );
        self.push(arrival, r.ts, What::Record { slot, item: r.item });
    }

    /// Writes everything that has arrived before `cutoff`.
    fn flush(&mut self, cutoff: i64) -> io::Result<()> {
        let lateness = self.rules.window.allowed_lateness_ms;
        while let Some(Reverse(p)) = self.heap.peek().copied() {
            if p.arrival >= cutoff {
                break;
            }
            self.heap.pop();
            match p.what {
                What::Record { slot, item } => {
                    self.valid(p.ts, lateness, item);
                    let buf = &self.bufs[slot as usize];
                    self.out.write_all(buf)?;
                    self.out.write_all(b"\n")?;
                    self.counts.bytes += buf.len() as u64 + 1;
                    self.free.push(slot);
                }
                What::Dirty(kind) => {
                    self.dirty_seq += 1;
                    let seq = 90_000_000 + self.dirty_seq % 10_000_000;
                    match kind {
                        dirty::Kind::Huge => {
                            // At the watermark: accepted, and it moves nothing.
                            let ts = self.watermark.unwrap_or(p.arrival);
                            dirty::write_huge(&mut self.scratch, &mut self.dirty_rng, ts, seq);
                            self.valid(ts, lateness, u16::MAX);
                            self.counts.huge_records += 1;
                        }
                        kind => {
                            dirty::write_dirty(
                                &mut self.scratch,
                                &mut self.dirty_rng,
                                kind,
                                p.arrival,
                                seq,
                            );
                            match kind.expect() {
                                dirty::Expect::Reject(r) => {
                                    *self.counts.rejected.entry(r.name().to_owned()).or_default() +=
                                        1
                                }
                                dirty::Expect::Blank => self.counts.blank += 1,
                                dirty::Expect::Valid => self.valid(p.arrival, lateness, u16::MAX),
                            }
                        }
                    }
                    self.out.write_all(&self.scratch)?;
                    self.out.write_all(b"\n")?;
                    self.counts.bytes += self.scratch.len() as u64 + 1;
                }
            }
            self.counts.lines += 1;
        }
        Ok(())
    }

    /// The contract's lateness rule (5.1) for a valid record.
    fn valid(&mut self, ts: i64, lateness: i64, item: u16) {
        self.counts.records += 1;
        match self.watermark {
            Some(wm) if ts < wm - lateness => {
                self.counts.late_dropped += 1;
                if let Some(l) = self.item_late.get_mut(item as usize) {
                    *l += 1;
                }
            }
            Some(wm) if ts <= wm => {}
            _ => self.watermark = Some(ts),
        }
    }
}

/// Generates traffic into `out` and returns its ground truth.
pub fn generate(
    cfg: &Config,
    rules: &Rules,
    out: impl Write,
    progress: Option<Progress<'_>>,
) -> io::Result<Truth> {
    let matcher = Matcher::new(rules).map_err(io::Error::other)?;
    let world = World::new(rules, &matcher);
    let geo = rules.window;
    let stream = |n: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
        r.set_stream(n);
        r
    };
    let days: Vec<i64> = (0..cfg.days as i64).map(|d| cfg.start_day + d).collect();
    let surge = cfg.surge_day.filter(|s| days.contains(s));

    // Volume: per-minute weights with noise, three times on the surge day.
    let mut noise = stream(3);
    let weights: Vec<f64> = days
        .iter()
        .flat_map(|&d| {
            let factor = if Some(d) == surge { 3.0 } else { 1.0 };
            (0..1440).map(move |m| (m, factor))
        })
        .map(|(m, factor)| curve(m) * factor * noise.random_range(0.85..1.15))
        .collect();

    // Incidents and traps on ordinary days (on every day when all are surge
    // days).
    let plan_days: Vec<i64> = {
        let ordinary: Vec<i64> = days.iter().copied().filter(|d| Some(*d) != surge).collect();
        if ordinary.is_empty() {
            days.clone()
        } else {
            ordinary
        }
    };
    let plan: Plan = incidents::plan(
        Setup {
            rules,
            world: &world,
            checker: Checker::new(&matcher),
            days: plan_days.iter().map(|&d| midnight(d)).collect(),
            surge: surge.map(midnight),
        },
        stream(2),
    );
    let injected = plan.records.len() as u64;
    let background_total = cfg.events.saturating_sub(injected);
    let dirty_total = (cfg.dirty.max(0.0) * cfg.events as f64).round() as u64;
    let Driven {
        mut counts,
        item_late,
        per_day,
    } = drive(
        cfg,
        rules,
        &world,
        &matcher,
        out,
        progress,
        &weights,
        &plan,
        background_total,
        dirty_total,
    )?;
    counts.injected = injected;
    let mut items = plan.items;
    for (item, late) in items.iter_mut().zip(&item_late) {
        item.late_dropped = *late;
    }
    let background = background_bound(rules, &world, &matcher, cfg, &days, &weights, &per_day);
    let (incidents, traps): (Vec<_>, Vec<_>) = items.into_iter().partition(|i| i.expect_alert);
    Ok(Truth {
        generator: format!("hotspot gen {}", env!("CARGO_PKG_VERSION")),
        args: truth::Args {
            seed: cfg.seed,
            events: cfg.events,
            days: cfg.days,
            start: format_date(cfg.start_day),
            surge_day: surge.map(format_date),
            dirty: cfg.dirty,
            rules: cfg.rules_name.clone(),
        },
        rules_version: rules.version.clone(),
        window: truth::Window {
            size: format_duration(geo.size_ms),
            slide: format_duration(geo.slide_ms),
            allowed_lateness: format_duration(geo.allowed_lateness_ms),
        },
        counts,
        background_may_alert: background.may_alert,
        background,
        incidents,
        traps,
        skipped: plan.skipped,
    })
}

/// What [`drive`] returns.
pub(crate) struct Driven {
    pub(crate) counts: Counts,
    /// Late-dropped records per item of the plan.
    pub(crate) item_late: Vec<u64>,
    /// Valid records per day.
    pub(crate) per_day: Vec<u64>,
}

/// Writes the traffic: per-minute background volume following `weights`
/// (1440 a day from `cfg.start_day`), the plan's records and `dirty_total`
/// bad lines, in arrival order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drive(
    cfg: &Config,
    rules: &Rules,
    world: &World,
    matcher: &Matcher,
    out: impl Write,
    progress: Option<Progress<'_>>,
    weights: &[f64],
    plan: &Plan,
    background_total: u64,
    dirty_total: u64,
) -> io::Result<Driven> {
    let weight_sum: f64 = weights.iter().sum();

    let stream = |n: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
        r.set_stream(n);
        r
    };
    let mut d = Driver {
        rules,
        world,
        checker: Checker::new(matcher),
        out: io::BufWriter::with_capacity(1 << 20, out),
        rng: stream(0),
        dirty_rng: stream(1),
        delays: Delays::new(rules.window.allowed_lateness_ms, cfg.seed),
        picker: RegionPicker::default(),
        recent: RecentCallers::new(REGIONS.len()),
        heap: BinaryHeap::new(),
        bufs: Vec::new(),
        free: Vec::new(),
        seq: 0,
        day: 0,
        day_seq: 0,
        dirty_seq: 0,
        dealer: dirty::Dealer::default(),
        text: String::with_capacity(512),
        scratch: Vec::with_capacity(1024),
        zones: plan.zones.clone(),
        watermark: None,
        counts: Counts::default(),
        item_late: vec![0; plan.items.len()],
    };
    let mut volume = Allocator::new(background_total, weight_sum);
    let mut dirt = Allocator::new(dirty_total, weight_sum);
    let mut per_day = vec![0u64; weights.len() / 1440];
    let mut offsets: Vec<i64> = Vec::new();
    let mut next_injected = 0;
    let start = midnight(cfg.start_day);
    let minutes = weights.len();
    let mut progress = progress;
    for (m, &w) in weights.iter().enumerate() {
        let t0 = start + m as i64 * 60_000;
        let t1 = t0 + 60_000;
        let n = volume.take(w);
        per_day[m / 1440] += n;
        offsets.clear();
        offsets.extend((0..n).map(|_| d.rng.random_range(0..60_000i64)));
        offsets.sort_unstable();
        // Background and injected records in event-time order.
        let mut i = 0;
        loop {
            let inj = plan.records.get(next_injected).filter(|r| r.ts < t1);
            match (offsets.get(i), inj) {
                (Some(&o), Some(r)) if t0 + o <= r.ts => {
                    let _ = d.background(t0 + o);
                    i += 1;
                }
                (_, Some(r)) => {
                    d.injected(r);
                    per_day[m / 1440] += 1;
                    next_injected += 1;
                }
                (Some(&o), None) => {
                    let _ = d.background(t0 + o);
                    i += 1;
                }
                (None, None) => break,
            }
        }
        for _ in 0..dirt.take(w) {
            let kind = d.dealer.deal(&mut d.dirty_rng);
            let at = t0 + d.dirty_rng.random_range(0..60_000i64);
            d.push(at, at, What::Dirty(kind));
        }
        d.flush(t1)?;
        if let Some(p) = progress.as_deref_mut() {
            if m % 60 == 59 {
                p(m as u64 + 1, minutes as u64);
            }
        }
    }
    // Injected records before the first day or after the last (none are
    // planned there, but stay exact) and everything still in flight.
    for r in &plan.records[next_injected..] {
        d.injected(r);
    }
    d.flush(i64::MAX)?;
    d.out.flush()?;

    let mut counts = std::mem::take(&mut d.counts);
    counts.accepted = counts.records - counts.late_dropped;
    Ok(Driven {
        counts,
        item_late: d.item_late,
        per_day,
    })
}

/// Samples background texts to learn which business each really counts
/// for (the intended share is exact for the fixture library; with another
/// library fillers might add keywords), then bounds the expected number of
/// background alerts with a Poisson tail per (business, region, day).
#[allow(clippy::too_many_arguments)]
fn background_bound(
    rules: &Rules,
    world: &World,
    matcher: &Matcher,
    cfg: &Config,
    days: &[i64],
    weights: &[f64],
    per_day: &[u64],
) -> Background {
    const SAMPLES: usize = 20_000;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(4);
    let mut check = Checker::new(matcher);
    let mut hits = vec![0u64; rules.businesses.len()];
    let mut text = String::new();
    let picker = RegionPicker::default();
    for _ in 0..SAMPLES {
        let topic = world.pick(&mut rng);
        let region = picker.pick(rng.random());
        let t = &world.topics[topic];
        let phone = callers::phone(&mut rng);
        let ctx = TextCtx {
            region,
            channel: Channel::pick(&mut rng),
            phone: Some(&phone),
            place: t.place.then(|| Place::random(&mut rng, region)),
            since: Since::Vague,
            call_no: 0,
            fee: t.fee,
            frame: Frame::Complaint,
        };
        let phrase = world.phrase(&mut rng, topic);
        match t.kind {
            TopicKind::Template { .. } => compose(&mut text, &mut rng, phrase, &ctx),
            TopicKind::Plain => compose_plain(&mut text, &mut rng, phrase, &ctx),
        }
        for b in check.businesses(&text) {
            hits[b] += 1;
        }
    }
    let share: Vec<f64> = hits
        .iter()
        .zip(&world.business_share)
        .map(|(&h, &intended)| {
            let h = h as f64;
            ((h + 3.0 * h.sqrt()) / SAMPLES as f64).max(intended)
        })
        .collect();
    // Windows of the rules' size starting every half size (a union bound
    // over them covers the sliding windows between), each with its share
    // of its day's volume.
    let size_min = (rules.window.size_ms / 60_000).max(1) as usize;
    let partial = (rules.window.size_ms as f64 / 60_000.0).min(1.0);
    let step = (size_min / 2).max(1);
    let mut expected = 0.0;
    let mut busiest: Vec<Busiest> = Vec::new();
    let biggest = (0..REGIONS.len())
        .map(|r| picker.share(r))
        .fold(0.0, f64::max);
    for (di, &day) in days.iter().enumerate() {
        let w = &weights[di * 1440..(di + 1) * 1440];
        let total: f64 = w.iter().sum();
        let volumes: Vec<f64> = (0..1440)
            .step_by(step)
            .map(|m| {
                per_day[di] as f64
                    * (m..(m + size_min).min(1440)).map(|i| w[i]).sum::<f64>()
                    * partial
                    / total
            })
            .collect();
        let peak = volumes.iter().copied().fold(0.0, f64::max);
        for (b, biz) in rules.businesses.iter().enumerate() {
            // Skip what cannot matter even at the busiest window everywhere.
            let top = truth::poisson_tail(peak * share[b] * biggest, biz.threshold);
            if top * (volumes.len() * REGIONS.len()) as f64 >= 1e-12 {
                for r in 0..REGIONS.len() {
                    for v in &volumes {
                        expected +=
                            truth::poisson_tail(v * share[b] * picker.share(r), biz.threshold);
                    }
                }
            }
            for (r, region) in REGIONS.iter().enumerate() {
                busiest.push(Busiest {
                    business: biz.id.clone(),
                    region: region.name.into(),
                    day: format_date(day),
                    expected_peak: (peak * share[b] * picker.share(r) * 100.0).round() / 100.0,
                    threshold: biz.threshold,
                });
            }
        }
    }
    busiest.sort_by(|a, b| {
        let (x, y) = (
            a.expected_peak / a.threshold as f64,
            b.expected_peak / b.threshold as f64,
        );
        y.total_cmp(&x)
            .then_with(|| a.day.cmp(&b.day))
            .then_with(|| a.business.cmp(&b.business))
            .then_with(|| a.region.cmp(&b.region))
    });
    busiest.truncate(5);
    Background {
        may_alert: expected > 0.01,
        expected_alerts: if expected < 1e-6 {
            0.0
        } else {
            (expected * 1e6).round() / 1e6
        },
        per_day: per_day.to_vec(),
        busiest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::rules;

    fn run(seed: u64, events: u64, dirty: f64) -> (Vec<u8>, Truth) {
        let rules = rules::embedded().unwrap();
        let cfg = Config {
            seed,
            events,
            days: 2,
            start_day: parse_date("2026-03-14").unwrap(),
            surge_day: parse_date("2026-03-15"),
            dirty,
            rules_name: "embedded".into(),
        };
        let mut out = Vec::new();
        let truth = generate(&cfg, &rules, &mut out, None).unwrap();
        (out, truth)
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, ta) = run(1, 4000, 0.02);
        let (b, tb) = run(1, 4000, 0.02);
        assert!(a == b, "same seed, different output");
        assert_eq!(
            serde_json::to_string(&ta).unwrap(),
            serde_json::to_string(&tb).unwrap()
        );
        let (c, _) = run(2, 4000, 0.02);
        assert!(a != c);
    }

    #[test]
    fn counts_are_exact() {
        let (out, t) = run(3, 5000, 0.05);
        let lines = out.split(|&c| c == b'\n').count() as u64 - 1;
        assert_eq!(t.counts.lines, lines);
        assert_eq!(t.counts.bytes, out.len() as u64);
        assert_eq!(t.counts.records, 5000 + t.counts.huge_records);
        let bad: u64 = t.counts.rejected.values().sum();
        assert_eq!(t.counts.lines, t.counts.records + bad + t.counts.blank);
        assert_eq!(bad + t.counts.blank + t.counts.huge_records, 250);
        // The late batches are dropped, nothing else.
        let late: u64 = t
            .traps
            .iter()
            .filter(|i| i.kind == "late_batch")
            .map(|i| i.records)
            .sum();
        assert_eq!(t.counts.late_dropped, late);
        assert!(
            t.traps
                .iter()
                .filter(|i| i.kind == "late_batch")
                .all(|i| i.late_dropped == i.records)
        );
        assert!(t.incidents.iter().all(|i| i.late_dropped == 0));
    }

    #[test]
    fn a_dirty_run_is_the_clean_run_plus_bad_lines() {
        let (clean, tc) = run(4, 3000, 0.0);
        let (dirty, td) = run(4, 3000, 0.1);
        let valid = |buf: &[u8]| -> Vec<Vec<u8>> {
            let mut d = hotspot_core::record::Decoder::new();
            buf.split(|&c| c == b'\n')
                .filter(|l| matches!(d.decode(l), hotspot_core::record::Decoded::Record(r) if r.text.len() < 1 << 20))
                .map(<[u8]>::to_vec)
                .collect()
        };
        assert_eq!(valid(&clean), valid(&dirty));
        assert_eq!(tc.incidents, td.incidents);
        assert_eq!(tc.counts.late_dropped, td.counts.late_dropped);
    }

    /// Every background text counts for exactly the business it was written
    /// for, and plain requests for none: fillers add no keyword.
    #[test]
    fn background_texts_match_their_intent() {
        let rules = rules::embedded().unwrap();
        let matcher = Matcher::new(&rules).unwrap();
        let world = World::new(&rules, &matcher);
        let mut d = Driver {
            rules: &rules,
            world: &world,
            checker: Checker::new(&matcher),
            out: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(9),
            dirty_rng: ChaCha8Rng::seed_from_u64(10),
            delays: Delays::new(600_000, 9),
            picker: RegionPicker::default(),
            recent: RecentCallers::new(REGIONS.len()),
            heap: BinaryHeap::new(),
            bufs: Vec::new(),
            free: Vec::new(),
            seq: 0,
            day: 0,
            day_seq: 0,
            dirty_seq: 0,
            dealer: dirty::Dealer::default(),
            text: String::new(),
            scratch: Vec::new(),
            zones: Vec::new(),
            watermark: None,
            counts: Counts::default(),
            item_late: Vec::new(),
        };
        let mut check = Checker::new(&matcher);
        let mut wrong = Vec::new();
        for i in 0..60_000 {
            let topic = d.background(1_773_504_000_000 + i * 1000);
            let want: Vec<usize> = match world.topics[topic].kind {
                TopicKind::Template { business, .. } => vec![business],
                TopicKind::Plain => vec![],
            };
            let got = check.businesses(&d.text);
            if got != want && wrong.len() < 20 {
                wrong.push(format!("{want:?} {got:?} {}", d.text));
            }
            d.flush(i64::MAX).unwrap();
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn dates_parse() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(format_date(parse_date("2026-03-15").unwrap()), "2026-03-15");
    }
}
