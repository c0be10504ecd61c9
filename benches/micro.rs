//! Micro-benchmarks of the per-record hot path, each stage on its own and
//! then end to end, over realistic lines made in-process by the traffic
//! generator (`hotspot gen`'s library API, embedded fixture rules).
//!
//! ```text
//! cargo bench --profile production --bench micro                 # everything
//! cargo bench --profile production --bench micro -- match        # one group (criterion filter)
//! HOTSPOT_MICRO_EVENTS=50000 cargo bench --profile production --bench micro
//! ```
//!
//! Groups and what one element is:
//!
//! * `decode` — one JSON line → `Record` (throughput in bytes of line).
//! * `normalize` — one complaint text: generated Chinese texts (full-width
//!   punctuation, fast path), ASCII texts (fast path), and texts that need
//!   the general NFKC algorithm (slow path).
//! * `match` — one normalised text through the fixture library (120
//!   templates) and through a generated 5,000-template / 20,000-keyword
//!   library; `rules_load` is loading + compiling each library.
//! * `explain` — `hotspot explain` of one raw text (groups, vetoes,
//!   businesses) with the fixture library and the 5,000-template library.
//! * `window` — `KeyStore::count` for every (record, business) match, with
//!   the engine's `sweep` whenever the watermark moves; `count` leaves the
//!   time spent sweeping out, `count+sweep` keeps it (one element = one
//!   count).
//! * `alert` — building one firing alert (hottest window, template counts,
//!   masked samples) and serialising one alert line.
//! * `engine` — `Engine::process_line`, the whole path, per line.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use hotspot::alert::Alert;
use hotspot::engine::{Engine, EngineConfig, Output};
use hotspot::generator::library::big_library;
use hotspot::generator::{Config, generate, parse_date};
use hotspot::matcher::Matcher;
use hotspot::normalize::Normalizer;
use hotspot::record::{Decoded, Decoder, RejectInfo};
use hotspot::rules::{Rules, embedded, load_str};
use hotspot::window::KeyStore;
use hotspot::window::key::caller_id;

/// The binary's allocator, so allocation costs are those of `hotspot`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Everything the benchmarks feed on, prepared once.
struct Data {
    rules: Arc<Rules>,
    lines: Vec<Vec<u8>>,
    line_bytes: u64,
    /// Decoded complaint texts (raw, as written by agents).
    texts: Vec<String>,
    /// The same texts normalised.
    normalized: Vec<String>,
    normalized_bytes: u64,
    /// Per (record, matched business): what `KeyStore::count` takes.
    counts: Vec<CountArgs>,
    /// A sample of firing and resolved alerts from replaying the lines.
    alerts: Vec<Alert>,
}

struct CountArgs {
    business: usize,
    templates: Vec<u32>,
    seq: u64,
    id: String,
    ts: i64,
    region: String,
    text: String,
    caller: Option<u128>,
}

/// An output that keeps alerts (for the alert benches) or drops everything.
#[derive(Default)]
struct Sink {
    keep: bool,
    alerts: Vec<Alert>,
    n: u64,
}

impl Output for Sink {
    fn alert(&mut self, alert: &Alert) {
        self.n += 1;
        if self.keep {
            self.alerts.push(alert.clone());
        }
    }
    fn reject(&mut self, _line: u64, _raw: &[u8], _info: &RejectInfo) {
        self.n += 1;
    }
}

