//! The status page (`GET /`) as a browser shows it: the real service gets a
//! prefix of the fixture day that leaves alerts open and keys hot, then
//! headless Chromium renders the page. The dumped DOM must show the heat
//! table, a row per open alert with its region and department, and the
//! same intake counts as `/v1/stats`; the page must load nothing from
//! elsewhere. A screenshot is kept at
//! `target/test-artefacts/status-page.png` (with the DOM beside it).
//!
//! Needs `chromium` (Debian package; `HOTSPOT_CHROMIUM` names another
//! binary) and, for legible Chinese, `fonts-noto-cjk` — `.ci/run` installs
//! both. Without a browser the test prints `SKIP:` and passes, unless
//! `HOTSPOT_E2E=1`, where it fails.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use browser::{artefacts, chromium, run_chromium};
use support::{Hotspot, get, root, skip, wait_until};

/// The text between `start` (first occurrence) and the next `end`.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// Numbers inside `<b>…</b>` of a fragment, in order.
fn bold_numbers(s: &str) -> Vec<u64> {
    s.split("<b>")
        .skip(1)
        .filter_map(|p| p.split("</b>").next()?.trim().parse().ok())
        .collect()
}

/// Every value of `src=`, `href=`, `action=`, `url(` and `@import` in the
/// page.
fn references(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href=", "action=", "srcset=", "poster=", "data="] {
        let mut at = 0;
        while let Some(i) = lower[at..].find(attr) {
            let v = i + at + attr.len();
            at = v;
            // Only attributes: preceded by whitespace.
            if !lower[..v - attr.len()].ends_with(|c: char| c.is_ascii_whitespace()) {
                continue;
            }
            let rest = &html[v..];
            let (q, body) = match rest.chars().next() {
                Some(c @ ('"' | '\'')) => (c, &rest[1..]),
                _ => (' ', rest),
            };
            let end = body.find([q, '>']).unwrap_or(body.len());
            refs.push(body[..end].trim().to_owned());
        }
    }
    for pat in ["url(", "@import"] {
        let mut at = 0;
        while let Some(i) = lower[at..].find(pat) {
            let v = i + at + pat.len();
            at = v;
            let end = html[v..].find([')', ';']).unwrap_or(html.len() - v);
            refs.push(
                html[v..v + end]
                    .trim()
                    .trim_matches(|c| c == '"' || c == '\'')
                    .to_owned(),
            );
        }
    }
    refs
}

fn is_external(r: &str) -> bool {
    let l = r.trim().to_ascii_lowercase();
    l.starts_with("http:") || l.starts_with("https:") || l.starts_with("//") || l.contains("://")
}

