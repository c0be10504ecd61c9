//! `hotspot gen` end to end: generated traffic replayed through the real
//! binary must give exactly the alerts its ground truth promises — every
//! incident alerts, no trap does, ordinary traffic at realistic volume
//! never does — and the reject counts of a dirty run must be the ones the
//! truth predicts. The fixture files are regression snapshots: they must be
//! reproducible from their recorded arguments, and replaying them must
//! give the recorded alerts.

use std::path::{Path, PathBuf};
use std::process::Command;

use hotspot::time::parse_rfc3339;
use serde_json::Value;

fn hotspot(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn read_lines(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ms(v: &Value) -> i64 {
    parse_rfc3339(v.as_str().unwrap()).unwrap()
}

/// Generates into `dir`; returns (traffic, truth).
fn generate(dir: &Path, name: &str, args: &[&str]) -> (PathBuf, PathBuf) {
    let traffic = dir.join(format!("{name}.jsonl"));
    let truth = dir.join(format!("{name}.truth.json"));
    let mut all = vec!["gen", "-q", "--out", s(&traffic), "--truth", s(&truth)];
    all.extend_from_slice(args);
    let (code, _, err) = hotspot(&all);
    assert_eq!(code, 0, "{err}");
    (traffic, truth)
}

/// Replays with the fixture rules; returns (alerts, summary).
fn replay(dir: &Path, traffic: &Path) -> (Vec<Value>, Value) {
    let alerts = dir.join(format!(
        "{}.alerts.jsonl",
        traffic.file_stem().unwrap().to_str().unwrap()
    ));
    let summary = dir.join("summary.json");
    let (code, _, err) = hotspot(&[
        "replay",
        "-q",
        "--rules",
        s(&fixture("rules.toml")),
        "--input",
        s(traffic),
        "--alerts",
        s(&alerts),
        "--summary",
        s(&summary),
    ]);
    assert_eq!(code, 0, "{err}");
    (read_lines(&alerts), read_json(&summary))
}

const WINDOW_MS: i64 = 30 * 60_000;

fn key(v: &Value) -> (String, String) {
    (
        v["business"].as_str().unwrap_or("*").to_owned(),
        v["region"].as_str().unwrap_or("*").to_owned(),
    )
}

/// The summary's counts agree with the truth's.
fn assert_counts(summary: &Value, truth: &Value) {
    let c = &truth["counts"];
    for f in ["lines", "accepted", "late_dropped", "blank"] {
        assert_eq!(summary[f], c[f], "{f}: summary {summary} truth {c}");
    }
    assert_eq!(summary["rejected"], c["rejected"], "rejects by reason");
}

#[test]
fn realistic_traffic_alerts_on_every_incident_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (traffic, truth) = generate(
        dir.path(),
        "t",
        &[
            "--seed",
            "7",
            "--events",
            "60000",
            "--days",
            "3",
            "--start",
            "2026-03-14",
            "--surge-day",
            "2026-03-15",
        ],
    );
    let truth = read_json(&truth);
    let (alerts, summary) = replay(dir.path(), &traffic);
    assert_counts(&summary, &truth);
    assert_eq!(
        truth["background_may_alert"], false,
        "60,000 events over three days is realistic volume"
    );
    assert!(
        truth["counts"]["late_dropped"].as_u64().unwrap() > 0,
        "the late batches are dropped"
    );

    let incidents = truth["incidents"].as_array().unwrap();
    let traps = truth["traps"].as_array().unwrap();
    assert!(incidents.len() >= 10, "two ordinary days of incidents");
    for kind in [
        "cell_outage",
        "platform_failure",
        "slow_rise",
        "late_web_outage",
        "exact_threshold",
    ] {
        assert!(incidents.iter().any(|i| i["kind"] == kind), "{kind}");
    }
    for kind in [
        "repeat_caller",
        "consultation",
        "test_orders",
        "recovered_callbacks",
        "late_batch",
        "surge_day",
    ] {
        assert!(traps.iter().any(|i| i["kind"] == kind), "{kind}");
    }
    let firing: Vec<&Value> = alerts.iter().filter(|a| a["state"] == "firing").collect();

    // Every incident fires for its key, triggered within its span (plus one
    // window for stragglers).
    for inc in incidents {
        assert_eq!(inc["expect_alert"], true);
        let (start, end) = (ms(&inc["start"]), ms(&inc["end"]));
        let hits: Vec<&&Value> = firing
            .iter()
            .filter(|a| key(a) == key(inc))
            .filter(|a| (start..=end + WINDOW_MS).contains(&ms(&a["event_ts"])))
            .collect();
        assert!(!hits.is_empty(), "no alert for incident {inc}");
        assert!(
            inc["distinct_callers"].as_u64() >= inc["threshold"].as_u64(),
            "{inc}"
        );
        if inc["kind"] == "exact_threshold" {
            assert_eq!(inc["distinct_callers"], inc["threshold"]);
            assert_eq!(
                hits[0]["count"], inc["threshold"],
                "exactly the threshold alerts: {}",
                hits[0]
            );
        }
        assert_eq!(inc["late_dropped"], 0, "{inc}");
    }

    // An alert belongs to an incident: same key, its window overlapping the
    // incident's span.
    let explained = |a: &Value| {
        incidents.iter().any(|i| {
            key(i) == key(a)
                && ms(&a["window_start"]) <= ms(&i["end"]) + WINDOW_MS
                && ms(&a["window_end"]) >= ms(&i["start"])
        })
    };
    // No trap key alerts during its span; the surge day (any key) has no
    // alert but incidents'.
    for trap in traps {
        assert_eq!(trap["expect_alert"], false);
        let (start, end) = (ms(&trap["start"]), ms(&trap["end"]));
        for a in &firing {
            let t = ms(&a["event_ts"]);
            let in_span = (start..=end + WINDOW_MS).contains(&t);
            if trap["business"].is_null() {
                assert!(
                    !in_span || explained(a),
                    "{} alert on the surge day: {a}",
                    trap["kind"]
                );
            } else {
                assert!(
                    !(in_span && key(a) == key(trap)),
                    "trap {trap} alerted: {a}"
                );
            }
        }
        if trap["kind"] == "late_batch" {
            assert_eq!(trap["late_dropped"], trap["records"], "{trap}");
        }
        if trap["kind"] == "repeat_caller" {
            assert_eq!(trap["distinct_callers"], 1);
            assert!(trap["records"].as_u64() >= trap["threshold"].as_u64());
        }
    }
    // At realistic volume ordinary traffic never alerts.
    for a in &firing {
        assert!(explained(a), "alert outside every incident: {a}");
    }
    assert!(firing.len() >= incidents.len());
}

#[test]
fn a_dirty_run_rejects_what_the_truth_says_and_alerts_like_its_clean_twin() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--seed",
        "11",
        "--events",
        "20000",
        "--days",
        "1",
        "--start",
        "2026-03-16",
    ];
    let (clean, _) = generate(dir.path(), "clean", &args);
    let mut dirty_args = args.to_vec();
    dirty_args.extend(["--dirty", "0.06"]);
    let (dirty, truth) = generate(dir.path(), "dirty", &dirty_args);
    let truth = read_json(&truth);
    let c = &truth["counts"];
    let rejected: u64 = c["rejected"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        rejected + c["blank"].as_u64().unwrap() + c["huge_records"].as_u64().unwrap(),
        1200
    );
    assert_eq!(
        c["rejected"].as_object().unwrap().len(),
        4,
        "every reason: {c}"
    );
    assert_eq!(c["huge_records"], 1);
    let (dirty_alerts, summary) = replay(dir.path(), &dirty);
    assert_counts(&summary, &truth);
    assert_eq!(
        summary["accepted"].as_u64().unwrap(),
        20_001 - c["late_dropped"].as_u64().unwrap()
    );
    let (clean_alerts, _) = replay(dir.path(), &clean);
    assert!(!clean_alerts.is_empty());
    assert_eq!(clean_alerts, dirty_alerts);
}

