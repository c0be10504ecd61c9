//! `hotspot gen --scenario field`: several days of realistic traffic over
//! two provinces, the first of them incident-free (a learning period for
//! detectors that learn baselines from the stream), then incidents that a
//! fixed threshold per business catches or misses for the reasons section
//! 8 of the contract names, and traps that must not alert.
//!
//! **Background.** Complaints of (business, city) arrive at a rate
//! proportional to the city's weight (its customer base, see
//! [`super::regions`]), the business's share of traffic and the daily load
//! curve (a night trough at a tenth of the daytime peaks), times a per-day
//! factor of 0.93-1.07 and per-minute noise; regions and topics are drawn
//! at random, so counts per key are Poisson-like. Ordinary repeat callers
//! and requests no template covers come as in the classic scenario. The
//! surge day (3.15) has 2.5 times the traffic everywhere and no fault.
//!
//! **Thresholds** are calibrated the way an operator sets them today: on
//! the biggest city (杭州). For each business, `lambda` is the expected
//! number of complaints in 杭州's busiest window of an ordinary day; the
//! threshold is the smallest `k` with P(Poisson(lambda) >= k) <= 1e-7, plus
//! 2, and at least 10. The province threshold is calibrated the same way on
//! the biggest province (浙江). Rules are written from the embedded library
//! with those thresholds: `--plain-rules-out` without any section 8 key,
//! `--rules-out` with a `[[region]]` table (province, subscribers) and per
//! business `surge = { ratio = 2.0, min = 5, p_value = 1e-6, place = 4 }`, with the
//! fixed thresholds turned into a backstop that holds on 3.15 (calibrated
//! at three times the volume): `province_threshold`, and
//! `region_thresholds` for the cities whose own backstop is higher than
//! the business's threshold.
//!
//! **Incidents** (one of each kind on every day after the learning period
//! but the surge day), sized from the customers affected: a city's
//! complaints are its affected customers times [`COMPLAINT_RATE`].
//!
//! * `big_city` — an outage in 杭州, 宁波 or 温州: threshold × 1.2-1.6
//!   distinct callers inside one window, then latecomers.
//! * `small_city` — the share of customers a big-city outage affects, in
//!   a small city (衢州, 银川, 丽水 or 舟山): 6-15 callers over 30-60 minutes,
//!   below the fixed threshold (with the key's busiest usual traffic).
//! * `province_wide` — a platform failing over every city of a province,
//!   spread by city size inside one window: every city below its
//!   threshold, the province 1.3-1.6 × (province threshold - its usual
//!   peak) above its usual.
//! * `slow_rise` — a mid-size city, complaints rising linearly for two
//!   hours; its busiest window stays below the threshold.
//! * `night` — 8-14 callers within 30-45 minutes starting between 00:30
//!   and 03:30.
//!
//! * `new_topic` — complaints about a new service, package or app that no
//!   template names ([`super::emerging`]): six a world, three in one city
//!   and three across a province, each with a fixed core phrase (the
//!   product's name) in varied wording.
//!
//! **Unmatched background.** About 55 % of the background matches no
//! template: questions and requests (`咨询话费余额`), four complaints that
//! recur every day in the same words (`营业厅排队等候时间太长`, the biggest
//! city's busiest half hour holding about `min_callers` callers of it),
//! and chatter about service and staff in 240 wordings. With section 8 the
//! rules add a `cs` department (客户服务部) and `[discovery]` with
//! `min_callers = 8`.
//!
//! **Traps**: the surge day, a repeat caller (one customer calling
//! threshold + 2-5 times), a marketing-consultation surge (texts vetoed by
//! `咨询如何`), test orders (vetoed by `测试工单`), one of each a day.
//!
//! The truth lists every incident with its scope (`region`, or `province`
//! for a province-wide failure), location, cities, first and last
//! complaint, distinct callers and affected customers. Same seed and
//! arguments: byte-identical traffic, truth and rules.

use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::emerging::{self, NewTopic};
use super::incidents::{self, Plan, Setup};
use super::regions::{PROVINCES, REGIONS, cities_of};
use super::truth::{self, Counts, Item};
use super::world::{Checker, TopicKind, World, strict_matcher};
use super::{Config, Driven, Progress, curve, drive, format_date, midnight};
use hotspot_core::matcher::Matcher;
use hotspot_core::rules::{self, Rules};
use hotspot_core::time::{format_cst, format_duration};