#[test]
fn status_page_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("HOTSPOT_E2E").as_deref() == Ok("1") {
            panic!(
                "HOTSPOT_E2E=1 but no chromium on PATH (apt-get install chromium fonts-noto-cjk)"
            );
        }
        skip(
            "status_page_renders_in_headless_chromium: no chromium on PATH \
             (apt-get install chromium fonts-noto-cjk; HOTSPOT_E2E=1 makes this a failure)",
        );
        return;
    };

    // The fixture day up to the last firing before the first resolution:
    // every alert fired so far is still open then.
    let expected = std::fs::read_to_string(root().join("fixtures/expected.alerts.jsonl")).unwrap();
    let mut open_at_cut = Vec::new();
    for l in expected.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["state"] != "firing" {
            break;
        }
        open_at_cut.push(v);
    }
    assert!(!open_at_cut.is_empty(), "fixture has no firing alert");
    let trigger = open_at_cut.last().unwrap()["triggered_by"]
        .as_str()
        .unwrap()
        .to_owned();
    let traffic = std::fs::read_to_string(root().join("fixtures/traffic.jsonl")).unwrap();
    let lines: Vec<&str> = traffic.lines().filter(|l| !l.trim().is_empty()).collect();
    let cut = lines
        .iter()
        .position(|l| l.contains(&format!("\"{trigger}\"")))
        .expect("trigger line in traffic");
    // Two bad lines first (rejects do not move the watermark), so the
    // rejected count is not zero.
    let mut prefix: Vec<&str> = vec![
        "this is not json",
        r#"{"id":"BAD1","region":"杭州","text":"没有时间"}"#,
    ];
    prefix.extend_from_slice(&lines[..=cut]);

    let dir = tempfile::tempdir().unwrap();
    let hs = Hotspot::start(&["--idle-timeout", "off"], &dir.path().join("hotspot.log"));
    let mut accepted = 0;
    for chunk in prefix.chunks(500) {
        let body = chunk.join("\n") + "\n";
        let v = hs.post_lines(body.as_bytes());
        accepted += v["accepted"].as_u64().unwrap();
    }
    // The snapshot behind the page and /v1/* catches up within moments.
    let mut stats = serde_json::Value::Null;
    wait_until(
        "the snapshot to show every record",
        Duration::from_secs(10),
        || {
            stats = hs.json("/v1/stats");
            stats["stats"]["accepted"].as_u64() == Some(accepted)
                && stats["open_alerts"].as_u64() == Some(open_at_cut.len() as u64)
        },
    );
    let alerts = hs.json("/v1/alerts");
    let alerts = alerts.as_array().unwrap();
    let hotspots = hs.json("/v1/hotspots?limit=100000");
    let hotspots = hotspots.as_array().unwrap();
    assert_eq!(alerts.len(), open_at_cut.len());
    assert!(!hotspots.is_empty(), "no hot keys");

    let url = format!("http://{}/", hs.addr);
    let (code, raw) = get(hs.addr, "/");
    assert_eq!(code, 200);

    let dom = run_chromium(&browser, &["--dump-dom".into()], &[], &url);
    let art = artefacts();
    std::fs::write(art.join("status-page.dom.html"), &dom).unwrap();
    let png = art.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &browser,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,1000".into(),
        ],
        &[],
        &url,
    );

    // It rendered our page, in Chinese.
    assert!(dom.contains("批量投诉监控"), "title missing: {dom}");

    // Heat table: one coloured cell per hot key, showing callers/threshold.
    let heat = between(&dom, "<table id=\"heat\"", "</table>").expect("#heat table");
    let cells: Vec<&str> = heat.split("<td class=\"cell").skip(1).collect();
    assert!(!cells.is_empty(), "heat table has no cells: {heat}");
    assert_eq!(cells.len(), hotspots.len(), "one cell per hot key");
    for h in hotspots {
        let label = format!(
            ">{}/{}</td>",
            h["distinct_callers"].as_u64().unwrap(),
            h["threshold"].as_u64().unwrap()
        );
        assert!(heat.contains(&label), "no cell {label} for {h}");
        assert!(heat.contains(&format!(">{}</th>", h["region"].as_str().unwrap())));
    }
    let firing_cells = cells.iter().filter(|c| c.starts_with(" firing")).count();
    assert_eq!(firing_cells, alerts.len(), "firing cells = open alerts");

    // Open alerts: one row each, with region and department.
    let table = between(&dom, "<table id=\"alerts\"", "</table>").expect("#alerts table");
    let rows: Vec<&str> = table
        .split("<tr class=\"alert\">")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .collect();
    assert_eq!(rows.len(), alerts.len(), "one row per open alert");
    for a in alerts {
        let region = format!("<td>{}</td>", a["region"].as_str().unwrap());
        let dept = format!(
            "<td>{} ({})</td>",
            a["department_name"].as_str().unwrap(),
            a["department"].as_str().unwrap()
        );
        assert!(
            rows.iter()
                .any(|r| r.starts_with(&region) && r.contains(&dept)),
            "no row with {region} and {dept} in {table}"
        );
    }
    for want in &open_at_cut {
        assert!(
            alerts
                .iter()
                .any(|a| a["triggered_by"] == want["triggered_by"]
                    && a["business"] == want["business"]
                    && a["region"] == want["region"]),
            "fixture alert {want} not open"
        );
    }

    // Counts: accepted, rejected, late, alerts fired, open now.
    let intake = between(&dom, "id=\"intake\"", "</div>").expect("#intake");
    let s = &stats["stats"];
    let rejected: u64 = s["rejected"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        bold_numbers(intake),
        vec![
            s["accepted"].as_u64().unwrap(),
            rejected,
            s["late_dropped"].as_u64().unwrap(),
            s["alerts_firing"].as_u64().unwrap(),
            stats["open_alerts"].as_u64().unwrap(),
        ],
        "page counts differ from /v1/stats: {intake} vs {stats}"
    );
    assert_eq!(rejected, 2);
    assert_eq!(s["accepted"].as_u64().unwrap(), accepted);
    // The watermark, readable, with its RFC 3339 form in `datetime`.
    let wm = between(&dom, "<b id=\"watermark\">", "</b>").expect("#watermark");
    assert_eq!(
        between(wm, "datetime=\"", "\""),
        stats["watermark"].as_str(),
        "watermark"
    );
    let readable = stats["watermark"].as_str().unwrap()[..19].replace('T', " ");
    assert!(wm.contains(&format!(">{readable}</time>")), "{wm}");

    // Nothing from elsewhere: every reference is relative to the service.
    for html in [&raw, &dom] {
        for r in references(html) {
            assert!(!is_external(&r), "external reference {r:?} in the page");
        }
        assert!(!html.contains("<script src"), "external script");
        assert!(!html.contains("<link"), "linked resource");
    }

    // The screenshot is a real PNG of some size.
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(bytes.len() > 20_000, "screenshot suspiciously small");
    println!("status page screenshot: {}", png.display());
}

