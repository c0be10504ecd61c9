//! Crash safety of the file source: `hotspot replay --state-dir`, killed
//! with SIGKILL at several random moments and restarted each time, writes
//! exactly the alert and dead-letter bytes of a run that never stopped.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn kill_9_at_random_points_then_resume_equals_an_uninterrupted_run() {
    kill_9_then_resume(None, "2", "400000");
}

/// The same with section 8 rules: the fixture library with a region table,
/// province thresholds and surge tests, over three days so that baselines
/// are learned and surges fire; learned state is part of the checkpoint.
#[test]
fn kill_9_during_a_section8_replay_then_resume_equals_an_uninterrupted_run() {
    let text = std::fs::read_to_string(root().join("fixtures/rules.toml")).unwrap();
    let mut s8 = String::new();
    for line in text.lines() {
        if line.starts_with("threshold = ") {
            s8.push_str("province_threshold = 60\nsurge = { ratio = 3.0, min = 6 }\n");
        }
        s8.push_str(line);
        s8.push('\n');
    }
    for (i, city) in [
        "杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水",
    ]
    .iter()
    .enumerate()
    {
        s8.push_str(&format!(
            "[[region]]\nid = \"{city}\"\nprovince = \"浙江\"\nsubscribers = {}\n",
            (12 - i) * 500_000
        ));
    }
    kill_9_then_resume(Some(s8), "3", "300000");
}

fn kill_9_then_resume(rules: Option<String>, days: &str, events: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let traffic = tmp.path().join("traffic.jsonl");
    let rules_path = tmp.path().join("rules.toml");
    if let Some(r) = &rules {
        std::fs::write(&rules_path, r).unwrap();
    }
    let st = Command::new(bin())
        .args([
            "gen", "--seed", "11", "--events", events, "--days", days, "--dirty", "0.01", "-q",
            "--out",
        ])
        .arg(&traffic)
        .arg("--truth")
        .arg(tmp.path().join("truth.json"))
        .status()
        .unwrap();
    assert!(st.success());
    let run = |alerts: &str, dead: &str, state: Option<&str>| {
        let mut c = Command::new(bin());
        c.args(["replay", "--quiet", "--input"]).arg(&traffic);
        if rules.is_some() {
            c.arg("--rules").arg(&rules_path);
        }
        c.arg("--alerts")
            .arg(tmp.path().join(alerts))
            .arg("--dead-letter")
            .arg(tmp.path().join(dead));
        if let Some(s) = state {
            c.arg("--state-dir")
                .arg(tmp.path().join(s))
                .args(["--checkpoint-every", "15000"]);
        }
        c
    };
    assert!(
        run("ref.alerts", "ref.dead", None)
            .status()
            .unwrap()
            .success()
    );
    let reference = std::fs::read(tmp.path().join("ref.alerts")).unwrap();
    assert!(reference.len() > 1000, "the data makes alerts");
    if rules.is_some() {
        let text = String::from_utf8_lossy(&reference);
        assert!(
            text.contains(r#""kind":"surge""#) && text.contains(r#""scope":"province""#),
            "section 8 rules make surge and province alerts"
        );
    }

    // A small deterministic generator of kill delays.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut kills = 0;
    let mut resumed_runs = 0;
    let started = Instant::now();
    loop {
        let mut child = run("crash.alerts", "crash.dead", Some("state"))
            .spawn()
            .unwrap();
        if kills < 6 {
            std::thread::sleep(Duration::from_millis(40 + next() % 160));
            // On a loaded machine the first runs may all die before their
            // first checkpoint: from the third kill on, wait for one (the
            // test is about resuming from it), then kill.
            let checkpoint = tmp.path().join("state/replay.json");
            let deadline = Instant::now() + Duration::from_secs(60);
            while kills >= 2
                && !checkpoint.exists()
                && child.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                if tmp.path().join("state/replay.json").exists() {
                    resumed_runs += 1;
                }
                continue;
            }
        }
        let status = child.wait().unwrap();
        assert!(status.success());
        break;
    }
    eprintln!(
        "survived {kills} kills ({resumed_runs} after a checkpoint) in {:?}",
        started.elapsed()
    );
    assert!(
        kills >= 3,
        "the test must actually kill the replay (only {kills} kills)"
    );
    assert!(
        resumed_runs >= 1,
        "at least one restart must resume from a checkpoint"
    );
    let crashed = std::fs::read(tmp.path().join("crash.alerts")).unwrap();
    assert_eq!(crashed.len(), reference.len());
    assert!(
        crashed == reference,
        "alerts after kills differ from an uninterrupted run"
    );
    assert_eq!(
        std::fs::read(tmp.path().join("crash.dead")).unwrap(),
        std::fs::read(tmp.path().join("ref.dead")).unwrap()
    );
    assert!(
        !tmp.path().join("state/replay.json").exists(),
        "a finished replay leaves no checkpoint"
    );
}

#[test]
fn a_checkpoint_of_another_input_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("replay.json"),
        r#"{"version":1,"input":"other.jsonl","rules_version":"x","line_no":1,"offset":10,"alerts_len":0,"dead_letters_len":0,"engine":{"watermark":null,"stats":{"lines":0,"blank":0,"accepted":0,"late_dropped":0,"rejected":[0,0,0,0],"matched":0,"matched_records":0,"alerts_firing":0,"alerts_resolved":0,"bytes":0,"keys_overflow":0},"matched":{},"keys":{"window":null,"fingerprints":{},"keys":[]}}}"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["replay", "--input"])
        .arg(root().join("fixtures/traffic.jsonl"))
        .arg("--alerts")
        .arg(tmp.path().join("a.jsonl"))
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("remove it to start over"), "{err}");
}
