//! Rules that would detect nothing are refused by a live reload, and
//! personal data stays out of what hotspot keeps: no phone or ID-card
//! number in clear in a checkpoint (the live service's and the replay's),
//! and no unbounded or digit-bearing region label in `/metrics`. All
//! against the real binary.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The phone number of complaint `i`.
fn phone(i: usize) -> String {
    format!("138{:08}", 20_260_000 + i)
}

/// The ID-card number of complaint `i`.
fn id_card(i: usize) -> String {
    format!("330106198001{:02}{:04}", i % 28 + 1, 1_000 + i)
}

/// `n` complaints about CRBT copying (conformance rules: business `crbt`,
/// threshold 12) in 杭州, one minute apart, from distinct callers, each
/// text carrying its caller's phone and ID-card numbers.
fn complaints(n: usize) -> String {
    let base = 1_773_540_000_000i64; // 2026-03-15T10:00:00+08:00
    (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("WO{:06}", i + 1),
                "ts": base + i as i64 * 60_000,
                "region": "杭州",
                "text": format!("客户反映彩铃无法复制，回访号码：{}，机主身份证号码{}。", phone(i), id_card(i)),
                "caller": phone(i),
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// The numbers of complaints `0..n` found in clear in `text`.
fn numbers_in_clear(text: &str, n: usize) -> Vec<String> {
    (0..n)
        .flat_map(|i| [phone(i), id_card(i)])
        .filter(|num| text.contains(num.as_str()))
        .collect()
}

/// The sample texts of every key in a saved engine state.
fn sample_texts(engine: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in engine["keys"]["keys"].as_array().into_iter().flatten() {
        for bin in key["state"]["bins"].as_array().into_iter().flatten() {
            for s in bin["samples"].as_array().into_iter().flatten() {
                out.push(s["text"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    out
}

fn conformance_rules() -> std::path::PathBuf {
    conformance().join("rules.toml")
}

/// A reload with rules that have no business or no template (or nothing at
/// all) is refused with a message naming the file, and changes nothing: the
/// old rules stay in force and the open alert stays open (such a reload
/// used to be accepted and resolve every open alert).
#[test]
fn a_reload_with_rules_that_detect_nothing_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.toml");
    std::fs::copy(conformance_rules(), &rules).unwrap();
    let alerts = tmp.path().join("alerts.jsonl");
    let hs = Hotspot::start(
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
            "--idle-timeout",
            "off",
        ],
        &tmp.path().join("log"),
    );
    let answer = hs.post_lines(complaints(15).as_bytes());
    assert_eq!(answer["alerts"], 1, "{answer}");
    let before = hs.json("/v1/rules");
    let version = before["version"].as_str().unwrap().to_owned();
    let businesses = before["businesses"].as_array().unwrap().len();
    assert_eq!(hs.json("/v1/alerts").as_array().unwrap().len(), 1);

    let departments_only = "[[department]]\nid = \"vas\"\nname = \"数据业务部\"\n";
    let without_templates = format!(
        "{departments_only}\n[[business]]\nid = \"crbt\"\nname = \"彩铃\"\ndepartment = \"vas\"\nthreshold = 12\n"
    );
    let cases = [
        ("", "file: no [[department]], [[business]] or [[template]]"),
        (departments_only, "[[business]]: none defined"),
        (without_templates.as_str(), "[[template]]: none defined"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        std::fs::write(&rules, text).unwrap();
        let (code, body) = post(hs.addr, "/-/reload", b"");
        assert_eq!(code, 422, "case {i}: {body}");
        assert!(
            body.contains(&format!("{}:", rules.display())) && body.contains(want),
            "case {i}: want {want:?} in {body}"
        );
        let now = hs.json("/v1/rules");
        assert_eq!(now["version"], version.as_str(), "case {i}");
        assert_eq!(now["businesses"].as_array().unwrap().len(), businesses);
        assert_eq!(
            hs.json("/v1/alerts").as_array().unwrap().len(),
            1,
            "case {i}: the open alert stays open"
        );
    }
    assert!(
        get(hs.addr, "/metrics")
            .1
            .contains("hotspot_rules_reloads_total{result=\"error\"} 3")
    );

    // SIGHUP goes through the same loader.
    std::fs::write(&rules, "").unwrap();
    unsafe_kill(hs.pid(), "HUP");
    wait_until("the SIGHUP reload to fail", Duration::from_secs(10), || {
        get(hs.addr, "/metrics")
            .1
            .contains("hotspot_rules_reloads_total{result=\"error\"} 4")
    });
    assert_eq!(hs.json("/v1/rules")["version"], version.as_str());
    assert_eq!(hs.json("/v1/alerts").as_array().unwrap().len(), 1);
    let lines = json_lines(&alerts);
    assert!(
        lines.iter().all(|a| a["state"] == "firing"),
        "nothing resolved: {lines:?}"
    );
}

/// `state/checkpoint.json` holds the window state with its alert samples;
/// they are masked when kept, so no phone or ID-card number of the
/// complaints is in it in clear.
#[test]
fn the_service_checkpoint_holds_no_phone_or_id_number() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut hs = Hotspot::start(
        &[
            "--rules",
            conformance_rules().to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--idle-timeout",
            "off",
        ],
        &tmp.path().join("log"),
    );
    let n = 15;
    let answer = hs.post_lines(complaints(n).as_bytes());
    assert_eq!(answer["alerts"], 1, "{answer}");
    let (code, _) = hs.terminate();
    assert_eq!(code, Some(0), "{}", hs.log_text());
    let text = std::fs::read_to_string(state.join("checkpoint.json")).unwrap();
    let ck: serde_json::Value = serde_json::from_str(&text).unwrap();
    let samples: Vec<String> = ck["engines"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(sample_texts)
        .collect();
    assert!(samples.len() >= 3, "samples are kept: {text}");
    assert!(samples.iter().all(|s| s.contains("138****")), "{samples:?}");
    assert_eq!(numbers_in_clear(&text, n), Vec::<String>::new());
}

/// `hotspot replay --state-dir` checkpoints between chunks; the checkpoint
/// holds the samples masked. The input is a FIFO that stays open, so the
/// replay checkpoints what it read and waits for more.
#[test]
fn the_replay_checkpoint_holds_no_phone_or_id_number() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("input.jsonl");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success(), "mkfifo");
    let state = tmp.path().join("state");
    let mut child = Command::new(bin())
        .args([
            "replay",
            "--quiet",
            "--threads",
            "1",
            "--checkpoint-every",
            "1",
        ])
        .arg("--rules")
        .arg(conformance_rules())
        .arg("--input")
        .arg(&fifo)
        .arg("--alerts")
        .arg(tmp.path().join("alerts.jsonl"))
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Read and write: opening does not wait for the replay to open its end.
    let mut w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let n = 15;
    w.write_all(complaints(n).as_bytes()).unwrap();
    let ck_path = state.join("replay.json");
    let t = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&ck_path).unwrap_or_default();
        let done = serde_json::from_str::<serde_json::Value>(&text)
            .is_ok_and(|v| v["line_no"] == n as u64);
        if done {
            break text;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("replay exited with {st} before checkpointing {n} lines");
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("no checkpoint of {n} lines after 30 s: {text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let ck: serde_json::Value = serde_json::from_str(&text).unwrap();
    let samples = sample_texts(&ck["engine"]);
    assert!(samples.len() >= 3, "samples are kept: {text}");
    assert!(samples.iter().all(|s| s.contains("138****")), "{samples:?}");
    assert_eq!(numbers_in_clear(&text, n), Vec::<String>::new());
}

/// 200 distinct regions, half of them phone numbers: `/metrics` shows at
/// most 64 region values besides `other`, and none with a digit.
#[test]
fn odd_regions_do_not_blow_up_or_leak_into_metric_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let hs = Hotspot::start(
        &[
            "--rules",
            conformance_rules().to_str().unwrap(),
            "--idle-timeout",
            "off",
        ],
        &tmp.path().join("log"),
    );
    let names = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉"
        .chars()
        .collect::<Vec<_>>();
    let body: String = (0..200)
        .map(|i| {
            let region = if i % 2 == 0 {
                format!("1380013{:04}", i)
            } else {
                format!("{}{}市", names[i % 20], names[(i / 20) % 20])
            };
            serde_json::json!({
                "id": format!("R{i}"),
                "ts": "2026-03-15T10:00:00+08:00",
                "region": region,
                "text": "客户反映彩铃无法复制。",
                "caller": format!("c{i}"),
            })
            .to_string()
                + "\n"
        })
        .collect();
    let answer = hs.post_lines(body.as_bytes());
    assert_eq!(answer["accepted"], 200, "{answer}");
    let matches = |metrics: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("hotspot_matches_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    wait_until("the matches in /metrics", Duration::from_secs(10), || {
        matches(&get(hs.addr, "/metrics").1) >= 200
    });
    let metrics = get(hs.addr, "/metrics").1;
    let regions: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("region=\"").nth(1)?.split('"').next())
        .collect();
    assert!(
        regions.len() <= 65,
        "{} region values: {regions:?}",
        regions.len()
    );
    assert!(regions.contains("other"), "{regions:?}");
    assert!(
        regions
            .iter()
            .all(|r| !r.chars().any(|c| c.is_ascii_digit())),
        "{regions:?}"
    );
    assert!(!metrics.contains("13800130"), "a phone number in /metrics");
}