/// Complaints per affected customer: an outage affecting 0.3 % of 杭州's
/// 13 million customers (39,000) gives about 78 complaints.
pub const COMPLAINT_RATE: f64 = 0.002;
/// Per-window tail probability the thresholds are calibrated to.
pub const TAIL: f64 = 1e-7;
/// Added to the calibrated threshold.
pub const MARGIN: u32 = 2;
/// The lowest threshold written.
pub const MIN_THRESHOLD: u32 = 10;
/// Traffic on the surge day, times an ordinary day's.
pub const SURGE_FACTOR: f64 = 2.5;
/// Ordinary valid records per day when `--events` is not given.
pub const DEFAULT_PER_DAY: u64 = 50_000;
/// Days of traffic when `--days` is not given.
pub const DEFAULT_DAYS: u32 = 12;
/// The first day when `--start` is not given: 3.15 is then day 8.
pub const DEFAULT_START: &str = "2026-03-07";
/// The surge detector's settings written into the section 8 rules.
pub const SURGE_RATIO: f64 = 2.0;
pub const SURGE_MIN: u32 = 5;
pub const SURGE_P_VALUE: &str = "1e-6";
/// The place test: distinct callers naming one neighbourhood in a window.
pub const SURGE_PLACE: u32 = 4;
/// With section 8, the fixed thresholds are a backstop that must hold on
/// the 3.15 day: an operator sets them for three times an ordinary day's
/// volume (a round figure, not the generator's own factor), and leaves the
/// sensitive detection to the volume-scaled surge test.
pub const BACKSTOP_FACTOR: f64 = 3.0;
/// The department of new-topic alerts in the section 8 rules (added to the
/// library's five).
pub const DISCOVERY_DEPARTMENT: &str = "cs";

/// The background model the incidents are sized from.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Per business: expected complaints in each city's busiest window of
    /// an ordinary day.
    pub lambda: Vec<[f64; 16]>,
    /// Per business: the same for each province of [`PROVINCES`].
    pub province_lambda: Vec<[f64; 2]>,
    /// Per business: the city threshold (calibrated on 杭州).
    pub threshold: Vec<u32>,
    /// Per business and province: the threshold calibrated on that
    /// province (the rules carry the biggest province's).
    pub province_threshold: Vec<[u32; 2]>,
}

/// The smallest threshold with a per-window tail of at most [`TAIL`].
pub fn calibrated(lambda: f64) -> u32 {
    let mut k = 1;
    while truth::poisson_tail(lambda, k) > TAIL {
        k += 1;
    }
    (k + MARGIN).max(MIN_THRESHOLD)
}

impl Calibration {
    /// From the expected background records of the busiest window of an
    /// ordinary day and each business's share of them.
    pub fn new(peak_window: f64, business_share: &[f64]) -> Calibration {
        let total: f64 = REGIONS.iter().map(|r| r.weight).sum();
        let mut c = Calibration {
            lambda: Vec::new(),
            province_lambda: Vec::new(),
            threshold: Vec::new(),
            province_threshold: Vec::new(),
        };
        for &share in business_share {
            let mut l = [0.0; 16];
            for (r, region) in REGIONS.iter().enumerate() {
                l[r] = peak_window * share * region.weight / total;
            }
            let mut pl = [0.0; 2];
            for (p, name) in PROVINCES.iter().enumerate() {
                pl[p] = cities_of(name).iter().map(|&r| l[r]).sum();
            }
            c.threshold.push(calibrated(l[0]));
            c.province_threshold
                .push([calibrated(pl[0]), calibrated(pl[1])]);
            c.lambda.push(l);
            c.province_lambda.push(pl);
        }
        c
    }
}

