//! Throughput and latency against a real Fluvio cluster, for the figures in
//! `docs/fluvio.md`:
//!
//! 1. Fluvio's own producer and consumer (the fluvio crate, no hotspot):
//!    records/s to and from one partition — the ceiling for what follows.
//! 2. publish → consume → alert: `hotspot publish` of generated traffic to a
//!    2-partition topic while `hotspot run` consumes it, for one instance
//!    (both partitions) and for two (one partition each): records/s from
//!    the first record sent to the last one processed.
//! 3. Latency from publish to alert: one record that opens an alert,
//!    produced and acknowledged, until its line is in the alerts file.
//!
//! ```text
//! HOTSPOT_FLUVIO_ENDPOINT=127.0.0.1:9003 cargo bench --profile production --bench fluvio_throughput
//! ```
//!
//! `HOTSPOT_BENCH_RECORDS` (default 200000; `hotspot gen --seed 1 --days 1`) sets the traffic size. Without
//! the endpoint it prints a SKIP line and exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fluvio::{Offset, TopicProducerConfigBuilder};
use futures_util::StreamExt;
use hotspot::fluvio_client;

const BIN: &str = env!("CARGO_BIN_EXE_hotspot");

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn topic(what: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 1_000_000_000)
        .unwrap_or(0);
    format!("bench-{what}-{}-{t}", std::process::id())
}

fn delete(ep: &str, name: &str) {
    rt().block_on(async {
        if let Ok(f) = fluvio_client::connect(&fluvio_client::FluvioCluster::plain(ep)).await {
            let _ = f
                .admin()
                .await
                .delete::<fluvio::metadata::topic::TopicSpec>(name.to_owned())
                .await;
        }
    });
}

/// Fluvio's own producer: records/s into one partition (publish's settings).
fn raw_produce(ep: &str, name: &str, lines: &[Vec<u8>]) -> anyhow::Result<f64> {
    rt().block_on(async {
        let f = fluvio_client::connect(&fluvio_client::FluvioCluster::plain(ep)).await?;
        fluvio_client::ensure_topic(&f, name, 1).await?;
        let cfg = TopicProducerConfigBuilder::default()
            .batch_size(512 << 10)
            .max_request_size(1 << 20)
            .linger(Duration::from_millis(20))
            .build()?;
        let p = f.topic_producer_with_config(name.to_owned(), cfg).await?;
        let t0 = Instant::now();
        let mut outs = Vec::new();
        for l in lines {
            outs.push(p.send(fluvio::RecordKey::NULL, l.clone()).await?);
        }
        p.flush().await?;
        for o in outs {
            o.wait().await?;
        }
        Ok(lines.len() as f64 / t0.elapsed().as_secs_f64())
    })
}

/// Fluvio's own consumer: records/s out of one partition (the API and
/// settings the hotspot source uses), and the gaps it leaves.
fn raw_consume(ep: &str, name: &str, n: usize) -> anyhow::Result<(f64, u64, usize)> {
    rt().block_on(async {
        let f = fluvio_client::connect(&fluvio_client::FluvioCluster::plain(ep)).await?;
        let mut s = fluvio_client::open(&f, name, 0, Offset::beginning(), None, true).await?;
        let t0 = Instant::now();
        let (mut got, mut next, mut gaps) = (0usize, 0i64, 0u64);
        while next < n as i64 {
            match tokio::time::timeout(Duration::from_secs(10), s.next()).await {
                Ok(Some(Ok(r))) => {
                    if r.offset() > next {
                        gaps += 1;
                    }
                    next = r.offset() + 1;
                    got += r.value().len().min(1);
                }
                other => anyhow::bail!(
                    "consumer stopped at {next}: {:?}",
                    other.map(|o| o.map(|r| r.map(|r| r.offset())))
                ),
            }
        }
        Ok((got as f64 / t0.elapsed().as_secs_f64(), gaps, got))
    })
}

struct Run {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    let body = r.split_once("\r\n\r\n")?.1.to_owned();
    Some(body)
}

fn lines_processed(addr: SocketAddr) -> u64 {
    http_get(addr, "/v1/stats")
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["stats"]["lines"].as_u64())
        .unwrap_or(0)
}

