//! Peak memory of the live service under bodies of many short bad lines:
//! the real `hotspot run` on loopback gets `HOTSPOT_BENCH_BODIES` (default
//! 8) concurrent POSTs of `HOTSPOT_BENCH_MB` MiB (default 16, the default
//! `--max-body`) each, every line `x` (a reject), and the bench reports the
//! service's peak RSS (`VmHWM`), its RSS afterwards and the time until every
//! body was answered 200. Target: peak RSS <= 200 MB; the bench exits 1
//! above it.
//!
//! ```text
//! cargo bench --bench intake_memory          # or --profile production, as the other benches
//! HOTSPOT_BENCH_BIN=/path/to/other/hotspot cargo bench --bench intake_memory   # another build
//! ```
//!
//! Each client sends `Expect: 100-continue`, as curl does for large bodies:
//! a body the service has no room for yet (its budget of bytes in flight is
//! full) is answered 429 before it is sent, and the client sends it again
//! after `Retry-After`. The 429s are counted in the report.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(dead_code)] // `generated` is for the benches that need traffic
mod common;

const TARGET_MB: f64 = 200.0;

struct Service {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start(bin: &str, log: &std::path::Path) -> Service {
    let logf = std::fs::File::create(log).unwrap();
    let child = Command::new(bin)
        .args(["run", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("RUST_LOG", "warn,hotspot=info")
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .expect("start hotspot run");
    let mut s = Service {
        child,
        addr: "127.0.0.1:1".parse().unwrap(),
    };
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "hotspot did not start: {text}"
        );
        if let Ok(Some(st)) = s.child.try_wait() {
            panic!("hotspot exited with {st}: {text}");
        }
        let addr = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "hotspot is listening")
            .find_map(|v| v["fields"]["addr"].as_str().and_then(|a| a.parse().ok()));
        if let Some(a) = addr {
            s.addr = a;
            if let Ok((200, _)) = request(a, "GET", "/readyz", b"", false) {
                return s;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One request on its own connection: (status, body). With `expect`, the
/// body is sent only after `100 Continue`; a final answer instead of it is
/// returned as it is.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    expect: bool,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n",
        body.len()
    );
    if expect {
        head.push_str("Expect: 100-continue\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    let mut r = BufReader::new(s.try_clone()?);
    if !expect {
        s.write_all(body)?;
    }
    loop {
        let (code, len) = read_head(&mut r)?;
        if code == 100 {
            s.write_all(body)?;
            continue;
        }
        let mut answer = vec![0; len.unwrap_or(0)];
        match len {
            Some(_) => r.read_exact(&mut answer)?,
            None => {
                r.read_to_end(&mut answer)?;
            }
        }
        return Ok((code, answer));
    }
}

/// A response head: (status, Content-Length).
fn read_head(r: &mut impl BufRead) -> std::io::Result<(u16, Option<usize>)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut len = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
    }
    Ok((code, len))
}

/// (VmHWM, VmRSS) of a live process, MB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("intake_memory: bench");
        return;
    }
    let bin = std::env::var("HOTSPOT_BENCH_BIN").unwrap_or_else(|_| common::BIN.to_owned());
    let bodies = env_usize("HOTSPOT_BENCH_BODIES", 8);
    let mib = env_usize("HOTSPOT_BENCH_MB", 16);
    let body = b"x\n".repeat((mib << 20) / 2);
    let lines = body.len() / 2;
    let log =
        std::env::temp_dir().join(format!("hotspot-intake-memory-{}.log", std::process::id()));
    let svc = start(&bin, &log);
    let pid = svc.child.id();
    let (_, rss0) = memory(pid);
    eprintln!(
        "intake_memory: {bodies} concurrent bodies of {mib} MiB ({lines} lines of `x`) to {bin}"
    );
    let t0 = Instant::now();
    let results: Vec<(f64, usize, serde_json::Value)> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..bodies)
            .map(|_| {
                let body = &body;
                sc.spawn(move || {
                    let mut refused = 0;
                    loop {
                        match request(svc.addr, "POST", "/v1/complaints", body, true) {
                            Ok((200, answer)) => {
                                let v: serde_json::Value =
                                    serde_json::from_slice(&answer).expect("a JSON answer");
                                return (t0.elapsed().as_secs_f64(), refused, v);
                            }
                            Ok((429 | 503, _)) => {
                                refused += 1;
                                std::thread::sleep(Duration::from_secs(1));
                            }
                            Ok((code, answer)) => {
                                panic!("POST answered {code}: {}", String::from_utf8_lossy(&answer))
                            }
                            Err(e) => panic!("POST failed: {e}"),
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let (hwm, rss_after) = memory(pid);
    for (i, (at, refused, v)) in results.iter().enumerate() {
        assert_eq!(v["rejected"].as_u64(), Some(lines as u64), "body {i}: {v}");
        eprintln!(
            "  body {i}: answered at {at:.1} s after {refused} × 429; rejected {}, listed {}",
            v["rejected"],
            v["rejects"].as_array().map_or(0, Vec::len)
        );
    }
    let refused: usize = results.iter().map(|r| r.1).sum();
    println!(
        "intake_memory: {bodies} × {mib} MiB of bad lines in {elapsed:.1} s ({refused} × 429 first): \
         peak RSS {hwm:.0} MB (at start {rss0:.0} MB, after {rss_after:.0} MB); target <= {TARGET_MB:.0} MB"
    );
    drop(svc);
    let _ = std::fs::remove_file(&log);
    if hwm > TARGET_MB {
        eprintln!("intake_memory: peak RSS {hwm:.0} MB is OVER the {TARGET_MB:.0} MB target");
        std::process::exit(1);
    }
}
