//! Tests of the new-topic detector through the engine: small hand-made
//! streams of everyday complaints that no template covers, with and
//! without a new topic in them.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::alert::{Alert, AlertState, Kind, Scope};
use crate::engine::{Collect, Engine, EngineConfig, EngineState};
use crate::rules::load_str;

const RULES: &str = r#"
[window]
size = "30m"
slide = "1m"
allowed_lateness = "10m"
[[department]]
id = "vas"
name = "数据业务部"
[[department]]
id = "cs"
name = "客服部"
[[business]]
id = "crbt"
name = "彩铃"
department = "vas"
threshold = 8
[[template]]
id = "crbt.copy"
business = "crbt"
all_of = [["彩铃"], ["复制"]]
none_of = ["咨询如何"]
[[region]]
id = "杭州"
province = "浙江"
[[region]]
id = "宁波"
province = "浙江"
[[region]]
id = "温州"
province = "浙江"
[[region]]
id = "银川"
province = "宁夏"
[[region]]
id = "中卫"
province = "宁夏"
[discovery]
department = "cs"
min_callers = 8
"#;

/// 2026-03-14T00:00:00+08:00.
const DAY0: i64 = 1_773_417_600_000;
const MIN: i64 = 60_000;
const CITIES: [&str; 5] = ["杭州", "宁波", "温州", "银川", "中卫"];

const LEADS: [&str; 5] = [
    "客户来电反映",
    "用户来电称",
    "机主投诉",
    "客户表示",
    "来电反映",
];
const ISSUES: [&str; 16] = [
    "手机上网很慢",
    "话费扣费有疑问",
    "家里信号时有时无",
    "宽带晚上经常掉线",
    "套餐余量查询不准",
    "积分兑换失败",
    "营业厅排队太久",
    "短信验证码收不到",
    "国际漫游无法使用",
    "流量超出没有提醒",
    "副卡无法办理",
    "携号转网受阻",
    "发票开具不了",
    "客户经理不回电话",
    "停机后无法复机",
    "合约到期时间不清楚",
];
const TAILS: [&str; 5] = [
    "要求尽快处理",
    "请核实",
    "客户很不满",
    "要求回电说明",
    "已安抚",
];

