//! hotspot against a real Fluvio cluster: `hotspot publish` to a
//! partitioned topic, `hotspot run` instances each owning partitions, their
//! alerts checked against per-partition replays, `kill -9` mid-stream, and
//! a backlog far larger than the consumer's `max_bytes` (the 0.50.1 gap
//! trap).
//!
//! The tests that need a cluster are `#[ignore]`d, so that a run without
//! one counts them as ignored, not as passed. Three use a running cluster
//! named by `HOTSPOT_FLUVIO_ENDPOINT` (e.g. `127.0.0.1:9003`;
//! `docs/fluvio.md` says how to start a loopback-only cluster); two start a
//! loopback cluster of their own, because they break it or need TLS, from
//! the `fluvio-run` binary named by `HOTSPOT_FLUVIO_RUN` (see
//! `own_cluster.rs`): one kills the SPU mid-run (the connection cut), one
//! runs everything over mutual TLS (and needs the `fluvio-tls` feature).
//! Run them with
//!
//! ```text
//! HOTSPOT_FLUVIO_ENDPOINT=127.0.0.1:9003 HOTSPOT_FLUVIO_RUN=/path/to/fluvio-run \
//!     cargo test --release --features fluvio-tls --test fluvio -- --include-ignored
//! ```
//!
//! (`.ci/run` does that when the variables are set). A cluster test that is
//! run without its variable fails. The other tests need no cluster: an
//! unreachable endpoint must make `/readyz` say why, never crash the
//! service, and settings are checked before anything connects.
#![cfg(feature = "fluvio")]

#[path = "fluvio/own_cluster.rs"]
mod own_cluster;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hotspot::fluvio_client::{FluvioCluster, FluvioTls, blocking};
use own_cluster::{OwnCluster, fluvio_run};
use support::*;

/// An endpoint (plaintext) or a [`FluvioCluster`] with its TLS.
trait AsCluster {
    fn cluster(&self) -> FluvioCluster;
}

impl AsCluster for str {
    fn cluster(&self) -> FluvioCluster {
        FluvioCluster::plain(self)
    }
}

impl AsCluster for String {
    fn cluster(&self) -> FluvioCluster {
        FluvioCluster::plain(self.as_str())
    }
}

impl AsCluster for FluvioCluster {
    fn cluster(&self) -> FluvioCluster {
        self.clone()
    }
}

/// The command-line flags that name `c`: `--endpoint`, `--tls`, ... for
/// `hotspot publish` (`prefix` ""), `--fluvio-endpoint`, `--fluvio-tls`,
/// ... for `hotspot run` (`prefix` "fluvio-").
fn cluster_flags(c: &FluvioCluster, prefix: &str) -> Vec<String> {
    let mut v = vec![format!("--{prefix}endpoint"), c.endpoint.clone()];
    if let FluvioTls::Verified {
        domain,
        ca_cert,
        cert,
        key,
    } = &c.tls
    {
        v.push(format!("--{prefix}tls"));
        for (flag, val) in [
            ("domain", domain.clone()),
            ("ca-cert", ca_cert.display().to_string()),
            ("cert", cert.display().to_string()),
            ("key", key.display().to_string()),
        ] {
            v.push(format!("--{prefix}tls-{flag}"));
            v.push(val);
        }
    }
    v
}

/// The cluster's endpoint. A test that needs it is `#[ignore]`d; run
/// without it (`--include-ignored`), it fails here.
fn endpoint() -> String {
    match std::env::var("HOTSPOT_FLUVIO_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e.trim().to_owned(),
        _ => panic!(
            "HOTSPOT_FLUVIO_ENDPOINT is not set: this test needs a Fluvio cluster (start a local cluster as docs/fluvio.md says, then HOTSPOT_FLUVIO_ENDPOINT=127.0.0.1:9003)"
        ),
    }
}

