//! Section 8 surges end to end through the library: a baseline learned
//! from days of traffic, a burst far above it that no fixed threshold sees,
//! a surge day that must stay quiet, the same bytes on every thread count,
//! and baselines that survive a checkpoint round trip.

use std::sync::Arc;

use hotspot::alert::{Alert, Kind, Scope};
use hotspot::engine::{Collect, Engine, EngineConfig, EngineState};
use hotspot::parallel::{Layout, replay_parallel};
use hotspot::replay::{ReplayOutputs, replay};
use hotspot::rules::{Rules, load_str};
use hotspot::sink::JsonlWriter;

const RULES: &str = r#"
[window]
size = "30m"
slide = "1m"
allowed_lateness = "5m"
[[department]]
id = "vas"
[[region]]
id = "杭州"
province = "浙江"
subscribers = 12000000
[[region]]
id = "舟山"
province = "浙江"
subscribers = 1200000
[[business]]
id = "crbt"
department = "vas"
threshold = 40
province_threshold = 60
surge = { ratio = 3.0, min = 6 }
[[template]]
id = "crbt.copy"
business = "crbt"
all_of = [["彩铃"], ["复制"]]
"#;

/// 2026-03-10T00:00+08:00.
const T0: i64 = 1_773_072_000_000;
const MIN: i64 = 60_000;
const DAY: i64 = 1440 * MIN;

