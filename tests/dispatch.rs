//! Dispatch end to end (CONTRACT 9): the real `hotspot run` with real
//! webhook receivers. An acknowledged alert is not escalated, the others
//! are escalated once, within 5 s after their deadline, and an ack shows
//! in `/v1/alerts` and on the status page at once and survives a restart;
//! three `kill -9`s while reminders and escalations fall due lose none and
//! send none twice (by idempotency key); a silence suppresses
//! notifications, not detection, and ends by itself; city alerts fold into
//! their open province alert. The alerts file always equals a replay of
//! the same input: dispatch changes no alert line.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// A small library: 彩铃 complaints, three distinct callers make an alert.
/// `vas_extra` goes into the vas department (section 9 keys); `more` is
/// appended (departments, regions).
fn rules(dir: &Path, vas_extra: &str, business_extra: &str, more: &str) -> PathBuf {
    let text = format!(
        r#"[window]
size = "30m"
slide = "1m"
allowed_lateness = "10m"

[[department]]
id = "vas"
name = "数据业务部"
{vas_extra}
[[department]]
id = "duty"
name = "值班室"

[[business]]
id = "crbt"
name = "彩铃"
department = "vas"
threshold = 3
{business_extra}
[[template]]
id = "crbt.copy_fail"
business = "crbt"
phenomenon = "彩铃复制失败"
all_of = [["彩铃"]]
{more}"#
    );
    let p = dir.join("rules.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `n` complaints about 彩铃 in `region` from distinct callers, at
/// 2026-03-15 09:MM:SS +08:00 (`minute`, then a second apart), ids
/// `{prefix}{i}`.
fn complaints(region: &str, n: usize, prefix: &str, minute: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"id\":\"{prefix}{i}\",\"ts\":\"2026-03-15T09:{minute:02}:{:02}+08:00\",\"region\":\"{region}\",\"text\":\"彩铃复制失败，回访号码139{:08}\",\"caller\":\"{prefix}-c{i}\"}}\n",
                i % 60,
                i
            )
        })
        .collect()
}

/// A complaint an hour later: the watermark passes every window and its
/// lateness, so every open alert resolves.
fn later(id: &str) -> String {
    format!(
        "{{\"id\":\"{id}\",\"ts\":\"2026-03-15T10:30:00+08:00\",\"region\":\"远方\",\"text\":\"与业务无关\"}}\n"
    )
}

/// `s` percent-encoded for a URL path segment.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A JSON request with an optional bearer token: (status, body as JSON).
fn call(hs: &Hotspot, method: &str, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (code, text) = http(method, hs.addr, path, &headers, body.to_string().as_bytes());
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn post_complaints(hs: &Hotspot, body: &str, token: Option<&str>) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (code, text) = http("POST", hs.addr, "/v1/complaints", &headers, body.as_bytes());
    assert_eq!(code, 200, "{text}");
}

fn open_alerts(hs: &Hotspot) -> Vec<Value> {
    hs.json("/v1/alerts").as_array().unwrap().clone()
}

