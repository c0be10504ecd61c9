//! What new-topic detection (`[discovery]`) costs and finds: a field world
//! replayed with and without `[discovery]`, on plain rules and on section 8
//! rules, runs alternated and the least user CPU of each kept (the
//! development machine is shared and noisy); then a flood of a million
//! complaints of random unique text, for the detector's state and the
//! process's peak RSS.
//!
//! ```text
//! cargo bench --profile production --bench topics
//! HOTSPOT_BENCH_EVENTS=300000 HOTSPOT_BENCH_RUNS=3 cargo bench --bench topics
//! ```
//!
//! The field world is `hotspot gen --scenario field --seed 7` with
//! `HOTSPOT_BENCH_EVENTS` valid records (default 1M), kept under
//! `target/bench-data/`. Four rules files: the plain rules, the plain rules
//! with `[discovery]`, the section 8 rules without it, and the section 8
//! rules as written (with it). Each is replayed on one thread
//! `HOTSPOT_BENCH_RUNS` times (default 5), in turn. The table goes to
//! standard output and to `target/bench-topics.md`.

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

/// One replay: its summary.
fn replay(input: &Path, rules: &Path, alerts: &Path, threads: usize) -> serde_json::Value {
    let summary = alerts.with_extension("summary.json");
    let st = Command::new(BIN)
        .args(["replay", "--quiet", "--threads", &threads.to_string()])
        .arg("--rules")
        .arg(rules)
        .arg("--input")
        .arg(input)
        .arg("--alerts")
        .arg(alerts)
        .arg("--summary")
        .arg(&summary)
        .stdin(Stdio::null())
        .status()
        .expect("run hotspot replay");
    assert!(st.success(), "hotspot replay failed: {st}");
    serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn main() {
    if std::env::args().skip(1).any(|a| a != "--bench") {
        return;
    }
    let events = env_u64("HOTSPOT_BENCH_EVENTS", 1_000_000);
    let runs = env_u64("HOTSPOT_BENCH_RUNS", 5).max(1);
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
    // The four rules files.
    let s8_text = std::fs::read_to_string(&s8).unwrap();
    let at = s8_text
        .find("[discovery]")
        .expect("the field's section 8 rules have [discovery]");
    let dept_at = s8_text
        .find("[[department]]\nid = \"cs\"")
        .expect("the field's discovery department");
    let s8_off = dir.join(format!("{name}.s8-no-discovery.toml"));
    std::fs::write(&s8_off, &s8_text[..at]).unwrap();
    let plain_on = dir.join(format!("{name}.plain-discovery.toml"));
    std::fs::write(
        &plain_on,
        format!(
            "{}\n{}{}",
            std::fs::read_to_string(&plain).unwrap(),
            &s8_text[dept_at..at],
            &s8_text[at..]
        ),
    )
    .unwrap();
    let sets: [(&str, &Path); 4] = [
        ("plain", &plain),
        ("plain + discovery", &plain_on),
        ("section 8", &s8_off),
        ("section 8 + discovery", &s8),
    ];
    let mut best: Vec<Option<serde_json::Value>> = vec![None; sets.len()];
    for _ in 0..runs {
        for (k, (label, rules)) in sets.iter().enumerate() {
            let alerts = dir.join(format!("topics-bench.{k}.alerts"));
            let s = replay(&input, rules, &alerts, 1);
            let user = f(&s["cpu_user_s"]);
            eprintln!("{label}: {user:.2} s user, {:.2} s", f(&s["elapsed_s"]));
            if best[k].as_ref().is_none_or(|b| user < f(&b["cpu_user_s"])) {
                best[k] = Some(s);
            }
        }
    }
    let best: Vec<serde_json::Value> = best.into_iter().map(Option::unwrap).collect();
    let mut table = format!(
        "hotspot replay of a field world (`gen --scenario field --seed 7 --events {events}`), one thread, \
         {runs} runs of each rules file in turn, the least user CPU kept\n\n\
         | rules | user CPU s | replay s | peak RSS MB | firing lines | new-topic complaints | checks | detector state MB (peak) |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for ((label, _), s) in sets.iter().zip(&best) {
        let t = &s["new_topics"];
        table.push_str(&format!(
            "| {label} | {:.2} | {:.2} | {:.0} | {} | {} | {} | {} |\n",
            f(&s["cpu_user_s"]),
            f(&s["elapsed_s"]),
            f(&s["peak_rss_mb"]),
            s["alerts_firing"],
            t["docs"].as_u64().map_or("-".into(), |n| n.to_string()),
            t["checks"].as_u64().map_or("-".into(), |n| n.to_string()),
            t["peak_state_bytes"]
                .as_f64()
                .map_or("-".into(), |b| format!("{:.1}", b / 1e6)),
        ));
    }
    let user = |k: usize| f(&best[k]["cpu_user_s"]);
    table.push_str(&format!(
        "\nuser CPU: plain + discovery / plain {:.2}x; section 8 + discovery / section 8 {:.2}x; \
         section 8 + discovery / plain {:.2}x\n",
        user(1) / user(0),
        user(3) / user(2),
        user(3) / user(0)
    ));
    // Thread equality of the new topics' lines.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let many = dir.join("topics-bench.many.alerts");
    replay(&input, &s8, &many, cores.max(2));
    let one = std::fs::read(dir.join("topics-bench.3.alerts")).unwrap();
    assert!(
        one == std::fs::read(&many).unwrap(),
        "section 8 + discovery alerts differ between 1 and {} threads",
        cores.max(2)
    );
    table.push_str(&format!(
        "section 8 + discovery alerts byte-identical on 1 and {} threads\n",
        cores.max(2)
    ));
    let eval = Command::new(BIN)
        .arg("eval")
        .arg("--truth")
        .arg(&truth)
        .arg("--alerts")
        .arg(dir.join("topics-bench.3.alerts"))
        .output()
        .expect("run hotspot eval");
    table.push_str("\n```text\n");
    for l in String::from_utf8_lossy(&eval.stdout).lines().take(16) {
        table.push_str(l);
        table.push('\n');
    }
    table.push_str("```\n");

    // The flood: a million complaints of random unique text, half in the
    // table's cities, half in made-up regions, over two days.
    let flood = dir.join("topics-flood-1000000.jsonl");
    if !flood.is_file() {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&flood).unwrap());
        let cities = ["杭州", "宁波", "温州", "衢州", "银川", "中卫"];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..1_000_000u64 {
            let region = if i % 2 == 0 {
                cities[(next() % 6) as usize].to_string()
            } else {
                format!("区{}", next() % 1_000_000)
            };
            let text: String = (0..20 + next() % 60)
                .map(|_| char::from_u32(0x4E00 + (next() % 0x51A5) as u32).unwrap())
                .collect();
            writeln!(
                w,
                r#"{{"id":"F{i}","ts":{},"region":"{region}","text":"{text}","caller":"c{i}"}}"#,
                1_773_417_600_000i64 + i as i64 * 170
            )
            .unwrap();
        }
    }
    let s = replay(&flood, &plain_on, &dir.join("topics-flood.alerts"), 1);
    table.push_str(&format!(
        "\nflood of 1,000,000 unique random complaints (plain + discovery, one thread): detector state peak {:.1} MB \
         (bound 24 MiB + open topics), process peak RSS {:.0} MB, {:.2} s, {} new topics\n",
        f(&s["new_topics"]["peak_state_bytes"]) / 1e6,
        f(&s["peak_rss_mb"]),
        f(&s["elapsed_s"]),
        s["new_topics"]["opened"]
    ));
    println!("{table}");
    let _ = std::fs::write(target_dir().join("bench-topics.md"), table);
}
