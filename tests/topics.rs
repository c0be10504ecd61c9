//! New topics (CONTRACT 8, `[discovery]`) through the real binary: the same
//! alert bytes on every thread count, a replay killed and resumed from its
//! checkpoints, and the detector's state under a flood of unique texts.

mod support;
#[path = "support/topics.rs"]
mod topics;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// `hotspot replay` of `input` with `rules` on `threads`; returns the alert
/// bytes and the summary.
fn replay(input: &Path, rules: &Path, threads: usize, dir: &Path) -> (Vec<u8>, serde_json::Value) {
    let alerts = dir.join(format!("alerts-{threads}.jsonl"));
    let summary = dir.join(format!("summary-{threads}.json"));
    let out = Command::new(bin())
        .args(["replay", "--quiet", "--threads", &threads.to_string()])
        .arg("--rules")
        .arg(rules)
        .arg("--input")
        .arg(input)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--summary")
        .arg(&summary)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        std::fs::read(&alerts).unwrap(),
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap(),
    )
}

fn new_topic_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|a| a["kind"] == "new_topic")
        .collect()
}

#[test]
fn new_topics_are_the_same_bytes_on_1_2_4_and_8_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = topics::write_rules(tmp.path());
    let input = topics::write_lines(tmp.path(), "in.jsonl", &topics::stream(7, 30));
    let (one, summary) = replay(&input, &rules, 1, tmp.path());
    // The chatter matches no template; the outbreaks are new.
    assert_eq!(summary["matched_records"], 0, "{summary}");
    assert_eq!(summary["new_topics"]["opened"], 2, "{summary}");
    let topics = new_topic_lines(&one);
    let firing: Vec<&serde_json::Value> =
        topics.iter().filter(|a| a["state"] == "firing").collect();
    assert_eq!(firing.len(), 2, "{topics:#?}");
    assert_eq!(
        (&firing[0]["region"], &firing[0]["scope"]),
        (&"杭州".into(), &"region".into())
    );
    assert_eq!(
        (&firing[1]["region"], &firing[1]["scope"]),
        (&"浙江".into(), &"province".into())
    );
    for f in &firing {
        assert!(
            f["terms"][0].as_str().unwrap().contains(topics::CORE),
            "{f}"
        );
        assert_eq!(f["business"], serde_json::Value::Null);
        assert_eq!(f["department"], "mkt");
    }
    assert_eq!(
        topics.iter().filter(|a| a["state"] == "resolved").count(),
        2
    );
    // 8 threads: two key shards, so the two provinces' partitions are
    // (or may be) in different shards.
    for threads in [2, 4, 8] {
        let (bytes, s) = replay(&input, &rules, threads, tmp.path());
        assert!(bytes == one, "{threads} threads differ from 1");
        assert_eq!(s["new_topics"]["opened"], 2);
        assert_eq!(s["new_topics"]["docs"], summary["new_topics"]["docs"]);
    }
}

/// Killed with SIGKILL at several moments and resumed from its
/// checkpoints each time, a replay writes the bytes of a run that never
/// stopped: the detector's sketches, recent complaints and open topics are
/// in the checkpoint (and its texts are masked there).
#[test]
fn a_replay_killed_and_resumed_gives_the_same_new_topics() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = topics::write_rules(tmp.path());
    let lines = topics::stream(11, 800);
    let input = topics::write_lines(tmp.path(), "in.jsonl", &lines);
    let (reference, _) = replay(&input, &rules, 1, tmp.path());
    assert_eq!(
        new_topic_lines(&reference)
            .iter()
            .filter(|a| a["state"] == "firing")
            .count(),
        2
    );
    let state = tmp.path().join("state");
    let crashed = tmp.path().join("crash.jsonl");
    let run = || {
        let mut c = Command::new(bin());
        c.args(["replay", "--quiet", "--threads", "1", "--input"])
            .arg(&input)
            .arg("--rules")
            .arg(&rules)
            .arg("--alerts")
            .arg(&crashed)
            .arg("--state-dir")
            .arg(&state)
            .args(["--checkpoint-every", "20000"]);
        c
    };
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut kills, mut resumed) = (0, 0);
    let mut saw_state = false;
    // A fast machine can finish the replay before three kills land: then
    // start over, from nothing, with shorter waits.
    for attempt in 0..4 {
        if attempt > 0 {
            if kills >= 3 {
                break;
            }
            let _ = std::fs::remove_dir_all(&state);
            let _ = std::fs::remove_file(&crashed);
            (kills, resumed, saw_state) = (0, 0, false);
        }
        loop {
            let mut child = run().spawn().unwrap();
            if kills < 6 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                std::thread::sleep(Duration::from_millis((60 + x % 240) >> attempt));
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                    let ck = state.join("replay.json");
                    if ck.exists() {
                        resumed += 1;
                        if !saw_state {
                            let text = std::fs::read_to_string(&ck).unwrap();
                            saw_state = text.contains("\"topics\"");
                            // Texts in the checkpoint are masked: no caller's
                            // number (each is in its complaint's text).
                            for l in lines.iter().take(20_000) {
                                let phone = l.split(r#""caller":""#).nth(1).unwrap();
                                let phone = phone.trim_end_matches("\"}");
                                assert!(!text.contains(phone), "{phone} in clear");
                            }
                        }
                    }
                    continue;
                }
            }
            assert!(child.wait().unwrap().success());
            break;
        }
    }
    assert!(kills >= 3, "the test must kill the replay ({kills} kills)");
    assert!(
        resumed >= 1 && saw_state,
        "a restart resumes from a checkpoint with the detector"
    );
    let crashed = std::fs::read(&crashed).unwrap();
    assert!(
        crashed == reference,
        "alerts after kills differ from an uninterrupted run"
    );
}

/// A flood of a million complaints of random, unique text (in the table's
/// cities and in as many made-up regions) keeps the detector within its
/// bound: sketches, recent complaints and what open topics hold, well
/// under 50 MB whatever the text; nothing of it is a topic.
#[test]
fn a_flood_of_a_million_unique_complaints_keeps_the_state_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = topics::write_rules(tmp.path());
    let input = tmp.path().join("flood.jsonl");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        let mut rng = topics::Rng::new(5);
        let mut text = String::new();
        for i in 0..1_000_000u64 {
            let ts = topics::DAY0 + (i as i64) * 170; // two days
            let region = if i % 2 == 0 {
                topics::CITIES[rng.below(6) as usize].0.to_owned()
            } else {
                format!("区{}", rng.below(1_000_000))
            };
            text.clear();
            let n = 20 + rng.below(60);
            for _ in 0..n {
                text.push(char::from_u32(0x4E00 + rng.below(0x51A5) as u32).unwrap());
            }
            writeln!(
                f,
                r#"{{"id":"F{i}","ts":{ts},"region":"{region}","text":"{text}","caller":"c{i}"}}"#
            )
            .unwrap();
        }
    }
    let (alerts, summary) = replay(&input, &rules, 1, tmp.path());
    let t = &summary["new_topics"];
    assert_eq!(t["docs"], 1_000_000, "{summary}");
    assert!(new_topic_lines(&alerts).is_empty(), "{summary}");
    let peak = t["peak_state_bytes"].as_u64().unwrap();
    assert!(peak > 1 << 20, "the flood fills the structures: {peak}");
    assert!(peak <= 50_000_000, "state {peak} bytes under the flood");
    eprintln!(
        "flood: detector state peak {:.1} MB, process peak RSS {} MB",
        peak as f64 / 1e6,
        summary["peak_rss_mb"]
    );
}