fn id_of(alerts: &[Value], region: &str) -> String {
    alerts
        .iter()
        .find(|a| a["region"] == region)
        .unwrap_or_else(|| panic!("no open alert in {region}: {alerts:?}"))["alert_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The alert lines `hotspot replay` writes for `input` with `rules`.
fn replay(rules: &Path, input: &str, dir: &Path) -> Vec<String> {
    let inp = dir.join("replay-input.jsonl");
    let out = dir.join("replay-alerts.jsonl");
    std::fs::write(&inp, input).unwrap();
    let st = Command::new(bin())
        .arg("replay")
        .arg("--rules")
        .arg(rules)
        .arg("--input")
        .arg(&inp)
        .arg("--alerts")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The received requests at `path` whose idempotency key ends with `suffix`.
fn keyed<'a>(got: &'a [Received], path: &str, suffix: &str) -> Vec<&'a Received> {
    got.iter()
        .filter(|r| {
            r.path == path
                && r.idempotency_key
                    .as_deref()
                    .is_some_and(|k| k.ends_with(suffix))
        })
        .collect()
}

fn body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

fn metric(hs: &Hotspot, line_start: &str) -> Option<f64> {
    get(hs.addr, "/metrics")
        .1
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn an_ack_stops_the_escalation_and_the_others_escalate_once() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules(
        dir.path(),
        "ack_within = \"6s\"\nescalate_to = \"duty\"\n",
        "",
        "",
    );
    let recv = Receiver::start();
    let alerts_file = dir.path().join("alerts.jsonl");
    let state = dir.path().join("state");
    let token = "s3cret";
    let args: Vec<String> = vec![
        "--rules".into(),
        rules.display().to_string(),
        "--alerts".into(),
        alerts_file.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
        "--webhook".into(),
        format!("vas={}", recv.url("/vas")),
        "--webhook".into(),
        format!("duty={}", recv.url("/duty")),
        "--idle-timeout".into(),
        "off".into(),
        "--token".into(),
        token.into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut hs = Hotspot::start(&args, &dir.path().join("hotspot.log"));
    let input = complaints("杭州", 3, "HZ", 1)
        + &complaints("宁波", 3, "NB", 2)
        + &complaints("温州", 3, "WZ", 3);
    post_complaints(&hs, &input, Some(token));
    let open = open_alerts(&hs);
    assert_eq!(open.len(), 3, "{open:?}");
    assert!(open.iter().all(|a| a["ack_state"] == "unacknowledged"));
    let hz = id_of(&open, "杭州");
    let (nb, wz) = (id_of(&open, "宁波"), id_of(&open, "温州"));
    // Deadlines (and the ack time) count from the delivery to vas: wait
    // until all three deliveries are journaled.
    wait_until("three deliveries to vas", Duration::from_secs(30), || {
        open_alerts(&hs)
            .iter()
            .filter(|a| a.get("notified_at").is_some())
            .count()
            == 3
    });

    // The API's refusals.
    let ack_path = format!("/v1/alerts/{}/ack", enc(&hz));
    let who = json!({"by": "张三", "note": "已联系平台，回访 13812345678"});
    assert_eq!(call(&hs, "POST", &ack_path, &who, None).0, 401);
    assert_eq!(call(&hs, "POST", &ack_path, &who, Some("wrong")).0, 401);
    let (code, v) = call(
        &hs,
        "POST",
        "/v1/alerts/crbt%3A%E4%B8%8D%E5%AD%98%E5%9C%A8/ack",
        &who,
        Some(token),
    );
    assert_eq!(code, 404, "{v}");
    let (code, v) = call(&hs, "POST", &ack_path, &json!({"note": "x"}), Some(token));
    assert_eq!(code, 400, "{v}");
    let (code, v) = call(
        &hs,
        "POST",
        &ack_path,
        &json!({"by": "x", "who": "y"}),
        Some(token),
    );
    assert_eq!(code, 400, "unknown keys are refused: {v}");
    let (code, v) = call(&hs, "POST", &ack_path, &json!({"by": " "}), Some(token));
    assert_eq!(code, 400, "{v}");

    // 杭州 is acknowledged at once: shown within 1 s.
    let t = Instant::now();
    let (code, v) = call(&hs, "POST", &ack_path, &who, Some(token));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["ack"]["by"], "张三");
    assert_eq!(
        v["ack"]["note"], "已联系平台，回访 138****5678",
        "notes are masked"
    );
    let mut shown = None;
    while t.elapsed() < Duration::from_secs(1) {
        let a = open_alerts(&hs);
        let page = get(hs.addr, "/").1;
        if a.iter()
            .any(|a| a["alert_id"] == hz.as_str() && a["ack"]["by"] == "张三")
            && page.contains("已确认 acknowledged: <b>张三</b>")
        {
            shown = Some(t.elapsed());
            break;
        }
    }
    let shown = shown.expect("the ack on /v1/alerts and the status page within 1 s");
    println!(
        "ack shown on /v1/alerts and the status page {} ms after the POST",
        shown.as_millis()
    );
    // Assign and close answer too (宁波 stays untouched: it is escalated).
    let (code, v) = call(
        &hs,
        "POST",
        &format!("/v1/alerts/{}/assign", enc(&hz)),
        &json!({"by": "张三", "to": "平台组 李四"}),
        Some(token),
    );
    assert_eq!(
        (code, v["assigned"]["to"].as_str()),
        (200, Some("平台组 李四")),
        "{v}"
    );

    // 宁波 and 温州: a reminder at 3 s, one escalation at 6 s.
    wait_until("two escalations", Duration::from_secs(30), || {
        keyed(&recv.received(), "/duty", "/escalation-1").len() >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    let got = recv.received();
    let escalations = keyed(&got, "/duty", "/escalation-1");
    let escalated: BTreeSet<String> = escalations
        .iter()
        .map(|r| body(r)["alert_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(escalations.len(), 2, "one escalation each: {got:?}");
    assert_eq!(escalated, BTreeSet::from([nb.clone(), wz.clone()]));
    for e in &escalations {
        let b = body(e);
        assert_eq!(b["escalation"]["from"], "vas");
        assert_eq!(b["escalation"]["to"], "duty");
        assert!(b["escalation"]["after_s"].as_i64().unwrap() >= 6, "{b}");
        assert_eq!(b["state"], "firing");
        // Within 5 s after the deadline: 6 s after its delivery to vas.
        let id = b["alert_id"].as_str().unwrap();
        let fired = keyed(&got, "/vas", "/firing")
            .into_iter()
            .find(|r| body(r)["alert_id"] == id)
            .expect("the firing line reached vas");
        let after = e.at.duration_since(fired.at);
        println!(
            "{id}: escalated {:.2} s after its delivery (deadline 6 s)",
            after.as_secs_f64()
        );
        assert!(
            after >= Duration::from_millis(5900) && after <= Duration::from_secs(11),
            "escalated {after:?} after delivery"
        );
    }
    let reminders = keyed(&got, "/vas", "/reminder");
    let reminded: Vec<&str> = reminders
        .iter()
        .map(|r| {
            assert!(body(r)["reminder"]["ack_within_s"] == 6);
            r.idempotency_key.as_deref().unwrap()
        })
        .collect();
    assert!(
        reminders.iter().all(|r| body(r)["alert_id"] != hz.as_str()),
        "no reminder for the acknowledged alert"
    );
    assert_eq!(reminded.len(), 2, "{reminded:?}");
    assert!(
        !got.iter()
            .any(|r| r.body.contains(&hz) && r.path == "/duty")
    );
    let keys: Vec<&str> = got
        .iter()
        .map(|r| r.idempotency_key.as_deref().unwrap())
        .collect();
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>().len(),
        keys.len(),
        "nothing twice: {keys:?}"
    );

    // Metrics.
    assert_eq!(
        metric(
            &hs,
            "hotspot_alerts_open_by_ack{ack=\"assigned\",department=\"vas\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &hs,
            "hotspot_alerts_open_by_ack{ack=\"unacknowledged\",department=\"vas\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &hs,
            "hotspot_dispatch_notifications_total{department=\"duty\",step=\"escalation\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(&hs, "hotspot_alert_ack_seconds_count{department=\"vas\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&hs, "hotspot_alerts_overdue{department=\"vas\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&hs, "hotspot_alerts_overdue{department=\"duty\"}"),
        None,
        "duty has no deadline"
    );

    // The alerts file is the engine's: exactly what a replay writes (less
    // the end-of-input resolutions).
    let live = lines(&alerts_file);
    let replayed = replay(&rules, &input, dir.path());
    assert_eq!(live.len(), 3);
    assert_eq!(live[..], replayed[..3], "dispatch changes no alert line");

    // A restart keeps the ack, and sends nothing again.
    let before = recv.received().len();
    let (code, _) = hs.terminate();
    assert_eq!(code, Some(0));
    let hs = Hotspot::start(&args, &dir.path().join("hotspot2.log"));
    let a = open_alerts(&hs);
    let h = a.iter().find(|a| a["alert_id"] == hz.as_str()).unwrap();
    assert_eq!(h["ack"]["by"], "张三");
    assert_eq!(h["assigned"]["to"], "平台组 李四");
    assert_eq!(a.iter().filter(|a| a["escalations"].is_array()).count(), 2);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        recv.received().len(),
        before,
        "nothing sent again after the restart"
    );
}

/// Reminders and escalations along a chain vas (3 s) → duty (3 s) →
/// boss, for twelve alerts that fire a quarter of a second apart; the
/// service is killed with SIGKILL three times while they fall due and
/// restarted at once. Every alert's firing line, escalations and (unless
/// the service was down through both its reminder time and its deadline)
/// reminder arrive; no idempotency key arrives with two different bodies,
/// and none more often than the kills allow.
#[test]
fn three_kill_9s_during_escalations_lose_nothing_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules(
        dir.path(),
        "ack_within = \"3s\"\nescalate_to = \"duty\"\n",
        "",
        "",
    );
    let text = std::fs::read_to_string(&rules).unwrap().replace(
        "id = \"duty\"\nname = \"值班室\"\n",
        "id = \"duty\"\nname = \"值班室\"\nack_within = \"3s\"\nescalate_to = \"boss\"\n\n[[department]]\nid = \"boss\"\nname = \"分管领导\"\n",
    );
    std::fs::write(&rules, text).unwrap();
    let recv = Receiver::start();
    let state = dir.path().join("state");
    let args: Vec<String> = vec![
        "--rules".into(),
        rules.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
        "--webhook".into(),
        format!("vas={}", recv.url("/vas")),
        "--webhook".into(),
        format!("duty={}", recv.url("/duty")),
        "--webhook".into(),
        format!("boss={}", recv.url("/boss")),
        "--idle-timeout".into(),
        "off".into(),
        "--retry-initial".into(),
        "50ms".into(),
        "--retry-max".into(),
        "200ms".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = |n: usize| dir.path().join(format!("hotspot{n}.log"));
    let mut hs = Hotspot::start(&args, &log(0));
    let regions: Vec<String> = (0..12).map(|i| format!("城市{i:02}")).collect();
    let t0 = Instant::now();
    for (i, r) in regions.iter().enumerate() {
        post_complaints(&hs, &complaints(r, 3, &format!("R{i:02}-"), i as u32), None);
        std::thread::sleep(Duration::from_millis(250));
    }
    // Three kills while reminders and escalations fall due.
    for (start, at) in [2.5, 5.0, 7.5].into_iter().enumerate() {
        let wait = Duration::from_secs_f64(at).saturating_sub(t0.elapsed());
        std::thread::sleep(wait);
        hs.kill9();
        hs = Hotspot::start(&args, &log(start + 1));
    }
    let must = |ids: &[String]| -> BTreeSet<String> {
        ids.iter()
            .flat_map(|id| {
                let e = enc(id);
                [
                    format!("/vas {e}/firing"),
                    format!("/duty {e}/escalation-1"),
                    format!("/boss {e}/escalation-2"),
                ]
            })
            .collect()
    };
    let seen = |got: &[Received]| -> BTreeSet<String> {
        got.iter()
            .map(|r| format!("{} {}", r.path, r.idempotency_key.as_deref().unwrap_or("")))
            .collect()
    };
    let mut all_ids = Vec::new();
    wait_until("every escalation", Duration::from_secs(60), || {
        all_ids = open_alerts(&hs)
            .iter()
            .map(|a| a["alert_id"].as_str().unwrap().to_owned())
            .collect();
        all_ids.len() == regions.len() && must(&all_ids).is_subset(&seen(&recv.received()))
    });
    std::thread::sleep(Duration::from_secs(3));
    let got = recv.received();
    let seen = seen(&got);
    let must = must(&all_ids);
    let optional: BTreeSet<String> = all_ids
        .iter()
        .map(|id| format!("/vas {}/reminder", enc(id)))
        .collect();
    let lost: Vec<&String> = must.difference(&seen).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let extra: Vec<&String> = seen
        .difference(&must)
        .filter(|k| !optional.contains(*k))
        .collect();
    assert!(
        extra.is_empty(),
        "notifications nobody should get: {extra:?}"
    );
    // By idempotency key: one body per key; a key repeats only where a
    // kill fell between a receiver's answer and the record of it (the
    // window every HTTP sender has, which the key is for).
    let mut by_key: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &got {
        by_key
            .entry(format!(
                "{} {}",
                r.path,
                r.idempotency_key.as_deref().unwrap()
            ))
            .or_default()
            .push(r);
    }
    let repeats: Vec<(&String, usize)> = by_key
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, v)| (k, v.len()))
        .collect();
    for (k, v) in &by_key {
        let bodies: BTreeSet<&str> = v.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(
            bodies.len(),
            1,
            "{k} came with different bodies: {bodies:?}"
        );
    }
    println!(
        "{} alerts, {} notifications ({} reminders) at the receivers, {} distinct keys, repeated keys: {repeats:?}",
        all_ids.len(),
        got.len(),
        seen.intersection(&optional).count(),
        by_key.len()
    );
    assert!(repeats.len() <= 3, "more repeats than kills: {repeats:?}");
    assert!(repeats.iter().all(|(_, n)| *n == 2), "{repeats:?}");
}

#[test]
fn a_silence_suppresses_notifications_not_detection_and_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules(dir.path(), "", "", "");
    let recv = Receiver::start();
    let alerts_file = dir.path().join("alerts.jsonl");
    let hs = Hotspot::start(
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alerts",
            alerts_file.to_str().unwrap(),
            "--webhook",
            &format!("vas={}", recv.url("/vas")),
            "--idle-timeout",
            "off",
        ],
        &dir.path().join("hotspot.log"),
    );
    // Refusals.
    let in_secs = |s: i64| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + s * 1000;
        // RFC 3339 in UTC from epoch ms, by hand: days to a civil date.
        let (days, secs) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    };
    for (bad, why) in [
        (
            json!({"matchers": {"business": "crbt"}, "until": in_secs(-5), "by": "运维"}),
            "in the past",
        ),
        (
            json!({"matchers": {}, "until": in_secs(60), "by": "运维"}),
            "no matcher",
        ),
        (
            json!({"matchers": {"city": "杭州"}, "until": in_secs(60), "by": "运维"}),
            "unknown matcher",
        ),
        (
            json!({"matchers": {"scope": "city"}, "until": in_secs(60), "by": "运维"}),
            "bad scope",
        ),
        (
            json!({"matchers": {"region": "杭州"}, "until": "tomorrow", "by": "运维"}),
            "bad time",
        ),
        (
            json!({"matchers": {"region": "杭州"}, "until": in_secs(60)}),
            "no by",
        ),
    ] {
        let (code, v) = call(&hs, "POST", "/v1/silences", &bad, None);
        assert_eq!(code, 400, "{why}: {v}");
    }
    // Silence 杭州's 彩铃 for 4 seconds.
    let (code, s) = call(
        &hs,
        "POST",
        "/v1/silences",
        &json!({"matchers": {"business": "crbt", "region": "杭州"}, "until": in_secs(4), "by": "运维 王工", "why": "彩铃平台割接"}),
        None,
    );
    assert_eq!(code, 200, "{s}");
    let sid = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["state"], "active");
    let listed = hs.json("/v1/silences");
    assert_eq!(listed[0]["id"], sid.as_str());
    assert_eq!(
        listed[0]["matchers"],
        json!({"business": "crbt", "region": "杭州"})
    );
    // 杭州 and 宁波 fire: 杭州 is detected, not notified.
    let mut input = complaints("杭州", 3, "HZ", 1) + &complaints("宁波", 3, "NB", 2);
    post_complaints(&hs, &input, None);
    let open = open_alerts(&hs);
    assert_eq!(open.len(), 2, "detection goes on: {open:?}");
    let hz = id_of(&open, "杭州");
    let h = open.iter().find(|a| a["alert_id"] == hz.as_str()).unwrap();
    assert_eq!(h["suppressed"], json!({"by": "silence", "id": sid}));
    assert!(get(hs.addr, "/").1.contains("静默 silenced"));
    wait_until("宁波 notified", Duration::from_secs(10), || {
        recv.received().iter().any(|r| r.body.contains("宁波"))
    });
    // The silence ends by itself.
    wait_until("the silence to expire", Duration::from_secs(15), || {
        hs.json("/v1/silences")[0]["state"] == "expired"
    });
    // Everything resolves; 杭州's resolution follows its firing (not
    // told), 宁波's is told. Then 杭州 fires again: told.
    input += &later("L1");
    input += &complaints("杭州", 3, "HZ2-", 50).replace("T09:50", "T10:31");
    post_complaints(
        &hs,
        &(later("L1") + &complaints("杭州", 3, "HZ2-", 50).replace("T09:50", "T10:31")),
        None,
    );
    wait_until(
        "宁波 resolved and 杭州 again",
        Duration::from_secs(10),
        || {
            let got = recv.received();
            got.len() >= 3
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = recv.received();
    let told: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let b = body(r);
            (
                b["region"].as_str().unwrap().to_owned(),
                b["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        told,
        [
            ("宁波".to_owned(), "firing".to_owned()),
            ("宁波".to_owned(), "resolved".to_owned()),
            ("杭州".to_owned(), "firing".to_owned()),
        ],
        "{got:?}"
    );
    assert!(
        !got.iter().any(|r| r.body.contains(&hz)),
        "the silenced alert was not told"
    );
    // Detection was not silenced: the alerts file is the replay's.
    wait_until("the alerts file", Duration::from_secs(10), || {
        lines(&alerts_file).len() == 5
    });
    let replayed = replay(&rules, &input, dir.path());
    assert_eq!(lines(&alerts_file)[..], replayed[..5]);
    // Expiring one early.
    let (_, s2) = call(
        &hs,
        "POST",
        "/v1/silences",
        &json!({"matchers": {"department": "vas"}, "until": in_secs(3600), "by": "运维"}),
        None,
    );
    let s2 = s2["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/silences/{s2}");
    let (code, v) = call(&hs, "DELETE", &path, &json!({"by": "运维 王工"}), None);
    assert_eq!((code, v["state"].as_str()), (200, Some("expired")), "{v}");
    assert_eq!(call(&hs, "DELETE", &path, &json!({}), None).0, 404);
    assert_eq!(metric(&hs, "hotspot_silences_active"), Some(0.0));
    assert_eq!(
        metric(
            &hs,
            "hotspot_notifications_suppressed_total{reason=\"silence\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn city_alerts_fold_into_their_open_province_alert() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules(
        dir.path(),
        "",
        "province_threshold = 5\n",
        "\n[[region]]\nid = \"杭州\"\nprovince = \"浙江\"\n\n[[region]]\nid = \"宁波\"\nprovince = \"浙江\"\n\n[[region]]\nid = \"温州\"\nprovince = \"浙江\"\n",
    );
    let recv = Receiver::start();
    let alerts_file = dir.path().join("alerts.jsonl");
    let hs = Hotspot::start(
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alerts",
            alerts_file.to_str().unwrap(),
            "--webhook",
            &format!("vas={}", recv.url("/vas")),
            "--idle-timeout",
            "off",
        ],
        &dir.path().join("hotspot.log"),
    );
    // 杭州 fires on its own; with 宁波's two the province reaches 5 and
    // fires; then 温州 and 宁波 reach 3 while the province alert is open.
    let input = complaints("杭州", 3, "HZ", 1)
        + &complaints("宁波", 2, "NB", 2)
        + &complaints("温州", 3, "WZ", 3)
        + &complaints("宁波", 3, "NBB", 4);
    post_complaints(&hs, &input, None);
    let open = open_alerts(&hs);
    let province = open
        .iter()
        .find(|a| a["scope"] == "province")
        .expect("province alert");
    let pid = province["alert_id"].as_str().unwrap().to_owned();
    assert_eq!(open.len(), 4, "{open:?}");
    for city in ["温州", "宁波"] {
        let a = open
            .iter()
            .find(|a| a["region"] == city && a["scope"] == "region")
            .unwrap();
        assert_eq!(
            a["suppressed"],
            json!({"by": "grouped", "into": pid}),
            "{a}"
        );
    }
    assert!(get(hs.addr, "/").1.contains("已并入全省告警 folded into"));
    post_complaints(&hs, &later("L1"), None);
    wait_until("the resolutions", Duration::from_secs(10), || {
        recv.received().len() >= 4
    });
    std::thread::sleep(Duration::from_millis(500));
    let got: Vec<Value> = recv.received().iter().map(body).collect();
    let told: Vec<(&str, &str)> = got
        .iter()
        .map(|b| (b["region"].as_str().unwrap(), b["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        told,
        [
            ("杭州", "firing"),
            ("浙江", "firing"),
            ("杭州", "resolved"),
            ("浙江", "resolved")
        ],
        "folded cities are not told on their own"
    );
    // The province's firing lists 杭州 (told before it); its resolution
    // lists all three, 温州 and 宁波 folded into it.
    let g = |b: &Value| -> Vec<(String, bool)> {
        b["grouped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["region"].as_str().unwrap().to_owned(),
                    g["notified"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(got[1]["grouped"][0]["state"], "firing");
    assert_eq!(g(&got[1]), [("杭州".to_owned(), true)]);
    assert_eq!(
        g(&got[3]),
        [
            ("杭州".to_owned(), true),
            ("温州".to_owned(), false),
            ("宁波".to_owned(), false),
        ]
    );
    // Detection and the alerts file are unchanged.
    let input = input + &later("L1");
    wait_until("the alerts file", Duration::from_secs(10), || {
        lines(&alerts_file).len() == 8
    });
    assert_eq!(lines(&alerts_file), replay(&rules, &input, dir.path()));
    assert_eq!(
        metric(
            &hs,
            "hotspot_notifications_suppressed_total{reason=\"grouped\"}"
        ),
        Some(2.0)
    );
}
