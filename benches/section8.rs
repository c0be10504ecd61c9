//! What section 8 costs and finds: replay of a field world with plain rules
//! and with section 8 rules (regions, provinces, surges), side by side.
//!
//! ```text
//! cargo bench --profile production --bench section8
//! HOTSPOT_BENCH_EVENTS=5000000 HOTSPOT_BENCH_RUNS=3 cargo bench --profile production --bench section8
//! ```
//!
//! It makes a field world once (`hotspot gen --scenario field --seed 7`,
//! `HOTSPOT_BENCH_EVENTS` valid records, default 1M, with its two rules
//! files; kept under `target/bench-data/`), then replays it with each rules
//! file on one thread and on every core, `HOTSPOT_BENCH_RUNS` times
//! (default 3), keeping the fastest run. It reports the replay's own clock
//! (`elapsed_s` of the summary), the ratio section 8 / plain (the budget is
//! 1.5), the peak RSS (`peak_rss_mb`: the budget is 100 MB), checks that
//! the section 8 alerts are byte-identical on one thread and on all, and
//! prints `hotspot eval` of both. The table goes to standard output and to
//! `target/bench-section8.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::BIN;

fn target_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(Path::to_path_buf).unwrap_or(tmp)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

struct Run {
    replay_s: f64,
    peak_rss_mb: f64,
    firing: u64,
}

fn replay(input: &Path, rules: &Path, alerts: &Path, summary: &Path, threads: usize) -> Run {
    let st = Command::new(BIN)
        .args(["replay", "--quiet", "--threads", &threads.to_string()])
        .arg("--rules")
        .arg(rules)
        .arg("--input")
        .arg(input)
        .arg("--alerts")
        .arg(alerts)
        .arg("--summary")
        .arg(summary)
        .stdin(Stdio::null())
        .status()
        .expect("run hotspot replay");
    assert!(st.success(), "hotspot replay failed: {st}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    Run {
        replay_s: v["elapsed_s"].as_f64().unwrap_or(0.0),
        peak_rss_mb: v["peak_rss_mb"].as_f64().unwrap_or(0.0),
        firing: v["alerts_firing"].as_u64().unwrap_or(0),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (a test filter) skips.
    if std::env::args().skip(1).any(|a| a != "--bench") {
        return;
    }
    let events = env_u64("HOTSPOT_BENCH_EVENTS", 1_000_000);
    let runs = env_u64("HOTSPOT_BENCH_RUNS", 3).max(1);
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("field-{events}");
    let truth = dir.join(format!("{name}.truth.json"));
    let s8 = dir.join(format!("{name}.rules.toml"));
    let plain = dir.join(format!("{name}.plain.toml"));
    let args: Vec<String> = [
        "--scenario",
        "field",
        "--seed",
        "7",
        "--quiet",
        "--events",
        &events.to_string(),
        "--truth",
        &truth.display().to_string(),
        "--rules-out",
        &s8.display().to_string(),
        "--plain-rules-out",
        &plain.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let input = common::generated(&dir, &name, &args);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut table = format!(
        "hotspot replay of a field world (`gen --scenario field --seed 7 --events {events}`), best of {runs}, {cores} cores\n\n\
         | rules | threads | replay s | peak RSS MB | firing lines |\n|---|---|---|---|---|\n"
    );
    let mut best = std::collections::BTreeMap::new();
    for (label, rules) in [("plain", &plain), ("section 8", &s8)] {
        for threads in [1, cores] {
            let mut fastest: Option<Run> = None;
            for _ in 0..runs {
                let r = replay(
                    &input,
                    rules,
                    &dir.join(format!(
                        "s8bench.{}.t{threads}.alerts",
                        label.replace(' ', "")
                    )),
                    &dir.join("s8bench.summary.json"),
                    threads,
                );
                if fastest.as_ref().is_none_or(|f| r.replay_s < f.replay_s) {
                    fastest = Some(r);
                }
            }
            let r = fastest.unwrap();
            table.push_str(&format!(
                "| {label} | {threads} | {:.2} | {:.0} | {} |\n",
                r.replay_s, r.peak_rss_mb, r.firing
            ));
            best.insert((label, threads), r.replay_s);
        }
    }
    for threads in [1, cores] {
        table.push_str(&format!(
            "\nsection 8 / plain, {threads} thread(s): {:.2}x",
            best[&("section 8", threads)] / best[&("plain", threads)]
        ));
    }
    let one = std::fs::read(dir.join("s8bench.section8.t1.alerts")).unwrap();
    let all = std::fs::read(dir.join(format!("s8bench.section8.t{cores}.alerts"))).unwrap();
    assert!(
        one == all,
        "section 8 alerts differ between 1 and {cores} threads"
    );
    table.push_str(&format!(
        "\nsection 8 alerts byte-identical on 1 and {cores} threads\n"
    ));
    let eval = Command::new(BIN)
        .arg("eval")
        .arg("--truth")
        .arg(&truth)
        .arg("--alerts")
        .arg(dir.join("s8bench.plain.t1.alerts"))
        .arg("--alerts")
        .arg(dir.join("s8bench.section8.t1.alerts"))
        .output()
        .expect("run hotspot eval");
    let eval = String::from_utf8_lossy(&eval.stdout);
    table.push_str("\n```text\n");
    for l in eval.lines().take(14) {
        table.push_str(l);
        table.push('\n');
    }
    table.push_str("```\n");
    println!("{table}");
    let _ = std::fs::write(target_dir().join("bench-section8.md"), table);
}
