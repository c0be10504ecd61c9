//! `hotspot gen --scenario field` and `hotspot eval` through the real
//! binary: the field files are reproducible, hold every incident category,
//! their plain rules load, and the plain rules replayed over the traffic
//! catch the big-city outages and miss what a fixed threshold misses,
//! without false alerts on ordinary days.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn hotspot(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hotspot"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generates a field run named `name` into `dir`: (traffic, truth, rules,
/// plain rules).
fn field(dir: &Path, name: &str, seed: &str) -> [std::path::PathBuf; 4] {
    let files = ["jsonl", "truth.json", "rules.toml", "plain.toml"]
        .map(|e| dir.join(format!("{name}.{e}")));
    let (code, _, err) = hotspot(&[
        "gen",
        "-q",
        "--scenario",
        "field",
        "--seed",
        seed,
        "--events",
        "300000",
        "--out",
        s(&files[0]),
        "--truth",
        s(&files[1]),
        "--rules-out",
        s(&files[2]),
        "--plain-rules-out",
        s(&files[3]),
    ]);
    assert_eq!(code, 0, "{err}");
    files
}

#[test]
fn field_files_are_reproducible_complete_and_the_plain_rules_load() {
    let dir = tempfile::tempdir().unwrap();
    let a = field(dir.path(), "a", "41");
    let b = field(dir.path(), "b", "41");
    for (x, y) in a.iter().zip(&b) {
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{} differs between two runs",
            x.display()
        );
    }
    let truth: Value = serde_json::from_slice(&std::fs::read(&a[1]).unwrap()).unwrap();
    assert_eq!(truth["scenario"], "field");
    assert_eq!(truth["days"].as_array().unwrap().len(), 12);
    let incidents = truth["incidents"].as_array().unwrap();
    assert!(incidents.len() >= 30, "{}", incidents.len());
    for cat in [
        "big_city",
        "small_city",
        "province_wide",
        "slow_rise",
        "night",
    ] {
        let n = incidents.iter().filter(|i| i["category"] == cat).count();
        assert!(n >= 6, "{cat}: {n}");
    }
    let learning_end = truth["learning_end"].as_str().unwrap();
    assert!(
        incidents
            .iter()
            .all(|i| i["start"].as_str().unwrap() >= learning_end && i["must_detect"] == true)
    );
    let traps = truth["traps"].as_array().unwrap();
    for cat in ["surge_day", "repeat_caller", "consultation", "test_orders"] {
        assert!(traps.iter().any(|t| t["category"] == cat), "{cat}");
    }
    assert!(incidents.iter().any(|i| i["scope"] == "province"));
    // Emerging topics: three in one city, three over a province, each
    // with its core in every one of its complaints and no business.
    let new: Vec<&Value> = incidents
        .iter()
        .filter(|i| i["category"] == "new_topic")
        .collect();
    assert_eq!(new.len(), 6);
    assert_eq!(new.iter().filter(|i| i["scope"] == "province").count(), 3);
    let traffic = std::fs::read_to_string(&a[0]).unwrap();
    for i in &new {
        assert!(i["business"].is_null() && i["distinct_callers"].as_u64().unwrap() >= 14);
        let core = i["core"].as_str().unwrap();
        assert!(core.chars().count() >= 4, "{i}");
        assert!(
            i["key_phrase"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .starts_with(core)
        );
        // Texts write it as agents do (`FTTR`, sometimes full-width):
        // normalised, every one of its complaints has it.
        let lines = traffic
            .lines()
            .filter(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                v["text"]
                    .as_str()
                    .is_some_and(|t| hotspot::normalize::normalize(t).contains(core))
            })
            .count() as u64;
        assert_eq!(lines, i["records"].as_u64().unwrap(), "{i}");
    }
    let unmatched = &truth["unmatched"];
    assert!(
        unmatched["share_pct"].as_f64().unwrap() > 100.0 / 3.0,
        "{unmatched}"
    );
    assert_eq!(unmatched["everyday"].as_array().unwrap().len(), 4);

    let (code, out, err) = hotspot(&["check-rules", s(&a[3])]);
    assert_eq!(code, 0, "{out}{err}");
    let rules = std::fs::read_to_string(&a[2]).unwrap();
    assert!(rules.contains("[[region]]\nid = \"杭州\"\nprovince = \"浙江\"\nsubscribers = "));
    assert!(rules.contains("province_threshold = "));
    assert!(rules.contains("surge = { ratio = 2.0, min = 5, p_value = 1e-6, place = 4 }"));
    assert!(rules.contains("region_thresholds = { \"杭州\" = "));
    assert!(rules.contains("[discovery]\ndepartment = \"cs\"\nmin_callers = 8\n"));
    let (code, out, err) = hotspot(&["check-rules", s(&a[2])]);
    assert_eq!(code, 0, "the section 8 rules load: {out}{err}");
    assert!(out.contains("cs 客户服务部"), "{out}");

    // Another seed, other traffic.
    let c = field(dir.path(), "c", "42");
    assert!(std::fs::read(&a[0]).unwrap() != std::fs::read(&c[0]).unwrap());
}

