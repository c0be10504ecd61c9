//! Injected incidents (must alert) and traps (must not), planned before any
//! line is written.
//!
//! Incidents, each a (business, region) key with at least `threshold`
//! distinct callers inside one window of the rules' geometry:
//!
//! * `cell_outage` — a cell site goes down: one region, a network
//!   business, one place, a burst of complaints and a tail of latecomers.
//! * `platform_failure` — a platform (彩铃 by preference) fails in several
//!   regions at once; every region reaches its threshold (one item per
//!   region, sharing a `group`).
//! * `slow_rise` — complaints grow over about 1h45 (density rising like a
//!   ramp) until a final half hour crosses the threshold.
//! * `late_web_outage` — an outage reported only through the web portal,
//!   whose batches arrive minutes late but within the allowed lateness.
//! * `exact_threshold` — a small city with exactly `threshold` distinct
//!   callers: alerts only because the comparison is `>=`. Ordinary traffic
//!   of that business in that city is held back around it (a *zone*) so the
//!   count is exact.
//!
//! Traps, which a correct detector ignores:
//!
//! * `repeat_caller` — one customer calls `threshold + n` times.
//! * `consultation` — after a marketing SMS, many ask "咨询如何..." about a
//!   phenomenon: texts hit a template's `all_of` and its `none_of`.
//! * `test_orders` — 测试工单, vetoed by `none_of`.
//! * `recovered_callbacks` — "已恢复" call-backs, vetoed by `none_of`.
//! * `late_batch` — an outage whose records all arrive in one batch later
//!   than the allowed lateness: every one is dropped as late.
//! * `surge_day` — the 3.15 consumer-rights day: three times the traffic,
//!   spread over every business and region, no single fault.
//!
//! Sizes follow each business's threshold in the loaded rules, placement
//! follows the window geometry (a burst is laid inside one aligned window,
//! so it reaches the threshold whatever `size` and `slide` are), and every
//! text is checked with the real matcher: incident and repeat-caller texts
//! must match their template and no other business, veto traps must match
//! nothing — and must count for their business once the veto word is taken
//! out, so a detector that ignored `none_of` would alert. A kind that cannot be placed with the loaded rules is skipped
//! and listed in the truth.

use rand::Rng;
use rand::seq::SliceRandom;

use super::callers::{Caller, new_caller};
use super::channel::Channel;
use super::field::Calibration;
use super::line::{TsFmt, pick_ts_fmt};
use super::regions::{PROVINCES, REGIONS, RegionPicker, cities_of};
use super::text::{Frame, Place, Since, TextCtx, compose};
use super::truth::Item;
use super::world::{Checker, TopicKind, World};
use hotspot_core::normalize::normalize;
use hotspot_core::rules::{Rules, WindowSpec};
use hotspot_core::time::{CST_OFFSET_MS, format_cst};

/// What is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CellOutage,
    PlatformFailure,
    SlowRise,
    LateWebOutage,
    ExactThreshold,
    RepeatCaller,
    Consultation,
    TestOrders,
    RecoveredCallbacks,
    LateBatch,
    SurgeDay,
    /// Field scenario: an outage in one of the three biggest cities, sized
    /// to reach the fixed threshold.
    BigCity,
    /// Field scenario: an outage of the same share of customers in a small
    /// city: a tenth of the complaints, below the fixed threshold.
    SmallCity,
    /// Field scenario: a platform failing over a whole province, below
    /// every city's threshold, above the province's.
    ProvinceWide,
    /// Field scenario: complaints rising over two hours in a mid-size city,
    /// peaking below the fixed threshold.
    Ramp,
    /// Field scenario: an outage between 00:30 and 05:30, few complaints.
    Night,
}