#[test]
fn another_rule_library_sizes_incidents_by_its_thresholds() {
    // The conformance-style library of another team: different ids,
    // thresholds and keywords. Incidents follow its thresholds.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"
[window]
size = "10m"
slide = "2m"
allowed_lateness = "5m"
[[department]]
id = "net"
[[department]]
id = "vas"
[[business]]
id = "wireless"
department = "net"
threshold = 5
[[business]]
id = "ringback"
department = "vas"
threshold = 4
[[template]]
id = "wireless.down"
business = "wireless"
all_of = [["信号", "网络"], ["中断", "瘫痪"]]
none_of = ["测试工单", "已恢复"]
[[template]]
id = "ringback.copy"
business = "ringback"
all_of = [["彩铃"], ["复制"], ["失败"]]
none_of = ["咨询如何", "测试工单", "已恢复"]
"#,
    )
    .unwrap();
    let traffic = dir.path().join("t.jsonl");
    let truth = dir.path().join("t.json");
    let (code, _, err) = hotspot(&[
        "gen",
        "-q",
        "--seed",
        "3",
        "--events",
        "4000",
        "--days",
        "1",
        "--rules",
        s(&rules),
        "--out",
        s(&traffic),
        "--truth",
        s(&truth),
    ]);
    assert_eq!(code, 0, "{err}");
    let truth = read_json(&truth);
    assert_eq!(
        truth["background_may_alert"], false,
        "{}",
        truth["background"]
    );
    assert_eq!(truth["skipped"], serde_json::json!([]));
    let alerts = dir.path().join("a.jsonl");
    let (code, _, err) = hotspot(&[
        "replay",
        "-q",
        "--rules",
        s(&rules),
        "--input",
        s(&traffic),
        "--alerts",
        s(&alerts),
    ]);
    assert_eq!(code, 0, "{err}");
    let firing: Vec<Value> = read_lines(&alerts)
        .into_iter()
        .filter(|a| a["state"] == "firing")
        .collect();
    let incidents = truth["incidents"].as_array().unwrap();
    assert!(!incidents.is_empty(), "{truth}");
    for inc in incidents {
        let t = if inc["business"] == "wireless" { 5 } else { 4 };
        assert_eq!(inc["threshold"], t);
        let (start, end) = (ms(&inc["start"]), ms(&inc["end"]));
        assert!(
            firing
                .iter()
                .any(|a| key(a) == key(inc)
                    && (start..=end + 10 * 60_000).contains(&ms(&a["event_ts"]))),
            "no alert for {inc}"
        );
    }
    for trap in truth["traps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["business"].is_null())
    {
        let (start, end) = (ms(&trap["start"]), ms(&trap["end"]));
        assert!(
            !firing
                .iter()
                .any(|a| key(a) == key(trap) && (start..=end).contains(&ms(&a["event_ts"]))),
            "trap {trap} alerted"
        );
    }
}