#[test]
fn plain_rules_catch_big_city_outages_only_and_eval_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let [traffic, truth, _, plain] = field(dir.path(), "f", "43");
    let alerts = dir.path().join("alerts.jsonl");
    let (r, out) = replay_and_eval(&traffic, &plain, &truth, &alerts);
    let row = |c: &str| {
        r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["category"] == c)
            .unwrap()
            .clone()
    };
    assert_eq!(row("big_city")["recall_pct"], 100.0, "{out}");
    for c in [
        "small_city",
        "province_wide",
        "slow_rise",
        "night",
        "new_topic",
    ] {
        assert_eq!(row(c)["detected"], 0, "{c}: {out}");
    }
    assert_eq!(row("new_topic")["incidents"], 6, "{out}");
    assert_eq!(r["false_alerts"]["new_topic"]["after_learning"], 0, "{out}");
    let f = &r["false_alerts"];
    assert!(f["per_day"].as_f64().unwrap() <= 1.0, "{out}");
    assert_eq!(f["learning"], 0, "{out}");

    // The table, and two files side by side.
    let (code, table, err) = hotspot(&[
        "eval",
        "--truth",
        s(&truth),
        "--alerts",
        s(&alerts),
        "--alerts",
        s(&alerts),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("big_city") && table.contains("[2]"),
        "{table}"
    );
    let (code, out, _) = hotspot(&[
        "eval",
        "--truth",
        s(&truth),
        "--alerts",
        s(&alerts),
        "--alerts",
        s(&alerts),
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn eval_counts_hand_made_alerts_and_rejects_a_classic_truth() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("t.json");
    std::fs::write(
        &truth,
        r#"{"scenario":"field","learning_end":"2026-03-11T00:00:00+08:00",
        "surge_day":{"start":"2026-03-15T00:00:00+08:00","end":"2026-03-15T23:59:59+08:00"},
        "days":["2026-03-10","2026-03-11","2026-03-15"],
        "regions":[{"id":"杭州","province":"浙江"},{"id":"衢州","province":"浙江"}],
        "incidents":[{"id":"I01","category":"small_city","business":"signal","scope":"region","location":"衢州","regions":["衢州"],"start":"2026-03-11T12:00:00+08:00","end":"2026-03-11T12:40:00+08:00"}],
        "traps":[]}"#,
    )
    .unwrap();
    let alerts = dir.path().join("a.jsonl");
    std::fs::write(
        &alerts,
        concat!(
            r#"{"state":"firing","business":"signal","scope":"province","kind":"surge","region":"浙江","event_ts":"2026-03-11T12:09:00+08:00","baseline":1.5}"#,
            "\n",
            r#"{"state":"firing","business":"signal","region":"杭州","event_ts":"2026-03-15T10:00:00+08:00"}"#,
            "\n"
        ),
    )
    .unwrap();
    let (code, out, err) = hotspot(&[
        "eval",
        "--truth",
        s(&truth),
        "--alerts",
        s(&alerts),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["overall"]["detected"], 1);
    assert_eq!(r["overall"]["ttd_median_min"], 9.0);
    assert_eq!(r["false_alerts"]["surge_day"], 1);
    assert_eq!(r["false_alerts"]["after_learning"], 0);

    let classic = dir.path().join("classic.json");
    std::fs::write(&classic, r#"{"generator":"x","incidents":[]}"#).unwrap();
    let (code, _, err) = hotspot(&["eval", "--truth", s(&classic), "--alerts", s(&alerts)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("field truth") && err.lines().count() == 1,
        "{err}"
    );
}

/// The same world with section 8 rules: every province-wide failure and
/// big-city outage, most of the rest, few false alerts, and far more than
/// the fixed thresholds find.
#[test]
fn section8_rules_find_what_fixed_thresholds_miss() {
    let dir = tempfile::tempdir().unwrap();
    let [traffic, truth, s8, plain] = field(dir.path(), "g", "44");
    let mut recall = Vec::new();
    for (rules, name) in [(&plain, "plain.jsonl"), (&s8, "s8.jsonl")] {
        let (r, out) = replay_and_eval(&traffic, rules, &truth, &dir.path().join(name));
        // Recall over the template categories (new topics are the
        // new-topic detector's, scored in their own row).
        let (mut det, mut inc) = (0.0, 0.0);
        for c in r["categories"].as_array().unwrap() {
            if c["category"] != "new_topic" {
                det += c["detected"].as_f64().unwrap();
                inc += c["incidents"].as_f64().unwrap();
            }
        }
        recall.push((100.0 * det / inc, r, out));
    }
    let (plain_recall, _, _) = &recall[0];
    let (s8_recall, r, out) = &recall[1];
    let row = |c: &str| {
        r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["category"] == c)
            .unwrap()
            .clone()
    };
    assert!(
        *s8_recall >= 70.0 && *s8_recall > plain_recall + 40.0,
        "{out}"
    );
    assert_eq!(row("province_wide")["recall_pct"], 100.0, "{out}");
    assert_eq!(row("big_city")["recall_pct"], 100.0, "{out}");
    // False alerts of the template businesses (the new-topic detector's
    // are scored in their own row).
    let f = &r["false_alerts"];
    let nt = &f["new_topic"];
    let per_day = f["per_day"].as_f64().unwrap() - nt["per_day"].as_f64().unwrap();
    assert!(per_day <= 1.0, "{out}");
    let surge = f["surge_day"].as_u64().unwrap() - nt["surge_day"].as_u64().unwrap();
    assert!(surge <= 2, "{out}");
}

/// Replays `traffic` with `rules` into `alerts`, then `hotspot eval
/// --json` of them against `truth`: the object and its text.
fn replay_and_eval(traffic: &Path, rules: &Path, truth: &Path, alerts: &Path) -> (Value, String) {
    let (code, _, err) = hotspot(&[
        "replay",
        "--rules",
        s(rules),
        "--input",
        s(traffic),
        "--alerts",
        s(alerts),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = hotspot(&["eval", "--truth", s(truth), "--alerts", s(alerts), "--json"]);
    assert_eq!(code, 0, "{err}");
    (serde_json::from_str(&out).unwrap(), out)
}
