//! End-to-end alert latency of the live service under load: the time from
//! sending the POST that holds the record completing a batch complaint to
//! the department's webhook receiving that alert.
//!
//! ```text
//! cargo bench --profile production --bench live_latency
//! HOTSPOT_BENCH_SECS=20 HOTSPOT_BENCH_RATE=40000 cargo bench --profile production --bench live_latency
//! ```
//!
//! Set-up, all on loopback:
//!
//! * The real `hotspot run` (`--idle-timeout off`, `--webhook *=URL`) with
//!   the fixture rule library plus one bench business (`bench_fault`,
//!   threshold 5, keyword `压测故障码`) that the generated traffic never
//!   mentions, so only the injected mini-incidents count towards it.
//! * A webhook receiver in this process that timestamps each alert when its
//!   body is complete and answers 200.
//! * Background: `hotspot gen` traffic (made once, kept under
//!   `target/bench-data/`), about 60,000 complaints per simulated day so the
//!   fixture thresholds behave as in production, sent at
//!   `HOTSPOT_BENCH_RATE` records/s (default 20,000) for
//!   `HOTSPOT_BENCH_SECS` seconds (default 60) as one POST every
//!   `HOTSPOT_BENCH_TICK_MS` (default 10 ms), spread round-robin over
//!   `HOTSPOT_BENCH_CONNS` keep-alive connections (default 4).
//! * Every `HOTSPOT_BENCH_INCIDENT_EVERY` bodies (default 2) a mini-incident
//!   starts in its own region: 5 complaints from 5 distinct callers over 3
//!   consecutive bodies (2, 2, 1), each stamped with the background's
//!   newest event time so none is late. At 20,000 records/s a simulated day
//!   of 60,000 complaints passes in 3 s, so one daytime body is a few
//!   minutes of event time; slots where the three bodies span more than 20
//!   minutes (the night trough) get no incident, so every incident fits one
//!   30-minute window and must alert. The 5th distinct caller completes the
//!   batch; the alert names it in `triggered_by`, and its body's send time is
//!   where the latency starts. (If bodies overtook each other the alert
//!   names another record of the incident; the latency then starts at that
//!   record's body — it is still the record that completed the batch.)
//!
//! A 429 or 503 is counted and the body is sent again after 5 ms; latency
//! still counts from the first attempt. Latencies go into an HDR histogram
//! (µs, 3 significant digits).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

mod common;
use common::BIN;
const THRESHOLD: usize = 5;
const KEYWORD: &str = "压测故障码";
/// Simulated complaints per day in the background traffic.
const PER_DAY: u64 = 60_000;

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

fn bench_rules() -> String {
    let fixture =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rules.toml"))
            .expect("fixtures/rules.toml");
    format!(
        r#"{fixture}

# ---- appended by benches/live_latency.rs ----
[[department]]
id = "bench"
name = "压测部"

[[business]]
id = "bench_fault"
name = "压测故障"
department = "bench"
threshold = {THRESHOLD}

[[template]]
id = "bench_fault.code"
business = "bench_fault"
phenomenon = "压测故障码"
all_of = [["{KEYWORD}"], ["无法使用", "失败"]]
none_of = ["测试工单"]
"#
    )
}

/// The background traffic file for `events` events, generated once.
fn background(events: u64, dir: &Path) -> PathBuf {
    let days = events.div_ceil(PER_DAY).max(1);
    eprintln!("live bench: background of {events} events over {days} days ...");
    let args = [
        "--seed".to_string(),
        "7".into(),
        "--quiet".into(),
        "--surge-day".into(),
        "none".into(),
        "--days".into(),
        days.to_string(),
        "--events".into(),
        events.to_string(),
    ];
    common::generated(dir, &format!("live-{events}-{days}d"), &args)
}

// ------------------------------------------------------------ receiver

#[derive(Default)]
struct Got {
    /// triggered_by → (arrival, count) for the bench business's firings.
    firing: HashMap<String, (Instant, u64)>,
    posts: u64,
}

fn start_receiver(stop: Arc<AtomicBool>) -> (SocketAddr, Arc<Mutex<Got>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Got::default()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let g = g.clone();
            std::thread::spawn(move || serve_webhook(conn, g));
        }
    });
    (addr, got)
}

