//! Crash safety of the file source: `hotspot replay --state-dir`, killed
//! with SIGKILL at several random moments and restarted each time, writes
//! exactly the alert and dead-letter bytes of a run that never stopped.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

#[test]
fn kill_9_at_random_points_then_resume_equals_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let traffic = tmp.path().join("traffic.jsonl");
    let st = Command::new(bin())
        .args([
            "gen", "--seed", "11", "--events", "400000", "--days", "2", "--dirty", "0.01", "-q",
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
        c.args(["replay", "--quiet", "--input"])
            .arg(&traffic)
            .arg("--alerts")
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
