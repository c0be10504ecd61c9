//! `hotspot suggest` through the real binary on a generated field world:
//! it proposes a template for every emerging topic and for nothing else,
//! its proposals appended to the rules pass `check-rules`, and replayed
//! with them the topics' complaints match (and nothing else changes).

use std::path::{Path, PathBuf};
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

/// `replay --summary` of `input` with `rules`: records that matched a
/// template.
fn matched_records(rules: &Path, input: &Path, dir: &Path) -> u64 {
    let summary = dir.join("summary.json");
    let (code, _, err) = hotspot(&[
        "replay",
        "-q",
        "--rules",
        s(rules),
        "--input",
        s(input),
        "--alerts",
        s(&dir.join("alerts.jsonl")),
        "--summary",
        s(&summary),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
    v["matched_records"].as_u64().unwrap()
}

#[test]
fn suggest_proposes_the_emerging_topics_and_its_proposals_make_them_match() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { dir.path().join(n) };
    let (code, _, err) = hotspot(&[
        "gen",
        "-q",
        "--scenario",
        "field",
        "--seed",
        "46",
        "--events",
        "300000",
        "--out",
        s(&p("traffic.jsonl")),
        "--truth",
        s(&p("truth.json")),
        "--rules-out",
        s(&p("s8.toml")),
        "--plain-rules-out",
        s(&p("plain.toml")),
    ]);
    assert_eq!(code, 0, "{err}");
    let truth: Value = serde_json::from_slice(&std::fs::read(p("truth.json")).unwrap()).unwrap();
    let topics: Vec<&Value> = truth["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["category"] == "new_topic")
        .collect();
    assert_eq!(topics.len(), 6);

    // Plain rules (no region table: province-wide topics stand out in the
    // whole file) and section 8 rules (provinces too).
    for rules in ["plain.toml", "s8.toml"] {
        let (code, out, err) = hotspot(&[
            "suggest",
            "--input",
            s(&p("traffic.jsonl")),
            "--rules",
            s(&p(rules)),
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        let proposals = r["proposals"].as_array().unwrap();
        // One proposal per emerging topic, its phrase holding the core and
        // its complaints exactly the topic's; nothing else (everyday
        // complaints, chatter and requests never stand out).
        assert_eq!(proposals.len(), 6, "{rules}: {out}");
        for t in &topics {
            let core = t["core"].as_str().unwrap();
            let prop = proposals
                .iter()
                .find(|x| x["phrase"].as_str().unwrap().contains(core))
                .unwrap_or_else(|| panic!("{rules}: no proposal for {core}: {out}"));
            assert_eq!(prop["complaints"], t["records"], "{rules}: {prop}");
            assert_eq!(prop["callers"], t["distinct_callers"], "{rules}: {prop}");
            assert_eq!(prop["check"]["loads"], true);
            assert_eq!(prop["check"]["matched"], t["records"], "{prop}");
            assert_eq!(prop["check"]["other_unmatched"], 0, "{prop}");
            assert_eq!(
                prop["all_of"][0][0].as_str().unwrap(),
                prop["phrase"].as_str().unwrap()
            );
            assert!(
                prop["none_of"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == "测试工单")
            );
            // Masked examples: nothing left for the masker.
            let examples = prop["examples"].as_array().unwrap();
            assert!(!examples.is_empty());
            for e in examples {
                let e = e.as_str().unwrap();
                assert_eq!(hotspot::mask::mask(e), e, "{e}");
                assert!(hotspot::normalize::normalize(e).contains(core), "{e}");
            }
        }
        if rules == "s8.toml" {
            let scopes: Vec<&str> = proposals
                .iter()
                .map(|x| x["busiest"]["scope"].as_str().unwrap())
                .collect();
            assert!(scopes.contains(&"province"), "{scopes:?}");
        }
    }

    // The TOML: appended to the rules, check-rules accepts it.
    let (code, toml, err) = hotspot(&[
        "suggest",
        "--input",
        s(&p("traffic.jsonl")),
        "--rules",
        s(&p("plain.toml")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(toml.matches("[[template]]").count(), 6, "{toml}");
    let mut with = std::fs::read_to_string(p("plain.toml")).unwrap();
    with.push('\n');
    with.push_str(&toml);
    std::fs::write(p("with.toml"), &with).unwrap();
    let (code, out, err) = hotspot(&["check-rules", s(&p("with.toml"))]);
    assert_eq!(code, 0, "{out}{err}\n{toml}");

    // Replayed with them: every complaint of the topics matches, and no
    // other record changes.
    let before = matched_records(&p("plain.toml"), &p("traffic.jsonl"), dir.path());
    let after = matched_records(&p("with.toml"), &p("traffic.jsonl"), dir.path());
    let topic_records: u64 = topics.iter().map(|t| t["records"].as_u64().unwrap()).sum();
    assert_eq!(after - before, topic_records);
    let traffic = std::fs::read_to_string(p("traffic.jsonl")).unwrap();
    let lines: Vec<&str> = traffic
        .lines()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let text = hotspot::normalize::normalize(v["text"].as_str().unwrap_or(""));
            topics
                .iter()
                .any(|t| text.contains(t["core"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(lines.len() as u64, topic_records);
    std::fs::write(p("topics.jsonl"), lines.join("\n") + "\n").unwrap();
    assert_eq!(
        matched_records(&p("plain.toml"), &p("topics.jsonl"), dir.path()),
        0
    );
    assert_eq!(
        matched_records(&p("with.toml"), &p("topics.jsonl"), dir.path()),
        topic_records
    );
}

#[test]
fn suggest_is_the_same_for_every_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("t.jsonl");
    let rules = dir.path().join("r.toml");
    let (code, _, err) = hotspot(&[
        "gen",
        "-q",
        "--scenario",
        "field",
        "--seed",
        "47",
        "--events",
        "120000",
        "--days",
        "6",
        "--out",
        s(&traffic),
        "--rules-out",
        s(&rules),
    ]);
    assert_eq!(code, 0, "{err}");
    let run = |j: &str| {
        let (code, out, err) = hotspot(&[
            "suggest",
            "--input",
            s(&traffic),
            "--rules",
            s(&rules),
            "-j",
            j,
        ]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let one = run("1");
    assert!(one.contains("[[template]]"), "{one}");
    assert_eq!(one, run("3"));
    assert_eq!(one, run("0"));
}

#[test]
fn suggest_says_what_is_wrong() {
    let (code, _, err) = hotspot(&["suggest", "--input", "/nonexistent/x.jsonl"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/x.jsonl") && err.lines().count() == 1,
        "{err}"
    );
    // A file with nothing unmatched: no proposal, a header saying so.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("one.jsonl");
    std::fs::write(
        &f,
        "{\"id\":\"a\",\"ts\":\"2026-03-14T10:00:00+08:00\",\"region\":\"杭州\",\"text\":\"彩铃复制失败\"}\n",
    )
    .unwrap();
    let (code, out, err) = hotspot(&["suggest", "--input", s(&f)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 proposals"), "{out}");
}
