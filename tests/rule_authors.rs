//! The rule author's loop, end to end with the real binary: template
//! examples checked by `check-rules`, `run` and reloads (each failure
//! located and explained); `explain` (CLI and `GET /v1/explain`) agreeing
//! with the engine's matcher on the conformance traffic; `coverage`
//! agreeing with the replay summary; `check-rules --diff`; and a dry-run
//! reload that says exactly what the real reload then does.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::*;

use hotspot::explain::Explainer;
use hotspot::matcher::Matcher;
use hotspot::normalize::Normalizer;
use hotspot::record::{Decoded, Decoder};

fn hotspot(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const RULES: &str = r#"[[department]]
id = "vas"
name = "数据业务部"

[[business]]
id = "crbt"
name = "彩铃"
department = "vas"
threshold = 3

[[template]]
id = "crbt.copy_fail"
business = "crbt"
all_of = [["彩铃", "炫铃"], ["复制", "同步"]]
none_of = ["咨询如何", "测试工单"]
examples = [
    "客户反映彩铃复制失败，回访号码13812345678",
    "用户称炫铃无法同步到新手机",
]
counter_examples = [
    "客户咨询如何复制彩铃",
    "客户反映彩铃无法设置",
]
"#;

#[test]
fn failing_examples_counter_examples_and_vetoes_are_located_and_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("rules.toml");
    std::fs::write(&file, RULES).unwrap();
    let (code, out, err) = hotspot(&["check-rules", s(&file)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 examples and 2 counter-examples of 1 templates pass"),
        "{out}"
    );

    // One of each failure at once: an example missing group 2, an example
    // that a veto stops, a counter-example that matches.
    let bad = RULES
        .replace("用户称炫铃无法同步到新手机", "用户称炫铃无法设置")
        .replace("客户反映彩铃复制失败", "测试工单彩铃复制失败")
        .replace("客户反映彩铃无法设置", "客户反映彩铃复制不了");
    std::fs::write(&file, &bad).unwrap();
    let (code, out, err) = hotspot(&["check-rules", s(&file)]);
    assert_eq!(code, 1, "{out}{err}");
    let f = s(&file);
    let want = [
        format!(
            "{f}:17: template 'crbt.copy_fail': example 1 does not match: \"测试工单彩铃复制失败，回访号码138****5678\": group 1 hit \"彩铃\", group 2 hit \"复制\", veto \"测试工单\" fired"
        ),
        format!(
            "{f}:18: template 'crbt.copy_fail': example 2 does not match: \"用户称炫铃无法设置\": group 1 hit \"炫铃\", no keyword of group 2 (复制|同步), no veto fired"
        ),
        format!(
            "{f}:22: template 'crbt.copy_fail': counter-example 2 matches: \"客户反映彩铃复制不了\": group 1 hit \"彩铃\", group 2 hit \"复制\", no veto fired"
        ),
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, want, "{out}");
    assert!(err.contains("3 errors"), "{err}");
    assert!(!out.contains("12345678"), "numbers are masked: {out}");

    // `run` refuses such rules at start, with the same first message.
    let log = tmp.path().join("log");
    let status = Command::new(bin())
        .args(["run", "--listen", "127.0.0.1:0", "--rules", f])
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains(&want[0]), "{log}");
    assert!(
        log.contains("(and 2 more; see hotspot check-rules)"),
        "{log}"
    );
}

#[test]
fn the_fixture_library_is_tested() {
    let (code, out, err) = hotspot(&["check-rules", s(&root().join("fixtures/rules.toml"))]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("240 examples and 240 counter-examples of 120 templates pass"),
        "{out}"
    );
    // Every template has at least two of each.
    let rules = hotspot::rules::embedded().unwrap();
    for t in &rules.templates {
        assert!(
            t.examples.len() >= 2 && t.counter_examples.len() >= 2,
            "{}",
            t.id
        );
    }
}