fn events() -> u64 {
    std::env::var("HOTSPOT_MICRO_EVENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(20_000)
}

fn data() -> &'static Data {
    static DATA: std::sync::OnceLock<Data> = std::sync::OnceLock::new();
    DATA.get_or_init(|| {
        let rules = Arc::new(embedded().expect("embedded rules"));
        let cfg = Config {
            seed: 20260314,
            events: events(),
            days: 1,
            start_day: parse_date("2026-03-14").unwrap(),
            surge_day: None,
            dirty: 0.0,
            rules_name: "embedded".into(),
        };
        let mut buf = Vec::new();
        generate(&cfg, &rules, &mut buf, None).expect("generate");
        let lines: Vec<Vec<u8>> = buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let line_bytes = lines.iter().map(|l| l.len() as u64 + 1).sum();

        let matcher = Matcher::new(&rules).unwrap();
        let mut dec = Decoder::new();
        let mut norm = Normalizer::new();
        let mut m = matcher.scratch();
        let mut texts = Vec::new();
        let mut normalized = Vec::new();
        let mut counts = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let Decoded::Record(r) = dec.decode(l) else {
                continue;
            };
            texts.push(r.text.to_owned());
            let n = norm.normalize(r.text);
            normalized.push(n.to_owned());
            matcher.find(n, &mut m);
            for (b, t) in m.businesses() {
                counts.push(CountArgs {
                    business: b,
                    templates: t.to_vec(),
                    seq: i as u64 + 1,
                    id: r.id.to_owned(),
                    ts: r.ts,
                    region: r.region.to_owned(),
                    text: r.text.to_owned(),
                    caller: r.caller.map(caller_id),
                });
            }
        }
        let normalized_bytes = normalized.iter().map(|t| t.len() as u64).sum();

        let mut engine = Engine::new(rules.clone(), EngineConfig::default()).unwrap();
        let mut sink = Sink {
            keep: true,
            ..Sink::default()
        };
        for (i, l) in lines.iter().enumerate() {
            engine.process_line(i as u64 + 1, l, &mut sink);
        }
        engine.finish(&mut sink);
        eprintln!(
            "micro: {} lines ({:.1} MB), {} texts, {} (record, business) matches, {} alert lines",
            lines.len(),
            line_bytes as f64 / 1e6,
            texts.len(),
            counts.len(),
            sink.alerts.len()
        );
        Data {
            rules,
            lines,
            line_bytes,
            texts,
            normalized,
            normalized_bytes,
            counts,
            alerts: sink.alerts,
        }
    })
}

// ---------------------------------------------------------------- decode

fn bench_decode(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(d.line_bytes));
    g.bench_function(format!("{}_lines", d.lines.len()), |b| {
        let mut dec = Decoder::new();
        b.iter(|| {
            let mut n = 0usize;
            for l in &d.lines {
                if let Decoded::Record(r) = dec.decode(black_box(l)) {
                    n += r.text.len();
                }
            }
            n
        })
    });
    g.finish();
}

// ------------------------------------------------------------- normalize

/// ASCII complaint texts (English-speaking agents, pinyin notes, codes).
fn ascii_texts(n: usize) -> Vec<String> {
    let subj = [
        "VoLTE calls",
        "4G data",
        "5G SA signal",
        "Home broadband",
        "GPRS roaming",
        "eSIM on the watch",
        "MMS",
        "Mobile TV box",
    ];
    let what = [
        "keep dropping since this morning",
        "has been very slow since 09:40, speedtest 0.3 Mbps",
        "shows no service near the station",
        "was charged twice, customer asks for a refund of 15 yuan",
        "cannot be activated, error code E1024",
        "is down for the whole building, several neighbours affected",
    ];
    let tail = [
        ", please call back 13812345678.",
        ". Customer is upset, ticket WO2026031412345678.",
        ", asks for compensation.",
        ".",
    ];
    (0..n)
        .map(|i| {
            format!(
                "Customer reports: {} {}{}",
                subj[i % subj.len()],
                what[(i / 3) % what.len()],
                tail[(i / 7) % tail.len()]
            )
        })
        .collect()
}