fn serve_webhook(conn: TcpStream, got: Arc<Mutex<Got>>) {
    let _ = conn.set_nodelay(true);
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let Some((_, body)) = read_message(&mut r) else {
            return;
        };
        let at = Instant::now();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
            let mut g = got.lock().unwrap();
            g.posts += 1;
            if v["state"] == "firing" && v["business"] == "bench_fault" {
                if let Some(id) = v["triggered_by"].as_str() {
                    g.firing
                        .entry(id.to_owned())
                        .or_insert((at, v["count"].as_u64().unwrap_or(0)));
                }
            }
        }
        let resp =
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}";
        if w.write_all(resp).is_err() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 message (request or response): (status-or-request
/// line, body). Handles Content-Length and chunked bodies.
fn read_message(r: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut len = 0usize;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(len, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some((first, body))
}

// ------------------------------------------------------------- service

struct Service {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(rules: &Path, webhook: &str, dir: &Path) -> Service {
    let log = dir.join("live-hotspot.log");
    let logf = std::fs::File::create(&log).unwrap();
    let child = Command::new(BIN)
        .arg("run")
        .arg("--rules")
        .arg(rules)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--idle-timeout", "off"])
        .arg("--webhook")
        .arg(format!("*={webhook}"))
        .env("RUST_LOG", "warn,hotspot=info")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .expect("start hotspot run");
    let mut s = Service {
        child,
        addr: "127.0.0.1:1".parse().unwrap(),
        log,
    };
    let t = Instant::now();
    loop {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "hotspot did not start: {}",
            std::fs::read_to_string(&s.log).unwrap_or_default()
        );
        if let Ok(Some(st)) = s.child.try_wait() {
            panic!(
                "hotspot exited with {st}: {}",
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
        }
        let text = std::fs::read_to_string(&s.log).unwrap_or_default();
        let addr = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "hotspot is listening")
            .find_map(|v| v["fields"]["addr"].as_str().and_then(|a| a.parse().ok()));
        if let Some(a) = addr {
            s.addr = a;
            if get(a, "/readyz").0 == 200 {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut r = BufReader::new(s);
    match read_message(&mut r) {
        Some((line, body)) => (
            line.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            String::from_utf8_lossy(&body).into_owned(),
        ),
        None => (0, String::new()),
    }
}

/// (utime + stime in seconds, VmHWM in MB) of a live process.
fn proc_usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let cpu = stat
        .rfind(')')
        .map(|i| stat[i + 2..].split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 12)
        .map(|f| {
            let t: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
            t / 100.0
        })
        .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    (cpu, hwm)
}

// ---------------------------------------------------------------- plan

/// One POST body and what it carries.
struct Body {
    bytes: Vec<u8>,
    records: usize,
}

struct Plan {
    bodies: Vec<Body>,
    /// Injected record id → index of the body holding it.
    body_of: HashMap<String, usize>,
    /// Planned completing record of each incident.
    completing: Vec<String>,
    /// Incident slots left out because the background's event time ran
    /// too fast there (night).
    skipped: usize,
}

/// Bodies an incident spans: records 0-1, 2-3 and the completing 4th.
const SPAN: usize = THRESHOLD.div_ceil(2);
/// The most event time an incident may span (windows are 30 minutes).
const MAX_SPREAD_MS: i64 = 20 * 60_000;

fn plan(bg: &[u8], nbodies: usize, per: usize, every: usize) -> Plan {
    // Pass 1: the background lines of each body and the watermark (newest
    // event time so far) where the injected records go, mid-body.
    let mut lines = bg.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let mut dec = hotspot::record::Decoder::new();
    let mut wm = i64::MIN;
    let mut chunks: Vec<Vec<&[u8]>> = Vec::with_capacity(nbodies);
    let mut mid_wm: Vec<i64> = Vec::with_capacity(nbodies);
    for _ in 0..nbodies {
        let mut c = Vec::with_capacity(per);
        let mut mid = wm;
        for i in 0..per {
            let Some(l) = lines.next() else { break };
            if let hotspot::record::Decoded::Record(rec) = dec.decode(l) {
                wm = wm.max(rec.ts);
            }
            c.push(l);
            if i == per / 2 {
                mid = wm;
            }
        }
        chunks.push(c);
        mid_wm.push(mid);
    }
    // Incident j starts at body j*every and has record r (0-based) in body
    // start + r/2: two, two and the completing one. It is planned only where
    // those bodies span at most MAX_SPREAD_MS of event time, so all five
    // fit one 30-minute window (at night one body of the 60,000-a-day
    // background can hold 40 minutes).
    let mut at: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nbodies]; // (incident, record)
    let mut completing = Vec::new();
    let mut skipped = 0;
    if every > 0 {
        let mut j = 0;
        for start in (0..nbodies.saturating_sub(SPAN)).step_by(every) {
            if mid_wm[start] == i64::MIN || mid_wm[start + SPAN - 1] - mid_wm[start] > MAX_SPREAD_MS
            {
                skipped += 1;
                continue;
            }
            for r in 0..THRESHOLD {
                at[start + r / 2].push((j, r));
            }
            completing.push(format!("BENCH{j:06}-{}", THRESHOLD - 1));
            j += 1;
        }
    }
    // Pass 2: the bodies.
    let mut bodies = Vec::with_capacity(nbodies);
    let mut body_of = HashMap::new();
    for (k, c) in chunks.iter().enumerate() {
        let mut bytes = Vec::with_capacity(per * 330);
        let mut records = 0;
        for (i, l) in c.iter().enumerate() {
            bytes.extend_from_slice(l);
            bytes.push(b'\n');
            records += 1;
            if i == per / 2 {
                let ts = mid_wm[k];
                for &(j, r) in &at[k] {
                    let id = format!("BENCH{j:06}-{r}");
                    let line = format!(
                        r#"{{"id":"{id}","ts":{ts},"region":"压测{j:05}区","text":"客户反映手机提示{KEYWORD}E10{r}，业务无法使用，要求尽快处理。","caller":"199{j:07}{r}","channel":"10086"}}"#
                    );
                    bytes.extend_from_slice(line.as_bytes());
                    bytes.push(b'\n');
                    records += 1;
                    body_of.insert(id, k);
                }
            }
        }
        bodies.push(Body { bytes, records });
    }
    Plan {
        bodies,
        body_of,
        completing,
        skipped,
    }
}

// -------------------------------------------------------------- sending

struct Sent {
    /// First attempt of each body.
    at: Vec<Mutex<Option<Instant>>>,
    /// `late_dropped` of each body's answer.
    late: Vec<AtomicU64>,
    rtt: Mutex<Histogram<u64>>,
    too_many: AtomicU64,
    unavailable: AtomicU64,
    records: AtomicU64,
    last_done: Mutex<Option<Instant>>,
}

fn post(
    conn: &mut Option<(TcpStream, BufReader<TcpStream>)>,
    addr: SocketAddr,
    body: &[u8],
) -> (u16, Vec<u8>) {
    for _ in 0..3 {
        if conn.is_none() {
            let s = TcpStream::connect(addr).expect("connect to hotspot");
            s.set_nodelay(true).unwrap();
            let r = BufReader::new(s.try_clone().unwrap());
            *conn = Some((s, r));
        }
        let (s, r) = conn.as_mut().unwrap();
        let head = format!(
            "POST /v1/complaints HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut req = Vec::with_capacity(head.len() + body.len());
        req.extend_from_slice(head.as_bytes());
        req.extend_from_slice(body);
        let answer = if s.write_all(&req).is_ok() {
            read_message(r)
        } else {
            None
        };
        if let Some((line, answer)) = answer {
            let code = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            return (code, answer);
        }
        *conn = None; // closed by the server: reconnect and send again
    }
    panic!("cannot POST to hotspot");
}

fn send_all(plan: &Plan, addr: SocketAddr, tick: Duration, conns: usize) -> (Arc<Sent>, Instant) {
    let n = plan.bodies.len();
    let sent = Arc::new(Sent {
        at: (0..n).map(|_| Mutex::new(None)).collect(),
        late: (0..n).map(|_| AtomicU64::new(0)).collect(),
        rtt: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3).unwrap()),
        too_many: AtomicU64::new(0),
        unavailable: AtomicU64::new(0),
        records: AtomicU64::new(0),
        last_done: Mutex::new(None),
    });
    let t0 = Instant::now() + Duration::from_millis(100);
    std::thread::scope(|sc| {
        for c in 0..conns {
            let sent = sent.clone();
            sc.spawn(move || {
                let mut conn = None;
                for k in (c..n).step_by(conns) {
                    let due = t0 + tick * k as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let body = &plan.bodies[k];
                    let first = Instant::now();
                    *sent.at[k].lock().unwrap() = Some(first);
                    loop {
                        match post(&mut conn, addr, &body.bytes) {
                            (200, answer) => {
                                let late = serde_json::from_slice::<serde_json::Value>(&answer)
                                    .ok()
                                    .and_then(|v| v["late_dropped"].as_u64())
                                    .unwrap_or(0);
                                sent.late[k].store(late, Ordering::Relaxed);
                                break;
                            }
                            (429, _) => {
                                sent.too_many.fetch_add(1, Ordering::Relaxed);
                            }
                            (503, _) => {
                                sent.unavailable.fetch_add(1, Ordering::Relaxed);
                            }
                            (code, _) => panic!("POST /v1/complaints answered {code}"),
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    let done = Instant::now();
                    let _ = sent
                        .rtt
                        .lock()
                        .unwrap()
                        .record((done - first).as_micros().max(1) as u64);
                    sent.records
                        .fetch_add(body.records as u64, Ordering::Relaxed);
                    let mut l = sent.last_done.lock().unwrap();
                    if l.is_none_or(|x| done > x) {
                        *l = Some(done);
                    }
                }
            });
        }
    });
    (sent, t0)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("live_latency: bench");
        return;
    }
    let secs = env_u64("HOTSPOT_BENCH_SECS", 60).max(1);
    let rate = env_u64("HOTSPOT_BENCH_RATE", 20_000).max(1);
    let tick_ms = env_u64("HOTSPOT_BENCH_TICK_MS", 10).max(1);
    let conns = env_u64("HOTSPOT_BENCH_CONNS", 4).max(1) as usize;
    let every = env_u64("HOTSPOT_BENCH_INCIDENT_EVERY", 2) as usize;
    let per = ((rate * tick_ms) / 1000).max(1) as usize;
    let nbodies = (secs * 1000 / tick_ms) as usize;
    let events = (per * nbodies) as u64;

    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let bg_path = background(events, &dir);
    let bg = std::fs::read(&bg_path).unwrap();
    let plan = plan(&bg, nbodies, per, every);
    drop(bg);
    let injected = plan.body_of.len();
    let total_records: usize = plan.bodies.iter().map(|b| b.records).sum();
    eprintln!(
        "live bench: {nbodies} bodies of ~{per} records every {tick_ms} ms over {conns} connections \
         ({total_records} records, {injected} injected, {} incidents, {} slots skipped at night)",
        plan.completing.len(),
        plan.skipped
    );

    let rules = dir.join("live-rules.toml");
    std::fs::write(&rules, bench_rules()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (raddr, got) = start_receiver(stop.clone());
    let svc = start_service(&rules, &format!("http://{raddr}/hook"), &dir);
    let pid = svc.child.id();
    let (cpu0, _) = proc_usage(pid);

    let (sent, t0) = send_all(&plan, svc.addr, Duration::from_millis(tick_ms), conns);
    let last = sent.last_done.lock().unwrap().unwrap_or_else(Instant::now);
    let send_secs = (last - t0).as_secs_f64().max(1e-9);
    let (cpu1, hwm) = proc_usage(pid);

    // Wait for the last alerts.
    let want: Vec<&String> = plan.completing.iter().collect();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        let n = got.lock().unwrap().firing.len();
        if n >= want.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = get(svc.addr, "/v1/stats").1;

    let g = got.lock().unwrap();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).unwrap();
    let mut unplanned = 0;
    let mut wrong_count = 0;
    for (id, &(at, count)) in &g.firing {
        let Some(&k) = plan.body_of.get(id) else {
            continue;
        };
        if !id.ends_with(&format!("-{}", THRESHOLD - 1)) {
            unplanned += 1;
        }
        if count != THRESHOLD as u64 {
            wrong_count += 1;
        }
        let Some(sent_at) = *sent.at[k].lock().unwrap() else {
            continue;
        };
        let us = at.saturating_duration_since(sent_at).as_micros().max(1) as u64;
        hist.record(us).unwrap();
    }
    let incidents = plan.completing.len();
    let received = g.firing.len();
    // Incidents without an alert, and how many of them had late drops in
    // their bodies: a body that was overtaken on another connection can
    // arrive after the watermark moved more than the allowed lateness.
    let fired: std::collections::HashSet<&str> = g
        .firing
        .keys()
        .filter_map(|id| id.rsplit_once('-').map(|(inc, _)| inc))
        .collect();
    let mut missing = 0;
    let mut missing_late = 0;
    for id in &plan.completing {
        let inc = id.rsplit_once('-').map_or(id.as_str(), |(i, _)| i);
        if fired.contains(inc) {
            continue;
        }
        missing += 1;
        let late = (0..THRESHOLD).any(|r| {
            plan.body_of
                .get(&format!("{inc}-{r}"))
                .is_some_and(|&k| sent.late[k].load(Ordering::Relaxed) > 0)
        });
        missing_late += usize::from(late);
    }
    let late_bodies = sent
        .late
        .iter()
        .filter(|l| l.load(Ordering::Relaxed) > 0)
        .count();
    let rtt = sent.rtt.lock().unwrap().clone();
    let records = sent.records.load(Ordering::Relaxed);
    let achieved = records as f64 / send_secs;

    let processing = serde_json::from_str::<serde_json::Value>(&stats)
        .ok()
        .map(|v| v["latency"].to_string())
        .unwrap_or_default();

    let mut md = String::new();
    md.push_str(&format!(
        "hotspot run: {secs} s at {rate} records/s target, one POST of ~{per} records every {tick_ms} ms over {conns} connections, \
         incident every {every} bodies (threshold {THRESHOLD}), {} cores\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    md.push_str("| alerts measured | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | mean ms |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    md.push_str(&format!(
        "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n\n",
        hist.len(),
        ms(hist.value_at_quantile(0.50)),
        ms(hist.value_at_quantile(0.90)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.value_at_quantile(0.999)),
        ms(hist.max()),
        hist.mean() / 1000.0
    ));
    md.push_str(&format!(
        "- records sent: {records} in {send_secs:.1} s = **{achieved:.0} records/s** achieved\n\
         - POSTs: {} bodies; 429 answers: **{}**; 503 answers: {}\n\
         - POST round trip (send → answer): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms\n\
         - incidents: {incidents}; firing alerts received for them: {received}; \
           triggered by another record than planned (reordered): {unplanned}; count ≠ {THRESHOLD}: {wrong_count}; \
           no alert: {missing} (with late drops in their bodies: {missing_late}); bodies with late drops: {late_bodies}\n\
         - webhook POSTs received in all (fixture alerts of the background included, firing and resolved): {}\n\
         - hotspot process during the load: {:.1} CPU-s ({:.0}% of one core), peak RSS {:.0} MB\n\
         - service's own latency report (/v1/stats): {processing}\n",
        plan.bodies.len(),
        sent.too_many.load(Ordering::Relaxed),
        sent.unavailable.load(Ordering::Relaxed),
        ms(rtt.value_at_quantile(0.5)),
        ms(rtt.value_at_quantile(0.99)),
        ms(rtt.value_at_quantile(0.999)),
        ms(rtt.max()),
        g.posts,
        cpu1 - cpu0,
        (cpu1 - cpu0) / send_secs * 100.0,
        hwm,
    ));
    let p99 = ms(hist.value_at_quantile(0.99));
    let mut unmet = Vec::new();
    if hist.is_empty() {
        unmet.push("no alert measured".to_owned());
    }
    if p99 > 50.0 {
        unmet.push(format!("p99 {p99:.2} ms"));
    }
    if achieved < 0.98 * rate as f64 {
        unmet.push(format!("rate {achieved:.0}/s"));
    }
    if received != incidents {
        unmet.push(format!("{missing} incidents without an alert"));
    }
    md.push_str(&format!(
        "\ntarget p99 ≤ 50 ms at {rate} records/s, every incident alerted: {}\n",
        if unmet.is_empty() {
            "MET".to_owned()
        } else {
            format!("NOT MET ({})", unmet.join(", "))
        }
    ));
    drop(g);
    print!("\n{md}");
    let out = target_dir().join("bench-live-latency.md");
    std::fs::write(&out, &md).unwrap();
    eprintln!("live bench: written to {}", out.display());

    stop.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect(raddr); // wake the accept loop
    let mut svc = svc;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(_)) = svc.child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(svc);
}