#[path = "support/section8.rs"]
mod section8;

/// Section 8 rules (a region table and a 彩铃 province threshold): the
/// browser shows the 浙江 province alert with its scope (全省) and kind
/// (阈值), the city alerts as before, and the province heat table.
#[test]
fn status_page_shows_province_alerts_with_scope_and_kind() {
    let Some(browser) = chromium() else {
        if std::env::var("HOTSPOT_E2E").as_deref() == Ok("1") {
            panic!(
                "HOTSPOT_E2E=1 but no chromium on PATH (apt-get install chromium fonts-noto-cjk)"
            );
        }
        skip(
            "status_page_shows_province_alerts_with_scope_and_kind: no chromium on PATH \
             (apt-get install chromium fonts-noto-cjk; HOTSPOT_E2E=1 makes this a failure)",
        );
        return;
    };
    // As above: the fixture day up to the last firing before the first
    // resolution; with these rules the 浙江 彩铃 province alert is open too.
    let expected = std::fs::read_to_string(root().join("fixtures/expected.alerts.jsonl")).unwrap();
    let trigger = expected
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .take_while(|v| v["state"] == "firing")
        .last()
        .unwrap()["triggered_by"]
        .as_str()
        .unwrap()
        .to_owned();
    let traffic = std::fs::read_to_string(root().join("fixtures/traffic.jsonl")).unwrap();
    let lines: Vec<&str> = traffic.lines().filter(|l| !l.trim().is_empty()).collect();
    let cut = lines
        .iter()
        .position(|l| l.contains(&format!("\"{trigger}\"")))
        .expect("trigger line in traffic");

    let dir = tempfile::tempdir().unwrap();
    let rules = section8::write_rules(dir.path(), 40, false);
    let hs = Hotspot::start(
        &["--rules", rules.to_str().unwrap(), "--idle-timeout", "off"],
        &dir.path().join("hotspot.log"),
    );
    for chunk in lines[..=cut].chunks(500) {
        hs.post_lines((chunk.join("\n") + "\n").as_bytes());
    }
    let mut alerts = serde_json::Value::Null;
    wait_until("the province alert", Duration::from_secs(10), || {
        alerts = hs.json("/v1/alerts");
        alerts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["scope"] == "province")
    });
    let alerts = alerts.as_array().unwrap();
    let url = format!("http://{}/", hs.addr);
    let dom = run_chromium(&browser, &["--dump-dom".into()], &[], &url);
    std::fs::write(artefacts().join("status-page.section8.dom.html"), &dom).unwrap();

    let table = between(&dom, "<table id=\"alerts\"", "</table>").expect("#alerts table");
    let rows: Vec<&str> = table
        .split("<tr class=\"alert\">")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .collect();
    assert_eq!(rows.len(), alerts.len(), "one row per open alert");
    for a in alerts {
        let (scope, kind) = match (a["scope"].as_str(), a["kind"].as_str()) {
            (Some("province"), Some("threshold")) => ("全省 province", "阈值 threshold"),
            (Some("region"), Some("threshold")) => ("城市 region", "阈值 threshold"),
            (Some("region"), Some("surge")) => ("城市 region", "突增 surge"),
            (Some("province"), Some("surge")) => ("全省 province", "突增 surge"),
            other => panic!("unexpected scope/kind {other:?} in {a}"),
        };
        let start = format!(
            "<td>{}</td><td class=\"scope\">{scope}</td><td class=\"kind\">{kind}</td>",
            a["region"].as_str().unwrap()
        );
        assert!(
            rows.iter().any(|r| r.starts_with(&start)),
            "no row starting {start} in {table}"
        );
    }
    let province = alerts.iter().find(|a| a["scope"] == "province").unwrap();
    assert_eq!(province["region"], "浙江");
    assert!(
        rows.iter().any(
            |r| r.starts_with("<td>浙江</td>") && r.contains("<td class=\"threshold\">40</td>")
        ),
        "{table}"
    );

    // The province heat table: 浙江 (全省), its 彩铃 cell firing.
    let heat = between(&dom, "<table id=\"heat-province\"", "</table>").expect("#heat-province");
    assert!(heat.contains("<th>浙江 全省</th>"), "{heat}");
    assert!(heat.contains("<td class=\"cell firing\""), "{heat}");
    // City columns stay in the city table only.
    let city = between(&dom, "<table id=\"heat\"", "</table>").expect("#heat");
    assert!(!city.contains("浙江"), "{city}");
}

