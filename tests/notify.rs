//! Notification formats end to end: the real binary (`hotspot run`) with the
//! conformance traffic POSTed, delivering to local receivers that check
//! what each group robot's documentation asks for — WeCom and DingTalk
//! markdown, a Feishu card, DingTalk's signed URL and Feishu's signed body —
//! and answer as the robots do, refusing the first message with an error
//! code; and e-mail to a real SMTP server (aiosmtpd) that refuses the first
//! message with 451. Every alert line reaches every receiver exactly once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::*;

const DINGTALK_SECRET: &str = "SEC0123456789abcdef+/=";
const FEISHU_SECRET: &str = "feishu-secret-äöü";
const DINGTALK_TOKEN: &str = "dtToken0123456789";
const WECOM_KEY: &str = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa";
const FEISHU_HOOK: &str = "5e3d587e-d78e-4a07-bd07-265f269f86fd";
const PUBLIC_URL: &str = "http://status.example:8080";

/// One request a robot receiver got.
#[derive(Debug, Clone)]
struct Got {
    robot: String,
    department: String,
    /// The robot took it (answered code 0).
    taken: bool,
    /// Why a request that follows the documentation was refused anyway (the
    /// receiver's deliberate first refusal), or what was wrong with it.
    problem: Option<String>,
    key: String,
    body: Value,
    raw: String,
}

/// A local server that speaks like the three group robots.
struct Robots {
    addr: std::net::SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
    _thread: std::thread::JoinHandle<()>,
}

