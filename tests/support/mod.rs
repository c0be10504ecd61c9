//! Shared helpers of the integration tests: run the real `hotspot` binary on
//! a free loopback port, talk to it over real sockets, and stand up real
//! HTTP receivers (webhooks) that record what they get.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Prints `SKIP: {what}` on the process's stderr as one write of the
/// whole line: past the test harness's capture (which keeps `eprintln!` of
/// a passing test to itself), and in one piece, so that it cannot
/// interleave with other tests' output.
pub fn skip(what: &str) {
    let line = format!("SKIP: {what}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hotspot")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn conformance() -> PathBuf {
    let d = root().join("../shared/conformance");
    assert!(
        d.join("traffic.jsonl").is_file(),
        "conformance data missing at {}",
        d.display()
    );
    d
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `N` free loopback ports, all different: each listener is held until
/// every port is chosen (one [`free_port`] after another may hand out a
/// port it has just closed again, and two servers then fight for it).
#[allow(dead_code)]
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// The complete lines of a JSON Lines file that another process may still
/// be appending to, parsed. A last line without its newline is still being
/// written (a reader can see half of it), so it is left for the next look.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not a JSON line: {l:?}: {e}", path.display()))
        })
        .collect()
}

/// Waits until `f` is true, polling, or panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A minimal blocking HTTP/1.1 client: one request per connection.
pub fn http(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, dechunk(&body, &text))
}

fn dechunk(body: &str, whole: &str) -> String {
    if !whole
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http("GET", addr, path, &[], b"")
}

pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    http(
        "POST",
        addr,
        path,
        &[("Content-Type", "application/x-ndjson")],
        body,
    )
}

/// How far [`Hotspot::start_with`] waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Just spawn the process.
    Nothing,
    /// Until it listens (its address is known).
    Listening,
    /// Until `/readyz` answers 200.
    Ready,
}

/// A running `hotspot run`.
pub struct Hotspot {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Hotspot {
    /// Starts `hotspot run --listen 127.0.0.1:0 <args>` (the kernel picks
    /// the port, so parallel tests never race for one), learns the address
    /// from its log and waits for `/readyz`. Logs (JSON) go to `log`.
    pub fn start(args: &[&str], log: &Path) -> Hotspot {
        Self::start_with(args, log, Wait::Ready)
    }

    /// Like [`Hotspot::start`], waiting only as far as `wait` says.
    pub fn start_with(args: &[&str], log: &Path, wait: Wait) -> Hotspot {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(log)
            .unwrap();
        let child = Command::new(bin())
            .arg("run")
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap();
        let mut h = Hotspot {
            child: Some(child),
            addr: "127.0.0.1:1".parse().unwrap(),
            log: log.to_owned(),
        };
        if wait == Wait::Nothing {
            return h;
        }
        let log_path = log.to_owned();
        let mut addr = None;
        wait_until("hotspot to listen", Duration::from_secs(30), || {
            if let Some(Ok(Some(st))) = h.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "hotspot exited early with {st}: {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            addr = listening_addr(&std::fs::read_to_string(&log_path).unwrap_or_default());
            addr.is_some()
        });
        h.addr = addr.unwrap();
        if wait == Wait::Ready {
            let a = h.addr;
            wait_until("hotspot /readyz", Duration::from_secs(30), || {
                get(a, "/readyz").0 == 200
            });
        }
        h
    }

    pub fn post_lines(&self, body: &[u8]) -> serde_json::Value {
        let (code, text) = post(self.addr, "/v1/complaints", body);
        assert_eq!(code, 200, "POST /v1/complaints: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// POSTs a file in bodies of `per` lines.
    pub fn post_file(&self, path: &Path, per: usize) -> Vec<serde_json::Value> {
        let text = std::fs::read(path).unwrap();
        let lines: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        lines
            .chunks(per)
            .map(|c| {
                let mut body = c.join(&b'\n');
                body.push(b'\n');
                self.post_lines(&body)
            })
            .collect()
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (code, text) = get(self.addr, path);
        assert_eq!(code, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM; waits for the exit and returns (exit code, seconds taken).
    pub fn terminate(&mut self) -> (Option<i32>, f64) {
        let mut c = self.child.take().unwrap();
        let t = Instant::now();
        unsafe_kill(c.id(), "TERM");
        let status = c.wait().unwrap();
        (status.code(), t.elapsed().as_secs_f64())
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Hotspot {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The address in the (last) JSON log line "hotspot is listening".
pub fn listening_addr(log: &str) -> Option<SocketAddr> {
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "hotspot is listening")
        .find_map(|v| v["fields"]["addr"].as_str().and_then(|a| a.parse().ok()))
}

/// Sends a signal with the `kill` command (no libc in the tests).
pub fn unsafe_kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid}");
}

/// What a receiver got: (path, headers, body) per request.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub idempotency_key: Option<String>,
    pub body: String,
    /// When the request was complete.
    pub at: Instant,
}

/// A real HTTP server on loopback that answers 200 to every POST and keeps
/// what it got. It speaks enough HTTP/1.1 for reqwest (keep-alive,
/// Content-Length bodies).
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (g, s) = (got.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (g, s) = (g.clone(), s.clone());
                        std::thread::spawn(move || serve(conn, g, s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver {
            addr,
            got,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Received bodies parsed as JSON, by path.
    pub fn by_path(&self) -> BTreeMap<String, Vec<serde_json::Value>> {
        let mut m: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for r in self.received() {
            m.entry(r.path.clone())
                .or_default()
                .push(serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body)));
        }
        m
    }

    pub fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn serve(
    mut conn: TcpStream,
    got: Arc<Mutex<Vec<Received>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // A complete request in the buffer?
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let key = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("idempotency-key")
                        .then(|| v.trim().to_owned())
                });
                got.lock().unwrap().push(Received {
                    path,
                    idempotency_key: key,
                    body,
                    at: Instant::now(),
                });
                buf.drain(..end + 4 + len);
                let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}";
                if conn.write_all(resp.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue;
            }
            Err(_) => return,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The firing lines of the conformance expectations, as (business, region,
/// triggered_by, count) tuples.
pub fn expected_firing() -> Vec<(String, String, String, u64)> {
    std::fs::read_to_string(conformance().join("expected.alerts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["state"] == "firing")
        .map(|v| {
            (
                v["business"].as_str().unwrap().to_owned(),
                v["region"].as_str().unwrap().to_owned(),
                v["triggered_by"].as_str().unwrap().to_owned(),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect()
}