impl Kind {
    /// Everything planned on an ordinary day, in planning order.
    pub const DAILY: [Kind; 10] = [
        Kind::CellOutage,
        Kind::PlatformFailure,
        Kind::SlowRise,
        Kind::LateWebOutage,
        Kind::ExactThreshold,
        Kind::RepeatCaller,
        Kind::Consultation,
        Kind::TestOrders,
        Kind::RecoveredCallbacks,
        Kind::LateBatch,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::CellOutage => "cell_outage",
            Kind::PlatformFailure => "platform_failure",
            Kind::SlowRise => "slow_rise",
            Kind::LateWebOutage => "late_web_outage",
            Kind::ExactThreshold => "exact_threshold",
            Kind::RepeatCaller => "repeat_caller",
            Kind::Consultation => "consultation",
            Kind::TestOrders => "test_orders",
            Kind::RecoveredCallbacks => "recovered_callbacks",
            Kind::LateBatch => "late_batch",
            Kind::SurgeDay => "surge_day",
            Kind::BigCity => "big_city",
            Kind::SmallCity => "small_city",
            Kind::ProvinceWide => "province_wide",
            Kind::Ramp => "slow_rise",
            Kind::Night => "night",
        }
    }

    pub fn expect_alert(self) -> bool {
        matches!(
            self,
            Kind::CellOutage
                | Kind::PlatformFailure
                | Kind::SlowRise
                | Kind::LateWebOutage
                | Kind::ExactThreshold
                | Kind::BigCity
                | Kind::SmallCity
                | Kind::ProvinceWide
                | Kind::Ramp
                | Kind::Night
        )
    }

    /// Preferred businesses of the fixture library, best first.
    fn preferred(self) -> &'static [&'static str] {
        match self {
            Kind::CellOutage => &["signal", "data", "call", "lte", "nr"],
            Kind::PlatformFailure => &[
                "crbt",
                "mms",
                "newspaper",
                "weather",
                "app",
                "recharge",
                "callalert",
            ],
            Kind::SlowRise => &["broadband", "data", "iptv", "recharge", "app", "flow"],
            Kind::LateWebOutage => &["broadband", "iptv", "signal", "data"],
            Kind::ExactThreshold => &[
                "newspaper",
                "weather",
                "mms",
                "mail139",
                "callalert",
                "reading",
                "music",
            ],
            Kind::RepeatCaller => &["bill", "charge", "broadband", "flow", "signal"],
            Kind::Consultation => &["crbt", "nr", "volte", "package", "flow", "video"],
            Kind::TestOrders => &["boss", "app", "recharge", "broadband", "signal"],
            Kind::RecoveredCallbacks => &["signal", "broadband", "data", "iptv", "crbt"],
            Kind::LateBatch => &["broadband", "signal", "data", "call"],
            Kind::SurgeDay => &[],
            Kind::BigCity => &["signal", "data", "call", "broadband", "lte", "nr"],
            Kind::SmallCity => &["signal", "broadband", "data", "call", "iptv", "lte"],
            Kind::ProvinceWide => &[
                "crbt",
                "app",
                "recharge",
                "sms",
                "mms",
                "video",
                "newspaper",
                "music",
            ],
            Kind::Ramp => &["broadband", "data", "iptv", "signal", "call"],
            Kind::Night => &["broadband", "signal", "data", "iptv", "call"],
        }
    }

    /// Preferred templates (phenomena) of the fixture library.
    fn preferred_templates(self) -> &'static [&'static str] {
        match self {
            Kind::CellOutage => &[
                "signal.cell_fault",
                "signal.no_service",
                "data.no_internet",
                "call.cannot_call",
            ],
            Kind::PlatformFailure => &[
                "crbt.copy_fail",
                "crbt.sync_fail",
                "mms.recv",
                "newspaper.missing",
                "weather.missing",
            ],
            Kind::SlowRise | Kind::Ramp => {
                &["broadband.down", "broadband.slow", "data.slow", "iptv.lag"]
            }
            Kind::BigCity | Kind::SmallCity | Kind::Night => &[
                "signal.cell_fault",
                "signal.no_service",
                "broadband.down",
                "data.no_internet",
            ],
            Kind::ProvinceWide => &["crbt.copy_fail", "crbt.sync_fail", "mms.recv"],
            Kind::LateWebOutage => &["broadband.down", "broadband.onu", "iptv.black"],
            Kind::ExactThreshold => &["newspaper.missing", "weather.missing", "mms.recv"],
            Kind::Consultation => &[
                "crbt.copy_fail",
                "crbt.sync_fail",
                "volte.open_fail",
                "nr.icon",
            ],
            _ => &[],
        }
    }

    /// The `none_of` keyword a veto trap needs its template to have.
    fn veto(self) -> Option<&'static str> {
        match self {
            Kind::Consultation => Some("咨询如何"),
            Kind::TestOrders => Some("测试工单"),
            Kind::RecoveredCallbacks => Some("已恢复"),
            _ => None,
        }
    }

    fn prefers_place(self) -> bool {
        matches!(
            self,
            Kind::CellOutage
                | Kind::LateWebOutage
                | Kind::LateBatch
                | Kind::SlowRise
                | Kind::BigCity
                | Kind::SmallCity
                | Kind::Ramp
                | Kind::Night
        )
    }
}

/// One injected record.
#[derive(Debug, Clone)]
pub struct Injected {
    pub ts: i64,
    pub ts_fmt: TsFmt,
    pub region: u16,
    pub channel: Channel,
    pub caller: Caller,
    pub text: String,
    /// The business whose name the agent picked, if any.
    pub label: Option<u16>,
    /// Index into [`Plan::items`].
    pub item: u16,
    /// A forced arrival time (the late batch); otherwise the channel's.
    pub arrival: Option<i64>,
    pub extra: u32,
}

/// Ordinary traffic of `business` in `region` is held back in [from, to].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    pub region: usize,
    pub business: usize,
    pub from: i64,
    pub to: i64,
}

/// Everything injected into one run.
#[derive(Debug, Default)]
pub struct Plan {
    /// Sorted by event time.
    pub records: Vec<Injected>,
    pub items: Vec<Item>,
    pub zones: Vec<Zone>,
    pub skipped: Vec<String>,
}

/// What the planner needs to know about the run.
pub struct Setup<'a> {
    pub rules: &'a Rules,
    pub world: &'a World,
    pub checker: Checker<'a>,
    /// Local midnight (epoch ms) of each day to plan on.
    pub days: Vec<i64>,
    /// Local midnight of the surge day, if any.
    pub surge: Option<i64>,
}

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// How texts of a burst must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// The template and no other business.
    Only,
    /// Nothing at all.
    Nothing,
}

/// One call of a burst: when, which caller (index), the caller's n-th call.
#[derive(Debug, Clone, Copy)]
struct Call {
    ts: i64,
    caller: usize,
    call_no: u32,
}

/// How a burst chooses channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channels {
    Mixed,
    NoWeb,
    Only(Channel),
}

struct Burst<'v> {
    business: usize,
    region: usize,
    /// Topics; the first is the main one, used for about 70 % of calls.
    topics: Vec<usize>,
    frame: Frame<'v>,
    verify: Verify,
    channels: Channels,
    place: Option<Place>,
    since: Since,
    calls: Vec<Call>,
    arrival: Option<i64>,
}