/// The embedded library with the calibrated thresholds; with `section8`,
/// plus province thresholds, surge settings and the `[[region]]` table.
pub fn rules_text(cal: &Calibration, base: &Rules, section8: bool, header: &str) -> String {
    let mut out = String::with_capacity(rules::EMBEDDED_RULES.len() + 4096);
    out.push_str(header);
    let mut in_business = false;
    let mut current: Option<usize> = None;
    for line in rules::EMBEDDED_RULES.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_business = t == "[[business]]";
            current = None;
        }
        if in_business {
            if let Some(id) = t.strip_prefix("id = \"").and_then(|r| r.strip_suffix('"')) {
                current = base.business_index(id);
            }
            if let (Some(b), true) = (current, t.starts_with("threshold =")) {
                out.push_str(&format!("threshold = {}\n", cal.threshold[b]));
                if section8 {
                    // Cities whose 3.15 busiest window would reach the
                    // threshold get a backstop of their own.
                    let overrides: Vec<String> = REGIONS
                        .iter()
                        .enumerate()
                        .filter_map(|(r, region)| {
                            let t = calibrated(cal.lambda[b][r] * BACKSTOP_FACTOR);
                            (t > cal.threshold[b]).then(|| format!("\"{}\" = {t}", region.name))
                        })
                        .collect();
                    if !overrides.is_empty() {
                        out.push_str(&format!(
                            "region_thresholds = {{ {} }}\n",
                            overrides.join(", ")
                        ));
                    }
                    out.push_str(&format!(
                        "province_threshold = {}\nsurge = {{ ratio = {SURGE_RATIO:.1}, min = {SURGE_MIN}, p_value = {SURGE_P_VALUE}, place = {SURGE_PLACE} }}\n",
                        calibrated(cal.province_lambda[b][0] * BACKSTOP_FACTOR)
                    ));
                }
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if section8 {
        out.push_str(
            "\n# ======================================================================\n\
             # Regions: province and customer base of every city\n\
             # ======================================================================\n",
        );
        for r in &REGIONS {
            out.push_str(&format!(
                "\n[[region]]\nid = \"{}\"\nprovince = \"{}\"\nsubscribers = {}\n",
                r.name,
                r.province,
                underscored(r.subscribers())
            ));
        }
        out.push_str(&format!(
            "\n# ======================================================================\n\
             # Discovery: complaints that no template names (new topics)\n\
             # ======================================================================\n\n\
             [[department]]\nid = \"{DISCOVERY_DEPARTMENT}\"\nname = \"客户服务部\"\n\
             description = \"新话题：模板尚未覆盖的批量投诉\"\n\n\
             [discovery]\ndepartment = \"{DISCOVERY_DEPARTMENT}\"\nmin_callers = {}\n",
            emerging::MIN_CALLERS
        ));
    }
    out
}

/// `13090000` as `13_090_000`.
fn underscored(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('_');
        }
        out.push(c);
    }
    out
}

/// The arguments a field file was generated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldArgs {
    pub seed: u64,
    pub events: u64,
    pub days: u32,
    pub start: String,
    pub surge_day: Option<String>,
    pub dirty: f64,
}

/// A span of local time (RFC 3339, +08:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionInfo {
    pub id: String,
    pub province: String,
    pub subscribers: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvinceInfo {
    pub id: String,
    pub regions: Vec<String>,
}

/// One business's calibration, as written into the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdInfo {
    pub business: String,
    pub threshold: u32,
    pub province_threshold: u32,
    /// Expected complaints in 杭州's busiest window of an ordinary day.
    pub peak_biggest_city: f64,
    /// The same for 浙江.
    pub peak_biggest_province: f64,
}

/// How thresholds were calibrated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationInfo {
    pub city: String,
    pub province: String,
    pub window_tail: f64,
    pub margin: u32,
    pub min_threshold: u32,
    pub complaint_rate: f64,
    pub surge_factor: f64,
    pub surge_ratio: f64,
    pub surge_min: u32,
    /// `[discovery] min_callers` of the section 8 rules.
    pub discovery_min_callers: u32,
}

/// One complaint that recurs every day in the same words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EverydayInfo {
    pub phrase: String,
    /// Percent of all background complaints.
    pub share_pct: f64,
}

/// The background complaints that match no template (intended shares, in
/// percent of all background complaints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnmatchedInfo {
    /// All of them: requests, everyday complaints and chatter.
    pub share_pct: f64,
    /// Questions, praise and requests (`客户来电咨询话费余额`).
    pub requests_pct: f64,
    /// Complaints in the same words every day, which must not alert.
    pub everyday: Vec<EverydayInfo>,
    /// Complaints about service and staff in varied words.
    pub chatter_pct: f64,
    /// How many distinct chatter phrases.
    pub chatter_phrases: usize,
}