#[test]
fn standard_output_gets_the_same_bytes_and_bad_arguments_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = generate(
        dir.path(),
        "f",
        &["--seed", "5", "--events", "3000", "--dirty", "0.02"],
    );
    let (code, stdout, err) = hotspot(&[
        "gen", "-q", "--seed", "5", "--events", "3000", "--dirty", "0.02", "--out", "-",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout == std::fs::read(&file).unwrap(),
        "stdout differs from the file"
    );
    for bad in [
        ["--start", "2026-02-30"],
        ["--surge-day", "tomorrow"],
        ["--dirty", "20"],
    ] {
        let mut args = vec!["gen", "--out", "-"];
        args.extend_from_slice(&bad);
        let (code, _, err) = hotspot(&args);
        assert_ne!(code, 0, "{bad:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// The arguments recorded in a fixture truth, as command-line flags.
fn recorded_args(truth: &Value) -> Vec<String> {
    let a = &truth["args"];
    let mut v: Vec<String> = vec![
        "--seed".into(),
        a["seed"].to_string(),
        "--events".into(),
        a["events"].to_string(),
        "--days".into(),
        a["days"].to_string(),
        "--start".into(),
        a["start"].as_str().unwrap().into(),
        "--surge-day".into(),
        a["surge_day"].as_str().unwrap_or("none").into(),
        "--dirty".into(),
        a["dirty"].to_string(),
    ];
    assert_eq!(a["rules"], "embedded");
    v.shrink_to_fit();
    v
}

#[test]
fn the_fixture_traffic_is_reproducible_from_its_truth() {
    let dir = tempfile::tempdir().unwrap();
    for (traffic, truth) in [
        ("traffic.jsonl", "truth.json"),
        ("traffic.dirty.jsonl", "truth.dirty.json"),
    ] {
        let recorded = read_json(&fixture(truth));
        let args = recorded_args(&recorded);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, new_truth) = generate(dir.path(), "again", &args);
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(fixture(traffic)).unwrap(),
            "fixtures/{traffic} is not what gen makes"
        );
        assert_eq!(
            std::fs::read_to_string(new_truth).unwrap(),
            std::fs::read_to_string(fixture(truth)).unwrap(),
            "fixtures/{truth}"
        );
        assert!(
            std::fs::metadata(fixture(traffic)).unwrap().len() < 2_000_000,
            "{traffic} must stay small"
        );
    }
}

#[test]
fn the_fixture_alerts_are_a_fresh_replay_of_the_fixture_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("a.jsonl");
    let (code, _, err) = hotspot(&[
        "replay",
        "-q",
        "--rules",
        s(&fixture("rules.toml")),
        "--input",
        s(&fixture("traffic.jsonl")),
        "--alerts",
        s(&alerts),
    ]);
    assert_eq!(code, 0, "{err}");
    let fresh = std::fs::read_to_string(&alerts).unwrap();
    assert_eq!(
        fresh,
        std::fs::read_to_string(fixture("expected.alerts.jsonl")).unwrap()
    );
    // The snapshot holds every incident of the sample and nothing else.
    let truth = read_json(&fixture("truth.json"));
    let firing = fresh
        .lines()
        .filter(|l| l.contains("\"state\":\"firing\"") || l.contains("\"state\": \"firing\""))
        .count();
    let incidents = truth["incidents"].as_array().unwrap().len();
    assert!(
        firing >= incidents && incidents >= 5,
        "{firing} firing, {incidents} incidents"
    );
    // The dirty sample alerts the same.
    let dirty_alerts = dir.path().join("d.jsonl");
    let (code, _, err) = hotspot(&[
        "replay",
        "-q",
        "--rules",
        s(&fixture("rules.toml")),
        "--input",
        s(&fixture("traffic.dirty.jsonl")),
        "--alerts",
        s(&dirty_alerts),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&dirty_alerts).unwrap(), fresh);
}