struct Planner<'a> {
    s: Setup<'a>,
    /// The field scenario's background model, when planning one.
    cal: Option<&'a Calibration>,
    rng: rand_chacha::ChaCha8Rng,
    geo: WindowSpec,
    picker: RegionPicker,
    plan: Plan,
    /// (business, region, from, to) keys in use.
    reserved: Vec<(usize, usize, i64, i64)>,
    /// Every injected number so far, to keep callers distinct.
    phones: std::collections::BTreeSet<[u8; 11]>,
    groups: u32,
    text: String,
}

/// Plans the incidents and traps of a run.
pub fn plan(setup: Setup<'_>, rng: rand_chacha::ChaCha8Rng) -> Plan {
    let mut p = Planner::placing(setup, None, rng, &Kind::DAILY);
    if let Some(day) = p.s.surge {
        p.plan.items.push(Item {
            kind: Kind::SurgeDay.name().into(),
            business: None,
            region: None,
            template: None,
            threshold: None,
            start: format_cst(day),
            end: format_cst(day + 24 * HOUR - 1),
            distinct_callers: 0,
            records: 0,
            channel: "mixed".into(),
            late_dropped: 0,
            group: None,
            expect_alert: false,
            note: "3.15: three times the usual traffic over every business and region, no single fault; \
                   no alert on this day unless listed as an incident"
                .into(),
        });
    }
    p.plan.records.sort_by_key(|r| (r.ts, r.item));
    p.plan
}