/// One incident (`must_detect`) or trap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldItem {
    pub id: String,
    pub category: String,
    pub business: Option<String>,
    pub template: Option<String>,
    /// `new_topic`: the key phrase, its core and the gist of the symptom
    /// (`冰激凌新套餐 月费重复扣取`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_phrase: Option<String>,
    /// `new_topic`: the core of the key phrase, normalised (NFKC, ASCII
    /// lower case): every complaint of the incident contains it verbatim
    /// after normalisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    /// `region`, `province`, or `all` (the surge day).
    pub scope: String,
    /// The city, the province, or `all`.
    pub location: String,
    /// The cities that received its complaints.
    pub regions: Vec<String>,
    /// First and last complaint (RFC 3339, +08:00).
    pub start: String,
    pub end: String,
    pub distinct_callers: u64,
    pub records: u64,
    /// Customers affected: distinct callers / complaint rate (incidents).
    pub affected_customers: Option<u64>,
    /// Affected customers / the place's customers, in per mille.
    pub affected_permille: Option<f64>,
    /// The fixed threshold of its business (region scope).
    pub threshold: Option<u32>,
    pub must_detect: bool,
    pub note: String,
}

/// The ground truth of a field file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldTruth {
    pub generator: String,
    pub scenario: String,
    pub args: FieldArgs,
    pub window: truth::Window,
    pub days: Vec<String>,
    /// Local midnight ending the learning period: no incident before it.
    pub learning_end: String,
    pub surge_day: Option<Span>,
    pub regions: Vec<RegionInfo>,
    pub provinces: Vec<ProvinceInfo>,
    pub calibration: CalibrationInfo,
    pub thresholds: Vec<ThresholdInfo>,
    pub counts: Counts,
    /// Valid records per day.
    pub per_day: Vec<u64>,
    pub unmatched: UnmatchedInfo,
    pub incidents: Vec<FieldItem>,
    pub traps: Vec<FieldItem>,
    pub skipped: Vec<String>,
}

/// A field run's outputs besides the traffic.
#[derive(Debug, Clone)]
pub struct FieldOutput {
    pub truth: FieldTruth,
    /// Rules with section 8 keys.
    pub rules: String,
    /// The same rules without any section 8 key.
    pub plain_rules: String,
}

/// Learning days of a run of `days` days.
pub fn learning_days(days: u32) -> u32 {
    (days / 3).clamp(1, 4)
}

/// The default surge day of a field run: March 15 when the run covers it
/// after the learning period, else day 8 when there is one.
pub fn default_surge_day(start_day: i64, days: u32) -> Option<i64> {
    let learn_end = start_day + learning_days(days) as i64;
    let end = start_day + days as i64;
    let (y0, _, _) = hotspot_core::time::civil_from_days(start_day);
    [y0, y0 + 1]
        .into_iter()
        .filter_map(|y| super::parse_date(&format!("{y:04}-03-15")))
        .find(|d| (learn_end..end).contains(d))
        .or_else(|| (days > 8).then_some(start_day + 8))
}

/// Default valid records of a field run: [`DEFAULT_PER_DAY`] on every
/// ordinary day, [`SURGE_FACTOR`] times that on the surge day.
pub fn default_events(days: u32, surge: bool) -> u64 {
    let d = days as f64 + if surge { SURGE_FACTOR - 1.0 } else { 0.0 };
    (DEFAULT_PER_DAY as f64 * d).round() as u64
}