fn line(id: &str, ts: i64, region: &str, text: &str, caller: &str) -> String {
    format!(r#"{{"id":"{id}","ts":{ts},"region":"{region}","text":"{text}","caller":"{caller}"}}"#)
}

/// `days` of background, then (optionally) a burst in 舟山 and a surge day.
/// Background: every minute one unmatched complaint somewhere, and a crbt
/// complaint in 杭州 every 7 minutes and in 舟山 every 97 minutes (daytime
/// only), each from a new caller. `surge_day`: that day, everything three
/// times. `burst`: at day 4 10:00, nine 舟山 callers within 18 minutes.
fn traffic(days: i64, surge_day: Option<i64>, burst: bool) -> String {
    let mut out = String::new();
    let mut n = 0u64;
    let mut push = |out: &mut String, ts: i64, region: &str, text: &str| {
        n += 1;
        out.push_str(&line(&format!("W{n}"), ts, region, text, &format!("c{n}")));
        out.push('\n');
    };
    for m in 0..days * 1440 {
        let ts = T0 + m * MIN;
        let day = m / 1440;
        let hour = (m % 1440) / 60;
        let times = if Some(day) == surge_day { 3 } else { 1 };
        for k in 0..times {
            let t = ts + k * 1000;
            push(&mut out, t, "宁波", "表扬营业员服务好");
            if m % 7 == 0 && (8..22).contains(&hour) {
                push(&mut out, t + 10, "杭州", "彩铃复制失败");
            }
            if m % 97 == 0 && (8..22).contains(&hour) {
                push(&mut out, t + 20, "舟山", "彩铃复制失败");
            }
        }
        if burst && day == 4 && m % 1440 == 600 {
            for j in 0..9 {
                push(
                    &mut out,
                    ts + j * 2 * MIN + 30,
                    "舟山",
                    "彩铃复制失败，无法设置",
                );
            }
        }
    }
    out
}

fn rules() -> Arc<Rules> {
    Arc::new(load_str(RULES, "surge.toml").unwrap())
}

fn run(input: &str) -> Vec<Alert> {
    run_with(rules(), input)
}

fn run_with(rules: Arc<Rules>, input: &str) -> Vec<Alert> {
    let mut e = Engine::new(rules, EngineConfig::default()).unwrap();
    let mut out = Collect::default();
    for (i, l) in input.lines().enumerate() {
        e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
    }
    e.finish(&mut out);
    out.alerts
}

/// `input` run to line `cut`, its state saved as JSON (handed to `check`)
/// and restored, then run to the end: the alerts of both parts.
fn run_resumed(rules: Arc<Rules>, input: &str, cut: usize, check: impl Fn(&str)) -> Vec<Alert> {
    let lines: Vec<&str> = input.lines().collect();
    let mut e = Engine::new(rules.clone(), EngineConfig::default()).unwrap();
    let mut out = Collect::default();
    for (i, l) in lines[..cut].iter().enumerate() {
        e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
    }
    let saved = serde_json::to_string(&e.export()).unwrap();
    check(&saved);
    let state: EngineState = serde_json::from_str(&saved).unwrap();
    let matcher = Arc::new(hotspot::matcher::Matcher::new(&rules).unwrap());
    let mut e = Engine::restore(
        rules,
        matcher,
        EngineConfig::default(),
        state,
        cut as u64,
        &mut out,
    );
    for (i, l) in lines[cut..].iter().enumerate() {
        e.process_line((cut + i) as u64 + 1, l.as_bytes(), &mut out);
    }
    e.finish(&mut out);
    out.alerts
}

#[test]
fn a_small_city_burst_is_a_surge_and_a_surge_day_is_not() {
    // Quiet: four days of background, then a day at three times the volume.
    let quiet = run(&traffic(6, Some(5), false));
    let firing: Vec<&Alert> = quiet.iter().filter(|a| a.is_firing()).collect();
    assert!(firing.is_empty(), "no fault, no alert: {firing:#?}");

    // A burst of nine callers in 舟山 (usually one every 97 minutes).
    let alerts = run(&traffic(5, None, true));
    let firing: Vec<&Alert> = alerts.iter().filter(|a| a.is_firing()).collect();
    assert!(!firing.is_empty(), "the burst is found");
    let city = firing
        .iter()
        .find(|a| a.scope == Some(Scope::Region))
        .expect("a city surge");
    assert_eq!(city.region, "舟山");
    assert_eq!(city.kind, Some(Kind::Surge));
    assert!(city.count >= 6 && city.count < 40, "{city:?}");
    let baseline = city.baseline.expect("surge lines carry the baseline");
    assert!(
        baseline < 2.0,
        "舟山 usually has under one caller a window: {baseline}"
    );
    assert!(city.p_value.is_some_and(|p| p < 1e-6));
    assert_eq!(city.threshold, 6, "a quiet key's surge level is `min`");
    // Found within minutes: the sixth caller arrives ten minutes in.
    let burst_start = T0 + 4 * DAY + 600 * MIN;
    assert!(city.event_ts - burst_start <= 12 * MIN);
    let json = city.to_json();
    assert!(
        json.contains(r#""scope":"region","kind":"surge""#) && json.contains(r#""baseline":"#),
        "{json}"
    );
    // Every line of a section 8 file carries scope and kind; the resolved
    // line keeps the firing line's id.
    for a in &alerts {
        assert!(a.scope.is_some() && a.kind.is_some());
    }
    assert!(
        alerts
            .iter()
            .any(|a| !a.is_firing() && a.alert_id == city.alert_id)
    );
}

fn replay_bytes(input: &str, threads: usize) -> Vec<u8> {
    replay_bytes_with(rules, input, threads)
}

fn replay_bytes_with(rules: fn() -> Arc<Rules>, input: &str, threads: usize) -> Vec<u8> {
    let buf = Shared::default();
    let mut w = JsonlWriter::new(Box::new(buf.clone()));
    let mut outs = ReplayOutputs {
        alerts: &mut w,
        dead_letters: None,
    };
    if threads <= 1 {
        replay(
            rules(),
            input.as_bytes(),
            &mut outs,
            EngineConfig::default(),
            None,
        )
        .unwrap();
    } else {
        let layout = Layout {
            workers: threads,
            shards: threads.div_ceil(2),
            chunk_bytes: 64 << 10,
        };
        replay_parallel(
            rules(),
            input.as_bytes(),
            &mut outs,
            EngineConfig::default(),
            layout,
            None,
        )
        .unwrap();
    }
    drop(w);
    buf.take()
}

#[test]
fn surge_replay_is_byte_identical_for_every_thread_count() {
    let input = traffic(5, Some(3), true);
    let one = replay_bytes(&input, 1);
    assert!(!one.is_empty());
    for threads in [2, 3, 4, 8] {
        assert!(one == replay_bytes(&input, threads), "{threads} threads");
    }
}

#[test]
fn baselines_survive_a_checkpoint_round_trip() {
    let input = traffic(5, None, true);
    let whole = run(&input);
    // Stop on day 3, save through JSON, restore and go on.
    let cut = input.lines().count() * 3 / 5;
    let resumed = run_resumed(rules(), &input, cut, |saved| {
        assert!(saved.contains("\"baselines\"") && saved.contains("\"volume\""));
    });
    let a: Vec<String> = whole.iter().map(Alert::to_json).collect();
    let b: Vec<String> = resumed.iter().map(Alert::to_json).collect();
    assert!(a.iter().any(|l| l.contains("\"surge\"")));
    assert_eq!(a, b);
}

#[derive(Clone, Default)]
struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl std::io::Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn made_up_regions_do_not_take_the_baselines_room() {
    let mut e = Engine::new(rules(), EngineConfig::default()).unwrap();
    let mut out = Collect::default();
    for i in 0..2_000 {
        let l = line(
            &format!("X{i}"),
            T0 + i * 1000,
            &format!("地{i}"),
            "彩铃复制失败",
            &format!("x{i}"),
        );
        e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
    }
    assert_eq!(
        e.keys().baseline_count(),
        0,
        "regions outside the table learn nothing"
    );
    let l = line("Y", T0 + 3_000_000, "舟山", "彩铃复制失败", "y");
    e.process_line(3_000, l.as_bytes(), &mut out);
    // 舟山 and its province 浙江.
    assert_eq!(e.keys().baseline_count(), 2);
}

fn run_with_reload(input: &str, at: usize, second: &str) -> Vec<Alert> {
    let mut e = Engine::new(rules(), EngineConfig::default()).unwrap();
    let mut out = Collect::default();
    let lines: Vec<&str> = input.lines().collect();
    for (i, l) in lines[..at].iter().enumerate() {
        e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
    }
    let r = Arc::new(load_str(second, "second.toml").unwrap());
    let m = Arc::new(hotspot::matcher::Matcher::new(&r).unwrap());
    e.reload(r, m, at as u64, &mut out);
    for (i, l) in lines[at..].iter().enumerate() {
        e.process_line((at + i) as u64 + 1, l.as_bytes(), &mut out);
    }
    e.finish(&mut out);
    out.alerts
}

#[test]
fn retuning_a_surge_test_keeps_what_was_learned() {
    let input = traffic(5, None, true);
    let cut = input.lines().count() * 3 / 5;
    let retuned = RULES.replace("ratio = 3.0, min = 6", "ratio = 2.5, min = 6");
    let alerts = run_with_reload(&input, cut, &retuned);
    let firing: Vec<&Alert> = alerts.iter().filter(|a| a.is_firing()).collect();
    assert!(
        firing
            .iter()
            .any(|a| a.kind == Some(Kind::Surge) && a.region == "舟山"),
        "the burst is still found with the baselines kept: {firing:#?}"
    );
    assert!(
        firing
            .iter()
            .all(|a| a.region == "舟山" || a.region == "浙江"),
        "and nothing else fires: {firing:#?}"
    );
}

#[test]
fn a_surge_test_added_by_a_reload_learns_before_it_fires() {
    // Three days without a surge test, then a reload that adds it: one
    // day later the burst comes, and a baseline of zero would make every
    // complaint a surge. It learns first, and nothing fires.
    let input = traffic(5, None, true);
    let cut = input
        .lines()
        .position(|l| l.contains(&format!("\"ts\":{}", T0 + 3 * DAY)))
        .unwrap_or(input.lines().count() * 3 / 5);
    let without = RULES.replace("surge = { ratio = 3.0, min = 6 }\n", "");
    let r0 = Arc::new(load_str(&without, "plain.toml").unwrap());
    let mut e = Engine::new(r0, EngineConfig::default()).unwrap();
    let mut out = Collect::default();
    let lines: Vec<&str> = input.lines().collect();
    for (i, l) in lines[..cut].iter().enumerate() {
        e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
    }
    let r = rules();
    let m = Arc::new(hotspot::matcher::Matcher::new(&r).unwrap());
    e.reload(r, m, cut as u64, &mut out);
    for (i, l) in lines[cut..].iter().enumerate() {
        e.process_line((cut + i) as u64 + 1, l.as_bytes(), &mut out);
    }
    let firing: Vec<&Alert> = out.alerts.iter().filter(|a| a.is_firing()).collect();
    assert!(firing.is_empty(), "{firing:#?}");
}

// ---- the place test (`surge.place`) ------------------------------------

fn place_rules() -> Arc<Rules> {
    let text = RULES.replace(
        "surge = { ratio = 3.0, min = 6 }",
        "surge = { ratio = 3.0, min = 6, place = 4 }",
    );
    Arc::new(load_str(&text, "place.toml").unwrap())
}

/// The background of [`traffic`] for 5 days, plus on day 4 at 10:00 four
/// 杭州 callers within 8 minutes who all name 西湖区文三路 (杭州 usually has
/// four or five crbt callers a window: far below a surge there).
fn street_outage() -> String {
    let mut lines: Vec<(i64, String)> = traffic(5, None, false)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["ts"].as_i64().unwrap(), l.to_owned())
        })
        .collect();
    let at = T0 + 4 * DAY + 600 * MIN;
    for j in 0..4 {
        let text = format!("客户反映西湖区文三路{j}号楼彩铃复制失败");
        lines.push((
            at + j * 2 * MIN + 45_000,
            line(
                &format!("P{j}"),
                at + j * 2 * MIN + 45_000,
                "杭州",
                &text,
                &format!("p{j}"),
            ),
        ));
    }
    lines.sort_by_key(|(ts, _)| *ts);
    lines.into_iter().map(|(_, l)| l + "\n").collect()
}

