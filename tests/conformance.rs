//! The shared conformance data (`../shared/conformance`), compared as its
//! README says: the binary's alert lines equal `expected.alerts.jsonl` in
//! order on the listed fields and sample ids; the dirty copy gives the same
//! alerts and exactly the expected counts; `--input -` gives the same bytes
//! as the file. The data is a peer's suite: a missing directory fails the
//! test rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const FIELDS: &[&str] = &[
    "state",
    "business",
    "region",
    "department",
    "count",
    "threshold",
    "window_start",
    "window_end",
    "event_ts",
    "triggered_by",
    "templates",
    "resolved_by",
    "end_of_input",
];

fn conformance() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    assert!(
        dir.join("traffic.jsonl").is_file(),
        "conformance data missing at {}",
        dir.display()
    );
    dir
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hotspot")
}

fn replay(input: &Path, tmp: &Path, tag: &str) -> (Vec<u8>, Value) {
    let c = conformance();
    let alerts = tmp.join(format!("{tag}.alerts.jsonl"));
    let summary = tmp.join(format!("{tag}.summary.json"));
    let status = Command::new(bin())
        .args(["replay", "--quiet", "--rules"])
        .arg(c.join("rules.toml"))
        .arg("--input")
        .arg(input)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--summary")
        .arg(&summary)
        .arg("--dead-letter")
        .arg(tmp.join(format!("{tag}.dead.jsonl")))
        .status()
        .unwrap();
    assert!(status.success());
    (
        std::fs::read(alerts).unwrap(),
        serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap(),
    )
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn assert_same_alerts(got: &[u8]) {
    let want = lines(&std::fs::read(conformance().join("expected.alerts.jsonl")).unwrap());
    let got = lines(got);
    assert_eq!(got.len(), want.len(), "number of alert lines");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        for f in FIELDS {
            assert_eq!(
                g.get(*f).unwrap_or(&Value::Null),
                w.get(*f).unwrap_or(&Value::Null),
                "line {} field {f}",
                i + 1
            );
        }
        let ids = |v: &Value| -> Vec<Value> {
            v.get("samples")
                .and_then(Value::as_array)
                .map(|s| s.iter().map(|x| x["id"].clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(ids(g), ids(w), "line {} sample ids", i + 1);
        // Both lines of one alert share its id.
        assert!(g["alert_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
}

fn assert_counts(summary: &Value, expected: &Path) {
    let want: Value = serde_json::from_slice(&std::fs::read(expected).unwrap()).unwrap();
    for f in [
        "lines",
        "accepted",
        "late_dropped",
        "rejected",
        "alerts_firing",
        "alerts_resolved",
        "matched_total",
    ] {
        assert_eq!(summary[f], want[f], "summary field {f}");
    }
}

#[test]
fn clean_traffic_gives_the_expected_alerts_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (alerts, summary) = replay(&conformance().join("traffic.jsonl"), tmp.path(), "clean");
    assert_same_alerts(&alerts);
    assert_counts(&summary, &conformance().join("expected.summary.json"));
}

#[test]
fn dirty_traffic_gives_the_same_alerts_and_exact_reject_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let (clean, _) = replay(&conformance().join("traffic.jsonl"), tmp.path(), "clean");
    let (dirty, summary) = replay(
        &conformance().join("traffic.dirty.jsonl"),
        tmp.path(),
        "dirty",
    );
    assert_eq!(
        clean, dirty,
        "the dirty file must give byte-identical alerts"
    );
    assert_counts(&summary, &conformance().join("expected.dirty.summary.json"));
    // One dead letter per rejected line, each naming its line and reason.
    let dead = lines(&std::fs::read(tmp.path().join("dirty.dead.jsonl")).unwrap());
    let rejected: u64 = summary["rejected"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(dead.len() as u64, rejected);
    assert!(dead.iter().all(|d| d["line"].as_u64().unwrap() >= 1
        && d["reason"].is_string()
        && d["bytes"].is_u64()));
    // Dead letters are masked: no 11-digit mobile number survives.
    let raw = std::fs::read_to_string(tmp.path().join("dirty.dead.jsonl")).unwrap();
    let b = raw.as_bytes();
    let phone = (0..b.len().saturating_sub(10)).any(|i| {
        b[i] == b'1'
            && b[i..i + 11].iter().all(u8::is_ascii_digit)
            && (i == 0 || !b[i - 1].is_ascii_digit())
            && b.get(i + 11).is_none_or(|c| !c.is_ascii_digit())
    });
    assert!(!phone, "an unmasked phone number in dead letters");
}

#[test]
fn stdin_gives_the_same_bytes_as_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conformance();
    let (from_file, _) = replay(&c.join("traffic.jsonl"), tmp.path(), "file");
    let out = tmp.path().join("stdin.alerts.jsonl");
    let mut child = Command::new(bin())
        .args(["replay", "--quiet", "--input", "-", "--rules"])
        .arg(c.join("rules.toml"))
        .arg("--alerts")
        .arg(&out)
        .stdin(std::fs::File::open(c.join("traffic.jsonl")).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(std::fs::read(out).unwrap(), from_file);
}

#[test]
fn replay_is_byte_identical_run_after_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = replay(&conformance().join("traffic.dirty.jsonl"), tmp.path(), "a");
    let (b, _) = replay(&conformance().join("traffic.dirty.jsonl"), tmp.path(), "b");
    assert_eq!(a, b);
}

#[test]
fn thread_count_does_not_change_a_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let c = conformance();
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3", "7"] {
        let alerts = tmp.path().join(format!("a{threads}"));
        let dead = tmp.path().join(format!("d{threads}"));
        let st = Command::new(bin())
            .args(["replay", "--quiet", "--threads", threads, "--rules"])
            .arg(c.join("rules.toml"))
            .arg("--input")
            .arg(c.join("traffic.dirty.jsonl"))
            .arg("--alerts")
            .arg(&alerts)
            .arg("--dead-letter")
            .arg(&dead)
            .status()
            .unwrap();
        assert!(st.success());
        outputs.push((std::fs::read(alerts).unwrap(), std::fs::read(dead).unwrap()));
    }
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "alerts or dead letters differ between thread counts"
    );
    assert_same_alerts(&outputs[0].0);
}
