//! Replay throughput of the real binary on generated traffic.
//!
//! ```text
//! cargo bench --profile production --bench replay
//! HOTSPOT_BENCH_EVENTS=1000000 cargo bench --profile production --bench replay        # one size
//! HOTSPOT_BENCH_EVENTS=200000,1000000 HOTSPOT_BENCH_RUNS=5 cargo bench --profile production --bench replay
//! ```
//!
//! For each size (default 1M and 5M events over 3 days, the 3.15 surge day
//! included) it makes the input once with `hotspot gen` (kept under
//! `target/bench-data/`, reused while the binary is unchanged), then runs
//! `hotspot replay --summary` on it `HOTSPOT_BENCH_RUNS` times (default 3)
//! and keeps the fastest run. `wall s` is the process from start to exit;
//! `replay s` and the rates come from the summary (`elapsed_s`,
//! `events_per_s`, `mb_per_s`: the replay's own clock around reading,
//! processing and writing, without start-up); CPU seconds are
//! the child's user + system time, read from this process's `cutime` and
//! `cstime` in `/proc/self/stat` before and after waiting for it; peak RSS is
//! the summary's `peak_rss_mb` (the child's `VmHWM`).
//!
//! The table goes to standard output and to `target/bench-replay.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;
use common::BIN;

/// The issue's minimal parse + normalise + scan program, the bar to beat.
#[path = "../examples/naive_scan.rs"]
mod naive;

fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().map(Path::to_path_buf).unwrap_or(tmp)
}

fn sizes() -> Vec<u64> {
    let v = std::env::var("HOTSPOT_BENCH_EVENTS").unwrap_or_default();
    let parsed: Vec<u64> = v
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .filter(|&n| n > 0)
        .collect();
    if parsed.is_empty() {
        vec![1_000_000, 5_000_000]
    } else {
        parsed
    }
}

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Clock ticks per second of `/proc` times (USER_HZ).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system CPU seconds of this process so far.
fn self_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based); rest starts at 3.
    let ticks: u64 = f[14 - 3].parse::<u64>().unwrap() + f[15 - 3].parse::<u64>().unwrap();
    ticks as f64 / clk_tck()
}

/// (cutime, cstime) of this process in ticks: the CPU time of the children
/// it has waited for.
fn children_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces) start at the
    // last ')'. cutime and cstime are fields 16 and 17 (1-based).
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state).
    (f[16 - 3].parse().unwrap(), f[17 - 3].parse().unwrap())
}

/// The generated input for `events` events over `days` days (made once).
fn input_for(events: u64, days: u32, dir: &Path) -> PathBuf {
    eprintln!("replay bench: input of {events} events over {days} days ...");
    let name = format!("gen-{events}-{days}d");
    let args = [
        "--seed".to_string(),
        "42".into(),
        "--quiet".into(),
        "--days".into(),
        days.to_string(),
        "--events".into(),
        events.to_string(),
        "--truth".into(),
        dir.join(format!("{name}.truth.json")).display().to_string(),
    ];
    common::generated(dir, &name, &args)
}

#[derive(Clone, Debug)]
struct Run {
    lines: u64,
    bytes: u64,
    /// The process, start to exit.
    wall_s: f64,
    /// The summary's `elapsed_s`: reading, processing, writing.
    replay_s: f64,
    events_per_s: f64,
    mb_per_s: f64,
    cpu_s: f64,
    user_s: f64,
    sys_s: f64,
    peak_rss_mb: f64,
    alerts_firing: u64,
    alerts_resolved: u64,
}