impl Planner<'_> {
    fn threshold(&self, b: usize) -> usize {
        self.s.rules.businesses[b].threshold as usize
    }

    /// Candidate businesses for `kind`: preferred ones first, then the rest
    /// in random order; only those with usable topics.
    fn candidates(&mut self, kind: Kind) -> Vec<usize> {
        let rules = self.s.rules;
        let usable = |b: usize| self.topics_for(kind, b).next().is_some();
        let mut first: Vec<usize> = kind
            .preferred()
            .iter()
            .filter_map(|id| rules.business_index(id))
            .filter(|&b| usable(b))
            .collect();
        let mut rest: Vec<usize> = (0..rules.businesses.len())
            .filter(|b| !first.contains(b) && usable(*b))
            .collect();
        rest.shuffle(&mut self.rng);
        // Keep network faults on network businesses when the library has a
        // `net` department.
        if matches!(
            kind,
            Kind::CellOutage
                | Kind::LateWebOutage
                | Kind::LateBatch
                | Kind::RecoveredCallbacks
                | Kind::BigCity
                | Kind::SmallCity
                | Kind::Night
        ) {
            let net = |b: &usize| rules.departments[rules.businesses[*b].department].id == "net";
            if rest.iter().any(net) {
                rest.retain(net);
            }
        }
        first.extend(rest);
        first
    }

    /// Topics of business `b` usable for `kind`.
    fn topics_for(&self, kind: Kind, b: usize) -> impl Iterator<Item = usize> + '_ {
        let veto = kind.veto().map(normalize);
        self.s
            .world
            .topics_of(b)
            .filter(move |&t| match (&veto, self.s.world.topics[t].kind) {
                (Some(v), TopicKind::Template { template, .. }) => {
                    self.s.rules.templates[template].none_of.contains(v)
                }
                _ => true,
            })
    }

    /// The main topic for `kind` in business `b`: a preferred template if
    /// the business has one, else a random one; plus the other topics.
    fn topics(&mut self, kind: Kind, b: usize) -> Vec<usize> {
        let mut all: Vec<usize> = self.topics_for(kind, b).collect();
        all.shuffle(&mut self.rng);
        let world = self.s.world;
        let rules = self.s.rules;
        let id = |t: usize| match world.topics[t].kind {
            TopicKind::Template { template, .. } => rules.templates[template].id.as_str(),
            TopicKind::Plain => "",
        };
        if let Some(pos) = kind
            .preferred_templates()
            .iter()
            .find_map(|p| all.iter().position(|&t| id(t) == *p))
        {
            all.swap(0, pos);
        }
        all
    }

    fn free(&self, b: usize, r: usize, from: i64, to: i64) -> bool {
        !self
            .reserved
            .iter()
            .any(|&(rb, rr, f, t)| rb == b && rr == r && f <= to && from <= t)
    }

    fn margin(&self) -> i64 {
        self.geo.size_ms + self.geo.allowed_lateness_ms + 30 * MIN
    }

    /// A random local time of day `day` between `from_h` and `to_h` hours.
    fn time_in(&mut self, day: i64, from_h: i64, to_h: i64) -> i64 {
        day + self.rng.random_range(from_h * HOUR..to_h * HOUR)
    }

    /// The aligned window holding `t`, shrunk a little: a burst laid in it
    /// is inside one window of the rules' geometry.
    fn core(&self, t: i64) -> (i64, i64) {
        let w0 = t.div_euclid(self.geo.slide_ms) * self.geo.slide_ms;
        let s = self.geo.size_ms;
        (w0 + s / 20, w0 + s * 17 / 20)
    }

    fn uniform(&mut self, (a, b): (i64, i64), n: usize) -> Vec<i64> {
        let mut v: Vec<i64> = (0..n)
            .map(|_| self.rng.random_range(a..b.max(a + 1)))
            .collect();
        v.sort_unstable();
        v
    }

    /// First calls at `times`, callers numbered from `first`; a share of
    /// them calls again a few minutes later.
    fn calls(&mut self, times: &[i64], first: usize, again: f64) -> Vec<Call> {
        let mut calls = Vec::new();
        for (i, &ts) in times.iter().enumerate() {
            calls.push(Call {
                ts,
                caller: first + i,
                call_no: 0,
            });
            if again > 0.0 && self.rng.random_bool(again) {
                let later = ts + self.rng.random_range(2 * MIN..20 * MIN);
                calls.push(Call {
                    ts: later,
                    caller: first + i,
                    call_no: 2,
                });
            }
        }
        calls
    }

    fn extra(&mut self, t: usize, lo: f64, hi: f64) -> usize {
        (t as f64 * self.rng.random_range(lo..hi)).ceil() as usize
    }

    fn region_small(&mut self) -> usize {
        // The five smallest cities.
        REGIONS.len() - 1 - self.rng.random_range(0..5)
    }

    fn region_any(&mut self) -> usize {
        let u: f64 = self.rng.random();
        self.picker.pick(u)
    }

    /// Tries to place one `kind` on `day`; false when impossible.
    fn place(&mut self, kind: Kind, day: i64) -> bool {
        let candidates = self.candidates(kind);
        // Mostly the first preferred business, sometimes another, so that
        // several days do not all repeat the same incident.
        let preferred = kind.preferred().len().min(candidates.len()).max(1);
        let offset = if self.rng.random_bool(0.5) {
            0
        } else {
            self.rng.random_range(0..preferred)
        };
        for attempt in 0..60 {
            let Some(&b) = candidates.get((attempt + offset) % candidates.len().max(1)) else {
                return false;
            };
            if self.try_place(kind, day, b) {
                return true;
            }
        }
        false
    }

    fn try_place(&mut self, kind: Kind, day: i64, b: usize) -> bool {
        let t = self.threshold(b);
        let topics = self.topics(kind, b);
        if topics.is_empty() {
            return false;
        }
        let veto_str = kind.veto().map(normalize).unwrap_or_default();
        let frame = match kind {
            Kind::Consultation => Frame::Consult { veto: &veto_str },
            Kind::TestOrders => Frame::TestOrder { veto: &veto_str },
            Kind::RecoveredCallbacks => Frame::Recovered { veto: &veto_str },
            _ => Frame::Complaint,
        };
        let region = match kind {
            Kind::ExactThreshold => self.region_small(),
            Kind::TestOrders if self.rng.random_bool(0.6) => 0,
            Kind::BigCity => match self.rng.random_range(0..10u32) {
                0..6 => 0,
                6..8 => 1,
                _ => 2,
            },
            // Small cities, a tenth of 杭州 (衢州, 银川, 丽水, 舟山).
            Kind::SmallCity => self.rng.random_range(8..12),
            // The mid-size cities (宁波 to 湖州).
            Kind::Ramp => self.rng.random_range(1..8),
            _ => self.region_any(),
        };
        let place = (kind.prefers_place() || self.s.world.topics[topics[0]].place)
            .then(|| Place::random(&mut self.rng, region));
        let mut bursts: Vec<Burst<'_>> = Vec::new();
        let mk = |region: usize,
                  calls: Vec<Call>,
                  since: Since,
                  place: Option<Place>,
                  topics: &Vec<usize>| Burst {
            business: b,
            region,
            topics: topics.clone(),
            frame,
            verify: Verify::Only,
            channels: Channels::Mixed,
            place,
            since,
            calls,
            arrival: None,
        };
        let since_of = |ts: i64| {
            let local = (ts + CST_OFFSET_MS).rem_euclid(24 * HOUR);
            Since::At((local / HOUR) as u32, (local % HOUR / MIN) as u32)
        };
        match kind {
            Kind::CellOutage | Kind::LateWebOutage => {
                let anchor = self.time_in(day, 8, 19);
                let core = self.core(anchor);
                let k = t + self.extra(t, 0.2, 0.6);
                let times = self.uniform(core, k);
                let mut calls =
                    self.calls(&times, 0, if kind == Kind::CellOutage { 0.15 } else { 0.0 });
                if kind == Kind::CellOutage {
                    let tail = self.uniform((core.1, core.1 + self.geo.size_ms), k / 3);
                    calls.extend(self.calls(&tail, k, 0.0));
                }
                let mut burst = mk(region, calls, since_of(core.0), place, &topics);
                if kind == Kind::LateWebOutage {
                    burst.channels = Channels::Only(Channel::Web);
                }
                bursts.push(burst);
            }
            Kind::PlatformFailure => {
                let n = 3 + self.rng.random_range(0..2usize);
                let mut regions: Vec<usize> = Vec::new();
                while regions.len() < n {
                    let r = self.region_any();
                    if !regions.contains(&r) {
                        regions.push(r);
                    }
                }
                let anchor = self.time_in(day, 9, 18);
                for &r in &regions {
                    let shift = self.rng.random_range(0..10 * MIN);
                    let core = self.core(anchor + shift);
                    let k = t + self.extra(t, 0.1, 0.5);
                    let times = self.uniform(core, k);
                    let calls = self.calls(&times, 0, 0.1);
                    bursts.push(mk(r, calls, since_of(core.0), None, &vec![topics[0]]));
                }
            }
            Kind::SlowRise => {
                let anchor = self.time_in(day, 10, 20);
                let core = self.core(anchor);
                let ramp = (core.0 - 80 * MIN, core.0);
                let mut times: Vec<i64> = (0..t)
                    .map(|_| {
                        ramp.0 + ((ramp.1 - ramp.0) as f64 * self.rng.random::<f64>().sqrt()) as i64
                    })
                    .collect();
                times.sort_unstable();
                let mut calls = self.calls(&times, 0, 0.05);
                let k = t + self.extra(t, 0.15, 0.3);
                let final_times = self.uniform(core, k);
                calls.extend(self.calls(&final_times, t, 0.05));
                bursts.push(mk(region, calls, since_of(ramp.0), place, &topics));
            }
            Kind::ExactThreshold => {
                let anchor = self.time_in(day, 8, 20);
                let core = self.core(anchor);
                let times = self.uniform(core, t);
                let calls = self.calls(&times, 0, 0.0);
                let mut burst = mk(region, calls, since_of(core.0), place, &vec![topics[0]]);
                burst.channels = Channels::NoWeb;
                bursts.push(burst);
            }
            Kind::RepeatCaller => {
                let start = self.time_in(day, 8, 19);
                let n = t + 2 + self.rng.random_range(0..4usize);
                let times = self.uniform((start, start + HOUR), n);
                let calls = times
                    .iter()
                    .enumerate()
                    .map(|(i, &ts)| Call {
                        ts,
                        caller: 0,
                        call_no: if i == 0 { 0 } else { i as u32 + 1 },
                    })
                    .collect();
                let mut burst = mk(region, calls, Since::Vague, place, &vec![topics[0]]);
                burst.channels = Channels::Only(Channel::Hotline);
                bursts.push(burst);
            }
            Kind::Consultation | Kind::TestOrders | Kind::RecoveredCallbacks => {
                let anchor = self.time_in(day, 9, 20);
                let core = self.core(anchor);
                let k = t + 3 + self.rng.random_range(0..6usize);
                let times = self.uniform(core, k);
                let calls = self.calls(&times, 0, 0.0);
                let mut burst = mk(region, calls, since_of(core.0), place, &topics);
                burst.verify = Verify::Nothing;
                bursts.push(burst);
            }
            Kind::LateBatch => {
                let anchor = self.time_in(day, 9, 18);
                let core = self.core(anchor);
                let k = t + 5;
                let times = self.uniform(core, k);
                let calls = self.calls(&times, 0, 0.0);
                let last = times.last().copied().unwrap_or(core.1);
                let late = self.geo.allowed_lateness_ms + self.rng.random_range(15 * MIN..25 * MIN);
                let mut burst = mk(region, calls, since_of(core.0), place, &topics);
                burst.channels = Channels::Only(Channel::Web);
                burst.arrival = Some(last + late);
                bursts.push(burst);
            }
            Kind::SurgeDay => return false,
            Kind::BigCity | Kind::SmallCity | Kind::ProvinceWide | Kind::Ramp | Kind::Night => {
                let Some(cal) = self.cal else { return false };
                let Some(field) = self.field_bursts(kind, day, b, region, cal) else {
                    return false;
                };
                for (r, calls, since, topic_set) in field {
                    let p = if kind == Kind::ProvinceWide {
                        None
                    } else {
                        place
                    };
                    let ts: Vec<usize> = if topic_set {
                        topics.clone()
                    } else {
                        vec![topics[0]]
                    };
                    bursts.push(mk(r, calls, since, p, &ts));
                }
            }
        }
        // Keys must be free around every burst.
        let margin = self.margin();
        for burst in &bursts {
            let from = burst.calls.iter().map(|c| c.ts).min().unwrap_or(0) - margin;
            let to = burst
                .calls
                .iter()
                .map(|c| c.ts)
                .max()
                .unwrap_or(0)
                .max(burst.arrival.unwrap_or(0))
                + margin;
            if !self.free(burst.business, burst.region, from, to) {
                return false;
            }
        }
        let group = (bursts.len() > 1).then(|| {
            self.groups += 1;
            self.groups
        });
        // Write every record, checking its text; give up on the first text
        // that cannot be made to match as intended.
        let mut made: Vec<(Burst<'_>, Vec<Injected>)> = Vec::new();
        for burst in bursts {
            match self.write_burst(&burst, kind) {
                Some(records) => made.push((burst, records)),
                None => return false,
            }
        }
        for (burst, mut records) in made {
            let item = self.plan.items.len() as u16;
            records.iter_mut().for_each(|r| r.item = item);
            let start = records.iter().map(|r| r.ts).min().unwrap_or(0);
            let end = records.iter().map(|r| r.ts).max().unwrap_or(0);
            let mut callers: Vec<&str> = records.iter().map(|r| r.caller.as_str()).collect();
            callers.sort_unstable();
            callers.dedup();
            let channel = match burst.channels {
                Channels::Only(c) => c.name(),
                _ => "mixed",
            };
            let template = match self.s.world.topics[burst.topics[0]].kind {
                TopicKind::Template { template, .. } => {
                    Some(self.s.rules.templates[template].id.clone())
                }
                TopicKind::Plain => None,
            };
            self.plan.items.push(Item {
                kind: kind.name().into(),
                business: Some(self.s.rules.businesses[b].id.clone()),
                region: Some(REGIONS[burst.region].name.into()),
                template,
                threshold: Some(self.threshold(b) as u32),
                start: format_cst(start),
                end: format_cst(end),
                distinct_callers: callers.len() as u64,
                records: records.len() as u64,
                channel: channel.into(),
                late_dropped: 0,
                group,
                expect_alert: kind.expect_alert(),
                note: note(kind, burst.arrival.map(|a| a - end)),
            });
            let to = end.max(burst.arrival.unwrap_or(end));
            self.reserved
                .push((b, burst.region, start - margin, to + margin));
            if kind == Kind::ExactThreshold {
                let hold = self.geo.size_ms + self.geo.allowed_lateness_ms;
                self.plan.zones.push(Zone {
                    region: burst.region,
                    business: b,
                    from: start - hold,
                    to: end + hold,
                });
            }
            self.plan.records.extend(records);
        }
        true
    }

    /// The records of one burst, or `None` when a text cannot be made to
    /// match as intended.
    fn write_burst(&mut self, burst: &Burst<'_>, kind: Kind) -> Option<Vec<Injected>> {
        let callers = burst
            .calls
            .iter()
            .map(|c| c.caller)
            .max()
            .map_or(0, |m| m + 1);
        let mut who: Vec<Option<Caller>> = vec![None; callers];
        let mut out = Vec::with_capacity(burst.calls.len());
        let world = self.s.world;
        let fee_topic = |t: usize| world.topics[t].fee;
        let veto = match burst.frame {
            Frame::Consult { veto } | Frame::TestOrder { veto } | Frame::Recovered { veto } => veto,
            Frame::Complaint => "",
        };
        for call in &burst.calls {
            let channel = match burst.channels {
                Channels::Only(c) => c,
                Channels::Mixed => Channel::pick(&mut self.rng),
                Channels::NoWeb => loop {
                    let c = Channel::pick(&mut self.rng);
                    if c != Channel::Web {
                        break c;
                    }
                },
            };
            let caller = match who[call.caller] {
                Some(c) => c,
                None => {
                    let c = loop {
                        let c = new_caller(&mut self.rng, channel.hashed_caller_share());
                        if self.phones.insert(c.phone) {
                            break c;
                        }
                    };
                    who[call.caller] = Some(c);
                    c
                }
            };
            let topic = if burst.topics.len() > 1 && self.rng.random_bool(0.3) {
                burst.topics[self.rng.random_range(1..burst.topics.len())]
            } else {
                burst.topics[0]
            };
            let TopicKind::Template { template, business } = world.topics[topic].kind else {
                return None;
            };
            let ctx = TextCtx {
                region: burst.region,
                channel,
                phone: Some(&caller.phone),
                place: burst.place,
                since: burst.since,
                call_no: call.call_no,
                fee: fee_topic(topic),
                frame: burst.frame,
            };
            let mut ok = false;
            for _ in 0..30 {
                let phrase = world.phrase(&mut self.rng, topic);
                compose(&mut self.text, &mut self.rng, phrase, &ctx);
                ok = match burst.verify {
                    Verify::Only => self.s.checker.matches_only(&self.text, template, business),
                    // Vetoed, and only by the veto: without it, it counts.
                    Verify::Nothing => {
                        self.s.checker.matches_nothing(&self.text)
                            && self
                                .s
                                .checker
                                .hits_business(&self.text.replace(veto, "，"), business)
                    }
                };
                if ok {
                    break;
                }
            }
            if !ok {
                return None;
            }
            let ts_fmt = pick_ts_fmt(&mut self.rng, channel);
            let ts = if ts_fmt.keeps_millis() {
                call.ts
            } else {
                call.ts - call.ts.rem_euclid(1000)
            };
            let label =
                (kind.expect_alert() && self.rng.random_bool(0.3)).then_some(business as u16);
            out.push(Injected {
                ts,
                ts_fmt,
                region: burst.region as u16,
                channel,
                caller,
                text: self.text.clone(),
                label,
                item: 0,
                arrival: burst.arrival,
                extra: self.rng.random(),
            });
        }
        Some(out)
    }
}