/// Generates a field scenario into `out`.
pub fn generate_field(
    cfg: &Config,
    out: impl Write,
    progress: Option<Progress<'_>>,
) -> io::Result<FieldOutput> {
    let base = rules::embedded().map_err(|e| io::Error::other(e.to_string()))?;
    let stream = |n: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
        r.set_stream(n);
        r
    };
    let days: Vec<i64> = (0..cfg.days as i64).map(|d| cfg.start_day + d).collect();
    let surge = cfg.surge_day.filter(|s| days.contains(s));
    let learn = learning_days(cfg.days) as usize;

    // Volume: the load curve, a factor per day, noise per minute.
    let mut day_rng = stream(5);
    let mut noise = stream(3);
    let mut weights: Vec<f64> = Vec::with_capacity(days.len() * 1440);
    for &d in &days {
        let factor = if Some(d) == surge {
            SURGE_FACTOR
        } else {
            day_rng.random_range(0.93..1.07)
        };
        for m in 0..1440 {
            weights.push(curve(m) * factor * noise.random_range(0.85..1.15));
        }
    }
    let weight_sum: f64 = weights.iter().sum();

    // The plan's size is not known before the thresholds are; a few
    // hundred records a day: estimate the background from all events.
    let size = (base.window.size_ms / 60_000).max(1) as usize;
    let background_guess = cfg.events as f64;
    let mut peak = 0.0f64;
    for (di, &d) in days.iter().enumerate() {
        if Some(d) == surge {
            continue;
        }
        let w = &weights[di * 1440..(di + 1) * 1440];
        let mut acc: f64 = w[..size].iter().sum();
        peak = peak.max(acc);
        for m in size..1440 {
            acc += w[m] - w[m - size];
            peak = peak.max(acc);
        }
    }
    let peak_window = background_guess * peak / weight_sum;
    let base_matcher = Matcher::new(&base).map_err(io::Error::other)?;
    let base_world = World::new(&base, &base_matcher);
    let cal = Calibration::new(peak_window, &base_world.business_share);

    let surge_txt = surge.map(format_date).unwrap_or_else(|| "none".into());
    let header = |kind: &str| {
        format!(
            "# Field scenario rules ({kind}), written by `hotspot gen --scenario field --seed {} \
             --events {} --days {} --start {} --surge-day {}`.\n\
             # Thresholds calibrated on the biggest city (杭州): the smallest k with\n\
             # P(Poisson(busiest ordinary window) >= k) <= {TAIL:e}, plus {MARGIN}, at least {MIN_THRESHOLD};\n\
             # province thresholds the same on the biggest province (浙江).\n\
             # The library's own comments below describe the fixture thresholds.\n\n",
            cfg.seed,
            cfg.events,
            cfg.days,
            format_date(cfg.start_day),
            surge_txt
        )
    };
    let plain_rules = rules_text(&cal, &base, false, &header("plain: sections 1-5"));
    let section8 = rules_text(&cal, &base, true, &header("section 8"));
    let rules = rules::load_str(&plain_rules, "field-plain.toml").map_err(|e| {
        io::Error::other(
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let matcher = Matcher::new(&rules).map_err(io::Error::other)?;
    let strict = strict_matcher(&rules);
    let world = World::field(&rules, &matcher, &strict);

    let incident_days: Vec<i64> = days
        .iter()
        .copied()
        .skip(learn)
        .filter(|d| Some(*d) != surge)
        .collect();
    let mut plan: Plan = incidents::plan_field(
        Setup {
            rules: &rules,
            world: &world,
            checker: Checker::new(&matcher),
            days: incident_days.iter().map(|&d| midnight(d)).collect(),
            surge: None,
        },
        &cal,
        stream(2),
    );
    let new_topics = emerging::plan(
        &mut plan,
        &matcher,
        &strict,
        rules.window.size_ms,
        &incident_days
            .iter()
            .map(|&d| midnight(d))
            .collect::<Vec<_>>(),
        stream(6),
    );
    let injected = plan.records.len() as u64;
    let background_total = cfg.events.saturating_sub(injected);
    let dirty_total = (cfg.dirty.max(0.0) * cfg.events as f64).round() as u64;
    let Driven {
        mut counts,
        per_day,
        ..
    } = drive(
        cfg,
        &rules,
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

    let (incidents, traps) = field_items(&plan.items, surge, &new_topics);
    let pct = |x: f64| (x * 1e4).round() / 100.0;
    let mut unmatched = UnmatchedInfo {
        share_pct: 0.0,
        requests_pct: pct(world.share(world.plain())),
        everyday: Vec::new(),
        chatter_pct: 0.0,
        chatter_phrases: 0,
    };
    for (t, topic) in world.topics.iter().enumerate() {
        match topic.kind {
            TopicKind::Unmatched if topic.phrases.len() == 1 => {
                unmatched.everyday.push(EverydayInfo {
                    phrase: topic.phrases[0].clone(),
                    share_pct: pct(world.share(t)),
                })
            }
            TopicKind::Unmatched => {
                unmatched.chatter_pct = pct(world.share(t));
                unmatched.chatter_phrases = topic.phrases.len();
            }
            TopicKind::Plain | TopicKind::Template { .. } => {}
        }
    }
    unmatched.share_pct = pct(world
        .topics
        .iter()
        .enumerate()
        .filter(|(_, t)| !matches!(t.kind, TopicKind::Template { .. }))
        .map(|(i, _)| world.share(i))
        .sum());
    let geo = rules.window;
    let truth = FieldTruth {
        generator: format!("hotspot gen {}", env!("CARGO_PKG_VERSION")),
        scenario: "field".into(),
        args: FieldArgs {
            seed: cfg.seed,
            events: cfg.events,
            days: cfg.days,
            start: format_date(cfg.start_day),
            surge_day: surge.map(format_date),
            dirty: cfg.dirty,
        },
        window: truth::Window {
            size: format_duration(geo.size_ms),
            slide: format_duration(geo.slide_ms),
            allowed_lateness: format_duration(geo.allowed_lateness_ms),
        },
        days: days.iter().map(|&d| format_date(d)).collect(),
        learning_end: format_cst(midnight(cfg.start_day + learn as i64)),
        surge_day: surge.map(|d| Span {
            start: format_cst(midnight(d)),
            end: format_cst(midnight(d + 1) - 1000),
        }),
        regions: REGIONS
            .iter()
            .map(|r| RegionInfo {
                id: r.name.into(),
                province: r.province.into(),
                subscribers: r.subscribers(),
            })
            .collect(),
        provinces: PROVINCES
            .iter()
            .map(|p| ProvinceInfo {
                id: (*p).into(),
                regions: cities_of(p)
                    .into_iter()
                    .map(|r| REGIONS[r].name.into())
                    .collect(),
            })
            .collect(),
        calibration: CalibrationInfo {
            city: REGIONS[0].name.into(),
            province: PROVINCES[0].into(),
            window_tail: TAIL,
            margin: MARGIN,
            min_threshold: MIN_THRESHOLD,
            complaint_rate: COMPLAINT_RATE,
            surge_factor: SURGE_FACTOR,
            surge_ratio: SURGE_RATIO,
            surge_min: SURGE_MIN,
            discovery_min_callers: emerging::MIN_CALLERS,
        },
        thresholds: rules
            .businesses
            .iter()
            .enumerate()
            .map(|(b, biz)| ThresholdInfo {
                business: biz.id.clone(),
                threshold: cal.threshold[b],
                province_threshold: cal.province_threshold[b][0],
                peak_biggest_city: round2(cal.lambda[b][0]),
                peak_biggest_province: round2(cal.province_lambda[b][0]),
            })
            .collect(),
        counts,
        per_day,
        unmatched,
        incidents,
        traps,
        skipped: plan.skipped,
    };
    Ok(FieldOutput {
        truth,
        rules: section8,
        plain_rules,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The planner's items (one per city) as field items: a province-wide
/// failure's cities become one province-scope incident. Incidents sorted by
/// start, then traps; the surge day last.
fn field_items(
    items: &[Item],
    surge: Option<i64>,
    new_topics: &[NewTopic],
) -> (Vec<FieldItem>, Vec<FieldItem>) {
    let subscribers = |city: &str| {
        REGIONS
            .iter()
            .find(|r| r.name == city)
            .map_or(0, |r| r.subscribers())
    };
    let mut merged: Vec<FieldItem> = Vec::new();
    let mut group_of: Vec<(u32, usize)> = Vec::new();
    for (index, it) in items.iter().enumerate() {
        let city = it.region.clone().unwrap_or_default();
        if let Some(g) = it.group {
            if let Some(&(_, at)) = group_of.iter().find(|(x, _)| *x == g) {
                let m = &mut merged[at];
                m.regions.push(city);
                m.start = m.start.clone().min(it.start.clone());
                m.end = m.end.clone().max(it.end.clone());
                m.distinct_callers += it.distinct_callers;
                m.records += it.records;
                continue;
            }
            group_of.push((g, merged.len()));
        }
        let province = REGIONS
            .iter()
            .find(|r| r.name == city)
            .map_or("", |r| r.province);
        let (scope, location) =
            if it.kind == "province_wide" || (it.kind == "new_topic" && it.group.is_some()) {
                ("province", province.to_owned())
            } else {
                ("region", city.clone())
            };
        let topic = new_topics.iter().find(|n| n.item == index);
        merged.push(FieldItem {
            id: String::new(),
            category: it.kind.clone(),
            business: it.business.clone(),
            template: it.template.clone(),
            key_phrase: topic.map(|n| n.key_phrase.clone()),
            core: topic.map(|n| n.core.clone()),
            scope: scope.into(),
            location,
            regions: vec![city],
            start: it.start.clone(),
            end: it.end.clone(),
            distinct_callers: it.distinct_callers,
            records: it.records,
            affected_customers: None,
            affected_permille: None,
            threshold: it.threshold,
            must_detect: it.expect_alert,
            note: it.note.clone(),
        });
    }
    let (mut incidents, mut traps): (Vec<_>, Vec<_>) =
        merged.into_iter().partition(|i| i.must_detect);
    for i in &mut incidents {
        let affected = (i.distinct_callers as f64 / COMPLAINT_RATE).round();
        let subs: u64 = i.regions.iter().map(|c| subscribers(c)).sum();
        i.affected_customers = Some(affected as u64);
        i.affected_permille = Some((affected / subs.max(1) as f64 * 1e5).round() / 100.0);
    }
    incidents.sort_by(|a, b| a.start.cmp(&b.start).then(a.category.cmp(&b.category)));
    traps.sort_by(|a, b| a.start.cmp(&b.start).then(a.category.cmp(&b.category)));
    if let Some(d) = surge {
        traps.push(FieldItem {
            id: String::new(),
            category: "surge_day".into(),
            business: None,
            template: None,
            key_phrase: None,
            core: None,
            scope: "all".into(),
            location: "all".into(),
            regions: REGIONS.iter().map(|r| r.name.into()).collect(),
            start: format_cst(midnight(d)),
            end: format_cst(midnight(d + 1) - 1000),
            distinct_callers: 0,
            records: 0,
            affected_customers: None,
            affected_permille: None,
            threshold: None,
            must_detect: false,
            note: format!(
                "3.15: {SURGE_FACTOR} times the usual traffic over every business and city, no fault"
            ),
        });
    }
    for (n, i) in incidents.iter_mut().enumerate() {
        i.id = format!("I{:02}", n + 1);
    }
    for (n, t) in traps.iter_mut().enumerate() {
        t.id = format!("T{:02}", n + 1);
    }
    (incidents, traps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, events: u64, days: u32) -> (Vec<u8>, FieldOutput) {
        let start_day = super::super::parse_date(DEFAULT_START).unwrap();
        let cfg = Config {
            seed,
            events,
            days,
            start_day,
            surge_day: default_surge_day(start_day, days),
            dirty: 0.0,
            rules_name: "embedded".into(),
        };
        let mut out = Vec::new();
        let o = generate_field(&cfg, &mut out, None).unwrap();
        (out, o)
    }

    #[test]
    fn calibration_sits_above_the_busiest_window() {
        assert_eq!(calibrated(0.0), MIN_THRESHOLD);
        let t = calibrated(14.0);
        assert!((34..=42).contains(&t), "{t}");
        assert!(truth::poisson_tail(14.0, t) < 1e-7);
    }

    #[test]
    fn underscores() {
        assert_eq!(underscored(13_090_000), "13_090_000");
        assert_eq!(underscored(620_000), "620_000");
        assert_eq!(underscored(1_000), "1_000");
    }

    #[test]
    fn a_field_run_has_every_category_and_loadable_plain_rules() {
        let (a, oa) = run(11, 240_000, 12);
        let t = &oa.truth;
        assert!(t.skipped.is_empty(), "{:?}", t.skipped);
        assert_eq!(
            t.surge_day.as_ref().unwrap().start,
            "2026-03-15T00:00:00+08:00"
        );
        assert_eq!(t.learning_end, "2026-03-11T00:00:00+08:00");
        assert_eq!(t.incidents.len(), 41);
        for cat in [
            "big_city",
            "small_city",
            "province_wide",
            "slow_rise",
            "night",
        ] {
            let n = t.incidents.iter().filter(|i| i.category == cat).count();
            assert_eq!(n, 7, "{cat}");
        }
        let new: Vec<&FieldItem> = t
            .incidents
            .iter()
            .filter(|i| i.category == "new_topic")
            .collect();
        assert_eq!(new.len(), emerging::PER_WORLD);
        assert_eq!(new.iter().filter(|i| i.scope == "province").count(), 3);
        assert!(
            oa.rules
                .contains("[discovery]\ndepartment = \"cs\"\nmin_callers = 8\n")
        );
        assert!(!oa.plain_rules.contains("[discovery]"));
        assert!(t.incidents.iter().all(|i| i.start >= t.learning_end));
        let plain = rules::load_str(&oa.plain_rules, "p.toml").unwrap();
        assert!(!oa.plain_rules.contains("province_threshold"));
        assert!(oa.rules.contains("[[region]]"));
        assert!(
            oa.rules
                .contains("surge = { ratio = 2.0, min = 5, p_value = 1e-6, place = 4 }")
        );
        // The section 8 file without its section 8 keys is the plain one.
        let body = |s: &str| s.split_once("\n\n").unwrap().1.to_owned();
        let full = body(&oa.rules);
        let pos = full.find("# Regions: province").unwrap();
        let cut = full[..pos].rfind("\n\n").unwrap();
        let s8: String = full[..cut + 1]
            .lines()
            .filter(|l| {
                !l.starts_with("province_threshold")
                    && !l.starts_with("surge =")
                    && !l.starts_with("region_thresholds")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(s8, body(&oa.plain_rules));
        // Incident texts counted by the plain rules: small-city and
        // province-wide cities stay below the threshold.
        for i in t.incidents.iter().filter(|i| i.business.is_some()) {
            let b = plain
                .business_index(i.business.as_deref().unwrap())
                .unwrap();
            let th = plain.businesses[b].threshold as u64;
            match i.category.as_str() {
                "big_city" => assert!(i.distinct_callers >= th, "{i:?}"),
                "small_city" | "night" => assert!(i.distinct_callers < th, "{i:?}"),
                "province_wide" => assert!(i.distinct_callers > th, "{i:?}"),
                _ => {}
            }
        }
        // New topics: every complaint has its core and matches no
        // template, not even without the vetoes; over a third of all
        // complaints match no template.
        let matcher = Matcher::new(&plain).unwrap();
        let strict = strict_matcher(&plain);
        let (mut c, mut cs) = (Checker::new(&matcher), Checker::new(&strict));
        let mut decoder = hotspot_core::record::Decoder::new();
        let (mut records, mut unmatched) = (0u64, 0u64);
        let mut per_topic = vec![0u64; new.len()];
        for line in a.split(|&b| b == b'\n') {
            let hotspot_core::record::Decoded::Record(r) = decoder.decode(line) else {
                continue;
            };
            records += 1;
            let text = hotspot_core::normalize::normalize(r.text);
            let nothing = c.matches_nothing(r.text);
            unmatched += u64::from(nothing);
            for (k, i) in new.iter().enumerate() {
                if text.contains(i.core.as_deref().unwrap()) {
                    per_topic[k] += 1;
                    assert!(nothing && cs.matches_nothing(r.text), "{}", r.text);
                    assert!(i.regions.iter().any(|c| c == r.region), "{}", r.region);
                }
            }
        }
        for (k, i) in new.iter().enumerate() {
            assert_eq!(per_topic[k], i.records, "{i:?}");
            assert!(i.distinct_callers >= 14, "{i:?}");
            assert!(
                i.key_phrase
                    .as_deref()
                    .unwrap()
                    .to_lowercase()
                    .starts_with(i.core.as_deref().unwrap())
            );
        }
        let share = unmatched as f64 / records as f64;
        assert!((0.45..0.65).contains(&share), "{share}");
        assert!(
            (t.unmatched.share_pct - 54.9).abs() < 1.0,
            "{:?}",
            t.unmatched
        );
        let (b, ob) = run(11, 240_000, 12);
        assert!(a == b);
        assert_eq!(
            serde_json::to_string(&oa.truth).unwrap(),
            serde_json::to_string(&ob.truth).unwrap()
        );
        assert_eq!(oa.rules, ob.rules);
    }
}