fn bench_normalize(c: &mut Criterion) {
    let d = data();
    let n = d.texts.len().min(5_000);
    let chinese: Vec<String> = d.texts.iter().take(n).cloned().collect();
    let ascii = ascii_texts(n);
    // Texts with a character outside the fast path (an emoji, a circled
    // digit, an ellipsis or a Kangxi radical): the general NFKC algorithm.
    let extras = ["😡", "①", "…", "⽹"];
    let slow: Vec<String> = chinese
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut s = t.clone();
            let cut = s
                .char_indices()
                .nth(s.chars().count() / 2)
                .map_or(0, |x| x.0);
            s.insert_str(cut, extras[i % extras.len()]);
            s
        })
        .collect();
    let fullwidth = chinese
        .iter()
        .filter(|t| t.chars().any(|c| (0xFF01..=0xFF5E).contains(&(c as u32))))
        .count();
    eprintln!("normalize: {n} Chinese texts, {fullwidth} with full-width forms");
    let mut g = c.benchmark_group("normalize");
    for (name, set) in [
        ("chinese", &chinese),
        ("ascii", &ascii),
        ("slow_path", &slow),
    ] {
        let bytes: u64 = set.iter().map(|t| t.len() as u64).sum();
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(format!("{name}_{}_texts", set.len()), |b| {
            let mut nz = Normalizer::new();
            b.iter(|| {
                let mut n = 0usize;
                for t in set.iter() {
                    n += nz.normalize(black_box(t)).len();
                }
                n
            })
        });
    }
    g.finish();
}

// ----------------------------------------------------------------- match

