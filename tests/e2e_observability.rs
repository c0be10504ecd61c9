//! The monitoring files in `dashboards/` against the real thing: Debian's
//! Prometheus and Alertmanager on loopback ports, the real `hotspot run`
//! binary, real HTTP receivers standing in for the departments.
//!
//! * Alertmanager, configured with `dashboards/alertmanager.yml` (webhook
//!   URLs pointed at the test's receivers, timings shortened), gets hotspot's
//!   alerts and delivers each department exactly its batch complaints,
//!   firing and then resolved.
//! * Prometheus scrapes hotspot with `dashboards/rules/hotspot-alerts.yml`
//!   loaded; every panel query and variable of `dashboards/hotspot.json`
//!   returns data and every rule evaluates without error.
//! * `promtool` and `amtool` accept the configuration, the rules and the
//!   rule unit tests; the Alertmanager routes send each department of the
//!   rules files to its own receiver.
//! * The dashboard validates against Grafana's schema
//!   (`tests/check_dashboard.py` with grafana-foundation-sdk 11.6).
//!
//! Without the tools (or the Python venv) a test prints a `SKIP:` line and
//! returns; with `HOTSPOT_E2E=1` (as `.ci/run` sets it) it fails instead.

#[path = "support/section8.rs"]
mod section8;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

// ------------------------------------------------------------------ tools

/// The external programs the tests run.
struct Tools {
    prometheus: PathBuf,
    alertmanager: PathBuf,
    promtool: PathBuf,
    amtool: PathBuf,
}

fn e2e_required() -> bool {
    std::env::var("HOTSPOT_E2E").is_ok_and(|v| v == "1")
}

/// The first of `names` found on PATH.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Fails the test under `HOTSPOT_E2E=1`, else says SKIP visibly.
fn missing(test: &str, what: &str) {
    if e2e_required() {
        panic!(
            "HOTSPOT_E2E=1 but {what}: install them as .ci/run does (Debian's prometheus and \
             prometheus-alertmanager, the venv in target/e2e-venv)"
        );
    }
    skip(&format!(
        "{test}: {what} (set HOTSPOT_E2E=1 to make this a failure)"
    ));
}

/// Finds prometheus, alertmanager (Debian names it prometheus-alertmanager),
/// promtool and amtool on PATH.
fn tools(test: &str) -> Option<Tools> {
    let found = [
        ("prometheus", on_path(&["prometheus"])),
        (
            "alertmanager",
            on_path(&["alertmanager", "prometheus-alertmanager"]),
        ),
        ("promtool", on_path(&["promtool"])),
        ("amtool", on_path(&["amtool"])),
    ];
    let absent: Vec<&str> = found
        .iter()
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !absent.is_empty() {
        missing(test, &format!("{} not on PATH", absent.join(", ")));
        return None;
    }
    let [p, a, pt, at] = found.map(|(_, p)| p.unwrap());
    Some(Tools {
        prometheus: p,
        alertmanager: a,
        promtool: pt,
        amtool: at,
    })
}

fn dashboards() -> PathBuf {
    root().join("dashboards")
}

// -------------------------------------------------------------- processes