/// One complaint line.
fn line(id: &str, ts: i64, region: &str, text: &str, caller: &str) -> String {
    format!(r#"{{"id":"{id}","ts":{ts},"region":"{region}","text":"{text}","caller":"{caller}"}}"#)
}

/// Everyday complaints that match no template: `per_hour` an hour in every
/// city from `from` for `hours`, each from a new caller, with a phone
/// number in the text.
fn chatter(rng: &mut ChaCha8Rng, from: i64, hours: i64, per_hour: u32) -> Vec<(i64, String)> {
    let mut v = Vec::new();
    for h in 0..hours {
        for city in CITIES {
            for _ in 0..per_hour {
                let ts = from + h * 60 * MIN + rng.random_range(0..60 * MIN);
                let phone = format!("1{:010}", rng.random_range(3_000_000_000u64..9_999_999_999));
                let text = format!(
                    "{}{}，{}，回访号码{phone}。",
                    LEADS[rng.random_range(0..LEADS.len())],
                    ISSUES[rng.random_range(0..ISSUES.len())],
                    TAILS[rng.random_range(0..TAILS.len())],
                );
                v.push((ts, format!("{city}\u{0}{text}\u{0}{phone}")));
            }
        }
    }
    v
}

/// `n` callers of `city` writing about one new fault within `minutes`
/// from `at`, in varied words around the phrase `幸运星套餐扣费异常`.
fn outbreak(
    rng: &mut ChaCha8Rng,
    at: i64,
    minutes: i64,
    cities: &[&str],
    n: usize,
) -> Vec<(i64, String)> {
    let forms = [
        "客户反映办理幸运星套餐扣费异常，要求退费",
        "用户来电称幸运星套餐扣费异常，多扣了钱",
        "机主投诉幸运星套餐扣费异常，很不满",
        "客户表示昨天开通幸运星套餐后扣费异常",
    ];
    (0..n)
        .map(|i| {
            let ts = at + rng.random_range(0..minutes * MIN);
            let phone = format!("1{:010}", 5_000_000_000u64 + i as u64);
            let text = format!("{}，回访号码{phone}。", forms[i % forms.len()]);
            (
                ts,
                format!("{}\u{0}{text}\u{0}{phone}", cities[i % cities.len()]),
            )
        })
        .collect()
}

/// The stream as lines, in time order with ids.
fn lines(mut events: Vec<(i64, String)>) -> Vec<String> {
    events.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    events
        .into_iter()
        .enumerate()
        .map(|(i, (ts, rest))| {
            let mut p = rest.split('\u{0}');
            let (region, text, caller) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            line(&format!("WO{i:08}"), ts, region, text, caller)
        })
        .collect()
}

fn engine() -> Engine {
    let rules = Arc::new(load_str(RULES, "t.toml").unwrap());
    Engine::new(rules, EngineConfig::default()).unwrap()
}

fn run(lines: &[String]) -> (Vec<Alert>, Engine) {
    let mut e = engine();
    let mut out = Collect::default();
    for (i, l) in lines.iter().enumerate() {
        e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
    }
    e.finish(&mut out);
    (out.alerts, e)
}

/// Two days of chatter, 20 complaints an hour per city.
fn background(seed: u64) -> (ChaCha8Rng, Vec<(i64, String)>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v = chatter(&mut rng, DAY0, 48, 20);
    (rng, v)
}

#[test]
fn everyday_chatter_opens_no_topic() {
    let (_, v) = background(1);
    let (alerts, e) = run(&lines(v));
    assert!(alerts.is_empty(), "{:#?}", alerts.first());
    let t = e.topics().unwrap();
    assert_eq!(t.stats().docs, 48 * 5 * 20);
    assert_eq!(t.partitions(), 2);
}

#[test]
fn ten_callers_of_one_city_writing_a_new_phrase_open_one_topic_that_resolves() {
    let (mut rng, mut v) = background(2);
    // Day 2, 10:00: ten callers in 杭州 within 20 minutes.
    v.extend(outbreak(&mut rng, DAY0 + 34 * 60 * MIN, 20, &["杭州"], 10));
    let (alerts, _) = run(&lines(v));
    let topics: Vec<&Alert> = alerts.iter().filter(|a| a.is_new_topic()).collect();
    assert_eq!(alerts.len(), topics.len(), "only new topics: {alerts:#?}");
    assert_eq!(topics.len(), 2, "{topics:#?}");
    let (f, r) = (topics[0], topics[1]);
    assert_eq!(f.state, AlertState::Firing);
    assert_eq!(
        (f.kind, f.scope, f.region.as_str()),
        (Some(Kind::NewTopic), Some(Scope::Region), "杭州")
    );
    assert_eq!((f.department.as_str(), f.threshold), ("cs", 8));
    assert_eq!(f.count, 8);
    assert!(
        f.terms[0].contains("幸运星套餐扣费异常"),
        "most specific first: {:?}",
        f.terms
    );
    assert!(!f.terms.iter().any(|t| t.contains("客户")), "{:?}", f.terms);
    assert_eq!(f.samples.len(), 3);
    assert!(
        f.samples.iter().all(|s| s.text.contains("****")),
        "masked: {:?}",
        f.samples
    );
    let json = f.to_json();
    assert!(
        json.contains(r#""business":null,"business_name":null"#)
            && json.contains(r#""kind":"new_topic""#)
            && json.contains(r#""terms":["#),
        "{json}"
    );
    assert!(f.alert_id.starts_with("new_topic:杭州:"), "{}", f.alert_id);
    // It resolves while the chatter goes on, not at the end of input.
    assert_eq!(r.state, AlertState::Resolved);
    assert_eq!(r.alert_id, f.alert_id);
    assert!(!r.end_of_input && r.resolved_by.is_some(), "{r:?}");
    assert_eq!(r.count, 10);
    assert_eq!(r.terms, f.terms);
}

#[test]
fn a_phrase_spread_thinly_over_a_province_opens_a_province_topic() {
    let (mut rng, mut v) = background(3);
    v.extend(outbreak(
        &mut rng,
        DAY0 + 34 * 60 * MIN,
        25,
        &["杭州", "宁波", "温州"],
        12,
    ));
    let (alerts, _) = run(&lines(v));
    let firing: Vec<&Alert> = alerts.iter().filter(|a| a.is_firing()).collect();
    assert_eq!(firing.len(), 1, "{firing:#?}");
    assert_eq!(
        (firing[0].scope, firing[0].region.as_str()),
        (Some(Scope::Province), "浙江")
    );
    assert!(firing[0].alert_id.starts_with("new_topic:province:浙江:"));
}

#[test]
fn nothing_opens_while_learning() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut v = chatter(&mut rng, DAY0, 12, 20);
    v.extend(outbreak(&mut rng, DAY0 + 6 * 60 * MIN, 20, &["杭州"], 12));
    let (alerts, _) = run(&lines(v));
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn vetoed_texts_are_known_not_new() {
    let (mut rng, mut v) = background(5);
    // Twelve callers asking how to copy a ring tone: the template's groups
    // hit and its veto stops it.
    for i in 0..12 {
        v.push((
            DAY0 + 34 * 60 * MIN + i * MIN,
            format!("杭州\u{0}客户咨询如何复制彩铃到新手机\u{0}c{i}"),
        ));
    }
    let _ = &mut rng;
    let (alerts, e) = run(&lines(v));
    assert!(alerts.is_empty(), "{alerts:#?}");
    assert_eq!(e.topics().unwrap().stats().docs, 48 * 5 * 20);
}

#[test]
fn a_checkpoint_round_trip_gives_the_same_lines() {
    let (mut rng, mut v) = background(6);
    v.extend(outbreak(&mut rng, DAY0 + 34 * 60 * MIN, 20, &["杭州"], 10));
    let lines = lines(v);
    let (want, _) = run(&lines);
    assert!(want.iter().any(|a| a.is_new_topic()));
    // Stop at several points (one inside the outbreak), save through
    // JSON, restore, go on.
    let outbreak_at = lines.iter().position(|l| l.contains("幸运星")).unwrap();
    for cut in [lines.len() / 3, outbreak_at + 4] {
        let mut e = engine();
        let mut out = Collect::default();
        for (i, l) in lines[..cut].iter().enumerate() {
            e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
        }
        let json = serde_json::to_string(&e.export()).unwrap();
        for l in &lines[..cut] {
            let phone = l
                .split(r#""caller":""#)
                .nth(1)
                .unwrap()
                .trim_end_matches("\"}");
            assert!(!json.contains(phone), "{phone} in clear in the state");
        }
        let saved: EngineState = serde_json::from_str(&json).unwrap();
        let rules = e.rules().clone();
        let matcher = e.matcher().clone();
        let mut e = Engine::restore(
            rules,
            matcher,
            EngineConfig::default(),
            saved,
            cut as u64,
            &mut out,
        );
        for (i, l) in lines.iter().enumerate().skip(cut) {
            e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
        }
        e.finish(&mut out);
        let a: Vec<String> = out.alerts.iter().map(Alert::to_json).collect();
        let b: Vec<String> = want.iter().map(Alert::to_json).collect();
        assert_eq!(a, b, "cut at {cut}");
    }
}

#[test]
fn rules_without_discovery_have_no_detector() {
    let rules = RULES.replace("[discovery]\ndepartment = \"cs\"\nmin_callers = 8\n", "");
    let rules = Arc::new(load_str(&rules, "t.toml").unwrap());
    let e = Engine::new(rules, EngineConfig::default()).unwrap();
    assert!(e.topics().is_none());
    assert!(
        !serde_json::to_string(&e.export())
            .unwrap()
            .contains("topics")
    );
}