/// A result line on the process's stderr, past the harness's capture, in
/// one write, so that it does not interleave with other output.
fn say(mut line: String) {
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A topic name unique to this run and test.
fn topic(test: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 1_000_000_000;
    format!("hs-{test}-{}-{t}", std::process::id())
}

// The cluster calls go through `fluvio_client::blocking`: awaiting the
// async ones here would compile them, and the fluvio client under them,
// into this test binary again (minutes of `cargo test --release`).

fn create_topic(c: &(impl AsCluster + ?Sized), name: &str, partitions: u32) {
    assert!(
        blocking::ensure_topic(&c.cluster(), name, partitions).unwrap(),
        "topic {name} already existed"
    );
}

fn delete_topic(c: &(impl AsCluster + ?Sized), name: &str) {
    let _ = blocking::delete_topic(&c.cluster(), name);
}

/// Every record of a partition, in offset order (gaps repaired).
fn read_back(
    c: &(impl AsCluster + ?Sized),
    name: &str,
    partition: u32,
) -> hotspot::fluvio_client::ReadBack {
    blocking::read_partition(&c.cluster(), name, partition, None).unwrap()
}

/// `hotspot publish`; returns its last stdout line.
fn publish(
    cluster: &(impl AsCluster + ?Sized),
    name: &str,
    input: &Path,
    create: Option<u32>,
) -> String {
    let mut c = Command::new(bin());
    c.args(["publish", "--quiet"])
        .args(cluster_flags(&cluster.cluster(), ""))
        .args(["--topic", name, "--input"])
        .arg(input);
    if let Some(n) = create {
        c.args(["--create-partitions", &n.to_string()]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "hotspot publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `hotspot replay` of `input` with the conformance rules, without the
/// end-of-input resolutions (a live service has no end of input).
fn replay(input: &Path, out: &Path) -> Vec<String> {
    let st = Command::new(bin())
        .args(["replay", "--quiet", "--rules"])
        .arg(conformance().join("rules.toml"))
        .arg("--input")
        .arg(input)
        .arg("--alerts")
        .arg(out)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"end_of_input\":true"))
        .map(str::to_owned)
        .collect()
}

/// Writes a partition's records as a JSON Lines file.
fn write_partition(records: &[(i64, Vec<u8>)], path: &Path) {
    let mut buf = Vec::new();
    for (_, v) in records {
        buf.extend_from_slice(v);
        buf.push(b'\n');
    }
    std::fs::write(path, buf).unwrap();
}

fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A counter from `/metrics`, summed over its label sets.
fn metric(h: &Hotspot, name: &str) -> f64 {
    let (_, text) = get(h.addr, "/metrics");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn lines_processed(h: &Hotspot) -> u64 {
    let (code, text) = get(h.addr, "/v1/stats");
    if code != 200 {
        return 0;
    }
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["stats"]["lines"].as_u64())
        .unwrap_or(0)
}

/// (alert_id, state) of every line of a topic, with how often each occurs.
fn topic_alerts(
    c: &(impl AsCluster + ?Sized),
    name: &str,
    partitions: u32,
) -> BTreeMap<(String, String), u32> {
    let mut m = BTreeMap::new();
    for p in 0..partitions {
        for (_, v) in read_back(c, name, p).records {
            let a: serde_json::Value = serde_json::from_slice(&v).unwrap();
            *m.entry((
                a["alert_id"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            ))
            .or_insert(0) += 1;
        }
    }
    m
}

fn keys_of(lines: &[String]) -> BTreeSet<(String, String)> {
    lines
        .iter()
        .map(|l| {
            let a: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                a["alert_id"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

struct Instance {
    args: Vec<String>,
    alerts: PathBuf,
}

impl Instance {
    fn new(
        dir: &Path,
        name: &str,
        cluster: &(impl AsCluster + ?Sized),
        topic: &str,
        partitions: &str,
        alerts_topic: Option<&str>,
        extra: &[&str],
    ) -> Instance {
        let alerts = dir.join(format!("{name}.alerts.jsonl"));
        let mut args: Vec<String> = vec![
            "--rules".into(),
            conformance().join("rules.toml").display().to_string(),
            "--state-dir".into(),
            dir.join(format!("{name}.state")).display().to_string(),
            "--alerts".into(),
            alerts.display().to_string(),
            "--idle-timeout".into(),
            "off".into(),
            "--fluvio-topic".into(),
            topic.into(),
            "--partitions".into(),
            partitions.into(),
            "--fluvio-start".into(),
            "beginning".into(),
        ];
        args.extend(cluster_flags(&cluster.cluster(), "fluvio-"));
        if let Some(a) = alerts_topic {
            args.extend(["--fluvio-alerts-topic".into(), a.into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Instance { args, alerts }
    }

    fn start(&self, log: &Path, wait: Wait) -> Hotspot {
        let a: Vec<&str> = self.args.iter().map(String::as_str).collect();
        Hotspot::start_with(&a, log, wait)
    }
}

/// Waits until `path` has `n` lines and keeps them for a moment.
fn wait_lines(path: &Path, n: usize, timeout: Duration) {
    wait_until(&format!("{n} lines in {}", path.display()), timeout, || {
        file_lines(path).len() >= n
    });
    std::thread::sleep(Duration::from_millis(700));
}

#[test]
#[ignore = "needs a Fluvio cluster (HOTSPOT_FLUVIO_ENDPOINT / HOTSPOT_FLUVIO_RUN)"]
fn two_instances_each_owning_a_partition_alert_like_per_partition_replays() {
    let ep = endpoint();
    let tmp = tempfile::tempdir().unwrap();
    let t = topic("pair");
    let at = format!("{t}-alerts");
    let traffic = conformance().join("traffic.jsonl");
    let summary = publish(&ep, &t, &traffic, Some(2));
    assert!(summary.starts_with("published 20000 records"), "{summary}");
    create_topic(&ep, &at, 2);

    // Keyed by region: every region in exactly one partition, in file order.
    let parts: Vec<_> = (0..2).map(|p| read_back(&ep, &t, p)).collect();
    let mut region_part: BTreeMap<String, u32> = BTreeMap::new();
    for (p, rb) in parts.iter().enumerate() {
        for (_, v) in &rb.records {
            let r: serde_json::Value = serde_json::from_slice(v).unwrap();
            let region = r["region"].as_str().unwrap().to_owned();
            let prev = region_part.insert(region.clone(), p as u32);
            assert!(
                prev.is_none_or(|q| q == p as u32),
                "{region} in two partitions"
            );
        }
    }
    let n0 = parts[0].records.len();
    let n1 = parts[1].records.len();
    assert_eq!(n0 + n1, 20_000);
    assert!(
        n0 > 0 && n1 > 0,
        "both partitions hold records: {n0} + {n1}"
    );

    let a = Instance::new(tmp.path(), "a", &ep, &t, "0", Some(&at), &[]);
    let b = Instance::new(tmp.path(), "b", &ep, &t, "1", Some(&at), &[]);
    let ha = a.start(&tmp.path().join("a.log"), Wait::Ready);
    let hb = b.start(&tmp.path().join("b.log"), Wait::Ready);

    let mut all_expected = Vec::new();
    for (p, (inst, h)) in [(&a, &ha), (&b, &hb)].into_iter().enumerate() {
        let input = tmp.path().join(format!("p{p}.jsonl"));
        write_partition(&parts[p].records, &input);
        let want = replay(&input, &tmp.path().join(format!("p{p}.replay.jsonl")));
        assert!(!want.is_empty(), "partition {p} raises alerts");
        wait_until("all records consumed", Duration::from_secs(60), || {
            lines_processed(h) as usize >= parts[p].records.len()
        });
        wait_lines(&inst.alerts, want.len(), Duration::from_secs(30));
        assert_eq!(
            file_lines(&inst.alerts),
            want,
            "instance {p}: the alerts of partition {p} are those of replaying it"
        );
        assert_eq!(lines_processed(h) as usize, parts[p].records.len());
        all_expected.extend(want);
    }
    // The alerts topic got every line of both instances exactly once.
    wait_until("alerts topic", Duration::from_secs(30), || {
        topic_alerts(&ep, &at, 2).values().sum::<u32>() as usize >= all_expected.len()
    });
    let got = topic_alerts(&ep, &at, 2);
    assert!(got.values().all(|&n| n == 1), "no line twice in the topic");
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        keys_of(&all_expected)
    );
    say(format!(
        "fluvio pair: partitions {n0} + {n1} records, {} alert lines, equal to the per-partition replays",
        all_expected.len()
    ));
    drop((ha, hb));
    delete_topic(&ep, &t);
    delete_topic(&ep, &at);
}

#[test]
#[ignore = "needs a Fluvio cluster (HOTSPOT_FLUVIO_ENDPOINT / HOTSPOT_FLUVIO_RUN)"]
fn kill_9_mid_stream_then_resume_gives_the_same_alert_stream() {
    let ep = endpoint();
    let tmp = tempfile::tempdir().unwrap();
    let t = topic("kill");
    let at = format!("{t}-alerts");
    create_topic(&ep, &t, 2);
    create_topic(&ep, &at, 2);
    let extra = [
        "--checkpoint-interval",
        "300ms",
        "--retry-initial",
        "50ms",
        "--retry-max",
        "500ms",
    ];
    let a = Instance::new(tmp.path(), "a", &ep, &t, "0", Some(&at), &extra);
    let b = Instance::new(tmp.path(), "b", &ep, &t, "1", Some(&at), &extra);
    let mut ha = a.start(&tmp.path().join("a0.log"), Wait::Ready);
    let hb = b.start(&tmp.path().join("b.log"), Wait::Ready);

    // Publish in 25 chunks while instance a is killed again and again.
    let text = std::fs::read_to_string(conformance().join("traffic.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let chunks: Vec<PathBuf> = lines
        .chunks(800)
        .enumerate()
        .map(|(i, c)| {
            let p = tmp.path().join(format!("chunk{i}.jsonl"));
            std::fs::write(&p, c.join("\n") + "\n").unwrap();
            p
        })
        .collect();
    let (ep2, t2) = (ep.clone(), t.clone());
    let publisher = std::thread::spawn(move || {
        for c in &chunks {
            publish(&ep2, &t2, c, None);
            std::thread::sleep(Duration::from_millis(120));
        }
    });
    let mut kills = 0;
    // Deterministic, uneven intervals; every third restart is killed
    // during recovery, before it is ready.
    let waits = [350u64, 610, 90, 480, 770, 260, 530, 140, 690, 410];
    let mut i = 0;
    while !publisher.is_finished() || kills < 6 {
        std::thread::sleep(Duration::from_millis(waits[i % waits.len()]));
        ha.kill9();
        kills += 1;
        i += 1;
        let log = tmp.path().join(format!("a{i}.log"));
        if i % 3 == 0 {
            let mut early = a.start(&log, Wait::Nothing);
            std::thread::sleep(Duration::from_millis(40 + 30 * (i as u64 % 4)));
            early.kill9();
            kills += 1;
        }
        ha = a.start(&log, Wait::Ready);
    }
    publisher.join().unwrap();

    // Expected: each partition replayed on its own.
    let mut expected = Vec::new();
    for (p, (inst, h)) in [(&a, &ha), (&b, &hb)].into_iter().enumerate() {
        let rb = read_back(&ep, &t, p as u32);
        let input = tmp.path().join(format!("p{p}.jsonl"));
        write_partition(&rb.records, &input);
        let want = replay(&input, &tmp.path().join(format!("p{p}.replay.jsonl")));
        wait_lines(&inst.alerts, want.len(), Duration::from_secs(60));
        let got = file_lines(&inst.alerts);
        assert_eq!(
            got,
            want,
            "instance {p} ({} kills): alerts file equals the partition's replay",
            if p == 0 { kills } else { 0 }
        );
        let _ = h;
        expected.extend(want);
    }
    wait_until("alerts topic", Duration::from_secs(60), || {
        topic_alerts(&ep, &at, 2).values().sum::<u32>() as usize >= expected.len()
    });
    std::thread::sleep(Duration::from_millis(700));
    let got = topic_alerts(&ep, &at, 2);
    let want = keys_of(&expected);
    let duplicated: u32 = got.values().map(|n| n - 1).sum();
    let lost = want.iter().filter(|k| !got.contains_key(*k)).count();
    let extra = got.keys().filter(|k| !want.contains(*k)).count();
    say(format!(
        "fluvio kill -9: {kills} kills survived, {} alert lines compared, lost {lost}, duplicated {duplicated}, unexpected {extra}",
        expected.len()
    ));
    assert_eq!((lost, duplicated, extra), (0, 0, 0));
    assert!(kills >= 6);
    drop((ha, hb));
    delete_topic(&ep, &t);
    delete_topic(&ep, &at);
}

#[test]
#[ignore = "needs a Fluvio cluster (HOTSPOT_FLUVIO_ENDPOINT / HOTSPOT_FLUVIO_RUN)"]
fn a_backlog_far_larger_than_max_bytes_arrives_without_gaps_or_repeats() {
    let ep = endpoint();
    let tmp = tempfile::tempdir().unwrap();
    let t = topic("backlog");
    let traffic = conformance().join("traffic.jsonl");
    // 5.3 MB in one partition, read 16 KiB per fetch: ~330 fetches.
    publish(&ep, &t, &traffic, Some(1));
    let max_bytes = 16 << 10;

    // The bare client, for the record: how many gaps it leaves.
    let offsets = blocking::bare_offsets(
        &ep.cluster(),
        &t,
        0,
        max_bytes,
        20_000,
        Duration::from_secs(3),
        Duration::from_secs(20),
    )
    .unwrap();
    let (mut next, mut gaps, mut missing) = (0i64, 0u64, 0i64);
    for &o in &offsets {
        if o > next {
            gaps += 1;
            missing += o - next;
        }
        next = o + 1;
    }
    let raw = (gaps, missing, offsets.len() as u64);

    let inst = Instance::new(
        tmp.path(),
        "big",
        &ep,
        &t,
        "0",
        None,
        &["--fluvio-max-bytes", "16KiB"],
    );
    let h = inst.start(&tmp.path().join("big.log"), Wait::Ready);
    wait_until("20000 records", Duration::from_secs(120), || {
        lines_processed(&h) >= 20_000
    });
    let want = replay(&traffic, &tmp.path().join("replay.jsonl"));
    wait_lines(&inst.alerts, want.len(), Duration::from_secs(30));
    assert_eq!(lines_processed(&h), 20_000, "every record once");
    assert_eq!(file_lines(&inst.alerts), want);
    let gaps = metric(&h, "hotspot_source_gaps_total") as u64;
    let reread = metric(&h, "hotspot_source_reread_records_total") as u64;
    let dups = metric(&h, "hotspot_source_duplicates_total") as u64;
    say(format!(
        "fluvio backlog (20000 records, 5.3 MB, max_bytes 16 KiB): bare client got {} records with {} gaps ({} records missing); hotspot saw {gaps} gaps, re-read {reread} records, dropped {dups} repeats; engine got 20000 records, 0 gaps, 0 duplicates, alerts equal to replay",
        raw.2, raw.0, raw.1
    ));
    drop(h);
    delete_topic(&ep, &t);
}

#[test]
fn an_unreachable_cluster_is_reported_not_fatal() {
    // No cluster needed: nothing listens on this port.
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let ep = format!("127.0.0.1:{port}");
    let args = [
        "--fluvio-endpoint",
        &ep,
        "--fluvio-topic",
        "complaints",
        "--partitions",
        "0,1",
    ];
    let h = Hotspot::start_with(&args, &tmp.path().join("log"), Wait::Listening);
    wait_until("readyz to name the source", Duration::from_secs(20), || {
        let (code, body) = get(h.addr, "/readyz");
        code == 503 && body.contains("fluvio:complaints/0") && body.contains("cannot connect")
    });
    let (_, m) = get(h.addr, "/metrics");
    assert!(
        m.contains("hotspot_source_up{source=\"fluvio:complaints/1\"} 0"),
        "{m}"
    );
    // Still serving, still alive after several retries.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(h.addr, "/healthz").0, 200);
    let stats = h.json("/v1/stats");
    assert_eq!(stats["sources"]["fluvio:complaints/0"]["up"], false);
    let mut h = h;
    let (code, _) = h.terminate();
    assert_eq!(code, Some(0), "SIGTERM still exits 0");
}

#[test]
fn fluvio_settings_are_checked_before_anything_connects() {
    let out = Command::new(bin())
        .args([
            "run",
            "--fluvio-topic",
            "complaints",
            "--fluvio-endpoint",
            "127.0.0.1:9003",
            "--fluvio-tls",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("TLS"), "{e}");
    let out = Command::new(bin())
        .args(["run", "--fluvio-topic", "complaints"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no endpoint"));
    let out = Command::new(bin())
        .args(["run", "--partitions", "0,x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Complete TLS settings: a build without a TLS backend refuses them at
    // start, naming the feature, rather than connect in plaintext.
    let tmp = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = ["run", "--fluvio-topic", "complaints", "--fluvio-tls"]
        .map(String::from)
        .into();
    for (flag, file) in [("ca-cert", "ca.crt"), ("cert", "c.crt"), ("key", "c.key")] {
        let p = tmp.path().join(file);
        std::fs::write(&p, "pem").unwrap();
        args.push(format!("--fluvio-tls-{flag}"));
        args.push(p.display().to_string());
    }
    // Nothing listens there: a build with TLS gets as far as connecting.
    args.extend([
        "--fluvio-endpoint".into(),
        format!("127.0.0.1:{}", free_port()),
    ]);
    args.extend(["--listen".into(), format!("127.0.0.1:{}", free_port())]);
    let mut child = Command::new(bin())
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if cfg!(feature = "fluvio-tls") {
        // Accepted: it runs (and reports the unreachable cluster).
        std::thread::sleep(Duration::from_secs(2));
        assert!(child.try_wait().unwrap().is_none(), "TLS accepted");
        let _ = child.kill();
        let _ = child.wait();
    } else {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            e.contains("fluvio-tls") && e.contains("cargo build --release --features fluvio-tls"),
            "{e}"
        );
    }
}

/// Waits for `/readyz` to answer `code` with `needle` in its body.
fn wait_ready(h: &Hotspot, code: u16, needle: &str, timeout: Duration) {
    wait_until(&format!("/readyz {code} with {needle:?}"), timeout, || {
        let (c, body) = get(h.addr, "/readyz");
        c == code && body.contains(needle)
    });
}

/// The first and the second half of the conformance traffic, as files.
fn halves(dir: &Path) -> (PathBuf, PathBuf, usize) {
    let text = std::fs::read_to_string(conformance().join("traffic.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mid = lines.len() / 2;
    let (a, b) = (dir.join("first.jsonl"), dir.join("second.jsonl"));
    std::fs::write(&a, lines[..mid].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[mid..].join("\n") + "\n").unwrap();
    (a, b, lines.len())
}

#[test]
#[ignore = "needs a Fluvio cluster (HOTSPOT_FLUVIO_ENDPOINT / HOTSPOT_FLUVIO_RUN)"]
fn a_connection_cut_mid_run_is_reported_then_resumed_at_the_exact_offset() {
    let run = fluvio_run();
    let mut own = OwnCluster::start(&run, false);
    let c = own.cluster.clone();
    let tmp = tempfile::tempdir().unwrap();
    let (t, at) = ("cut", "cut-alerts");
    create_topic(&c, t, 1);
    create_topic(&c, at, 1);
    let (first, second, total) = halves(tmp.path());
    publish(&c, t, &first, None);
    let inst = Instance::new(
        tmp.path(),
        "cut",
        &c,
        t,
        "0",
        Some(at),
        &["--retry-initial", "50ms", "--retry-max", "500ms"],
    );
    let h = inst.start(&tmp.path().join("cut.log"), Wait::Ready);
    wait_until("the first half consumed", Duration::from_secs(60), || {
        lines_processed(&h) as usize >= total / 2
    });

    // Cut: every connection to the SPU drops at once.
    let cut = Instant::now();
    own.kill_spu();
    wait_ready(
        &h,
        503,
        "source fluvio:cut/0 is down",
        Duration::from_secs(30),
    );
    let noticed = cut.elapsed();
    let (_, m) = get(h.addr, "/metrics");
    assert!(
        m.contains("hotspot_source_up{source=\"fluvio:cut/0\"} 0"),
        "{m}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        get(h.addr, "/healthz").0,
        200,
        "alive while the cluster is away"
    );
    assert_eq!(h.json("/v1/stats")["sources"]["fluvio:cut/0"]["up"], false);

    // Back: the source reconnects on its own and resumes at the exact
    // offset; the second half arrives after the cut.
    own.start_spu();
    wait_ready(&h, 200, "true", Duration::from_secs(60));
    let back = cut.elapsed();
    publish(&c, t, &second, None);
    wait_until("all records consumed", Duration::from_secs(60), || {
        lines_processed(&h) as usize >= total
    });
    let want = replay(
        &conformance().join("traffic.jsonl"),
        &tmp.path().join("replay.jsonl"),
    );
    wait_lines(&inst.alerts, want.len(), Duration::from_secs(30));
    assert_eq!(lines_processed(&h) as usize, total, "every record once");
    assert_eq!(
        file_lines(&inst.alerts),
        want,
        "alerts equal the replay of the whole traffic"
    );
    assert!(metric(&h, "hotspot_source_reconnects_total") >= 1.0);
    // The alerts topic, written through the same cut, has every line once.
    wait_until("alerts topic", Duration::from_secs(60), || {
        topic_alerts(&c, at, 1).values().sum::<u32>() as usize >= want.len()
    });
    std::thread::sleep(Duration::from_millis(700));
    let got = topic_alerts(&c, at, 1);
    assert!(got.values().all(|&n| n == 1), "no alert line twice");
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), keys_of(&want));
    say(format!(
        "fluvio connection cut: SPU killed after {} records; /readyz 503 after {:.1} s, ready again {:.1} s after the cut; {total} records each processed once, {} alert lines equal to the replay, each once in the topic",
        total / 2,
        noticed.as_secs_f64(),
        back.as_secs_f64(),
        want.len()
    ));
}

#[test]
#[ignore = "needs a Fluvio cluster (HOTSPOT_FLUVIO_ENDPOINT / HOTSPOT_FLUVIO_RUN) and the fluvio-tls feature"]
fn a_tls_cluster_carries_complaints_and_alerts_and_refuses_strangers() {
    if !cfg!(feature = "fluvio-tls") {
        panic!(
            "this build has no Fluvio TLS: cargo test --release --features fluvio-tls --test fluvio -- --include-ignored"
        );
    }
    let run = fluvio_run();
    let own = OwnCluster::start(&run, true);
    let c = own.cluster.clone();
    let tmp = tempfile::tempdir().unwrap();
    let try_publish = |flags: Vec<String>| {
        let t0 = Instant::now();
        let out = Command::new(bin())
            .args([
                "publish",
                "--quiet",
                "--topic",
                "tls",
                "--input",
                "/dev/null",
            ])
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "a stranger is refused");
        assert!(t0.elapsed() < Duration::from_secs(15), "refused promptly");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Plaintext at the TLS listener.
    let e = try_publish(vec!["--endpoint".into(), c.endpoint.clone()]);
    assert!(
        e.contains("cannot connect to Fluvio") && e.contains("--fluvio-tls"),
        "{e}"
    );
    // A cluster certificate from a CA hotspot does not trust.
    let other = own_cluster::make_certs(&tmp.path().join("other"), "some other CA");
    let mut wrong_ca = c.clone();
    if let FluvioTls::Verified { ca_cert, .. } = &mut wrong_ca.tls {
        *ca_cert = other.ca.clone();
    }
    let e = try_publish(cluster_flags(&wrong_ca, ""));
    assert!(e.contains("invalid peer certificate"), "{e}");
    // A client certificate the cluster does not trust.
    let mut wrong_client = c.clone();
    if let FluvioTls::Verified { cert, key, .. } = &mut wrong_client.tls {
        *cert = other.client_cert.clone();
        *key = other.client_key.clone();
    }
    let e = try_publish(cluster_flags(&wrong_client, ""));
    assert!(e.contains("rejected hotspot's certificate"), "{e}");

    // The real thing, over TLS end to end: publish, consume, alerts topic.
    let traffic = conformance().join("traffic.jsonl");
    let summary = publish(&c, "tls", &traffic, Some(1));
    assert!(summary.starts_with("published 20000 records"), "{summary}");
    create_topic(&c, "tls-alerts", 1);
    let inst = Instance::new(tmp.path(), "tls", &c, "tls", "0", Some("tls-alerts"), &[]);
    let h = inst.start(&tmp.path().join("tls.log"), Wait::Ready);
    wait_until("all records consumed", Duration::from_secs(60), || {
        lines_processed(&h) >= 20_000
    });
    let want = replay(&traffic, &tmp.path().join("replay.jsonl"));
    wait_lines(&inst.alerts, want.len(), Duration::from_secs(30));
    assert_eq!(lines_processed(&h), 20_000);
    assert_eq!(file_lines(&inst.alerts), want);
    wait_until("alerts topic", Duration::from_secs(30), || {
        topic_alerts(&c, "tls-alerts", 1).values().sum::<u32>() as usize >= want.len()
    });
    let got = topic_alerts(&c, "tls-alerts", 1);
    assert!(got.values().all(|&n| n == 1));
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), keys_of(&want));
    assert!(
        h.log_text().contains("(TLS, fluvio.local)"),
        "the log says the connection is TLS"
    );
    say(format!(
        "fluvio TLS (mutual, rustls): plaintext, unknown-CA and unknown-client connections refused; 20000 records published and consumed, {} alert lines equal to the replay, each once in the alerts topic",
        want.len()
    ));
}