fn bench_match(c: &mut Criterion) {
    let d = data();
    let fixture = Matcher::new(&d.rules).unwrap();
    let big_text = big_library(5_000, 20_000, false);
    let t0 = std::time::Instant::now();
    let big_rules = load_str(&big_text, "bench-5000.toml").expect("big library loads");
    let t1 = std::time::Instant::now();
    let big = Matcher::new(&big_rules).unwrap();
    let t2 = std::time::Instant::now();
    let count_hits = |m: &Matcher| {
        let mut s = m.scratch();
        let mut hits = 0;
        for t in &d.normalized {
            m.find(t, &mut s);
            hits += usize::from(!s.is_empty());
        }
        hits
    };
    eprintln!(
        "match: fixture library {} templates / {} keywords, {}, {:.1} MB; \
         big library {} templates / {} keywords ({} bytes of TOML), {}, {:.1} MB, \
         load {:.0} ms + compile {:.0} ms; texts matched: fixture {} / big {} of {}",
        d.rules.templates.len(),
        fixture.pattern_count(),
        fixture.describe(),
        fixture.memory_usage() as f64 / 1e6,
        big_rules.templates.len(),
        big.pattern_count(),
        big_text.len(),
        big.describe(),
        big.memory_usage() as f64 / 1e6,
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
        count_hits(&fixture),
        count_hits(&big),
        d.normalized.len()
    );

    let mut g = c.benchmark_group("match");
    g.throughput(Throughput::Bytes(d.normalized_bytes));
    // HOTSPOT_HYBRID_BYTES=1048576,... also runs the big library with
    // smaller full-row budgets (to choose MAX_TABLE_BYTES).
    let budgets: Vec<(String, Matcher)> = std::env::var("HOTSPOT_HYBRID_BYTES")
        .unwrap_or_default()
        .split(',')
        .filter_map(|b| b.trim().parse::<usize>().ok())
        .map(|b| {
            let m = Matcher::with_hybrid(&big_rules, b).unwrap();
            eprintln!(
                "match: big library with {b} bytes of full rows: {}",
                m.describe()
            );
            (format!("generated_5000_templates_hybrid_{b}"), m)
        })
        .collect();
    let named = [
        ("fixture_120_templates".to_owned(), &fixture),
        ("generated_5000_templates".to_owned(), &big),
    ];
    for (name, m) in named
        .into_iter()
        .chain(budgets.iter().map(|(n, m)| (n.clone(), m)))
    {
        g.bench_function(format!("{name}_{}_texts", d.normalized.len()), |b| {
            let mut s = m.scratch();
            b.iter(|| {
                let mut n = 0usize;
                for t in &d.normalized {
                    m.find(black_box(t), &mut s);
                    n += s.templates().len();
                }
                n
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("rules_load");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let fixture_text = hotspot::rules::EMBEDDED_RULES;
    g.bench_function("fixture_120_templates", |b| {
        b.iter(|| {
            let r = load_str(black_box(fixture_text), "rules.toml").unwrap();
            Matcher::new(&r).unwrap().pattern_count()
        })
    });
    g.bench_function("generated_5000_templates", |b| {
        b.iter(|| {
            let r = load_str(black_box(&big_text), "bench-5000.toml").unwrap();
            Matcher::new(&r).unwrap().pattern_count()
        })
    });
    g.finish();
}

// --------------------------------------------------------------- explain

/// `hotspot explain` and `GET /v1/explain`: one raw complaint text →
/// normalised text, every template a group of it hit (groups, vetoes),
/// businesses; with the fixture library and with the generated
/// 5,000-template library (with examples, as the generator writes it). The
/// target is 1 ms per text with the big library. Also prints, once, how
/// long running all the big library's examples takes (what `check-rules`,
/// `run` and every reload add).
fn bench_explain(c: &mut Criterion) {
    use hotspot::explain::{Explainer, examples};
    let d = data();
    let big_text = big_library(5_000, 20_000, true);
    let big_rules = Arc::new(load_str(&big_text, "bench-5000.toml").expect("big library loads"));
    let big_matcher = Arc::new(Matcher::new(&big_rules).unwrap());
    let t0 = std::time::Instant::now();
    let checked = examples::check(&big_rules, &big_matcher);
    let check_ms = t0.elapsed().as_secs_f64() * 1e3;
    assert!(checked.failures.is_empty(), "{:?}", &checked.failures[..1]);
    let t0 = std::time::Instant::now();
    let big = Explainer::new(big_rules.clone(), big_matcher);
    let index_ms = t0.elapsed().as_secs_f64() * 1e3;
    let fixture = Explainer::new(d.rules.clone(), Arc::new(Matcher::new(&d.rules).unwrap()));
    let texts: Vec<&str> = d.texts.iter().take(2_000).map(String::as_str).collect();
    let listed: usize = texts.iter().map(|t| big.explain(t).templates.len()).sum();
    eprintln!(
        "explain: big library {} templates, {} examples + {} counter-examples checked in {check_ms:.1} ms, \
         explainer index built in {index_ms:.1} ms; {} texts list {listed} templates of the big library",
        big_rules.templates.len(),
        checked.examples,
        checked.counter_examples,
        texts.len()
    );
    let mut g = c.benchmark_group("explain");
    g.throughput(Throughput::Elements(texts.len() as u64));
    for (name, e) in [
        ("fixture_120_templates", &fixture),
        ("generated_5000_templates", &big),
    ] {
        g.bench_function(format!("{name}_{}_texts", texts.len()), |b| {
            let mut m = e.matcher().scratch();
            b.iter(|| {
                let mut n = 0usize;
                for t in &texts {
                    n += e.explain_with(black_box(t), &mut m).templates.len();
                }
                n
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------- window

fn bench_window(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("window");
    g.throughput(Throughput::Elements(d.counts.len() as u64));
    // The engine calls `sweep` each time the watermark moves; it visits
    // every live key once per minute of event time, so its share per
    // complaint grows as traffic thins out. `count` is the same loop with
    // the time spent in `sweep` taken out; `count+sweep` is all of it.
    for with_sweep in [false, true] {
        let name = if with_sweep { "count+sweep" } else { "count" };
        g.bench_function(format!("{name}_{}_matches", d.counts.len()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut ks = KeyStore::new(d.rules.clone(), EngineConfig::default().max_keys);
                    let mut wm = i64::MIN;
                    let mut swept = Duration::ZERO;
                    let t = std::time::Instant::now();
                    for a in &d.counts {
                        if a.ts > wm {
                            wm = a.ts;
                            let s = std::time::Instant::now();
                            ks.sweep(wm);
                            swept += s.elapsed();
                        }
                        black_box(ks.count(
                            a.business,
                            &a.templates,
                            a.seq,
                            &a.id,
                            a.ts,
                            &a.region,
                            &a.text,
                            a.caller,
                        ));
                    }
                    let all = t.elapsed();
                    total += if with_sweep { all } else { all - swept };
                    drop(ks);
                }
                total
            })
        });
    }
    g.finish();
}

// ----------------------------------------------------------------- alert

fn bench_alert(c: &mut Criterion) {
    let d = data();
    let mut g = c.benchmark_group("alert");
    g.throughput(Throughput::Elements(1));
    // Build: a key holding threshold-1 distinct callers (long texts with
    // phone numbers, so masking has work), then the completing complaint.
    let b = d.rules.business_index("crbt").unwrap_or(0);
    let business = &d.rules.businesses[b];
    let threshold = business.threshold as usize;
    let templates: Vec<u32> = business.templates.clone().map(|t| t as u32).collect();
    let text = "客户反映彩铃复制失败，来电号码138 1234 5678，身份证330106199001011234，\
                从上午十点开始一直提示操作失败，要求尽快处理并回电。";
    let ts0 = 1_773_453_600_000i64;
    g.bench_function("build_firing", |bch| {
        bch.iter_batched_ref(
            || {
                let mut ks = KeyStore::new(d.rules.clone(), 1000);
                for i in 0..threshold - 1 {
                    let caller = caller_id(&format!("1380000{i:04}"));
                    ks.count(
                        b,
                        &templates[..1 + i % templates.len()],
                        i as u64,
                        &format!("WO{i:016}"),
                        ts0 + i as i64 * 1000,
                        "杭州",
                        text,
                        Some(caller),
                    );
                }
                ks
            },
            |ks| {
                ks.count(
                    b,
                    &templates[..1],
                    threshold as u64,
                    "WO2026031400999999",
                    ts0 + threshold as i64 * 1000,
                    "杭州",
                    text,
                    Some(caller_id("13999999999")),
                )
                .expect("fires")
            },
            BatchSize::SmallInput,
        )
    });
    let firing: Vec<&Alert> = d.alerts.iter().filter(|a| a.is_firing()).collect();
    let resolved: Vec<&Alert> = d.alerts.iter().filter(|a| !a.is_firing()).collect();
    for (name, set) in [
        ("serialize_firing", &firing),
        ("serialize_resolved", &resolved),
    ] {
        if set.is_empty() {
            continue;
        }
        g.throughput(Throughput::Elements(set.len() as u64));
        g.bench_function(format!("{name}_{}", set.len()), |bch| {
            let mut out = Vec::with_capacity(64 << 10);
            bch.iter(|| {
                out.clear();
                for a in set.iter() {
                    a.write_line(&mut out);
                }
                out.len()
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------- engine

fn bench_engine(c: &mut Criterion) {
    let d = data();
    let matcher = Arc::new(Matcher::new(&d.rules).unwrap());
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(d.lines.len() as u64));
    g.sample_size(20);
    g.bench_function(format!("process_line_{}_lines", d.lines.len()), |b| {
        b.iter_batched_ref(
            || Engine::with_matcher(d.rules.clone(), matcher.clone(), EngineConfig::default()),
            |e| {
                let mut sink = Sink::default();
                for (i, l) in d.lines.iter().enumerate() {
                    e.process_line(i as u64 + 1, black_box(l), &mut sink);
                }
                e.finish(&mut sink);
                sink.n
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    eprintln!(
        "engine: {} lines = {:.2} MB per iteration (MB/s = MB / time)",
        d.lines.len(),
        d.line_bytes as f64 / 1e6
    );
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
}

criterion_group! {
    name = micro;
    config = config();
    targets = bench_decode, bench_normalize, bench_match, bench_explain, bench_window, bench_alert, bench_engine
}
criterion_main!(micro);