fn start(args: &[&str], log: &Path) -> anyhow::Result<Run> {
    let logf = std::fs::File::create(log)?;
    let child = Command::new(BIN)
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--idle-timeout",
            "off",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf)
        .spawn()?;
    let t0 = Instant::now();
    let mut addr = None;
    while addr.is_none() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
        addr = std::fs::read_to_string(log)?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "hotspot is listening")
            .find_map(|v| v["fields"]["addr"].as_str().and_then(|a| a.parse().ok()));
    }
    let addr =
        addr.ok_or_else(|| anyhow::anyhow!("hotspot did not start; see {}", log.display()))?;
    let mut run = Run { child, addr };
    while http_get(addr, "/readyz").is_none_or(|b| !b.contains("\"ready\":true")) {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = run.child.kill();
            anyhow::bail!("hotspot not ready; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(run)
}

/// `hotspot publish` while `instances` consume: records/s end to end, and
/// publish's own figure.
fn end_to_end(
    ep: &str,
    dir: &Path,
    traffic: &Path,
    n: u64,
    partitions_per_instance: &[&str],
    rules: &Path,
) -> anyhow::Result<(f64, String)> {
    let name = topic(&format!("e2e{}", partitions_per_instance.len()));
    rt().block_on(async {
        let f = fluvio_client::connect(&fluvio_client::FluvioCluster::plain(ep)).await?;
        fluvio_client::ensure_topic(&f, &name, 2).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    let mut runs = Vec::new();
    for (i, parts) in partitions_per_instance.iter().enumerate() {
        let alerts = dir.join(format!("{name}-{i}.alerts.jsonl"));
        let state = dir.join(format!("{name}-{i}.state"));
        let args = [
            "--rules",
            rules.to_str().unwrap_or_default(),
            "--fluvio-endpoint",
            ep,
            "--fluvio-topic",
            &name,
            "--partitions",
            parts,
            "--alerts",
            alerts.to_str().unwrap_or_default(),
            "--state-dir",
            state.to_str().unwrap_or_default(),
        ];
        runs.push(start(&args, &dir.join(format!("{name}-{i}.log")))?);
    }
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .args([
            "publish",
            "--quiet",
            "--endpoint",
            ep,
            "--topic",
            &name,
            "--input",
        ])
        .arg(traffic)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "publish failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    loop {
        let done: u64 = runs.iter().map(|r| lines_processed(r.addr)).sum();
        if done >= n {
            break;
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(600),
            "only {done} of {n} records processed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    drop(runs);
    delete(ep, &name);
    Ok((rate, published))
}

/// Publish → alert latency: each trial produces one record that opens an
/// alert (threshold 1, a new region each time) and waits for its line.
fn latency(ep: &str, dir: &Path, trials: usize) -> anyhow::Result<Vec<Duration>> {
    let rules = dir.join("latency.rules.toml");
    std::fs::write(
        &rules,
        "[window]\nsize = \"30m\"\nslide = \"1m\"\nallowed_lateness = \"10m\"\n\n\
         [[department]]\nid = \"ops\"\nname = \"运维\"\n\n\
         [[business]]\nid = \"probe\"\nname = \"探针\"\ndepartment = \"ops\"\nthreshold = 1\n\n\
         [[template]]\nid = \"probe.hit\"\nbusiness = \"probe\"\nphenomenon = \"探针\"\nall_of = [[\"延迟探针\"]]\n",
    )?;
    let name = topic("latency");
    let alerts = dir.join("latency.alerts.jsonl");
    rt().block_on(async {
        let f = fluvio_client::connect(&fluvio_client::FluvioCluster::plain(ep)).await?;
        fluvio_client::ensure_topic(&f, &name, 1).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    let run = start(
        &[
            "--rules",
            rules.to_str().unwrap_or_default(),
            "--fluvio-endpoint",
            ep,
            "--fluvio-topic",
            &name,
            "--fluvio-start",
            "end",
            "--alerts",
            alerts.to_str().unwrap_or_default(),
        ],
        &dir.join("latency.log"),
    )?;
    let mut out = Vec::new();
    rt().block_on(async {
        let f = fluvio_client::connect(&fluvio_client::FluvioCluster::plain(ep)).await?;
        let cfg = TopicProducerConfigBuilder::default()
            .linger(Duration::ZERO)
            .build()?;
        let p = f.topic_producer_with_config(name.clone(), cfg).await?;
        for i in 0..trials {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis();
            let id = format!("LAT{i:05}");
            let line = format!(
                r#"{{"id":"{id}","ts":{now},"region":"探针{i}","text":"延迟探针","caller":"c{i}"}}"#
            );
            let t0 = Instant::now();
            p.send(fluvio::RecordKey::NULL, line).await?.wait().await?;
            let needle = format!("\"triggered_by\":\"{id}\"");
            loop {
                if std::fs::read_to_string(&alerts)
                    .unwrap_or_default()
                    .contains(&needle)
                {
                    out.push(t0.elapsed());
                    break;
                }
                anyhow::ensure!(t0.elapsed() < Duration::from_secs(10), "no alert for {id}");
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    drop(run);
    delete(ep, &name);
    Ok(out)
}

fn main() {
    // `cargo bench` passes `--bench`; any filter argument is ignored.
    let Some(ep) = std::env::var("HOTSPOT_FLUVIO_ENDPOINT")
        .ok()
        .filter(|e| !e.trim().is_empty())
    else {
        println!(
            "SKIP fluvio_throughput: HOTSPOT_FLUVIO_ENDPOINT is not set (start a local cluster as docs/fluvio.md says, then HOTSPOT_FLUVIO_ENDPOINT=127.0.0.1:9003)"
        );
        return;
    };
    if let Err(e) = bench(&ep) {
        eprintln!("fluvio_throughput: {e:#}");
        std::process::exit(1);
    }
}

fn bench(ep: &str) -> anyhow::Result<()> {
    let n: u64 = std::env::var("HOTSPOT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir()?;
    let traffic: PathBuf = dir.path().join("traffic.jsonl");
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules.toml");
    let st = Command::new(BIN)
        .args([
            "gen",
            "--quiet",
            "--seed",
            "1",
            "--days",
            "1",
            "--events",
            &n.to_string(),
            "--out",
        ])
        .arg(&traffic)
        .status()?;
    anyhow::ensure!(st.success(), "hotspot gen failed");
    let text = std::fs::read(&traffic)?;
    let lines: Vec<Vec<u8>> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let n = lines.len() as u64;
    let mb = text.len() as f64 / 1e6;
    println!(
        "traffic: {n} records, {mb:.1} MB (hotspot gen), on {} CPUs",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0)
    );

    let raw = topic("raw");
    let produce = raw_produce(ep, &raw, &lines)?;
    println!(
        "fluvio producer (crate, 1 partition, batch 512KiB, linger 20ms): {produce:.0} records/s ({:.1} MB/s)",
        produce * mb / n as f64
    );
    let (consume, gaps, got) = raw_consume(ep, &raw, lines.len())?;
    println!(
        "fluvio consumer (crate, 1 partition, consumer_with_config, default max_bytes): {consume:.0} records/s ({:.1} MB/s); it delivered {got} of {n} records, leaving {gaps} gaps",
        consume * mb / n as f64
    );
    let t0 = Instant::now();
    let rb = rt().block_on(async {
        let f = fluvio_client::connect(&fluvio_client::FluvioCluster::plain(ep)).await?;
        fluvio_client::read_partition(&f, &raw, 0, None).await
    })?;
    anyhow::ensure!(
        rb.records.len() == lines.len(),
        "read back {} of {}",
        rb.records.len(),
        lines.len()
    );
    let repaired = rb.records.len() as f64 / t0.elapsed().as_secs_f64();
    println!(
        "fluvio consumer + hotspot's offset repair (fluvio_client::read_partition): {repaired:.0} records/s, {} gaps re-read, {} duplicates dropped, every offset once",
        rb.gaps, rb.duplicates
    );
    delete(ep, &raw);

    let (one, published) = end_to_end(ep, dir.path(), &traffic, n, &["0,1"], &rules)?;
    println!("hotspot publish alone: {published}");
    println!("publish -> consume -> alert, 1 instance (2 partitions): {one:.0} records/s");
    let (two, _) = end_to_end(ep, dir.path(), &traffic, n, &["0", "1"], &rules)?;
    println!("publish -> consume -> alert, 2 instances (1 partition each): {two:.0} records/s");

    let mut lat = latency(ep, dir.path(), 100)?;
    lat.sort();
    let q = |f: f64| lat[((lat.len() - 1) as f64 * f).round() as usize].as_secs_f64() * 1e3;
    println!(
        "publish -> alert latency ({} trials, acked produce to line in the alerts file): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
    Ok(())
}