/// A child process that is killed when dropped (also when a test panics;
/// then the end of its log is printed).
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let f = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- last lines of the {} log ---", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// Polls `f` until it is true or `timeout` passes; false on timeout.
fn poll(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a server on a free loopback port (`cmd` builds its command line
/// for a port) and waits for `GET ready` to answer 200. A port taken
/// between choosing and binding is retried with another.
fn start_server(
    name: &str,
    tmp: &Path,
    mut cmd: impl FnMut(u16) -> Command,
    ready: &str,
) -> (Proc, SocketAddr) {
    for attempt in 0..5 {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = tmp.join(format!("{name}.{attempt}.log"));
        let mut p = Proc::spawn(name, &mut cmd(port), &log);
        let up = poll(Duration::from_secs(60), || {
            p.exited() || std::net::TcpStream::connect(addr).is_ok() && get(addr, ready).0 == 200
        });
        if p.exited() {
            let text = p.log_text();
            if text.contains("address already in use") {
                continue;
            }
            panic!("{name} exited at start:\n{text}");
        }
        assert!(up, "{name} not ready on {addr} within 60 s");
        return (p, addr);
    }
    panic!("{name}: no free port after 5 attempts");
}

// ------------------------------------------------------------------- http

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = get(addr, path);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// An instant query; the `data` object, or the error text.
fn prom_query(prom: SocketAddr, expr: &str) -> Result<Value, String> {
    let (code, body) = get(prom, &format!("/api/v1/query?query={}", urlencode(expr)));
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{code}: {e}: {body}"))?;
    if code != 200 || v["status"] != "success" {
        return Err(format!("{code}: {body}"));
    }
    Ok(v["data"].clone())
}

/// Whether a query's data holds at least one series or a scalar.
fn has_data(data: &Value) -> bool {
    match data["resultType"].as_str() {
        Some("vector") | Some("matrix") => data["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar") | Some("string") => true,
        _ => false,
    }
}

// -------------------------------------------------------------- time, json

/// Epoch milliseconds of an RFC 3339 time (`2026-03-14T09:27:41.5+08:00`).
fn epoch_ms(s: &str) -> i64 {
    let bad = || panic!("not an RFC 3339 time: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        bad();
    }
    let num = |r: std::ops::Range<usize>| -> i64 { s[r].parse().unwrap_or_else(|_| bad()) };
    let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, sec) = (num(11..13), num(14..16), num(17..19));
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = &frac[..digits];
        ms = format!("{:0<3}", &f[..f.len().min(3)]).parse().unwrap();
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().unwrap() * 60 + o[4..6].parse::<i64>().unwrap())
        }
        _ => bad(),
    };
    // Days from the civil date (H. Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = if yy >= 0 { yy } else { yy - 399 } / 400;
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    ((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + ms
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
}

/// The department ids of a rules file.
fn departments(rules: &Path) -> Vec<String> {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(rules).unwrap()).unwrap();
    t["department"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The summary annotation hotspot gives an alert line (CONTRACT 7; see
/// `Alert::summary`), rebuilt from the line in the alerts file.
fn expected_summary(line: &Value) -> String {
    let span_ms = epoch_ms(s(line, "window_end")) - epoch_ms(s(line, "window_start"));
    let span = if span_ms > 0 && span_ms % 60_000 == 0 {
        format!("{}分钟内", span_ms / 60_000)
    } else {
        format!("{}秒内", span_ms / 1000)
    };
    let (region, name) = (s(line, "region"), s(line, "business_name"));
    let (count, threshold) = (&line["count"], &line["threshold"]);
    // Section 8: a province says 全省, a surge 投诉突增 and its baseline.
    let place = if line["scope"] == "province" {
        format!("{region}全省")
    } else {
        region.to_owned()
    };
    let (what, against) = if line["kind"] == "surge" {
        let against = match line["baseline"].as_f64() {
            Some(b) => format!("基线 {b}, 突增线 {threshold}"),
            None => format!("突增线 {threshold}"),
        };
        ("投诉突增", against)
    } else {
        ("批量投诉", format!("阈值 {threshold}"))
    };
    if line["state"] == "firing" {
        format!("{place} {name} {what}：{span} {count} 位客户 ({against})")
    } else {
        format!("{place} {name} {what}已恢复：最多 {count} 位客户 ({against})")
    }
}

// ----------------------------------------------------------- alertmanager

/// `dashboards/alertmanager.yml` with its webhook URLs pointed at `urls`
/// (example URL -> test URL) and its waits shortened to a second.
fn alertmanager_config(urls: &[(String, String)]) -> String {
    let mut text = std::fs::read_to_string(dashboards().join("alertmanager.yml")).unwrap();
    for (from, to) in urls {
        assert!(
            text.contains(&format!("url: {from}\n")),
            "dashboards/alertmanager.yml has no receiver URL {from}"
        );
        text = text.replace(&format!("url: {from}\n"), &format!("url: {to}\n"));
    }
    for key in ["group_wait", "group_interval"] {
        let re_lines: Vec<String> = text
            .lines()
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with(&format!("{key}:")) {
                    format!("{}{key}: 1s", &l[..l.len() - t.len()])
                } else {
                    l.to_owned()
                }
            })
            .collect();
        text = re_lines.join("\n") + "\n";
    }
    text
}

/// What the department receivers got from Alertmanager: per department,
/// (status, alert) for every alert of every notification.
fn notified(recv: &BTreeMap<String, Receiver>) -> BTreeMap<String, Vec<(String, Value)>> {
    recv.iter()
        .map(|(d, r)| {
            let alerts = r
                .received()
                .iter()
                .flat_map(|n| {
                    let v: Value = serde_json::from_str(&n.body).unwrap_or_else(|e| {
                        panic!("receiver {d} got a body that is not JSON: {e}: {}", n.body)
                    });
                    v["alerts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| (a["status"].as_str().unwrap_or("").to_owned(), a))
                        .collect::<Vec<_>>()
                })
                .collect();
            (d.clone(), alerts)
        })
        .collect()
}

/// The alert ids of Alertmanager's active BatchComplaint alerts.
fn am_active(am: SocketAddr) -> BTreeSet<String> {
    get_json(am, "/api/v2/alerts?active=true")
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "BatchComplaint")
        .map(|a| {
            a["annotations"]["alert_id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn notified_ids(got: &[(String, Value)], status: &str) -> BTreeSet<String> {
    got.iter()
        .filter(|(st, _)| st == status)
        .map(|(_, a)| {
            a["annotations"]["alert_id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[test]
fn alertmanager_routes_each_department_its_batch_complaints_firing_and_resolved() {
    let test = "alertmanager_routes_each_department_its_batch_complaints_firing_and_resolved";
    let Some(tools) = tools(test) else { return };
    let r = root();
    alertmanager_case(
        &tools,
        &r.join("fixtures/rules.toml"),
        &r.join("fixtures/traffic.jsonl"),
        Some(8),
    );
}

/// Section 8 rules on the fixture day: province and city alerts of one
/// business are separate Alertmanager alerts, told apart by `scope`, with
/// `kind` labels and the summaries saying 全省.
#[test]
fn alertmanager_gets_scope_and_kind_labels_of_section_8_alerts() {
    let test = "alertmanager_gets_scope_and_kind_labels_of_section_8_alerts";
    let Some(tools) = tools(test) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let rules = section8::write_rules(tmp.path(), 40, false);
    alertmanager_case(&tools, &rules, &root().join("fixtures/traffic.jsonl"), None);
}

/// The 3.15 day of the conformance data: 20 alerts, several open at once.
#[test]
fn alertmanager_routes_the_conformance_day() {
    let Some(tools) = tools("alertmanager_routes_the_conformance_day") else {
        return;
    };
    let c = conformance();
    alertmanager_case(
        &tools,
        &c.join("rules.toml"),
        &c.join("traffic.jsonl"),
        Some(support::expected_firing().len()),
    );
}

/// Alertmanager with `dashboards/alertmanager.yml`, hotspot sending it
/// `traffic`: each department's receiver gets exactly its alerts.
fn alertmanager_case(tools: &Tools, rules: &Path, traffic: &Path, firing_expected: Option<usize>) {
    let tmp = tempfile::tempdir().unwrap();
    let depts = departments(rules);

    // A receiver per department, one for unrouted complaints, one for ops.
    let mut recv: BTreeMap<String, Receiver> = BTreeMap::new();
    let mut urls = Vec::new();
    for d in &depts {
        let r = Receiver::start();
        urls.push((
            format!("http://127.0.0.1:9601/hotspot/{d}"),
            r.url(&format!("/am/{d}")),
        ));
        recv.insert(d.clone(), r);
    }
    let unrouted = Receiver::start();
    let ops = Receiver::start();
    urls.push((
        "http://127.0.0.1:9601/hotspot/unrouted".into(),
        unrouted.url("/unrouted"),
    ));
    urls.push(("http://127.0.0.1:9602/ops".into(), ops.url("/ops")));
    let am_config = tmp.path().join("alertmanager.yml");
    std::fs::write(&am_config, alertmanager_config(&urls)).unwrap();

    let storage = tmp.path().join("am-data");
    let (_am, am) = start_server(
        "alertmanager",
        tmp.path(),
        |port| {
            let mut c = Command::new(&tools.alertmanager);
            c.arg(format!("--config.file={}", am_config.display()))
                .arg(format!("--storage.path={}", storage.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=info");
            c
        },
        "/-/ready",
    );

    let alerts_file = tmp.path().join("alerts.jsonl");
    let am_url = format!("http://{am}");
    let hs = Hotspot::start(
        &[
            "--rules",
            rules.to_str().unwrap(),
            "--alerts",
            alerts_file.to_str().unwrap(),
            "--alertmanager",
            &am_url,
            "--idle-timeout",
            "off",
        ],
        &tmp.path().join("hotspot.log"),
    );

    // Post the day in small bodies, and after each body wait until
    // Alertmanager has notified the departments of the alert lines it
    // caused, as a day in real time would: an alert that fires and resolves
    // within one group_wait is (rightly) never notified, and a key that
    // resolves and fires again before the group is flushed is one alert to
    // Alertmanager, which knows alerts by their labels.
    let traffic = std::fs::read_to_string(traffic).unwrap();
    let lines: Vec<&str> = traffic.lines().collect();
    let mut expected_lines = 0;
    let mut seen_lines = 0;
    let mut firing_seen: BTreeSet<String> = BTreeSet::new();
    let mut compared_open = 0;
    for part in lines.chunks(25) {
        let r = hs.post_lines((part.join("\n") + "\n").as_bytes());
        expected_lines += r["alerts"].as_u64().unwrap() as usize;
        assert!(
            poll(Duration::from_secs(20), || json_lines(&alerts_file).len()
                >= expected_lines),
            "the alerts file did not get {expected_lines} lines"
        );
        let file = json_lines(&alerts_file);
        let new = &file[seen_lines..];
        seen_lines = file.len();
        for a in new {
            let (id, dept, state) = (s(a, "alert_id"), s(a, "department"), s(a, "state"));
            if state == "firing" {
                firing_seen.insert(id.to_owned());
            } else {
                assert!(
                    firing_seen.contains(id),
                    "alert {id} fired and resolved within one body of 25 lines: use smaller bodies"
                );
            }
            let r = recv
                .get(dept)
                .unwrap_or_else(|| panic!("an alert for department {dept}, not in the rules"));
            let status = format!("\"status\":\"{state}\"");
            let ok = poll(Duration::from_secs(30), || {
                r.received()
                    .iter()
                    .any(|n| n.body.contains(id) && n.body.contains(&status))
            });
            assert!(
                ok,
                "Alertmanager did not notify {dept} of {state} alert {id} within 30 s"
            );
        }
        if !new.is_empty() {
            // Alertmanager's active alerts are hotspot's open alerts.
            let open: BTreeSet<String> = hs
                .json("/v1/alerts")
                .as_array()
                .unwrap()
                .iter()
                .map(|a| s(a, "alert_id").to_owned())
                .collect();
            let mut active = BTreeSet::new();
            let same = poll(Duration::from_secs(10), || {
                active = am_active(am);
                active == open
            });
            assert!(
                same,
                "Alertmanager's active alerts {active:?} are hotspot's open alerts {open:?}"
            );
            compared_open += usize::from(!open.is_empty());
        }
    }
    assert!(compared_open > 0, "open alerts were compared at least once");

    // Every resolution reaches its department as resolved.
    let file = json_lines(&alerts_file);
    let want = |dept: &str, state: &str| -> BTreeSet<String> {
        file.iter()
            .filter(|a| a["department"] == dept && a["state"] == state)
            .map(|a| s(a, "alert_id").to_owned())
            .collect()
    };
    let ok = poll(Duration::from_secs(30), || {
        let got = notified(&recv);
        depts
            .iter()
            .all(|d| notified_ids(&got[d], "resolved") == want(d, "resolved"))
    });
    let got = notified(&recv);
    assert!(
        ok,
        "resolved notifications: got {:?}",
        got.iter()
            .map(|(d, g)| (d, notified_ids(g, "resolved")))
            .collect::<Vec<_>>()
    );

    // Exactly each department's alerts, with labels and summaries.
    let firing_lines = file.iter().filter(|a| a["state"] == "firing").count();
    let resolved_lines = file.len() - firing_lines;
    if let Some(n) = firing_expected {
        assert_eq!(firing_lines, n, "firing alerts of the day");
    } else {
        // Section 8 rules: a province alert among them.
        assert!(
            file.iter()
                .any(|a| a["scope"] == "province" && a["state"] == "firing"),
            "a province alert fires"
        );
    }
    assert!(resolved_lines > 0, "some alerts resolve during the day");
    let by_id: BTreeMap<(String, String), &Value> = file
        .iter()
        .map(|a| ((s(a, "alert_id").to_owned(), s(a, "state").to_owned()), a))
        .collect();
    for d in &depts {
        let g = &got[d];
        assert_eq!(
            notified_ids(g, "firing"),
            want(d, "firing"),
            "department {d}: firing alerts notified by Alertmanager vs the alerts file"
        );
        assert_eq!(
            notified_ids(g, "resolved"),
            want(d, "resolved"),
            "department {d}: resolved alerts"
        );
        let pairs: BTreeSet<(&String, &str)> = g
            .iter()
            .map(|(st, a)| (st, a["annotations"]["alert_id"].as_str().unwrap()))
            .collect();
        assert_eq!(
            pairs.len(),
            g.len(),
            "department {d}: each alert notified once firing and once resolved"
        );
        for n in recv[d].received() {
            let v: Value = serde_json::from_str(&n.body).unwrap();
            assert_eq!(n.path, format!("/am/{d}"));
            assert_eq!(v["receiver"], format!("dept-{d}"), "{v}");
            assert_eq!(v["commonLabels"]["department"], d.as_str(), "{v}");
        }
        for (status, a) in g {
            let id = a["annotations"]["alert_id"].as_str().unwrap().to_owned();
            let line = by_id[&(id.clone(), status.clone())];
            let l = &a["labels"];
            assert_eq!(l["alertname"], "BatchComplaint", "{a}");
            assert_eq!(l["department"], d.as_str(), "{a}");
            assert_eq!(l["business"], line["business"], "{a}");
            assert_eq!(l["region"], line["region"], "{a}");
            assert_eq!(l["severity"], "warning", "{a}");
            // Section 8 labels exactly when the line has them.
            assert_eq!(l["scope"], line["scope"], "{a}");
            assert_eq!(l["kind"], line["kind"], "{a}");
            if let Some(b) = line["baseline"].as_f64() {
                let got: f64 = a["annotations"]["baseline"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(got, b, "{a}");
            } else {
                assert!(a["annotations"].get("baseline").is_none(), "{a}");
            }
            let summary = a["annotations"]["summary"].as_str().unwrap();
            assert_eq!(summary, expected_summary(line), "{a}");
            assert!(summary.contains("批量投诉"), "a Chinese summary: {summary}");
            let firing = by_id[&(id.clone(), "firing".to_owned())];
            assert_eq!(
                epoch_ms(s(a, "startsAt")),
                epoch_ms(s(firing, "event_ts")),
                "startsAt is the firing record's event time: {a}"
            );
            if status == "resolved" {
                assert_eq!(
                    epoch_ms(s(a, "endsAt")),
                    epoch_ms(s(line, "event_ts")),
                    "endsAt is the resolving record's event time: {a}"
                );
            }
        }
    }
    assert!(
        unrouted.received().is_empty() && ops.received().is_empty(),
        "every department has its receiver: nothing unrouted, nothing for ops"
    );

    // At the end too.
    let open: BTreeSet<String> = hs
        .json("/v1/alerts")
        .as_array()
        .unwrap()
        .iter()
        .map(|a| s(a, "alert_id").to_owned())
        .collect();
    assert_eq!(
        am_active(am),
        open,
        "Alertmanager's active alerts at the end"
    );
    eprintln!(
        "alertmanager: {firing_lines} firing and {resolved_lines} resolved alerts delivered to {} departments; open alerts compared {compared_open} times; {} still open",
        depts.len(),
        open.len()
    );
}

// ------------------------------------------------------------- prometheus

/// Each `(panel title, refId, expr)` of the dashboard.
fn panel_queries(dash: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        let nested = p["panels"].as_array().cloned().unwrap_or_default();
        for q in std::iter::once(p).chain(nested.iter()) {
            for t in q["targets"].as_array().cloned().unwrap_or_default() {
                out.push((
                    s(q, "title").to_owned(),
                    s(&t, "refId").to_owned(),
                    s(&t, "expr").to_owned(),
                ));
            }
        }
    }
    out
}

/// Replaces Grafana's variables in a query: the interval variables by
/// windows that hold the test's scrapes, each dashboard variable by its
/// "All" value.
fn substitute(expr: &str, dash: &Value) -> String {
    let mut e = expr
        .replace("$__rate_interval", "1m")
        .replace("${__rate_interval}", "1m")
        .replace("$__interval", "15s")
        .replace("${__interval}", "15s")
        .replace("$__range", "5m")
        .replace("${__range}", "5m");
    for v in dash["templating"]["list"].as_array().unwrap() {
        let name = s(v, "name");
        let value = v["allValue"].as_str().unwrap_or(".*");
        e = e
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    assert!(!e.contains('$'), "a variable left in {expr:?} -> {e:?}");
    e
}

/// hotspot with every sink (alerts file, a webhook for every department,
/// Alertmanager — a plain receiver here), a followed file, a state
/// directory and a token: every metric of the dashboard gets a series once
/// [`FullHotspot::drive`] has run.
struct FullHotspot {
    hs: Hotspot,
    hooks: Receiver,
    fake_am: Receiver,
    alerts_file: PathBuf,
}

const TOKEN: &str = "e2e-token";

/// How many of these alert lines a `*` webhook gets (CONTRACT 9 grouping,
/// README "Dispatch"): all but the lines of city alerts that fired while
/// their province's alert of the same business was open.
fn webhook_lines(lines: &[Value]) -> usize {
    let province_of: std::collections::HashMap<&str, &str> =
        section8::REGIONS.iter().map(|(c, p, _)| (*c, *p)).collect();
    let mut open = BTreeSet::new();
    let mut folded = BTreeSet::new();
    let mut told = 0;
    for l in lines {
        let s = |k: &str| l[k].as_str().unwrap_or("").to_owned();
        let firing = l["state"] == "firing";
        if l["scope"] == "province" {
            if firing {
                open.insert((s("business"), s("region")));
            } else {
                open.remove(&(s("business"), s("region")));
            }
        } else if firing {
            let province = province_of.get(s("region").as_str()).copied().unwrap_or("");
            if open.contains(&(s("business"), province.to_owned())) {
                folded.insert(s("alert_id"));
                continue;
            }
        } else if folded.contains(&s("alert_id")) {
            continue;
        }
        told += 1;
    }
    told
}

impl FullHotspot {
    fn start(tmp: &Path) -> FullHotspot {
        Self::start_with(tmp, &root().join("fixtures/rules.toml"))
    }

    fn start_with(tmp: &Path, rules: &Path) -> FullHotspot {
        let hooks = Receiver::start();
        let fake_am = Receiver::start();
        let alerts_file = tmp.join("alerts.jsonl");
        let follow = tmp.join("follow.jsonl");
        std::fs::write(&follow, "").unwrap();
        let hook = format!("*={}", hooks.url("/hook"));
        let am_url = fake_am.url("");
        let state = tmp.join("state");
        let dead = tmp.join("dead.jsonl");
        let hs = Hotspot::start(
            &[
                "--rules",
                rules.to_str().unwrap(),
                "--alerts",
                alerts_file.to_str().unwrap(),
                "--webhook",
                &hook,
                "--alertmanager",
                &am_url,
                "--state-dir",
                state.to_str().unwrap(),
                "--checkpoint-interval",
                "1s",
                "--follow",
                follow.to_str().unwrap(),
                "--token",
                TOKEN,
                "--dead-letter",
                dead.to_str().unwrap(),
            ],
            &tmp.join("hotspot.log"),
        );
        FullHotspot {
            hs,
            hooks,
            fake_am,
            alerts_file,
        }
    }

    fn post(&self, body: &[u8]) -> (u16, String) {
        http(
            "POST",
            self.hs.addr,
            "/v1/complaints",
            &[
                ("Content-Type", "application/x-ndjson"),
                ("Authorization", &format!("Bearer {TOKEN}")),
            ],
            body,
        )
    }

    /// The fixture day, two bad lines, a refused request and a reload;
    /// returns the number of alert lines once every sink has them.
    fn drive(&self) -> usize {
        let traffic = std::fs::read_to_string(root().join("fixtures/traffic.jsonl")).unwrap();
        let lines: Vec<&str> = traffic.lines().collect();
        assert_eq!(lines.len(), 6000);
        let mut alert_lines = 0;
        for part in lines.chunks(1000) {
            let (code, text) = self.post((part.join("\n") + "\n").as_bytes());
            assert_eq!(code, 200, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            alert_lines += v["alerts"].as_u64().unwrap() as usize;
        }
        let (code, text) = self.post("{not json\n{\"id\":\"X1\",\"region\":\"杭州\"}\n".as_bytes());
        assert_eq!(code, 200, "{text}");
        let (code, _) = post(self.hs.addr, "/v1/complaints", b"{}\n");
        assert_eq!(code, 401, "no token, refused");
        let (code, text) = http(
            "POST",
            self.hs.addr,
            "/-/reload",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            b"",
        );
        assert_eq!(code, 200, "reload: {text}");
        assert!(alert_lines > 0);
        assert!(
            poll(Duration::from_secs(30), || {
                let lines = json_lines(&self.alerts_file);
                lines.len() >= alert_lines
                    && self.hooks.received().len() >= webhook_lines(&lines)
                    && self.fake_am.received().len() >= alert_lines
            }),
            "every sink delivered the {alert_lines} alert lines"
        );
        alert_lines
    }
}

#[test]
fn prometheus_scrapes_hotspot_and_every_dashboard_query_and_rule_works() {
    let test = "prometheus_scrapes_hotspot_and_every_dashboard_query_and_rule_works";
    let Some(tools) = tools(test) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(dashboards().join("hotspot.json")).unwrap())
            .unwrap();

    // Section 8 rules (the fixture library plus a region table, a province
    // threshold and a surge test on 彩铃, and `[discovery]`): the kind/scope
    // series, the province and the new-topic panels have data; everything
    // else reads as with plain rules.
    let rules = section8::write_rules(tmp.path(), 40, true);
    let full = FullHotspot::start_with(tmp.path(), &rules);
    let hs = &full.hs;

    // Prometheus scraping it every second, with the rules loaded.
    let prom_config = tmp.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: hotspot\n    static_configs:\n      - targets: [\"{}\"]\n",
            dashboards().join("rules/hotspot-alerts.yml").display(),
            hs.addr
        ),
    )
    .unwrap();
    let tsdb = tmp.path().join("tsdb");
    let (_prom, prom) = start_server(
        "prometheus",
        tmp.path(),
        |port| {
            let mut c = Command::new(&tools.prometheus);
            c.arg(format!("--config.file={}", prom_config.display()))
                .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn");
            c
        },
        "/-/ready",
    );
    let scrapes = || -> u32 {
        prom_query(prom, "count_over_time(up{job=\"hotspot\"}[5m])")
            .ok()
            .and_then(|d| d["result"][0]["value"][1].as_str().map(str::to_owned))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |c| c as u32)
    };
    let scraped = |n: u32| scrapes() >= n;
    assert!(
        poll(Duration::from_secs(60), || scraped(2)),
        "Prometheus did not scrape hotspot"
    );

    let alert_lines = full.drive();
    let before = scrapes();
    assert!(
        poll(Duration::from_secs(30), || scraped(before + 3)),
        "Prometheus scraped hotspot after the traffic"
    );

    // Every rule evaluates without error.
    let mut rules_seen = 0;
    let ok = poll(Duration::from_secs(30), || {
        let v = get_json(prom, "/api/v1/rules");
        let all: Vec<Value> = v["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules_seen = all.len();
        !all.is_empty() && all.iter().all(|r| r["health"] != "unknown")
    });
    assert!(ok, "the rules were not all evaluated within 30 s");
    let v = get_json(prom, "/api/v1/rules");
    let groups = v["data"]["groups"].as_array().unwrap();
    let names: BTreeSet<&str> = groups.iter().map(|g| s(g, "name")).collect();
    assert_eq!(
        names,
        BTreeSet::from(["hotspot.alerts", "hotspot.recording"]),
        "the rule groups of dashboards/rules/hotspot-alerts.yml"
    );
    for g in groups {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(
                r["health"], "ok",
                "rule {} of {}: {}",
                r["name"], g["name"], r["lastError"]
            );
        }
    }

    // Every variable of the dashboard has values.
    for var in dash["templating"]["list"].as_array().unwrap() {
        if var["type"] != "query" {
            continue;
        }
        let q = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: not label_values(...): {q}", var["name"]));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let selector = substitute(selector.trim(), &dash);
        let path = format!(
            "/api/v1/label/{}/values?match[]={}",
            label.trim(),
            urlencode(&selector)
        );
        let values = get_json(prom, &path);
        assert!(
            values["data"].as_array().is_some_and(|a| !a.is_empty()),
            "variable {}: no values for {q}: {values}",
            var["name"]
        );
    }

    // Every panel query returns data.
    let queries = panel_queries(&dash);
    assert!(queries.len() >= 30, "the dashboard has its panels");
    let mut empty = Vec::new();
    for (title, ref_id, expr) in &queries {
        let e = substitute(expr, &dash);
        let mut last = Value::Null;
        let ok = poll(Duration::from_secs(20), || match prom_query(prom, &e) {
            Ok(d) => {
                let ok = has_data(&d);
                last = d;
                ok
            }
            Err(err) => panic!("panel {title:?} query {ref_id}: {e}\n  error: {err}"),
        });
        if !ok {
            empty.push(format!("{title} [{ref_id}]: {e} -> {last}"));
        }
    }
    assert!(
        empty.is_empty(),
        "panel queries without data:\n{}",
        empty.join("\n")
    );

    // A few values that must be right, not just present.
    let value = |e: &str| -> f64 {
        let d = prom_query(prom, e).unwrap();
        d["result"][0]["value"][1]
            .as_str()
            .unwrap_or_else(|| panic!("{e}: {d}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("up{job=\"hotspot\"}"), 1.0);
    assert_eq!(
        value("sum(hotspot_records_total{outcome=\"accepted\"})"),
        6000.0 - value("sum(hotspot_late_dropped_total)"),
    );
    assert_eq!(value("sum(hotspot_rejects_total)"), 2.0);
    assert_eq!(
        value("sum(hotspot_alerts_total)"),
        alert_lines as f64,
        "alert lines counted"
    );
    assert_eq!(
        value("sum(hotspot_alerts_total{kind=~\"threshold|surge\", scope=~\"region|province\"})"),
        alert_lines as f64,
        "every alert line has a kind and a scope"
    );
    assert!(
        value("sum(hotspot_alerts_total{scope=\"province\", state=\"firing\"})") >= 1.0,
        "the fixture day's 彩铃 incident opens a 浙江 province alert"
    );
    assert_eq!(
        value("sum(hotspot_alerts_total{scope=\"province\", state=\"firing\"})"),
        value("sum(hotspot_alerts_total{scope=\"province\", state=\"resolved\"})"),
        "and it resolves"
    );
    assert!(value("max(hotspot_key_ratio)") > 0.0);
    // The new-topic detector looked at the complaints no template covers
    // (the fixture day is its learning day: no new topic opens), and its
    // state is within the README's bound.
    assert!(value("sum(hotspot_topics_complaints_total)") >= 1000.0);
    let state = value("sum(hotspot_topics_state_bytes)");
    assert!(state > 0.0 && state < 50e6, "detector state {state}");
    assert_eq!(
        value("sum(hotspot_alerts_firing{kind=\"new_topic\"})"),
        0.0,
        "the new-topic series are there, at 0"
    );
    assert!(value("sum(hotspot_checkpoints_total{result=\"ok\"})") >= 1.0);
    assert_eq!(
        value("sum(hotspot_intake_refused_total{code=\"401\"})"),
        1.0
    );
    assert!(
        value("histogram_quantile(0.99, sum by (le) (rate(hotspot_delivery_latency_seconds_bucket[1m])))")
            .is_finite(),
        "deliveries fall in the latency histogram"
    );
    eprintln!(
        "prometheus: {} panel queries with data, {rules_seen} rules healthy, {alert_lines} alert lines",
        queries.len()
    );
}

// ------------------------------------------------------ promtool, amtool

fn run_ok(tool: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {} failed:\n{text}",
        tool.display(),
        args.join(" ")
    );
    text
}

#[test]
fn promtool_and_amtool_accept_the_configuration_rules_and_routes() {
    let test = "promtool_and_amtool_accept_the_configuration_rules_and_routes";
    let Some(tools) = tools(test) else { return };
    run_ok(
        &tools.promtool,
        &["check", "config", "dashboards/prometheus.yml"],
    );
    run_ok(
        &tools.promtool,
        &["check", "rules", "dashboards/rules/hotspot-alerts.yml"],
    );
    let t = run_ok(
        &tools.promtool,
        &["test", "rules", "dashboards/rules/hotspot-alerts.test.yml"],
    );
    assert!(t.contains("SUCCESS"), "{t}");
    run_ok(
        &tools.amtool,
        &["check-config", "dashboards/alertmanager.yml"],
    );

    // Each department of both rules files gets its own receiver.
    let cfg = "--config.file=dashboards/alertmanager.yml";
    let mut depts = departments(&root().join("fixtures/rules.toml"));
    depts.extend(departments(&conformance().join("rules.toml")));
    depts.sort();
    depts.dedup();
    for d in &depts {
        run_ok(
            &tools.amtool,
            &[
                "config",
                "routes",
                "test",
                cfg,
                &format!("--verify.receivers=dept-{d}"),
                "alertname=BatchComplaint",
                &format!("department={d}"),
                "business=crbt",
                "region=杭州",
                "severity=warning",
            ],
        );
    }
    run_ok(
        &tools.amtool,
        &[
            "config",
            "routes",
            "test",
            cfg,
            "--verify.receivers=complaints-unrouted",
            "alertname=BatchComplaint",
            "department=new-dept",
        ],
    );
    // Every alerting rule reaches operations.
    let rules = std::fs::read_to_string(dashboards().join("rules/hotspot-alerts.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 8, "{alerts:?}");
    for a in alerts {
        run_ok(
            &tools.amtool,
            &[
                "config",
                "routes",
                "test",
                cfg,
                "--verify.receivers=ops",
                &format!("alertname={a}"),
                "team=ops",
                "job=hotspot",
            ],
        );
    }
}

// --------------------------------------------------------------- grafana

#[test]
fn the_dashboard_validates_against_grafanas_schema() {
    let test = "the_dashboard_validates_against_grafanas_schema";
    let python = std::env::var_os("HOTSPOT_E2E_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/e2e-venv/bin/python"));
    if !python.is_file() {
        missing(
            test,
            &format!(
                "no Python with grafana-foundation-sdk at {} (HOTSPOT_E2E_PYTHON)",
                python.display()
            ),
        );
        return;
    }
    let out = Command::new(&python)
        .arg(root().join("tests/check_dashboard.py"))
        .arg(dashboards().join("hotspot.json"))
        .arg(dashboards().join("provisioning"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "tests/check_dashboard.py:\n{text}");
    assert!(text.starts_with("ok:"), "{text}");
    eprintln!("{}", text.trim());
}

/// Needs no tool: every metric the dashboard and the rules name is one that
/// hotspot exports (a typo would only show as an empty panel).
#[test]
fn every_metric_in_the_dashboard_and_rules_is_exported_by_hotspot() {
    let tmp = tempfile::tempdir().unwrap();
    let full = FullHotspot::start(tmp.path());
    full.drive();
    // The checkpoint after the traffic.
    let hs = &full.hs;
    assert!(
        poll(Duration::from_secs(10), || get(hs.addr, "/metrics")
            .1
            .contains("hotspot_checkpoints_total{result=\"ok\"}")),
        "a checkpoint is written"
    );
    let (code, text) = get(hs.addr, "/metrics");
    assert_eq!(code, 200);
    let mut exported: BTreeSet<String> = BTreeSet::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, kind) = (it.next().unwrap(), it.next().unwrap_or(""));
            exported.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    let rules = std::fs::read_to_string(dashboards().join("rules/hotspot-alerts.yml")).unwrap();
    let recorded: BTreeSet<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- record: "))
        .map(str::to_owned)
        .collect();
    let dash = std::fs::read_to_string(dashboards().join("hotspot.json")).unwrap();
    let mut unknown = BTreeSet::new();
    let mut named = 0;
    for file in [&dash, &rules] {
        for word in file.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            let metric = word.starts_with("hotspot_") || word.starts_with("process_");
            if metric && !word.ends_with('_') {
                named += 1;
                if !exported.contains(word) {
                    unknown.insert(word.to_owned());
                }
            } else if word.contains(":hotspot_") && !recorded.contains(word) {
                unknown.insert(word.to_owned());
            }
        }
    }
    assert!(named > 40, "the dashboard and rules name hotspot's metrics");
    assert!(
        unknown.is_empty(),
        "named in dashboards/ but not exported by hotspot (nor recorded): {unknown:?}\nexported: {exported:?}"
    );
}