fn replay_once(input: &Path, dir: &Path, tck: f64, threads: usize) -> Run {
    let summary = dir.join("replay.summary.json");
    let alerts = dir.join(format!("replay.alerts.j{threads}.jsonl"));
    let (u0, s0) = children_ticks();
    let t = Instant::now();
    let st = Command::new(BIN)
        .args([
            "replay",
            "--quiet",
            "--threads",
            &threads.to_string(),
            "--input",
        ])
        .arg(input)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--summary")
        .arg(&summary)
        .stdin(Stdio::null())
        .status()
        .expect("run hotspot replay");
    let outer = t.elapsed().as_secs_f64();
    let (u1, s1) = children_ticks();
    assert!(st.success(), "hotspot replay failed: {st}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    let u = |k: &str| v[k].as_u64().unwrap_or(0);
    let (user_s, sys_s) = ((u1 - u0) as f64 / tck, (s1 - s0) as f64 / tck);
    Run {
        lines: u("lines"),
        bytes: u("bytes"),
        wall_s: outer,
        replay_s: f("elapsed_s"),
        events_per_s: f("events_per_s"),
        mb_per_s: f("mb_per_s"),
        cpu_s: user_s + sys_s,
        user_s,
        sys_s,
        peak_rss_mb: f("peak_rss_mb"),
        alerts_firing: u("alerts_firing"),
        alerts_resolved: u("alerts_resolved"),
    }
}

/// `HOTSPOT_BENCH_THREADS`: comma-separated `--threads` values (default
/// `1,2`: one core, then two).
fn thread_counts() -> Vec<usize> {
    std::env::var("HOTSPOT_BENCH_THREADS")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|x| x.trim().parse().ok())
                .collect::<Vec<usize>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![1, 2])
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` from criterion
    // habits means nothing here.
    if std::env::args().any(|a| a == "--list") {
        println!("replay: bench");
        return;
    }
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let runs = env_u32("HOTSPOT_BENCH_RUNS", 3).max(1);
    let days = env_u32("HOTSPOT_BENCH_DAYS", 3).max(1);
    let tck = clk_tck();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let threads = thread_counts();
    let mut rows = Vec::new();
    let mut naive_rows = Vec::new();
    for events in sizes() {
        let input = input_for(events, days, &dir);
        let mut first_alerts: Option<Vec<u8>> = None;
        for &j in &threads {
            let mut best: Option<Run> = None;
            for i in 0..runs {
                let r = replay_once(&input, &dir, tck, j);
                // Every thread count must give the same bytes.
                let alerts = std::fs::read(dir.join(format!("replay.alerts.j{j}.jsonl"))).unwrap();
                match &first_alerts {
                    None => first_alerts = Some(alerts),
                    Some(a) => assert!(*a == alerts, "--threads {j} changed the alerts"),
                }
                eprintln!(
                    "replay bench: {events} events, {j} threads, run {}/{runs}: {:.2} s wall, {:.2} s replay, {:.0} events/s, {:.1} MB/s, cpu {:.2} s, rss {:.1} MB",
                    i + 1,
                    r.wall_s,
                    r.replay_s,
                    r.events_per_s,
                    r.mb_per_s,
                    r.cpu_s,
                    r.peak_rss_mb
                );
                if best.as_ref().is_none_or(|b| r.wall_s < b.wall_s) {
                    best = Some(r);
                }
            }
            rows.push((events, j, best.unwrap()));
        }
        // The reference: the minimal program on the same file, best of the
        // same number of runs, its CPU time read from getrusage(2) of this
        // process (it runs in-process, one thread).
        let mut best: Option<(naive::NaiveRun, f64)> = None;
        for i in 0..runs {
            let c0 = self_cpu_s();
            let r = naive::naive_scan(&input).expect("naive scan");
            let cpu = self_cpu_s() - c0;
            eprintln!(
                "replay bench: {events} events, minimal serde_json + normalise + aho-corasick program, run {}/{runs}: {:.2} s, {:.0} events/s, cpu {:.2} s",
                i + 1,
                r.secs,
                r.events as f64 / r.secs,
                cpu
            );
            if best.as_ref().is_none_or(|(b, _)| r.secs < b.secs) {
                best = Some((r, cpu));
            }
        }
        naive_rows.push((events, best.unwrap()));
    }
    let mut md = String::new();
    md.push_str(&format!(
        "hotspot replay, embedded fixture rules, `hotspot gen --seed 42 --days {days}`, best of {runs}, {cores} cores; alerts byte-identical across thread counts\n\n"
    ));
    md.push_str("| events | threads | lines | MB | wall s | replay s | events/s | MB/s | CPU s (user+sys) | peak RSS MB | alerts (firing/resolved) |\n");
    md.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (events, j, r) in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.0} | {:.1} | {:.2} ({:.2}+{:.2}) | {:.1} | {}/{} |\n",
            events,
            j,
            r.lines,
            r.bytes as f64 / 1e6,
            r.wall_s,
            r.replay_s,
            r.events_per_s,
            r.mb_per_s,
            r.cpu_s,
            r.user_s,
            r.sys_s,
            r.peak_rss_mb,
            r.alerts_firing,
            r.alerts_resolved
        ));
    }
    md.push_str(
        "\nReference: the issue's minimal program (serde_json parse, normalise, one aho-corasick DFA scan; no validation, windows, alerts or output; `examples/naive_scan.rs`), on the same files, best of the same runs:\n\n",
    );
    md.push_str("| events | seconds | events/s | CPU s | hotspot 1 thread vs it |\n|---:|---:|---:|---:|---:|\n");
    for (events, (r, cpu)) in &naive_rows {
        let hot = rows
            .iter()
            .find(|(e, j, _)| e == events && *j == 1)
            .map(|(_, _, h)| format!("{:.2}×", h.events_per_s / (r.events as f64 / r.secs)))
            .unwrap_or_else(|| "—".into());
        md.push_str(&format!(
            "| {} | {:.2} | {:.0} | {:.2} | {} |\n",
            events,
            r.secs,
            r.events as f64 / r.secs,
            cpu,
            hot
        ));
    }
    print!("\n{md}");
    let out = target_dir().join("bench-replay.md");
    std::fs::write(&out, &md).unwrap();
    eprintln!("replay bench: table written to {}", out.display());
}