#[test]
fn callers_naming_one_street_are_a_surge_that_names_it() {
    let input = street_outage();
    // Without the place test the big city's count hides them.
    let plain = run(&input);
    assert!(
        plain.iter().all(|a| !a.is_firing()),
        "{:#?}",
        plain.iter().filter(|a| a.is_firing()).collect::<Vec<_>>()
    );
    let alerts = run_with(place_rules(), &input);
    let firing: Vec<&Alert> = alerts.iter().filter(|a| a.is_firing()).collect();
    assert_eq!(firing.len(), 1, "{firing:#?}");
    let a = firing[0];
    assert_eq!(
        (a.region.as_str(), a.scope, a.kind),
        ("杭州", Some(Scope::Region), Some(Kind::Surge))
    );
    assert_eq!(a.terms, vec!["西湖区文三路".to_string()]);
    assert!(
        a.baseline.is_some_and(|b| b > 2.0),
        "the city's baseline: {a:?}"
    );
    assert_eq!(a.p_value, None, "the place test has no tail of its own");
    assert_eq!(a.threshold, a.count, "its level is the city's window now");
    // Fired by the fourth caller of the street.
    assert_eq!(a.triggered_by.as_deref(), Some("P3"));
    // The samples are the street's complaints.
    assert!(
        a.samples.iter().all(|s| s.text.contains("文三路")),
        "{:?}",
        a.samples
    );
    let json = a.to_json();
    assert!(json.contains(r#""terms":["西湖区文三路"]"#), "{json}");
    assert!(!json.contains("p_value"), "{json}");
    // It resolves, and the resolved line names the street too.
    let resolved = alerts
        .iter()
        .find(|r| !r.is_firing() && r.alert_id == a.alert_id)
        .expect("resolved");
    assert_eq!(resolved.terms, a.terms);
}

#[test]
fn the_place_test_is_byte_identical_across_threads_and_a_checkpoint() {
    let input = street_outage();
    let whole: Vec<String> = run_with(place_rules(), &input)
        .iter()
        .map(Alert::to_json)
        .collect();
    assert!(whole.iter().any(|l| l.contains("文三路")));
    // Stop just before the fourth caller, save, restore, go on.
    let cut = input
        .lines()
        .position(|l| l.contains(r#""id":"P3""#))
        .unwrap();
    let resumed = run_resumed(place_rules(), &input, cut, |saved| {
        assert!(
            saved.contains("\"spots\""),
            "the street's callers are saved"
        );
        // Callers are saved as hashes (the street's name is in the kept
        // samples only, as every sample's text is).
        assert!(!saved.contains("\"p1\""), "callers are hashed");
    });
    let resumed: Vec<String> = resumed.iter().map(Alert::to_json).collect();
    assert_eq!(whole, resumed);
    // Every thread count.
    let one = replay_bytes_with(place_rules, &input, 1);
    for threads in [2, 4] {
        assert!(
            one == replay_bytes_with(place_rules, &input, threads),
            "{threads} threads"
        );
    }
}

#[test]
fn a_bad_place_setting_is_refused_where_it_is() {
    let text = RULES.replace(
        "surge = { ratio = 3.0, min = 6 }",
        "surge = { ratio = 3.0, min = 6, place = 1 }",
    );
    let err = load_str(&text, "bad.toml")
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        err.contains("bad.toml:") && err.contains("surge place must be between 2 and 1000"),
        "{err}"
    );
}