fn note(kind: Kind, late_by: Option<i64>) -> String {
    match kind {
        Kind::CellOutage => "a cell site down: one place, a burst inside one window, then latecomers".into(),
        Kind::PlatformFailure => "one platform failing in several regions at once; each region reaches its threshold".into(),
        Kind::SlowRise => "complaints rising over about 1h45 until the last half hour crosses the threshold".into(),
        Kind::LateWebOutage => "reported only through the web portal: batches minutes late, within the allowed lateness".into(),
        Kind::ExactThreshold => "exactly `threshold` distinct callers, ordinary traffic of the key held back: alerts because the comparison is >=".into(),
        Kind::RepeatCaller => "one customer calling again and again: one distinct caller".into(),
        Kind::Consultation => "questions after a marketing SMS: texts hit all_of and the none_of 咨询如何".into(),
        Kind::TestOrders => "test orders: vetoed by the none_of 测试工单".into(),
        Kind::RecoveredCallbacks => "call-backs saying it works again: vetoed by the none_of 已恢复".into(),
        Kind::LateBatch => format!(
            "an outage delivered in one web batch {} min after its last record, past the allowed lateness: every record is dropped as late",
            late_by.unwrap_or(0) / MIN
        ),
        Kind::SurgeDay => String::new(),
        Kind::BigCity => "an outage in a big city: a burst inside one window reaching the fixed threshold, then latecomers".into(),
        Kind::SmallCity => "the same share of customers affected in a small city: a tenth of the complaints, below the fixed threshold".into(),
        Kind::ProvinceWide => "a platform failing over a whole province: every city below its threshold, the province well above its usual".into(),
        Kind::Ramp => "complaints rising over two hours in a mid-size city, peaking below the fixed threshold".into(),
        Kind::Night => "an outage at night (00:30-05:30): few complaints, far above the night's usual".into(),
    }
}