fn hmac_b64(key: &[u8], msg: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Keys of a JSON object.
fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// What is wrong with a WeCom group robot request (`msgtype: markdown`,
/// `markdown.content` of at most 4096 bytes), if anything.
fn wecom_problem(query: &BTreeMap<String, String>, body: &Value) -> Option<String> {
    if query.get("key").map(String::as_str) != Some(WECOM_KEY) {
        return Some(format!("93000 invalid webhook url: {query:?}"));
    }
    if keys(body) != BTreeSet::from(["msgtype", "markdown"]) || body["msgtype"] != "markdown" {
        return Some(format!("40008 invalid message type: {body}"));
    }
    let m = &body["markdown"];
    let c = m["content"].as_str().unwrap_or("");
    if keys(m) != BTreeSet::from(["content"]) || c.is_empty() || c.len() > 4096 {
        return Some(format!(
            "40058 markdown.content missing or over 4096 bytes: {m}"
        ));
    }
    None
}

/// DingTalk custom robot: `access_token`, and with 加签 `timestamp` (ms,
/// within an hour) and `sign` = base64(HMAC-SHA256(secret,
/// timestamp\nsecret)) URL-encoded; `msgtype: markdown` with `title` and
/// `text`.
fn dingtalk_problem(query: &BTreeMap<String, String>, body: &Value) -> Option<String> {
    if query.get("access_token").map(String::as_str) != Some(DINGTALK_TOKEN) {
        return Some(format!("300001 token is not exist: {query:?}"));
    }
    let (Some(ts), Some(sign)) = (query.get("timestamp"), query.get("sign")) else {
        return Some(format!(
            "310000 sign not match (no timestamp or sign): {query:?}"
        ));
    };
    let Ok(ms) = ts.parse::<i64>() else {
        return Some(format!("310000 timestamp {ts:?} is not milliseconds"));
    };
    if (ms / 1000 - now_s()).abs() > 3600 {
        return Some(format!("310000 timestamp {ts} is more than an hour away"));
    }
    let want = hmac_b64(
        DINGTALK_SECRET.as_bytes(),
        format!("{ts}\n{DINGTALK_SECRET}").as_bytes(),
    );
    if *sign != want {
        return Some(format!("310000 sign not match: {sign:?} != {want:?}"));
    }
    let m = &body["markdown"];
    if body["msgtype"] != "markdown"
        || !keys(body).is_subset(&BTreeSet::from(["msgtype", "markdown", "at"]))
        || keys(m) != BTreeSet::from(["title", "text"])
        || m["title"].as_str().is_none_or(str::is_empty)
        || m["text"].as_str().is_none_or(str::is_empty)
    {
        return Some(format!("40035 invalid markdown message: {body}"));
    }
    None
}

/// Feishu custom bot: with 签名校验 `timestamp` (seconds, within an hour)
/// and `sign` = base64(HMAC-SHA256(key = timestamp\nsecret, message =
/// empty)) in the body; `msg_type: interactive` with a `card` of a header
/// (plain_text title, a colour template) and elements.
fn feishu_problem(body: &Value) -> Option<String> {
    let (Some(ts), Some(sign)) = (body["timestamp"].as_str(), body["sign"].as_str()) else {
        return Some(format!(
            "19021 sign match fail (no timestamp or sign): {body}"
        ));
    };
    let Ok(s) = ts.parse::<i64>() else {
        return Some(format!("19021 timestamp {ts:?} is not seconds"));
    };
    if (s - now_s()).abs() > 3600 {
        return Some(format!("19021 timestamp {ts} is not within one hour"));
    }
    let want = hmac_b64(format!("{ts}\n{FEISHU_SECRET}").as_bytes(), b"");
    if sign != want {
        return Some(format!("19021 sign match fail: {sign:?} != {want:?}"));
    }
    if keys(body) != BTreeSet::from(["timestamp", "sign", "msg_type", "card"])
        || body["msg_type"] != "interactive"
    {
        return Some(format!("9499 Bad Request: {body}"));
    }
    let card = &body["card"];
    let header = &card["header"];
    let templates = [
        "blue",
        "wathet",
        "turquoise",
        "green",
        "yellow",
        "orange",
        "red",
        "carmine",
        "violet",
        "purple",
        "indigo",
        "grey",
    ];
    if header["title"]["tag"] != "plain_text"
        || header["title"]["content"]
            .as_str()
            .is_none_or(str::is_empty)
        || !templates.contains(&header["template"].as_str().unwrap_or(""))
    {
        return Some(format!("9499 Bad Request: card header {header}"));
    }
    let Some(elements) = card["elements"].as_array().filter(|e| !e.is_empty()) else {
        return Some("9499 Bad Request: card without elements".into());
    };
    for e in elements {
        let ok = match e["tag"].as_str() {
            Some("div") => {
                ["plain_text", "lark_md"].contains(&e["text"]["tag"].as_str().unwrap_or(""))
                    && e["text"]["content"].as_str().is_some_and(|c| !c.is_empty())
            }
            Some("hr") => true,
            Some("action") => e["actions"].as_array().is_some_and(|a| {
                a.iter().all(|b| {
                    b["tag"] == "button"
                        && b["text"]["tag"] == "plain_text"
                        && b["url"].as_str().is_some_and(|u| u.starts_with("http"))
                })
            }),
            _ => false,
        };
        if !ok {
            return Some(format!("9499 Bad Request: card element {e}"));
        }
    }
    if body.to_string().len() > 20_000 {
        return Some("9499 request body over 20 KB".into());
    }
    None
}

impl Robots {
    fn start() -> Robots {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let g = got.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(
                    move |uri: axum::http::Uri,
                          headers: axum::http::HeaderMap,
                          body: bytes::Bytes| {
                        let g = g.clone();
                        async move { answer(&g, &uri, &headers, &body) }
                    },
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        Robots {
            addr: rx.recv().unwrap(),
            got,
            _thread: thread,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

/// Answers one request as the robot its path names (`/wecom/DEPT`,
/// `/dingtalk/DEPT`, `/feishu/DEPT/HOOK`, `/json/DEPT`): the first request
/// each robot gets is refused with its error code although it is right.
fn answer(
    got: &Mutex<Vec<Got>>,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> String {
    let url = reqwest::Url::parse(&format!("http://x{uri}")).unwrap();
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let mut parts = url.path().trim_start_matches('/').split('/');
    let robot = parts.next().unwrap_or("").to_owned();
    let department = parts.next().unwrap_or("").to_owned();
    let raw = String::from_utf8_lossy(body).into_owned();
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut problem = match robot.as_str() {
        "wecom" => wecom_problem(&query, &v),
        "dingtalk" => dingtalk_problem(&query, &v),
        "feishu" if parts.next() == Some(FEISHU_HOOK) => feishu_problem(&v),
        "feishu" => Some("19001 param invalid: incoming webhook access token invalid".into()),
        _ => None,
    };
    let mut g = got.lock().unwrap();
    let first = robot != "json" && !g.iter().any(|x| x.robot == robot);
    if first && problem.is_none() {
        problem = Some("deliberate first refusal".into());
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let taken = problem.is_none();
    let reply = match (robot.as_str(), &problem) {
        ("wecom", None) | ("dingtalk", None) => json!({"errcode": 0, "errmsg": "ok"}),
        ("wecom", Some(_)) => json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
        ("dingtalk", Some(p)) => json!({"errcode": 310000, "errmsg": p}),
        ("feishu", None) => json!({"code": 0, "msg": "success", "data": {}}),
        ("feishu", Some(p)) => json!({"code": 19021, "msg": p, "data": {}}),
        _ => json!({}),
    };
    g.push(Got {
        robot,
        department,
        taken,
        problem,
        key,
        body: v,
        raw,
    });
    reply.to_string()
}

/// `s` percent-encoded as hotspot's headers write alert ids.
fn header_safe(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The alert lines of the alerts file, by department.
fn lines_by_department(alerts: &Path) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut m: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for l in std::fs::read_to_string(alerts).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        m.entry(v["department"].as_str().unwrap().to_owned())
            .or_default()
            .push((l.to_owned(), v));
    }
    m
}

fn idempotency_key(v: &Value) -> String {
    format!(
        "{}/{}",
        header_safe(v["alert_id"].as_str().unwrap()),
        v["state"].as_str().unwrap()
    )
}

/// The conformance traffic through `hotspot run` with `args`; returns the
/// service and the path of its alerts file once every line is in it.
fn run_conformance(tmp: &Path, args: &[&str]) -> (Hotspot, PathBuf, usize) {
    let c = conformance();
    let alerts = tmp.join("alerts.jsonl");
    let rules = c.join("rules.toml");
    let mut all = vec![
        "--rules",
        rules.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--idle-timeout",
        "off",
        "--retry-initial",
        "50ms",
        "--retry-max",
        "300ms",
        "--public-url",
        PUBLIC_URL,
    ];
    all.extend_from_slice(args);
    let hs = Hotspot::start(&all, &tmp.join("log"));
    hs.post_file(&c.join("traffic.jsonl"), 1000);
    // The live service has no end of input: the lines before it.
    let want = std::fs::read_to_string(c.join("expected.alerts.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"end_of_input\":true"))
        .count();
    wait_until("the alert lines", Duration::from_secs(30), || {
        alerts.exists() && json_lines(&alerts).len() >= want
    });
    (hs, alerts, want)
}

/// No phone number: a run of exactly 11 digits starting with 1 (alert ids
/// hold longer runs: 13-digit times, 16-digit record numbers).
fn no_phone_numbers(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 11 && b[start] == b'1' {
                return false;
            }
        } else {
            i += 1;
        }
    }
    true
}

#[test]
fn robot_formats_follow_each_robots_documentation_and_refusals_are_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let robots = Robots::start();
    let base = format!("http://{}", robots.addr);
    // Feishu from the config file, with its secret there; the others from
    // flags, DingTalk's secret with --webhook-secret.
    let config = tmp.path().join("hotspot.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhook]]\ndepartment = \"mkt\"\nformat = \"feishu\"\nurl = \"{base}/feishu/mkt/{FEISHU_HOOK}\"\nsecret = \"{FEISHU_SECRET}\"\n"
        ),
    )
    .unwrap();
    let wecom = format!("vas=wecom+{base}/wecom/vas?key={WECOM_KEY}");
    let dingtalk = format!("net=dingtalk+{base}/dingtalk/net?access_token={DINGTALK_TOKEN}");
    let secret = format!("net={DINGTALK_SECRET}");
    let plain = format!("it={base}/json/it");
    let (hs, alerts, _) = run_conformance(
        tmp.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--webhook",
            &wecom,
            "--webhook",
            &dingtalk,
            "--webhook-secret",
            &secret,
            "--webhook",
            &plain,
        ],
    );
    let by_dept = lines_by_department(&alerts);
    let routes = [
        ("wecom", "vas"),
        ("dingtalk", "net"),
        ("feishu", "mkt"),
        ("json", "it"),
    ];
    let want_taken: usize = routes.iter().map(|(_, d)| by_dept[*d].len()).sum();
    let against_docs = |g: &Got| {
        g.problem
            .as_deref()
            .is_some_and(|p| p != "deliberate first refusal")
    };
    wait_until(
        "every robot took its lines",
        Duration::from_secs(30),
        || {
            let got = robots.got();
            got.iter().filter(|g| g.taken).count() >= want_taken || got.iter().any(against_docs)
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    let got = robots.got();
    // Every request followed its robot's documentation: the only refusals
    // are the receivers' deliberate first ones.
    let problems: Vec<&Got> = got.iter().filter(|g| against_docs(g)).collect();
    assert!(
        problems.is_empty(),
        "requests against the docs: {problems:#?}"
    );
    for (robot, dept) in routes {
        let mine: Vec<&Got> = got.iter().filter(|g| g.robot == robot).collect();
        assert!(
            mine.iter().all(|g| g.department == dept),
            "{robot}: another department's line"
        );
        let refused = mine.iter().filter(|g| !g.taken).count();
        assert_eq!(
            refused,
            usize::from(robot != "json"),
            "{robot}: refused once"
        );
        if robot != "json" {
            assert!(
                !mine[0].taken && mine[1].taken,
                "{robot}: the refused message is sent again"
            );
            assert_eq!(
                mine[0].key, mine[1].key,
                "{robot}: the retry is the same line"
            );
        }
        // Each alert line taken exactly once, in order, by idempotency key.
        let taken: Vec<&str> = mine
            .iter()
            .filter(|g| g.taken)
            .map(|g| g.key.as_str())
            .collect();
        let want: Vec<String> = by_dept[dept]
            .iter()
            .map(|(_, v)| idempotency_key(v))
            .collect();
        assert_eq!(taken, want, "{robot}: every line once, in order");
        for (g, (line, v)) in mine.iter().filter(|g| g.taken).zip(&by_dept[dept]) {
            let region = v["region"].as_str().unwrap();
            let business = v["business_name"].as_str().unwrap();
            let link = format!(
                "{PUBLIC_URL}/?alert={}",
                header_safe(v["alert_id"].as_str().unwrap())
            );
            let text = match robot {
                "json" => {
                    assert_eq!(&g.raw, line, "json: the alert line's bytes, unchanged");
                    continue;
                }
                "wecom" => g.body["markdown"]["content"].as_str().unwrap().to_owned(),
                "dingtalk" => {
                    let title = g.body["markdown"]["title"].as_str().unwrap();
                    assert!(
                        title.starts_with(region) && title.contains(business),
                        "{title}"
                    );
                    g.body["markdown"]["text"].as_str().unwrap().to_owned()
                }
                _ => {
                    let card = &g.body["card"];
                    let title = card["header"]["title"]["content"].as_str().unwrap();
                    assert!(
                        title.starts_with(region) && title.contains(business),
                        "{title}"
                    );
                    let colour = if v["state"] == "firing" {
                        "red"
                    } else {
                        "green"
                    };
                    assert_eq!(card["header"]["template"], colour);
                    let button =
                        &card["elements"].as_array().unwrap().last().unwrap()["actions"][0];
                    assert_eq!(button["url"], link.as_str());
                    card.to_string()
                }
            };
            for want in [
                format!("**地区**：{region}"),
                format!(
                    "**客户数**：{}",
                    if v["state"] == "firing" {
                        ""
                    } else {
                        "最多 "
                    }
                ),
                format!("{} 位", v["count"]),
                format!("阈值 {}", v["threshold"]),
                format!("**责任部门**：{}", v["department_name"].as_str().unwrap()),
                format!("**窗口**：{}", &v["window_start"].as_str().unwrap()[..10]),
            ] {
                assert!(text.contains(&want), "{robot}: {want:?} missing in {text}");
            }
            if robot != "feishu" {
                assert!(
                    text.contains(&format!("[在状态页查看]({link})")),
                    "{robot}: {text}"
                );
            }
            if v["state"] == "firing" {
                let (tpl, _) = v["templates"].as_object().unwrap().iter().next().unwrap();
                assert!(
                    text.contains(tpl.as_str()),
                    "{robot}: template {tpl} missing"
                );
                assert!(text.contains("样例"), "{robot}: no samples in {text}");
            }
            assert!(
                no_phone_numbers(&text),
                "{robot}: an unmasked number in {text}"
            );
        }
    }
    // Refusals are counted per sink, and no robot's credential is in the
    // metrics or the log.
    let (code, metrics) = get(hs.addr, "/metrics");
    assert_eq!(code, 200);
    for robot in ["wecom", "dingtalk", "feishu"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("hotspot_sink_refusals_total{") && l.contains(&format!(":{robot}:"))
            })
            .unwrap_or_else(|| panic!("no refusals metric for {robot}:\n{metrics}"));
        assert!(line.ends_with(" 1"), "{line}");
    }
    let log = hs.log_text();
    for secret in [
        DINGTALK_TOKEN,
        WECOM_KEY,
        FEISHU_HOOK,
        DINGTALK_SECRET,
        FEISHU_SECRET,
    ] {
        assert!(!metrics.contains(secret), "{secret} in /metrics");
        assert!(!log.contains(secret), "{secret} in the log");
    }
    assert!(
        log.contains("the robot refused the message: 310000"),
        "the refusal is logged with its code"
    );
}

/// A Python with aiosmtpd: HOTSPOT_E2E_PYTHON, the CI venv, or python3.
fn python_with_aiosmtpd() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("HOTSPOT_E2E_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(root().join("target/e2e-venv/bin/python"));
    candidates.push("python3".into());
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// aiosmtpd on a free port, until dropped.
struct SmtpServer {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl SmtpServer {
    fn start(python: &Path, out: PathBuf, fail_first: u32) -> SmtpServer {
        let port = free_port();
        let mut child = Command::new(python)
            .arg(root().join("tests/smtp_receiver.py"))
            .arg(port.to_string())
            .arg(&out)
            .arg(fail_first.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "smtp_receiver.py did not start");
        SmtpServer { child, port, out }
    }

    fn messages(&self) -> Vec<Value> {
        if !self.out.exists() {
            return Vec::new();
        }
        json_lines(&self.out)
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn email_reaches_a_real_smtp_server_once_per_line_in_chinese() {
    let Some(python) = python_with_aiosmtpd() else {
        if std::env::var("HOTSPOT_E2E").as_deref() == Ok("1") {
            panic!(
                "HOTSPOT_E2E=1 but no Python with aiosmtpd (.ci/run installs it in target/e2e-venv)"
            );
        }
        skip(
            "email_reaches_a_real_smtp_server_once_per_line_in_chinese: no Python with aiosmtpd \
             (pip install aiosmtpd, or HOTSPOT_E2E_PYTHON; HOTSPOT_E2E=1 makes this a failure)",
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(&python, tmp.path().join("mail.jsonl"), 1);
    let server = format!("127.0.0.1:{}", smtp.port);
    let (_hs, alerts, _) = run_conformance(
        tmp.path(),
        &[
            "--email",
            "vas=值班 <vas-duty@example.com>,ops@example.com",
            "--email",
            "term=term@example.com",
            "--smtp",
            &server,
            "--smtp-from",
            "hotspot <hotspot@example.com>",
        ],
    );
    let by_dept = lines_by_department(&alerts);
    let want: usize = by_dept["vas"].len() + by_dept["term"].len();
    wait_until("every e-mail", Duration::from_secs(30), || {
        smtp.messages()
            .iter()
            .filter(|m| m["refused"] == false)
            .count()
            >= want
    });
    std::thread::sleep(Duration::from_millis(300));
    let msgs = smtp.messages();
    assert_eq!(
        msgs[0]["refused"], true,
        "the first message was refused with 451"
    );
    let taken: Vec<&Value> = msgs.iter().filter(|m| m["refused"] == false).collect();
    assert_eq!(taken.len(), want, "each line once: {taken:#?}");
    let ids: BTreeSet<&str> = taken
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), want, "one Message-ID per line");
    for dept in ["vas", "term"] {
        let mine: Vec<&&Value> = taken
            .iter()
            .filter(|m| m["rcpt_tos"][0].as_str().unwrap().starts_with(dept))
            .collect();
        let keys: Vec<&str> = mine
            .iter()
            .map(|m| m["idempotency_key"].as_str().unwrap())
            .collect();
        let want_keys: Vec<String> = by_dept[dept]
            .iter()
            .map(|(_, v)| idempotency_key(v))
            .collect();
        assert_eq!(keys, want_keys, "{dept}: every line once, in order");
        for (m, (_, v)) in mine.iter().zip(&by_dept[dept]) {
            assert_eq!(m["mail_from"], "hotspot@example.com");
            assert_eq!(m["from"], "hotspot <hotspot@example.com>");
            if dept == "vas" {
                assert_eq!(
                    m["rcpt_tos"],
                    json!(["vas-duty@example.com", "ops@example.com"]),
                    "one message to all of the department's addresses"
                );
                assert_eq!(m["to"], "值班 <vas-duty@example.com>, ops@example.com");
            }
            assert_eq!(m["content_type"], "text/plain");
            assert_eq!(m["charset"], "utf-8");
            assert_eq!(m["defects"], json!([]), "a well-formed message");
            assert!(
                m["message_id"]
                    .as_str()
                    .unwrap()
                    .ends_with(".hotspot@example.com>")
            );
            let subject = m["subject"].as_str().unwrap();
            let region = v["region"].as_str().unwrap();
            assert!(
                subject.starts_with(&format!(
                    "[hotspot] {region} {}",
                    v["business_name"].as_str().unwrap()
                )),
                "{subject}"
            );
            let body = m["body"].as_str().unwrap();
            for want in [
                format!("地区：{region}"),
                format!("{} 位", v["count"]),
                format!("阈值 {}", v["threshold"]),
                format!("责任部门：{}", v["department_name"].as_str().unwrap()),
                format!(
                    "在状态页查看：{PUBLIC_URL}/?alert={}",
                    header_safe(v["alert_id"].as_str().unwrap())
                ),
            ] {
                assert!(body.contains(&want), "{want:?} missing in {body}");
            }
            if v["state"] == "firing" {
                assert!(body.contains("样例（已脱敏）"), "{body}");
                let sample = v["samples"][0]["text"].as_str().unwrap();
                assert!(
                    body.contains(sample),
                    "the masked sample {sample:?} in {body}"
                );
            }
            assert!(no_phone_numbers(body) && no_phone_numbers(subject));
        }
    }
}

#[test]
fn bad_notification_settings_are_refused_at_start_with_what_to_fix() {
    let cases = [
        (
            vec!["--webhook", "vas=slack+http://127.0.0.1:1/x"],
            "expected a format of json, wecom, dingtalk or feishu",
        ),
        (
            vec![
                "--webhook",
                "vas=wecom+http://127.0.0.1:1/x",
                "--webhook-secret",
                "vas=s",
            ],
            "has no dingtalk or feishu webhook",
        ),
        (
            vec!["--email", "vas=ops@example.com"],
            "--email needs an SMTP server",
        ),
        (
            vec!["--email", "vas=ops@example.com", "--smtp", "127.0.0.1:25"],
            "--email needs a sender",
        ),
        (
            vec!["--email", "vas=not an address"],
            "is not an e-mail address",
        ),
        (vec!["--smtp", "127.0.0.1:25"], "no --email"),
        (
            vec!["--public-url", "status.example"],
            "expected the status page's base URL",
        ),
    ];
    // Every robot's URL is https: a build without TLS says so at start.
    let tls_only = [(
        vec![
            "--webhook",
            "vas=wecom+https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
        ],
        "that needs a build with TLS",
    )];
    let without_tls = tls_only.into_iter().filter(|_| !cfg!(feature = "tls"));
    for (args, want) in cases.into_iter().chain(without_tls) {
        let out = Command::new(bin())
            .arg("run")
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
