//! The HTTP edge of `hotspot run` against clients that misbehave, over real
//! sockets to the real binary: slow and idle connections, too many of them,
//! declared lengths over the limit, bodies that never finish, bodies in
//! flight beyond the byte budget, bodies of millions of bad lines, the
//! bearer scheme in any case, and webhook headers that stay ASCII.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Hotspot, get, http};

/// hyper's header read timeout in the service (`--header-timeout`, default
/// 10 s); the tests allow a margin on top.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The body timeout the 408 test sets (`--body-timeout`; the default 30 s
/// is `service::config`'s to test).
const BODY_TIMEOUT: Duration = Duration::from_secs(3);
const MARGIN: Duration = Duration::from_secs(10);

fn start(args: &[&str]) -> (tempfile::TempDir, Hotspot) {
    let tmp = tempfile::tempdir().unwrap();
    let hs = Hotspot::start(args, &tmp.path().join("log"));
    (tmp, hs)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until the end of a response head (or EOF, or `within` passes) and
/// returns what came.
fn read_head(s: &mut TcpStream, within: Duration) -> String {
    let t = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while t.elapsed() < within && !got.windows(4).any(|w| w == b"\r\n\r\n") {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn status(head: &str) -> u16 {
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Whether the server has closed `s` (EOF or reset), waiting up to `within`.
/// Anything the server sends before closing is read and ignored.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    while t.elapsed() < within {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn metric(addr: SocketAddr, line_start: &str) -> f64 {
    get(addr, "/metrics")
        .1
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_declared_length_over_the_limit_is_answered_413_before_the_body() {
    let (_tmp, hs) = start(&[]);
    let mut s = connect(hs.addr);
    // 17,000,000 > the default 16 MiB; only three bytes of it ever come.
    s.write_all(b"POST /v1/complaints HTTP/1.1\r\nHost: t\r\nContent-Length: 17000000\r\n\r\nabc")
        .unwrap();
    let head = read_head(&mut s, MARGIN);
    assert_eq!(status(&head), 413, "got {head:?}");
    assert!(
        closed_within(&mut s, MARGIN),
        "the connection is closed after a 413"
    );
    assert_eq!(
        metric(hs.addr, "hotspot_intake_refused_total{code=\"413\"}"),
        1.0
    );
}

#[test]
fn a_slowloris_client_is_disconnected_by_the_header_timeout() {
    let (_tmp, hs) = start(&[]);
    let mut s = connect(hs.addr);
    s.write_all(b"POST /v1/complaints HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    // One more header line every half second, never the blank line.
    let t = Instant::now();
    let mut closed = false;
    let mut n = 0;
    while t.elapsed() < HEADER_TIMEOUT + MARGIN {
        if s.write_all(format!("X-Drip-{n}: a\r\n").as_bytes())
            .is_err()
        {
            closed = true;
            break;
        }
        n += 1;
        if closed_within(&mut s, Duration::from_millis(500)) {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a client that never finishes its headers is still connected after {:?}",
        t.elapsed()
    );
    // The service itself is fine.
    assert_eq!(get(hs.addr, "/healthz").0, 200);
}

#[test]
fn idle_connections_are_closed_and_their_number_is_bounded() {
    let (_tmp, hs) = start(&[]);
    // A keep-alive connection that goes quiet after one answer.
    let mut ka = connect(hs.addr);
    ka.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(status(&read_head(&mut ka, MARGIN)), 200);
    // 600 connections that never send anything: the service holds at most
    // 512 of them at once (the rest wait in the listen backlog).
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", hs.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = fds();
    let idle: Vec<TcpStream> = (0..600).map(|_| connect(hs.addr)).collect();
    let t = Instant::now();
    let mut most = 0;
    while t.elapsed() < Duration::from_secs(3) {
        most = most.max(fds());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        most >= before + 400,
        "the service accepted only {} connections",
        most - before
    );
    assert!(
        most <= before + 512 + 1,
        "the service holds {} connections at once",
        most - before
    );
    // Every idle connection is closed by the header timeout, the quiet
    // keep-alive one included; the ones waiting in the backlog are then
    // accepted and closed in turn.
    let mut idle = idle;
    idle.push(ka);
    let t = Instant::now();
    for s in &mut idle {
        let left = (2 * HEADER_TIMEOUT + MARGIN).saturating_sub(t.elapsed());
        assert!(
            closed_within(s, left.max(Duration::from_millis(1))),
            "an idle connection is still open after {:?}",
            t.elapsed()
        );
    }
    assert_eq!(get(hs.addr, "/healthz").0, 200);
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408() {
    let (_tmp, hs) = start(&["--body-timeout", "3s"]);
    let mut s = connect(hs.addr);
    s.write_all(b"POST /v1/complaints HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"id\":")
        .unwrap();
    let t = Instant::now();
    let head = read_head(&mut s, BODY_TIMEOUT + MARGIN);
    assert_eq!(status(&head), 408, "got {head:?}");
    assert!(
        t.elapsed() >= BODY_TIMEOUT - Duration::from_millis(500),
        "408 after {:?}, before the body timeout",
        t.elapsed()
    );
    assert!(closed_within(&mut s, MARGIN));
    assert_eq!(
        metric(hs.addr, "hotspot_intake_refused_total{code=\"408\"}"),
        1.0
    );
}

#[test]
fn the_header_timeout_and_the_connection_limit_are_settings() {
    let (_tmp, hs) = start(&["--header-timeout", "2s", "--max-connections", "8"]);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", hs.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = fds();
    let mut idle: Vec<TcpStream> = (0..20).map(|_| connect(hs.addr)).collect();
    let t = Instant::now();
    let mut most = 0;
    while t.elapsed() < Duration::from_millis(1500) {
        most = most.max(fds());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(most >= before + 6, "accepted only {}", most - before);
    assert!(most <= before + 8 + 1, "holds {} at once", most - before);
    // 20 connections, 8 at a time, each closed 2 s after it is accepted.
    for s in &mut idle {
        let left = (3 * Duration::from_secs(2) + MARGIN).saturating_sub(t.elapsed());
        assert!(
            closed_within(s, left.max(Duration::from_millis(1))),
            "an idle connection is still open after {:?}",
            t.elapsed()
        );
    }
    assert_eq!(get(hs.addr, "/healthz").0, 200);
}

/// Sends a POST head with `Expect: 100-continue` and returns the interim
/// or final answer's head.
fn expect_continue(s: &mut TcpStream, len: usize) -> String {
    s.write_all(
        format!(
            "POST /v1/complaints HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\n\
             Expect: 100-continue\r\nContent-Length: {len}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    read_head(s, MARGIN)
}

#[test]
fn bodies_in_flight_share_a_byte_budget_beyond_which_the_answer_is_429() {
    // The default limit is 16 MiB a body and 64 MiB for all bodies in
    // flight: four maximal bodies fill the budget.
    let (_tmp, hs) = start(&[]);
    let mut held: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut s = connect(hs.addr);
            let head = expect_continue(&mut s, 16 << 20);
            assert_eq!(status(&head), 100, "body {i}: {head:?}");
            s
        })
        .collect();
    // No room for a fifth, however small: 429 with Retry-After, before its
    // body is sent.
    let mut fifth = connect(hs.addr);
    let head = expect_continue(&mut fifth, 2);
    assert_eq!(status(&head), 429, "got {head:?}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert_eq!(
        metric(hs.addr, "hotspot_intake_refused_total{code=\"429\"}"),
        1.0
    );
    // One of the four goes away: its share comes back.
    drop(held.remove(0));
    let mut code = 0;
    for _ in 0..10 {
        let mut s = connect(hs.addr);
        let head = expect_continue(&mut s, 2);
        code = status(&head);
        if code == 100 {
            s.write_all(b"x\n").unwrap();
            let head = read_head(&mut s, MARGIN);
            assert_eq!(status(&head), 200, "{head}");
            break;
        }
    }
    assert_eq!(
        code, 100,
        "the budget freed by a closed connection is reused"
    );
    drop(held);
}

#[test]
fn a_body_of_millions_of_bad_lines_gets_a_bounded_answer_with_the_total() {
    let (_tmp, hs) = start(&[]);
    let body = b"x\n".repeat(8 << 20); // 16 MiB, 8,388,608 bad lines
    let (code, text) = http(
        "POST",
        hs.addr,
        "/v1/complaints",
        &[("Content-Type", "application/x-ndjson")],
        &body,
    );
    assert_eq!(code, 200, "{}", &text[..text.len().min(500)]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["lines"], 8 << 20);
    assert_eq!(v["rejected"], 8 << 20, "the total count of rejects");
    assert_eq!(v["accepted"], 0);
    let listed = v["rejects"].as_array().unwrap();
    assert!(
        !listed.is_empty() && listed.len() <= 1000,
        "{} rejects listed",
        listed.len()
    );
    assert_eq!(listed[0]["line"], 1);
    // Peak memory stays far below the hundreds of MB that one reject record
    // per line cost (757 MB for this body).
    let status = std::fs::read_to_string(format!("/proc/{}/status", hs.pid())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        hwm_kb < 200 << 10,
        "peak RSS {} MB for one 16 MiB body",
        hwm_kb >> 10
    );
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let (_tmp, hs) = start(&["--token", "s3cret"]);
    let line = b"{\"id\":\"A1\",\"ts\":1773538061000,\"region\":\"r\",\"text\":\"t\"}\n";
    for auth in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret"] {
        let (code, body) = http(
            "POST",
            hs.addr,
            "/v1/complaints",
            &[("Authorization", auth)],
            line,
        );
        assert_eq!(code, 200, "{auth}: {body}");
    }
    for auth in ["bearer wrong", "Basic s3cret"] {
        let (code, _) = http(
            "POST",
            hs.addr,
            "/v1/complaints",
            &[("Authorization", auth)],
            line,
        );
        assert_eq!(code, 401, "{auth}");
    }
}

/// A request a receiver got: its raw head bytes and its body.
type Request = (Vec<u8>, Vec<u8>);

/// A webhook receiver that keeps each request's raw head bytes and body.
fn raw_receiver() -> (SocketAddr, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let g = g.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = buf[..end].to_vec();
                        let len: usize = String::from_utf8_lossy(&head)
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let body = buf[end + 4..end + 4 + len].to_vec();
                            g.lock().unwrap().push((head, body));
                            buf.drain(..end + 4 + len);
                            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                            if conn.write_all(ok).is_err() {
                                return;
                            }
                            continue;
                        }
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, got)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("two hex digits"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn webhook_headers_are_ascii_and_decode_back_to_the_alert_id() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[window]\nsize = \"30m\"\nslide = \"1m\"\nallowed_lateness = \"10m\"\n\
         [[department]]\nid = \"vas\"\nname = \"数据业务部\"\n\
         [[business]]\nid = \"crbt\"\nname = \"彩铃\"\ndepartment = \"vas\"\nthreshold = 2\n\
         [[template]]\nid = \"crbt.copy\"\nbusiness = \"crbt\"\nall_of = [[\"彩铃\"]]\n",
    )
    .unwrap();
    let (raddr, got) = raw_receiver();
    let hook = format!("vas=http://{raddr}/hook");
    let hs = Hotspot::start(
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--webhook",
            &hook,
            "--idle-timeout",
            "off",
        ],
        &tmp.path().join("log"),
    );
    let body = "{\"id\":\"W1\",\"ts\":\"2026-03-14T10:00:00+08:00\",\"region\":\"温州\",\"text\":\"彩铃不响\",\"caller\":\"1\"}\n\
                {\"id\":\"W2\",\"ts\":\"2026-03-14T10:01:00+08:00\",\"region\":\"温州\",\"text\":\"彩铃不响\",\"caller\":\"2\"}\n";
    let answer = hs.post_lines(body.as_bytes());
    assert_eq!(answer["alerts"], 1, "{answer}");
    support::wait_until("the webhook call", Duration::from_secs(30), || {
        !got.lock().unwrap().is_empty()
    });
    let (head, body) = got.lock().unwrap()[0].clone();
    assert!(
        head.iter().all(|b| b.is_ascii()),
        "non-ASCII bytes in the webhook's head: {}",
        String::from_utf8_lossy(&head)
    );
    let head = String::from_utf8(head).unwrap();
    let alert: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = alert["alert_id"].as_str().unwrap();
    assert!(id.contains("温州"), "{id}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} header in {head}"))
    };
    let alert_id = header("x-hotspot-alert-id");
    assert_eq!(String::from_utf8(percent_decode(&alert_id)).unwrap(), id);
    let key = header("idempotency-key");
    let (key_id, state) = key.rsplit_once('/').unwrap();
    assert_eq!(state, "firing");
    assert_eq!(String::from_utf8(percent_decode(key_id)).unwrap(), id);
}