/// The rules the field scenario writes carry the fixture library's
/// examples, and they hold there too (with and without section 8 keys).
#[test]
fn the_field_scenario_writes_tested_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let (rules, plain) = (tmp.path().join("r.toml"), tmp.path().join("p.toml"));
    let (code, _, err) = hotspot(&[
        "gen",
        "-q",
        "--scenario",
        "field",
        "--days",
        "2",
        "--events",
        "3000",
        "--out",
        s(&tmp.path().join("f.jsonl")),
        "--rules-out",
        s(&rules),
        "--plain-rules-out",
        s(&plain),
    ]);
    assert_eq!(code, 0, "{err}");
    for f in [&rules, &plain] {
        let (code, out, err) = hotspot(&["check-rules", s(f)]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(
            out.contains("240 examples and 240 counter-examples of 120 templates pass"),
            "{out}"
        );
    }
}

/// Every text of the conformance traffic: what the explanation says
/// matched is what the engine's matcher matched, template for template.
#[test]
fn explain_agrees_with_the_matcher_on_the_conformance_texts() {
    let c = conformance();
    let (rules, _) = hotspot::rules::load(Some(&c.join("rules.toml"))).unwrap();
    let rules = Arc::new(rules);
    let matcher = Arc::new(Matcher::new(&rules).unwrap());
    let explainer = Explainer::new(rules.clone(), matcher.clone());
    let traffic = std::fs::read(c.join("traffic.dirty.jsonl")).unwrap();
    let mut decoder = Decoder::new();
    let mut normalizer = Normalizer::new();
    let mut m = matcher.scratch();
    let (mut texts, mut matched, mut listed) = (0, 0, 0);
    for line in traffic.split(|&b| b == b'\n') {
        let Decoded::Record(r) = decoder.decode(line) else {
            continue;
        };
        texts += 1;
        matcher.find_text(r.text, &mut normalizer, &mut m);
        let want: Vec<usize> = m.templates().iter().map(|&t| t as usize).collect();
        let x = explainer.explain(r.text);
        assert_eq!(x.matched(), want, "{}: {}", r.id, r.text);
        let businesses: Vec<&str> = x.businesses.iter().map(|b| b.id.as_str()).collect();
        let want_b: Vec<&str> = m
            .businesses()
            .map(|(b, _)| rules.businesses[b].id.as_str())
            .collect();
        assert_eq!(businesses, want_b, "{}", r.id);
        // Every listed template had a group hit; a miss is a named group.
        for t in &x.templates {
            assert!(t.groups.iter().any(|g| g.hit.is_some()), "{}", t.id);
            assert_eq!(
                t.matched,
                t.groups.iter().all(|g| g.hit.is_some()) && !t.vetoes.iter().any(|v| v.hit)
            );
        }
        matched += usize::from(!want.is_empty());
        listed += x.templates.len();
    }
    assert!(
        texts >= 20_000 && matched > 5_000 && listed > matched,
        "{texts} {matched} {listed}"
    );
}