/// The most of `times` (sorted) inside any half-open span of `size`.
pub fn max_in_window(times: &[i64], size: i64) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= size {
            lo += 1;
        }
        best = best.max(hi + 1 - lo);
    }
    best
}

/// A field burst: its region, its calls, since when, and whether it uses
/// every topic of the business (else only the main one).
type FieldBurst = (usize, Vec<Call>, Since, bool);

/// Plans the field scenario: on each of `incident_days` one incident of
/// every field kind, then one of each trap kind (repeat caller, marketing
/// consultation, test orders).
pub fn plan_field(setup: Setup<'_>, cal: &Calibration, rng: rand_chacha::ChaCha8Rng) -> Plan {
    let mut p = Planner::placing(setup, Some(cal), rng, &Kind::FIELD);
    p.plan.records.sort_by_key(|r| (r.ts, r.item));
    p.plan
}

impl Kind {
    /// What the field scenario plans on each incident day, in order.
    pub const FIELD: [Kind; 8] = [
        Kind::BigCity,
        Kind::SmallCity,
        Kind::ProvinceWide,
        Kind::Ramp,
        Kind::Night,
        Kind::RepeatCaller,
        Kind::Consultation,
        Kind::TestOrders,
    ];
}

impl<'a> Planner<'a> {
    /// A planner that has placed `kinds` on each of the run's days, in
    /// order (what it cannot place is listed in `plan.skipped`).
    fn placing(
        setup: Setup<'a>,
        cal: Option<&'a Calibration>,
        rng: rand_chacha::ChaCha8Rng,
        kinds: &[Kind],
    ) -> Self {
        let geo = setup.rules.window;
        let mut p = Planner {
            s: setup,
            cal,
            rng,
            geo,
            picker: RegionPicker::default(),
            plan: Plan::default(),
            reserved: Vec::new(),
            phones: Default::default(),
            groups: 0,
            text: String::new(),
        };
        for d in p.s.days.clone() {
            for &kind in kinds {
                if !p.place(kind, d) {
                    p.plan.skipped.push(format!(
                        "{} on {}: no suitable business, template or time",
                        kind.name(),
                        &format_cst(d)[..10]
                    ));
                }
            }
        }
        p
    }
}

