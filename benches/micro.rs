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

/// Realistic keyword pieces: product subjects, plan/brand variants, and
/// fault phenomena with their modifiers.
const SUBJECTS: &[&str] = &[
    "彩铃",
    "视频彩铃",
    "家庭宽带",
    "宽带",
    "流量",
    "话费",
    "套餐",
    "信号",
    "短信",
    "彩信",
    "积分",
    "手机报",
    "139邮箱",
    "咪咕视频",
    "咪咕音乐",
    "和包支付",
    "移动云盘",
    "魔百和",
    "物联网卡",
    "副卡",
    "亲情号",
    "国际漫游",
    "5g",
    "4g",
    "volte",
    "esim",
    "携号转网",
    "实名认证",
    "充值",
    "营业厅",
    "手机营业厅",
    "网上营业厅",
    "合约机",
    "固话",
    "个人热点",
    "随身wifi",
    "流量包",
    "语音包",
    "会员",
    "权益",
    "宽带提速",
    "光猫",
    "路由器",
    "机顶盒",
    "来电显示",
    "呼叫转移",
    "语音信箱",
    "积分商城",
    "号卡",
    "天气预报",
];

const VARIANTS: &[&str] = &[
    "",
    "新",
    "包月",
    "畅享",
    "尊享",
    "和",
    "全球通",
    "动感地带",
    "神州行",
    "校园",
    "家庭",
    "企业",
    "政企",
    "融合",
    "合约",
    "定向",
    "夜间",
    "周末",
    "假日",
    "国内",
];

const PHENOMENA: &[&str] = &[
    "无法使用",
    "无法开通",
    "开通失败",
    "取消失败",
    "退订失败",
    "扣费异常",
    "重复扣费",
    "未经同意开通",
    "网速慢",
    "断线",
    "掉线",
    "无信号",
    "登录失败",
    "收不到",
    "发不出",
    "延迟",
    "乱码",
    "显示错误",
    "余额不符",
    "到账失败",
    "充值不到账",
    "无法拨打",
    "无法接听",
    "通话中断",
    "杂音",
    "单通",
    "无法上网",
    "打不开",
    "闪退",
    "卡顿",
    "验证码收不到",
    "办理失败",
    "变更失败",
    "积分清零",
    "兑换失败",
    "被停机",
    "无法复机",
    "无法销户",
    "资费不符",
    "承诺未兑现",
    "赠送未到账",
    "网络异常",
    "服务中断",
    "设备离线",
    "画面卡住",
    "无法播放",
    "黑屏",
    "无法同步",
    "复制失败",
    "设置无效",
    "被拦截",
    "误拦截",
    "虚假宣传",
    "强制捆绑",
    "乱收费",
    "二次扣费",
    "费用翻倍",
    "欠费提醒错误",
    "账单不明",
    "无法退订",
];

const MODIFIERS: &[&str] = &[
    "",
    "频繁",
    "一直",
    "突然",
    "多次",
    "反复",
    "持续",
    "间歇性",
    "大面积",
    "全天",
];

const NONE_OF: &[&str] = &["测试工单", "已恢复", "咨询如何", "已退费", "客户表示理解"];

/// 20,000 distinct realistic keywords in three pools: subjects
/// (variant + product, 1,000), phenomena (modifier + fault, 600) and
/// compounds (product + fault, then variant + product + fault) for the rest.
fn keyword_pools(n: usize) -> [Vec<String>; 3] {
    let mut seen = std::collections::HashSet::new();
    let mut pools: [Vec<String>; 3] = Default::default();
    let mut total = 0;
    let mut push = |k: String, pool: &mut Vec<String>, total: &mut usize| {
        if *total < n && seen.insert(k.clone()) {
            pool.push(k);
            *total += 1;
        }
    };
    for v in VARIANTS {
        for s in SUBJECTS {
            push(format!("{v}{s}"), &mut pools[0], &mut total);
        }
    }
    for m in MODIFIERS {
        for p in PHENOMENA {
            push(format!("{m}{p}"), &mut pools[1], &mut total);
        }
    }
    for s in SUBJECTS {
        for p in PHENOMENA {
            push(format!("{s}{p}"), &mut pools[2], &mut total);
        }
    }
    for v in VARIANTS.iter().skip(1) {
        for s in SUBJECTS {
            for p in PHENOMENA {
                push(format!("{v}{s}{p}"), &mut pools[2], &mut total);
            }
        }
    }
    assert_eq!(total, n, "keyword pieces give too few keywords");
    pools
}

/// A rule library of `templates` templates over `templates / 10`
/// businesses in 5 departments, using every keyword of the pools: each
/// template has a subject group (2 subjects) and a phenomenon group (1
/// phenomenon, 4 compounds), and one veto.
fn big_library(templates: usize, keywords: usize) -> String {
    use std::fmt::Write;
    let pools = keyword_pools(keywords);
    let mut t = String::with_capacity(2 << 20);
    t.push_str("[window]\nsize = \"30m\"\nslide = \"1m\"\nallowed_lateness = \"10m\"\n\n");
    for d in ["net", "vas", "mkt", "it", "term"] {
        let _ = writeln!(t, "[[department]]\nid = \"{d}\"\nname = \"部门{d}\"\n");
    }
    let businesses = templates.div_ceil(10);
    for b in 0..businesses {
        let d = ["net", "vas", "mkt", "it", "term"][b % 5];
        let _ = writeln!(
            t,
            "[[business]]\nid = \"b{b:04}\"\nname = \"业务{b}\"\ndepartment = \"{d}\"\nthreshold = {}\n",
            8 + b % 30
        );
    }
    // Walk each pool with a prime stride (coprime to its length) so every
    // keyword is used and neighbouring templates share few keywords.
    let mut pos = [0usize; 3];
    let mut next = |p: usize| {
        let pool = &pools[p];
        pos[p] = (pos[p] + 7919) % pool.len();
        format!("\"{}\"", pool[pos[p]])
    };
    for i in 0..templates {
        let g1 = [next(0), next(0)].join(", ");
        let g2 = [next(1), next(2), next(2), next(2), next(2)].join(", ");
        let _ = writeln!(
            t,
            "[[template]]\nid = \"b{:04}.t{i:05}\"\nbusiness = \"b{:04}\"\nphenomenon = \"现象{i}\"\nall_of = [[{g1}], [{g2}]]\nnone_of = [\"{}\"]\n",
            i / 10,
            i / 10,
            NONE_OF[i % NONE_OF.len()]
        );
    }
    t
}

fn bench_match(c: &mut Criterion) {
    let d = data();
    let fixture = Matcher::new(&d.rules).unwrap();
    let big_text = big_library(5_000, 20_000);
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
    targets = bench_decode, bench_normalize, bench_match, bench_window, bench_alert, bench_engine
}
criterion_main!(micro);