#[test]
fn explain_on_the_command_line_and_by_record_id() {
    let (code, out, err) = hotspot(&["explain", "客户咨询如何复制彩铃，回访13812345678"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("normalised: 客户咨询如何复制彩铃,回访138****5678"),
        "{out}"
    );
    assert!(out.contains("miss  crbt.copy_fail (crbt)"), "{out}");
    assert!(out.contains("veto 咨询如何 fired"), "{out}");
    assert!(out.contains("businesses: none"), "{out}");
    assert!(!out.contains("12345678"), "{out}");

    let (code, out, err) = hotspot(&["explain", "--json", "炫铃无法复制"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["matched"], true);
    assert_eq!(v["businesses"][0]["id"], "crbt");
    assert_eq!(v["businesses"][0]["department"], "vas");
    let t = &v["templates"][0];
    assert_eq!(t["id"], "crbt.copy_fail");
    assert_eq!(t["groups"][0]["hit"], "炫铃");
    assert_eq!(t["groups"][1]["hit"], "复制");
    assert!(
        t["vetoes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["hit"] == false)
    );

    // From a file by id: the record's text.
    let c = conformance();
    let traffic = std::fs::read_to_string(c.join("traffic.jsonl")).unwrap();
    let first: Value = serde_json::from_str(traffic.lines().nth(100).unwrap()).unwrap();
    let id = first["id"].as_str().unwrap();
    let (code, out, err) = hotspot(&[
        "explain",
        "--json",
        "--rules",
        s(&c.join("rules.toml")),
        "--input",
        s(&c.join("traffic.jsonl")),
        "--id",
        id,
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["record"]["line"], 101);
    assert_eq!(v["record"]["region"], first["region"]);
    assert_eq!(
        v["text"].as_str().unwrap(),
        hotspot::mask::mask(first["text"].as_str().unwrap())
    );
    let (code, _, err) = hotspot(&[
        "explain",
        "--input",
        s(&c.join("traffic.jsonl")),
        "--id",
        "no-such-id",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("no valid complaint record with id"), "{err}");
}

fn without_elapsed(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("elapsed_s");
    v
}

#[test]
fn coverage_agrees_with_the_replay_summary_at_every_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    // Big enough for several chunks, with bad and late lines.
    let input = tmp.path().join("t.jsonl");
    let (code, _, err) = hotspot(&[
        "gen",
        "-q",
        "--seed",
        "3",
        "--events",
        "60000",
        "--dirty",
        "0.05",
        "--out",
        s(&input),
    ]);
    assert_eq!(code, 0, "{err}");
    let summary = tmp.path().join("summary.json");
    let (code, _, err) = hotspot(&[
        "replay",
        "-q",
        "--input",
        s(&input),
        "--alerts",
        s(&tmp.path().join("a.jsonl")),
        "--summary",
        s(&summary),
    ]);
    assert_eq!(code, 0, "{err}");
    let sum: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let mut runs = Vec::new();
    for threads in ["1", "2", "3"] {
        let (code, out, err) =
            hotspot(&["coverage", "--json", "-j", threads, "--input", s(&input)]);
        assert_eq!(code, 0, "{err}");
        runs.push(without_elapsed(serde_json::from_str(&out).unwrap()));
    }
    assert_eq!(runs[0], runs[1], "1 and 2 threads");
    assert_eq!(runs[0], runs[2], "1 and 3 threads");
    let cov = &runs[0];
    assert_eq!(cov["matched"], sum["matched_records"]);
    assert_eq!(cov["complaints"], sum["accepted"]);
    assert_eq!(cov["late_dropped"], sum["late_dropped"]);
    assert_eq!(cov["rejected"], sum["rejected"]);
    assert_eq!(cov["lines"], sum["lines"]);
    assert!(
        sum["late_dropped"].as_u64().unwrap() > 0,
        "the file has late lines"
    );
    let per_business: u64 = cov["businesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["complaints"].as_u64().unwrap())
        .sum();
    assert_eq!(per_business, sum["matched_total"].as_u64().unwrap());
    let per_region: u64 = cov["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["matched"].as_u64().unwrap())
        .sum();
    assert_eq!(per_region, sum["matched_records"].as_u64().unwrap());
    let unmatched = cov["unmatched"].as_u64().unwrap();
    assert_eq!(
        unmatched + cov["matched"].as_u64().unwrap(),
        cov["complaints"].as_u64().unwrap()
    );
    let phrases = cov["unmatched_phrases"].as_array().unwrap();
    assert_eq!(phrases.len(), 20, "{cov}");
    // What the generator writes that no template covers (咨询 …) is
    // there; every phrase is at least three times as frequent among
    // unmatched complaints as among matched ones, and none is a piece of
    // another listed one with nearly its count.
    assert!(
        phrases
            .iter()
            .any(|p| p["phrase"].as_str().unwrap().contains("咨询")),
        "{phrases:?}"
    );
    for p in phrases {
        assert!(
            p["share"].as_f64().unwrap() >= 3.0 * p["background_share"].as_f64().unwrap(),
            "{p}"
        );
        let (text, n) = (
            p["phrase"].as_str().unwrap(),
            p["complaints"].as_f64().unwrap(),
        );
        for q in phrases {
            let (other, m) = (
                q["phrase"].as_str().unwrap(),
                q["complaints"].as_f64().unwrap(),
            );
            assert!(
                other == text || !other.contains(text) || n > m * 1.25,
                "{text} ({n}) is a piece of {other} ({m})"
            );
        }
    }
    // The table for people names the same figures.
    let (code, out, err) = hotspot(&["coverage", "--input", s(&input)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "matched      {} complaints",
            sum["matched_records"]
        )),
        "{out}"
    );
    assert!(out.contains("top unmatched phrases"), "{out}");
}

#[test]
fn check_rules_diff_names_changes_and_state() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conformance();
    let old = c.join("rules.toml");
    let text = std::fs::read_to_string(&old).unwrap();
    let new = tmp.path().join("new.toml");
    std::fs::write(
        &new,
        text.replacen("threshold = 12\n", "threshold = 13\n", 1),
    )
    .unwrap();
    let (code, out, err) = hotspot(&["check-rules", "--diff", s(&old), s(&new)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("threshold 12 → 13"), "{out}");
    assert!(out.contains("window state dropped"), "{out}");
    let (code, out, err) = hotspot(&["check-rules", "--diff", s(&old), s(&new), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["businesses"].as_array().unwrap().len(), 1);
    assert_eq!(v["businesses"][0]["threshold"], serde_json::json!([12, 13]));
    assert_eq!(v["state_dropped"].as_array().unwrap().len(), 1);
    // Same file: nothing to act on.
    let (code, out, _) = hotspot(&["check-rules", "--diff", s(&old), s(&old)]);
    assert_eq!(code, 0);
    assert!(
        out.contains("no change that a reload would act on"),
        "{out}"
    );
    // A NEW that a reload would refuse.
    std::fs::write(&new, "[[business]]\nid = \"x\"\n").unwrap();
    let (code, _, err) = hotspot(&["check-rules", "--diff", s(&old), s(&new)]);
    assert_eq!(code, 1);
    assert!(err.contains("would be refused"), "{err}");
}

/// Percent-encodes `s` for a query string.
fn query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A live service: `GET /v1/explain` answers what `hotspot explain --json`
/// prints; a dry-run reload lists exactly the alerts the real reload then
/// resolves and keeps, and the keys it keeps; a reload whose examples fail
/// is refused.
#[test]
fn dry_run_reload_says_exactly_what_the_reload_does() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conformance();
    let rules = tmp.path().join("rules.toml");
    let original = std::fs::read_to_string(c.join("rules.toml")).unwrap();
    std::fs::write(&rules, &original).unwrap();
    let alerts = tmp.path().join("alerts.jsonl");
    let hs = Hotspot::start(
        &[
            "--rules",
            s(&rules),
            "--alerts",
            s(&alerts),
            "--idle-timeout",
            "off",
        ],
        &tmp.path().join("log"),
    );

    // Explain, live and on the command line.
    let text = "客户反映炫铃无法复制，回访13812345678";
    let (code, body) = get(hs.addr, &format!("/v1/explain?text={}", query(text)));
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("12345678"), "{body}");
    let live: Value = serde_json::from_str(&body).unwrap();
    let (code, out, err) = hotspot(&["explain", "--json", "--rules", s(&rules), text]);
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(live, cli);
    assert_eq!(get(hs.addr, "/v1/explain").0, 400);

    // Traffic up to the moment ten alerts are open (two in 湖州, recharge
    // in eight cities).
    let traffic = std::fs::read_to_string(c.join("traffic.jsonl")).unwrap();
    let lines: Vec<&str> = traffic.lines().collect();
    let upto = lines
        .iter()
        .position(|l| l.contains("\"WO2026031500004237\""))
        .unwrap();
    hs.post_lines((lines[..=upto].join("\n") + "\n").as_bytes());
    let open: Vec<Value> = hs.json("/v1/alerts").as_array().unwrap().clone();
    assert_eq!(open.len(), 10, "{open:?}");
    let keys_before = hs.json("/v1/stats")["keys"].as_u64().unwrap();

    // New rules: recharge's threshold changes (its state goes), signal is
    // removed, data_down only renamed (kept), a template added elsewhere.
    let business = |id: &str| {
        let at = original
            .find(&format!("[[business]]\nid = \"{id}\"\n"))
            .unwrap_or_else(|| panic!("business {id}"));
        let end = original[at..]
            .find("\n\n")
            .map_or(original.len(), |e| at + e);
        original[at..end].to_owned()
    };
    let recharge = business("recharge");
    let signal = business("signal");
    let data_down = business("data_down");
    let threshold = recharge
        .lines()
        .find(|l| l.starts_with("threshold"))
        .unwrap()
        .to_owned();
    let name_line = data_down.lines().find(|l| l.starts_with("name")).unwrap();
    let new = original
        .replace(&recharge, &recharge.replace(&threshold, "threshold = 99"))
        .replace(
            &data_down,
            &data_down.replace(name_line, "name = \"无法上网（移动数据）\""),
        )
        .replace(&signal, "");
    // Templates of the removed business go too.
    let kept: Vec<&str> = new
        .split("\n\n")
        .filter(|block| !block.contains("business = \"signal\""))
        .collect();
    let new = kept.join("\n\n");
    std::fs::write(&rules, &new).unwrap();
    let (code, out, err) = hotspot(&["check-rules", s(&rules)]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, body) = post(hs.addr, "/-/reload?dry_run=true", b"");
    assert_eq!(code, 200, "{body}");
    let plan: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["reloaded"], false);
    // Nothing happened yet.
    assert_eq!(hs.json("/v1/alerts").as_array().unwrap().len(), 10);
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["alert_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let resolve = ids(&plan["open_alerts"]["resolve"]);
    let stay = ids(&plan["open_alerts"]["stay_open"]);
    assert_eq!((resolve.len(), stay.len()), (9, 1), "{body}");
    let kept_keys = plan["keys"]["kept"].as_u64().unwrap();
    let dropped_keys = plan["keys"]["dropped"].as_u64().unwrap();
    assert_eq!(kept_keys + dropped_keys, keys_before);
    assert!(dropped_keys > 0 && kept_keys > 0, "{body}");
    let changed: Vec<(&str, &str, &str)> = plan["businesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap(),
                b["change"].as_str().unwrap(),
                b["window_state"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        changed.contains(&("recharge", "changed", "dropped")),
        "{changed:?}"
    );
    assert!(
        changed.contains(&("signal", "removed", "dropped")),
        "{changed:?}"
    );
    assert!(
        changed.contains(&("data_down", "changed", "kept")),
        "{changed:?}"
    );

    // The real reload does exactly that.
    let before = json_lines(&alerts).len();
    let (code, body) = post(hs.addr, "/-/reload", b"");
    assert_eq!(code, 200, "{body}");
    wait_until("rules_reload resolutions", Duration::from_secs(10), || {
        json_lines(&alerts).len() >= before + resolve.len()
    });
    let resolved: Vec<Value> = json_lines(&alerts)[before..].to_vec();
    assert!(
        resolved
            .iter()
            .all(|a| a["state"] == "resolved" && a["reason"] == "rules_reload"),
        "{resolved:?}"
    );
    assert_eq!(ids(&Value::Array(resolved)), resolve);
    assert_eq!(ids(&hs.json("/v1/alerts")), stay);
    assert_eq!(hs.json("/v1/stats")["keys"].as_u64().unwrap(), kept_keys);

    // Rules whose example fails: refused on reload, the old ones kept.
    let version = hs.json("/v1/rules")["version"].clone();
    let failing = new.replacen(
        "\n[[template]]\n",
        "\n[[template]]\nexamples = [\"这句话不提任何业务\"]\n",
        1,
    );
    std::fs::write(&rules, &failing).unwrap();
    let (code, body) = post(hs.addr, "/-/reload?dry_run=true", b"");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("example 1 does not match"), "{body}");
    let (code, body) = post(hs.addr, "/-/reload", b"");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("example 1 does not match"), "{body}");
    assert_eq!(hs.json("/v1/rules")["version"], version);
}