impl Planner<'_> {
    /// The calls of a field incident of `kind` in business `b`, sized from
    /// the background model; `None` when `b` cannot hold one.
    fn field_bursts(
        &mut self,
        kind: Kind,
        day: i64,
        b: usize,
        region: usize,
        cal: &Calibration,
    ) -> Option<Vec<FieldBurst>> {
        let t = self.threshold(b) as f64;
        let size = self.geo.size_ms;
        // What a city's key may receive on top of its busiest usual window
        // and stay below the threshold.
        let room = |r: usize| {
            let lam = cal.lambda[b][r];
            (t - lam - 2.0 * lam.sqrt() - 2.0).floor()
        };
        let since_of = |ts: i64| {
            let local = (ts + CST_OFFSET_MS).rem_euclid(24 * HOUR);
            Since::At((local / HOUR) as u32, (local % HOUR / MIN) as u32)
        };
        match kind {
            Kind::BigCity => {
                let t = t as usize;
                let anchor = self.time_in(day, 8, 20);
                let core = self.core(anchor);
                let k = t + self.extra(t, 0.2, 0.6);
                let times = self.uniform(core, k);
                let mut calls = self.calls(&times, 0, 0.15);
                let tail = self.uniform((core.1, core.1 + size), k / 4);
                calls.extend(self.calls(&tail, k, 0.0));
                Some(vec![(region, calls, since_of(core.0), true)])
            }
            Kind::SmallCity => {
                // The share of customers a big-city outage of this business
                // affects (its callers, latecomers included, are 1.5-2
                // thresholds in 杭州), applied to this city's customers.
                let big = t * self.rng.random_range(1.5..2.0);
                let share = big / REGIONS[0].subscribers() as f64;
                let n = (share * REGIONS[region].subscribers() as f64).round();
                let hi = room(region).min(15.0);
                if hi < 6.0 {
                    return None;
                }
                let n = n.clamp(6.0, hi) as usize;
                let start = self.time_in(day, 8, 20);
                let span = self.rng.random_range(30 * MIN..60 * MIN);
                let times = self.uniform((start, start + span), n);
                let calls = self.calls(&times, 0, 0.1);
                Some(vec![(region, calls, since_of(start), true)])
            }
            Kind::ProvinceWide => {
                let p = if self.rng.random_bool(0.75) { 0 } else { 1 };
                let cities = cities_of(PROVINCES[p]);
                let (pt, lp) = (
                    cal.province_threshold[b][p] as f64,
                    cal.province_lambda[b][p],
                );
                let want = ((pt - lp).max(4.0) * self.rng.random_range(1.3..1.6)).ceil();
                let total_w: f64 = cities.iter().map(|&c| REGIONS[c].weight).sum();
                // The most the province may receive with every city below
                // its threshold.
                let cap = cities
                    .iter()
                    .map(|&c| room(c) / (REGIONS[c].weight / total_w))
                    .fold(f64::INFINITY, f64::min)
                    .floor();
                let n = want.min(cap);
                if n < ((pt - lp).max(4.0) * 1.15).ceil() || n <= t {
                    return None;
                }
                let alloc = largest_remainder(
                    n as usize,
                    &cities
                        .iter()
                        .map(|&c| REGIONS[c].weight)
                        .collect::<Vec<_>>(),
                );
                let anchor = self.time_in(day, 9, 18);
                let core = self.core(anchor);
                let mut out = Vec::new();
                for (&c, &k) in cities.iter().zip(&alloc) {
                    if k == 0 {
                        continue;
                    }
                    if k as f64 > room(c) {
                        return None;
                    }
                    let times = self.uniform(core, k);
                    let calls = self.calls(&times, 0, 0.1);
                    out.push((c, calls, since_of(core.0), false));
                }
                Some(out)
            }
            Kind::Ramp => {
                let room = room(region);
                let k = (room * self.rng.random_range(0.75..1.0)).floor();
                if k < 6.0 {
                    return None;
                }
                // Density rising linearly over two hours: the last half hour
                // holds 7/16 of the calls.
                let total = (k * 16.0 / 7.0).round() as usize;
                let start = self.time_in(day, 8, 18);
                let ramp = 120 * MIN;
                let mut times: Vec<i64> = (0..total)
                    .map(|_| start + (ramp as f64 * self.rng.random::<f64>().sqrt()) as i64)
                    .collect();
                times.sort_unstable();
                if max_in_window(&times, size) as f64 > room {
                    return None;
                }
                let calls = self.calls(&times, 0, 0.05);
                Some(vec![(region, calls, since_of(start), true)])
            }
            Kind::Night => {
                let room = room(region).min(14.0);
                if room < 8.0 {
                    return None;
                }
                let n = self.rng.random_range(8..=room as usize);
                let start = day + 30 * MIN + self.rng.random_range(0..3 * HOUR);
                let span = self.rng.random_range(30 * MIN..45 * MIN);
                let times = self.uniform((start, start + span), n);
                let calls = self.calls(&times, 0, 0.1);
                Some(vec![(region, calls, since_of(start), true)])
            }
            _ => None,
        }
    }
}