/// A minimal Chrome DevTools Protocol client over the page's websocket:
/// commands by id, events kept for [`Cdp::wait_event`].
struct Cdp {
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    next: u64,
    events: Vec<serde_json::Value>,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let (ws, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("CDP {url}: {e}"));
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        Cdp {
            ws,
            next: 0,
            events: Vec::new(),
        }
    }

    fn read(&mut self) -> serde_json::Value {
        loop {
            match self.ws.read().expect("CDP read") {
                tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                _ => continue,
            }
        }
    }

    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next += 1;
        let id = self.next;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws
            .send(tungstenite::Message::Text(msg.to_string().into()))
            .expect("CDP send");
        loop {
            let v = self.read();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    fn wait_event(&mut self, method: &str) {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            self.events.drain(..=i);
            return;
        }
        loop {
            if self.read()["method"] == method {
                return;
            }
        }
    }

    /// Evaluates `js` in the page; its value (returned by value).
    fn eval(&mut self, js: &str) -> serde_json::Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        r["result"]["value"].clone()
    }

    /// A left click at (x, y), as a mouse does it.
    fn click(&mut self, x: f64, y: f64) {
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                serde_json::json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

/// The ack button works in a real browser: headless Chromium, driven
/// over the DevTools Protocol, clicks into the name field of an open
/// alert's row, types a name, clicks 确认 Ack; the service records the ack
/// (`/v1/alerts`) and the reloaded page shows who acknowledged it.
#[test]
fn a_click_on_the_ack_button_acknowledges() {
    let Some(browser) = chromium() else {
        if std::env::var("HOTSPOT_E2E").as_deref() == Ok("1") {
            panic!(
                "HOTSPOT_E2E=1 but no chromium on PATH (apt-get install chromium fonts-noto-cjk)"
            );
        }
        skip(
            "a_click_on_the_ack_button_acknowledges: no chromium on PATH \
             (apt-get install chromium fonts-noto-cjk; HOTSPOT_E2E=1 makes this a failure)",
        );
        return;
    };
    // The fixture day up to its first firing: one open alert.
    let expected = std::fs::read_to_string(root().join("fixtures/expected.alerts.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(expected.lines().next().unwrap()).unwrap();
    let trigger = first["triggered_by"].as_str().unwrap().to_owned();
    let traffic = std::fs::read_to_string(root().join("fixtures/traffic.jsonl")).unwrap();
    let lines: Vec<&str> = traffic.lines().filter(|l| !l.trim().is_empty()).collect();
    let cut = lines
        .iter()
        .position(|l| l.contains(&format!("\"{trigger}\"")))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hs = Hotspot::start(&["--idle-timeout", "off"], &dir.path().join("hotspot.log"));
    for chunk in lines[..=cut].chunks(500) {
        hs.post_lines((chunk.join("\n") + "\n").as_bytes());
    }
    let alerts = hs.json("/v1/alerts");
    assert_eq!(alerts.as_array().unwrap().len(), 1, "{alerts}");
    let id = alerts[0]["alert_id"].as_str().unwrap().to_owned();

    // Chromium with a DevTools port of its choosing (written to the
    // profile's DevToolsActivePort).
    let profile = tempfile::tempdir().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(&browser)
        .args(browser::ISOLATION)
        .args([
            "--window-size=1600,1200",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let port_file = profile.path().join("DevToolsActivePort");
    let mut port = 0u16;
    wait_until("Chromium's DevTools port", Duration::from_secs(60), || {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "chromium exited ({st}): {}",
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        port = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse().ok())
            .unwrap_or(0);
        port != 0
    });
    let child = Kill(child);
    let devtools: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut page_ws = String::new();
    wait_until("a page target", Duration::from_secs(30), || {
        let (code, body) = get(devtools, "/json/list");
        let targets: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        page_ws = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .unwrap_or_default()
            .to_owned();
        code == 200 && !page_ws.is_empty()
    });
    let mut cdp = Cdp::connect(&page_ws);
    cdp.call("Page.enable", serde_json::json!({}));
    cdp.call(
        "Page.navigate",
        serde_json::json!({"url": format!("http://{}/", hs.addr)}),
    );
    cdp.wait_event("Page.loadEventFired");

    // Where the row's name field and button are, then a person's clicks.
    let at = cdp.eval(
        r#"(() => {
            const f = document.querySelector("form.act");
            f.scrollIntoView({block: "center"});
            const r = (e) => { const b = e.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; };
            return {id: f.dataset.id, input: r(f.querySelector("input[name=by]")), button: r(f.querySelector("button.ack"))};
        })()"#,
    );
    assert_eq!(at["id"], id.as_str(), "{at}");
    let xy = |k: &str| (at[k][0].as_f64().unwrap(), at[k][1].as_f64().unwrap());
    let (ix, iy) = xy("input");
    cdp.click(ix, iy);
    cdp.call("Input.insertText", serde_json::json!({"text": "张三"}));
    let (bx, by) = xy("button");
    cdp.click(bx, by);

    // The service has the ack, and the reloaded page shows it.
    wait_until("the ack in /v1/alerts", Duration::from_secs(10), || {
        hs.json("/v1/alerts")[0]["ack"]["by"] == "张三"
    });
    wait_until("the page to show the ack", Duration::from_secs(10), || {
        cdp.eval(r#"document.body.innerText.includes("已确认 acknowledged: 张三")"#) == true
    });
    assert_eq!(
        cdp.eval(r#"document.querySelectorAll("button.ack").length"#),
        0,
        "no ack button once acknowledged"
    );
    drop(child);
}