/// Splits `n` in proportion to `weights`, exactly (largest remainders,
/// ties to the earlier).
pub fn largest_remainder(n: usize, weights: &[f64]) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| n as f64 * w / total).collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut left = n - out.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::matcher::Matcher;
    use hotspot_core::rules;
    use rand::SeedableRng;

    fn planned(seed: u64) -> (Rules, Plan) {
        let rules = rules::embedded().unwrap();
        let m = Matcher::new(&rules).unwrap();
        let world = World::new(&rules, &m);
        let day = 1_773_417_600_000; // 2026-03-14T00:00+08:00
        let setup = Setup {
            rules: &rules,
            world: &world,
            checker: Checker::new(&m),
            days: vec![day, day + 48 * HOUR],
            surge: Some(day + 24 * HOUR),
        };
        let plan = plan(setup, rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        (rules.clone(), plan)
    }

    #[test]
    fn every_kind_is_placed_with_the_fixture_rules() {
        for seed in 0..5 {
            let (_, plan) = planned(seed);
            assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
            for kind in Kind::DAILY {
                let n = plan.items.iter().filter(|i| i.kind == kind.name()).count();
                let want = if kind == Kind::PlatformFailure {
                    6..=8
                } else {
                    2..=2
                };
                assert!(want.contains(&n), "{kind:?}: {n}");
            }
            assert_eq!(
                plan.items.iter().filter(|i| i.kind == "surge_day").count(),
                1
            );
            assert_eq!(plan.zones.len(), 2);
        }
    }

    #[test]
    fn incident_texts_match_their_template_and_trap_texts_do_not() {
        let (rules, plan) = planned(7);
        let m = Matcher::new(&rules).unwrap();
        let mut c = Checker::new(&m);
        for r in &plan.records {
            let item = &plan.items[r.item as usize];
            let b = rules
                .business_index(item.business.as_deref().unwrap())
                .unwrap();
            let got = c.businesses(&r.text);
            match item.kind.as_str() {
                "consultation" | "test_orders" | "recovered_callbacks" => {
                    assert!(got.is_empty(), "{}: {}", item.kind, r.text);
                    // They hit a template's all_of: without the veto they would count.
                    let veto = match item.kind.as_str() {
                        "consultation" => "咨询如何",
                        "test_orders" => "测试工单",
                        _ => "已恢复",
                    };
                    assert!(r.text.contains(veto), "{}", r.text);
                    assert!(
                        c.hits_business(&r.text.replace(veto, "，"), b),
                        "{}: {}",
                        item.kind,
                        r.text
                    );
                }
                _ => assert_eq!(got, vec![b], "{}: {}", item.kind, r.text),
            }
        }
        // The main template of each incident is among the matches of its texts.
        for (i, item) in plan
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.expect_alert)
        {
            let t = rules
                .templates
                .iter()
                .position(|t| Some(&t.id) == item.template.as_ref())
                .unwrap();
            let hits = plan
                .records
                .iter()
                .filter(|r| r.item as usize == i)
                .filter(|r| c.matches_only(&r.text, t, rules.templates[t].business))
                .count();
            assert!(hits > 0, "{}", item.kind);
        }
    }

    #[test]
    fn incidents_reach_their_threshold_inside_one_window() {
        let (rules, plan) = planned(3);
        let size = rules.window.size_ms;
        for (i, item) in plan.items.iter().enumerate() {
            let Some(t) = item.threshold else { continue };
            let recs: Vec<&Injected> = plan
                .records
                .iter()
                .filter(|r| r.item as usize == i)
                .collect();
            // Most distinct callers within any window of the geometry.
            let mut best = 0;
            for r in &recs {
                let w0 = r.ts.div_euclid(60_000) * 60_000;
                for start in (w0 - size + 60_000..=w0).step_by(60_000) {
                    let mut c: Vec<&str> = recs
                        .iter()
                        .filter(|x| x.ts >= start && x.ts < start + size)
                        .map(|x| x.caller.as_str())
                        .collect();
                    c.sort_unstable();
                    c.dedup();
                    best = best.max(c.len());
                }
            }
            match item.kind.as_str() {
                "exact_threshold" => assert_eq!(best, t as usize, "{item:?}"),
                "repeat_caller" => {
                    assert_eq!(best, 1);
                    assert!(item.records >= t as u64);
                }
                k if item.expect_alert => assert!(best >= t as usize, "{k}: {best} < {t}"),
                _ => assert!(
                    best >= t as usize,
                    "traps are big enough to alert if counted: {item:?}"
                ),
            }
        }
    }
}
