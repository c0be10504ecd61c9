//! The status page at `GET /`: for whoever has no Grafana open. The open
//! alerts, hottest first, with their departments, masked samples and
//! dispatch (acknowledge or close with a click, who took them, deadlines,
//! escalations, silences and folding); the alerts resolved in the last 24
//! hours with their duration and who acknowledged them; a business ×
//! region heat table of distinct callers against thresholds; the sinks'
//! health; the intake counts. One self-contained HTML page (an inline
//! script and style, nothing loaded from elsewhere) that reloads itself
//! every few seconds, except while someone types into it. Times are
//! written `2026-03-14 10:44:15` in the configured UTC offset (default
//! +08:00), each with its RFC 3339 form in a `<time datetime>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::dispatch::Tracked;
use super::state::{OpenAlertView, Snapshot};
use crate::alert::{Kind, Scope};
use crate::time::format_cst;
use crate::window::store::Hotspot;

/// Seconds between reloads.
pub const REFRESH_SECS: u32 = 5;

/// One sink as the page shows it.
pub struct SinkHealth {
    /// `webhook:vas:http://…` (a URL's query string is not shown: robots'
    /// URLs carry their access tokens there).
    pub name: String,
    /// Lines waiting for it.
    pub backlog: u64,
    /// Whether its last attempt succeeded.
    pub up: bool,
}

/// What the page needs besides the engine's snapshot.
pub struct Page<'a> {
    /// The time zone of the page's times, minutes east of UTC.
    pub offset_min: i32,
    pub sinks: &'a [SinkHealth],
    /// The wall clock (epoch ms), for deadlines.
    pub now_ms: i64,
}

impl Default for Page<'_> {
    fn default() -> Self {
        Page {
            offset_min: 8 * 60,
            sinks: &[],
            now_ms: 0,
        }
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `ms` as `2026-03-14 10:44:15` at `offset_min` east of UTC.
fn local(ms: i64, offset_min: i32) -> String {
    let shifted = format_cst(ms + (offset_min as i64 - 8 * 60) * 60_000);
    shifted.get(..19).unwrap_or(&shifted).replacen('T', " ", 1)
}

/// A time as the page writes it: readable, with the RFC 3339 form.
fn time_el(ms: i64, offset_min: i32) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        format_cst(ms),
        local(ms, offset_min)
    )
}

/// `+08:00` for 480.
fn offset_name(offset_min: i32) -> String {
    let sign = if offset_min < 0 { '-' } else { '+' };
    let m = offset_min.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// A span of time as `1h05m`, `12m30s`, `45s`.
fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{sec:02}s")
    } else {
        format!("{sec}s")
    }
}

/// A sink's name without a URL's query string.
fn sink_label(name: &str) -> String {
    match name.find('?') {
        Some(i) => format!("{}?…", &name[..i]),
        None => name.to_owned(),
    }
}

/// Background colour for a ratio of distinct callers to threshold: white
/// through yellow to red at the threshold.
fn heat(ratio: f64) -> String {
    let r = ratio.clamp(0.0, 1.0);
    if ratio >= 1.0 {
        return "#d7301f".into();
    }
    // white (255,255,255) → yellow (254,217,118) → orange (252,141,89)
    let (r0, g0, b0, r1, g1, b1, t) = if r < 0.5 {
        (255.0, 255.0, 255.0, 254.0, 217.0, 118.0, r * 2.0)
    } else {
        (254.0, 217.0, 118.0, 252.0, 141.0, 89.0, (r - 0.5) * 2.0)
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r0, r1), mix(g0, g1), mix(b0, b1))
}

/// How the page names a scope.
fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Region => "城市 region",
        Scope::Province => "全省 province",
    }
}

/// How the page names the rule that opened an alert.
fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Threshold => "阈值 threshold",
        Kind::Surge => "突增 surge",
        Kind::NewTopic => "新话题 new topic",
    }
}

/// An open alert's heat: the most distinct callers of one window since it
/// fired, against its threshold.
fn alert_heat(a: &OpenAlertView) -> f64 {
    a.max_count as f64 / a.alert.threshold.max(1) as f64
}

/// One business × place table of hot keys, hottest places (columns) and
/// businesses (rows) first; `suffix` follows each place's name in the
/// header (` 全省` for provinces).
fn heat_table(
    h: &mut String,
    s: &Snapshot,
    id: &str,
    corner: &str,
    suffix: &str,
    keys: &[&Hotspot],
) {
    let mut cells: BTreeMap<(usize, String), (u32, u32, f64, bool)> = BTreeMap::new();
    let mut place_heat: BTreeMap<String, f64> = BTreeMap::new();
    let mut business_heat: BTreeMap<usize, f64> = BTreeMap::new();
    for k in keys {
        let b = s.rules.business_index(&k.business).unwrap_or(usize::MAX);
        let p = place_heat.entry(k.region.clone()).or_insert(0.0);
        *p = p.max(k.ratio);
        let r = business_heat.entry(b).or_insert(0.0);
        *r = r.max(k.ratio);
        cells.insert(
            (b, k.region.clone()),
            (k.distinct_callers, k.threshold, k.ratio, k.firing),
        );
    }
    let by_heat = |a: &f64, b: &f64| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal);
    let mut places: Vec<(String, f64)> = place_heat.into_iter().collect();
    places.sort_by(|a, b| by_heat(&a.1, &b.1).then_with(|| a.0.cmp(&b.0)));
    let mut businesses: Vec<(usize, f64)> = business_heat.into_iter().collect();
    businesses.sort_by(|a, b| by_heat(&a.1, &b.1).then_with(|| a.0.cmp(&b.0)));
    let _ = write!(h, "<table id=\"{id}\"><tr><th>{}</th>", esc(corner));
    for (r, _) in &places {
        let _ = write!(h, "<th>{}{}</th>", esc(r), esc(suffix));
    }
    h.push_str("</tr>\n");
    for (b, _) in businesses {
        let name = s
            .rules
            .businesses
            .get(b)
            .map(|x| format!("{} {}", x.name, x.id))
            .unwrap_or_default();
        let _ = write!(h, "<tr><td class=\"k\">{}</td>", esc(&name));
        for (r, _) in &places {
            match cells.get(&(b, r.clone())) {
                Some(&(n, t, ratio, firing)) => {
                    let _ = write!(
                        h,
                        "<td class=\"cell{}\" style=\"background:{}\" title=\"{} / {}\">{}/{}</td>",
                        if firing { " firing" } else { "" },
                        heat(ratio),
                        n,
                        t,
                        n,
                        t
                    );
                }
                None => h.push_str("<td class=\"none\">·</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The open new topics (`[discovery]`): place, phrases, callers, the
/// expected count, window and the first masked sample. Nothing without
/// `[discovery]`.
fn new_topics(h: &mut String, s: &Snapshot, page: &Page) {
    let off = page.offset_min;
    let Some(d) = &s.rules.discovery else {
        return;
    };
    let topics: Vec<_> = s
        .open_alerts
        .iter()
        .filter(|a| a.alert.is_new_topic())
        .collect();
    h.push_str("<h2>新话题 New topics</h2>\n");
    if topics.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"none\" id=\"no-topics\">无新话题 — no open new topic (至少 {} 位客户 / min {} callers)</p>",
            d.min_callers, d.min_callers
        );
        return;
    }
    h.push_str("<table id=\"topics\"><tr><th>地区 region</th><th>范围 scope</th><th>话题 terms</th><th>责任部门 department</th><th>客户数 callers</th><th>预期 expected</th><th>窗口 window</th><th>触发 triggered</th><th>样例 sample</th><th>处理 dispatch</th></tr>\n");
    for a in topics {
        let al = &a.alert;
        let terms: Vec<String> = al.terms.iter().map(|t| esc(t)).collect();
        let sample = al.samples.last().map(|x| esc(&x.text)).unwrap_or_default();
        let _ = write!(
            h,
            "<tr class=\"topic\"><td>{}</td><td class=\"scope\">{}</td><td class=\"terms\">{}</td><td>{} ({})</td><td>{} (max {})</td><td>{}</td><td>{} – {}</td><td>{}</td><td class=\"sample\">{}</td>",
            esc(&al.region),
            scope_name(al.scope.unwrap_or(Scope::Region)),
            terms.join(" · "),
            esc(&al.department_name),
            esc(&al.department),
            al.count,
            a.max_count,
            al.baseline.map(|b| b.to_string()).unwrap_or_default(),
            time_el(al.window_start, off),
            time_el(al.window_end, off),
            time_el(al.event_ts, off),
            sample,
        );
        dispatch_cell(h, a, s.dispatch.open.get(&al.alert_id), page);
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The dispatch cell of an open alert: what people did, the deadline,
/// escalations, silences and folding, and the buttons.
fn dispatch_cell(h: &mut String, a: &OpenAlertView, t: Option<&Tracked>, page: &Page) {
    let off = page.offset_min;
    let d = &a.dispatch;
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    let at = |v: &serde_json::Value| {
        crate::time::parse_rfc3339(v["at"].as_str().unwrap_or(""))
            .map(|ms| time_el(ms, off))
            .unwrap_or_default()
    };
    let state = d
        .get("ack_state")
        .and_then(|v| v.as_str())
        .unwrap_or("unacknowledged");
    let _ = write!(h, "<td class=\"dispatch {state}\">");
    if let Some(v) = d.get("ack") {
        let _ = write!(
            h,
            "<div class=\"ack\">已确认 acknowledged: <b>{}</b> {}{}</div>",
            esc(&text(v, "by")),
            at(v),
            note(&text(v, "note"))
        );
    }
    if let Some(v) = d.get("assigned") {
        let _ = write!(
            h,
            "<div class=\"assigned\">已派单 assigned → <b>{}</b> ({}) {}{}</div>",
            esc(&text(v, "to")),
            esc(&text(v, "by")),
            at(v),
            note(&text(v, "note"))
        );
    }
    if let Some(v) = d.get("closed") {
        let _ = write!(
            h,
            "<div class=\"closed\">已关闭 closed: <b>{}</b> {}{}</div>",
            esc(&text(v, "by")),
            at(v),
            note(&text(v, "note"))
        );
    }
    match t.and_then(|t| t.suppressed.as_ref()) {
        Some(crate::sink::notice::Suppressed::Silence { id }) => {
            let _ = write!(
                h,
                "<div class=\"silenced\">静默 silenced ({})</div>",
                esc(id)
            );
        }
        Some(crate::sink::notice::Suppressed::Grouped { into }) => {
            let _ = write!(
                h,
                "<div class=\"folded\">已并入全省告警 folded into <code>{}</code></div>",
                esc(into)
            );
        }
        None => {}
    }
    if let Some(dl) = d.get("deadline").and_then(|v| v.as_str()) {
        if let Some(ms) = crate::time::parse_rfc3339(dl) {
            let overdue = page.now_ms >= ms;
            let _ = write!(
                h,
                "<div class=\"deadline{}\">时限 deadline {}{}</div>",
                if overdue { " overdue" } else { "" },
                time_el(ms, off),
                if overdue { " 已超时 overdue" } else { "" }
            );
        }
    }
    if let Some(es) = d.get("escalations").and_then(|v| v.as_array()) {
        for e in es {
            let _ = write!(
                h,
                "<div class=\"escalated\">已升级 escalated → <b>{}</b> {}</div>",
                esc(&text(e, "to")),
                at(e)
            );
        }
    }
    if state == "unacknowledged" || state == "acknowledged" || state == "assigned" {
        let _ = write!(
            h,
            "<form class=\"act\" data-id=\"{}\"><input name=\"by\" placeholder=\"姓名 who\" size=\"8\" autocomplete=\"name\">{}<button type=\"submit\" name=\"action\" value=\"close\" class=\"close\">关闭 Close</button><span class=\"err\"></span></form>",
            esc(&a.alert.alert_id),
            if state == "unacknowledged" {
                "<button type=\"submit\" name=\"action\" value=\"ack\" class=\"ack\">确认 Ack</button>"
            } else {
                ""
            }
        );
    }
    h.push_str("</td>");
}

fn note(n: &str) -> String {
    if n.is_empty() {
        String::new()
    } else {
        format!(" <i>{}</i>", esc(n))
    }
}

/// The page's script: the buttons (POST with the name typed beside them,
/// the bearer token asked for once if the service wants one) and the
/// reload every few seconds, held while someone types.
const SCRIPT: &str = r#"<script>
(function () {
  var TOKEN = "hotspot-token", WHO = "hotspot-who";
  function send(method, url, body) {
    var h = {"Content-Type": "application/json"};
    var t = sessionStorage.getItem(TOKEN);
    if (t) { h["Authorization"] = "Bearer " + t; }
    return fetch(url, {method: method, headers: h, body: body ? JSON.stringify(body) : undefined})
      .then(function (r) {
        if (r.status === 401) {
          var n = window.prompt("令牌 Bearer token");
          if (n) { sessionStorage.setItem(TOKEN, n); return send(method, url, body); }
        }
        return r;
      });
  }
  function done(el) {
    return function (r) {
      if (r.ok) { location.reload(); return; }
      r.text().then(function (t) { var e = el.querySelector(".err"); if (e) { e.textContent = " " + r.status + " " + t; } });
    };
  }
  document.querySelectorAll("form.act").forEach(function (f) {
    var who = f.querySelector("input[name=by]");
    if (!who.value) { who.value = localStorage.getItem(WHO) || ""; }
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      var action = (e.submitter && e.submitter.value) || "ack";
      var by = who.value.trim();
      if (!by) { who.focus(); who.placeholder = "请填写姓名 who?"; return; }
      localStorage.setItem(WHO, by);
      var url = "/v1/alerts/" + encodeURIComponent(f.dataset.id) + "/" + action;
      send("POST", url, {by: by, note: ""}).then(done(f));
    });
  });
  document.querySelectorAll("button.unsilence").forEach(function (b) {
    b.addEventListener("click", function () {
      var by = localStorage.getItem(WHO) || "";
      send("DELETE", "/v1/silences/" + encodeURIComponent(b.dataset.id), {by: by}).then(done(b.parentNode));
    });
  });
  setInterval(function () {
    var a = document.activeElement;
    if (a && a.tagName === "INPUT") { return; }
    location.reload();
  }, REFRESH_MS);
})();
</script>
"#;

/// Renders the page.
pub fn render(s: &Snapshot, page: &Page) -> String {
    let off = page.offset_min;
    let mut h = String::with_capacity(32 << 10);
    let wm = s
        .watermark
        .map(|w| time_el(w, off))
        .unwrap_or_else(|| "—".into());
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<noscript><meta http-equiv="refresh" content="{REFRESH_SECS}"></noscript>
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hotspot · 批量投诉监控</title>
<style>
body{{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1.2em;color:#222;background:#fafafa}}
h1{{font-size:1.4em;margin:0 0 .2em}} h2{{font-size:1.1em;margin:1.4em 0 .4em}}
.meta{{color:#666;font-size:.9em}}
table{{border-collapse:collapse;background:#fff}}
th,td{{border:1px solid #ddd;padding:.25em .5em;text-align:center;font-size:.9em}}
th{{background:#f0f0f0}} td.k{{text-align:left;font-weight:600}}
.firing{{font-weight:700;color:#fff}}
.none{{color:#999}}
#alerts td,#resolved td,#silences td,#sinks td{{text-align:left}}
td.dispatch.unacknowledged{{background:#fff4e5}}
.overdue{{color:#b30000;font-weight:700}}
.down{{color:#b30000;font-weight:700}} .up{{color:#1a7f37}}
details.samples li{{max-width:40em}}
form.act{{margin:.2em 0 0}} .err{{color:#b30000}}
.stat{{display:inline-block;margin-right:1.5em}}
</style></head><body>
<h1>hotspot · 批量投诉监控</h1>
<div class="meta">水位 watermark <b id="watermark">{wm}</b> · 规则 rules {ver} · 活跃键 keys {keys} · 时间 UTC{tz} · 每 {REFRESH_SECS} 秒刷新</div>
<div class="meta" id="intake"><span class="stat">接收 accepted <b>{acc}</b></span><span class="stat">拒收 rejected <b>{rej}</b></span><span class="stat">迟到 late <b>{late}</b></span><span class="stat">告警 alerts <b>{fired}</b> 次, 当前 <b>{open}</b> 条</span></div>
"#,
        ver = esc(&s.rules.version),
        keys = s.keys,
        tz = offset_name(off),
        acc = s.stats.accepted,
        rej = s.stats.rejected_total(),
        late = s.stats.late_dropped,
        fired = s.stats.alerts_firing,
        open = s.open_alerts.len(),
    );

    // Open alerts, hottest first.
    h.push_str("<h2>当前告警 Open alerts</h2>\n");
    if s.open_alerts.iter().all(|a| a.alert.is_new_topic()) {
        h.push_str("<p class=\"none\" id=\"no-alerts\">无告警 — no open alerts</p>\n");
    } else {
        let mut open: Vec<&OpenAlertView> = s
            .open_alerts
            .iter()
            .filter(|a| !a.alert.is_new_topic())
            .collect();
        open.sort_by(|a, b| {
            alert_heat(b)
                .partial_cmp(&alert_heat(a))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.alert.alert_id.cmp(&b.alert.alert_id))
        });
        h.push_str("<table id=\"alerts\"><tr><th>地区 region</th><th>范围 scope</th><th>类型 kind</th><th>业务 business</th><th>责任部门 department</th><th>客户数 callers</th><th>阈值 threshold</th><th>窗口 window</th><th>触发 triggered</th><th>处理 dispatch</th><th>样本 samples</th></tr>\n");
        for a in open {
            let al = &a.alert;
            let scope = al.scope.unwrap_or(Scope::Region);
            let kind = al.kind.unwrap_or(Kind::Threshold);
            let threshold = match (kind, al.baseline) {
                (Kind::Surge, Some(b)) => format!("{} (基线 baseline {b})", al.threshold),
                _ => al.threshold.to_string(),
            };
            // A surge of the place test: the neighbourhood under the city.
            let region = match al.terms.first() {
                Some(spot) if kind == Kind::Surge => format!(
                    "{}<br><span class=\"place\">地点 {}</span>",
                    esc(&al.region),
                    esc(spot)
                ),
                _ => esc(&al.region),
            };
            let _ = write!(
                h,
                "<tr class=\"alert\"><td>{}</td><td class=\"scope\">{}</td><td class=\"kind\">{}</td><td>{} ({})</td><td>{} ({})</td><td>{} (max {})</td><td class=\"threshold\">{}</td><td>{} – {}</td><td>{}</td>",
                region,
                scope_name(scope),
                kind_name(kind),
                esc(&al.business_name),
                esc(&al.business),
                esc(&al.department_name),
                esc(&al.department),
                al.count,
                a.max_count,
                esc(&threshold),
                time_el(al.window_start, off),
                time_el(al.window_end, off),
                time_el(al.event_ts, off),
            );
            dispatch_cell(&mut h, a, s.dispatch.open.get(&al.alert_id), page);
            h.push_str("<td>");
            if !al.samples.is_empty() {
                let _ = write!(
                    h,
                    "<details class=\"samples\"><summary>{} 条 samples</summary><ol>",
                    al.samples.len()
                );
                for smp in &al.samples {
                    let _ = write!(
                        h,
                        "<li><code>{}</code> {}</li>",
                        esc(&crate::mask::mask(&smp.id)),
                        esc(&crate::mask::mask(&smp.text))
                    );
                }
                h.push_str("</ol></details>");
            }
            h.push_str("</td></tr>\n");
        }
        h.push_str("</table>\n");
    }

    // Resolved in the last 24 hours (event time), newest first.
    let since = s
        .watermark
        .map(|w| w - super::dispatch::RESOLVED_HORIZON_MS)
        .unwrap_or(i64::MIN);
    let resolved: Vec<&Tracked> = s
        .dispatch
        .resolved
        .iter()
        .filter(|t| t.resolved_ts.unwrap_or(i64::MIN) >= since)
        .collect();
    h.push_str("<h2>近24小时已恢复 Resolved in the last 24 h</h2>\n");
    if resolved.is_empty() {
        h.push_str("<p class=\"none\" id=\"no-resolved\">无 — none</p>\n");
    } else {
        h.push_str("<table id=\"resolved\"><tr><th>地区 region</th><th>业务 business</th><th>责任部门 department</th><th>最多客户 max callers</th><th>开始 fired</th><th>恢复 resolved</th><th>持续 duration</th><th>确认 acknowledged by</th><th>升级 escalated to</th></tr>\n");
        for t in resolved {
            let f = &t.firing;
            let end = t.resolved_ts.unwrap_or(f.event_ts);
            let who = match (&t.ack, &t.assigned, &t.closed) {
                (Some(a), _, _) => format!("{} {}", esc(&a.by), time_el(a.at, off)),
                (None, Some(a), _) => {
                    format!("{} → {} {}", esc(&a.by), esc(&a.to), time_el(a.at, off))
                }
                (None, None, Some(a)) => format!("{} {}", esc(&a.by), time_el(a.at, off)),
                _ => "<span class=\"none\">—</span>".into(),
            };
            let esc_to: Vec<String> = t.escalations.iter().map(|e| esc(&e.to)).collect();
            let _ = writeln!(
                h,
                "<tr class=\"resolved\"><td>{}</td><td>{} ({})</td><td>{} ({})</td><td>{} / {}</td><td>{}</td><td>{}</td><td class=\"duration\">{}</td><td class=\"who\">{}</td><td>{}</td></tr>",
                esc(&f.region),
                esc(&f.business_name),
                esc(&f.business),
                esc(&f.department_name),
                esc(&f.department),
                t.max_count.unwrap_or(f.count),
                f.threshold,
                time_el(f.event_ts, off),
                time_el(end, off),
                span(end - f.event_ts),
                who,
                if esc_to.is_empty() {
                    "—".into()
                } else {
                    esc_to.join(" → ")
                },
            );
        }
        h.push_str("</table>\n");
    }

    new_topics(&mut h, s, page);

    // Heat tables: businesses with any live key × regions, then (section
    // 8) × provinces.
    h.push_str("<h2>热度 Heat: distinct callers / threshold</h2>\n");
    let region_keys: Vec<&Hotspot> = s
        .hotspots
        .iter()
        .filter(|k| k.scope != "province")
        .collect();
    let province_keys: Vec<&Hotspot> = s
        .hotspots
        .iter()
        .filter(|k| k.scope == "province")
        .collect();
    if region_keys.is_empty() && province_keys.is_empty() {
        h.push_str(
            "<p class=\"none\" id=\"no-heat\">暂无数据 — no complaints in the live windows</p>\n",
        );
    }
    if !region_keys.is_empty() {
        heat_table(&mut h, s, "heat", "业务 \\ 地区", "", &region_keys);
    }
    if !province_keys.is_empty() {
        h.push_str("<h2>全省热度 Province heat: distinct callers / province threshold</h2>\n");
        heat_table(
            &mut h,
            s,
            "heat-province",
            "业务 \\ 省",
            " 全省",
            &province_keys,
        );
    }

    // Silences.
    let silences: Vec<_> = s.dispatch.silences.iter().filter(|x| x.active()).collect();
    if !silences.is_empty() {
        h.push_str("<h2>静默 Silences</h2>\n<table id=\"silences\"><tr><th>编号 id</th><th>匹配 matchers</th><th>截止 until</th><th>设置人 by</th><th>原因 why</th><th></th></tr>\n");
        for x in silences {
            let m = serde_json::to_string(&x.matchers).unwrap_or_default();
            let _ = writeln!(
                h,
                "<tr class=\"silence\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><button type=\"button\" class=\"unsilence\" data-id=\"{}\">解除 Expire</button><span class=\"err\"></span></td></tr>",
                esc(&x.id),
                esc(&m),
                time_el(x.until, off),
                esc(&x.by),
                esc(&x.why),
                esc(&x.id),
            );
        }
        h.push_str("</table>\n");
    }

    // Sinks.
    if !page.sinks.is_empty() {
        h.push_str("<h2>通知通道 Sinks</h2>\n<table id=\"sinks\"><tr><th>通道 sink</th><th>状态 state</th><th>积压 backlog</th></tr>\n");
        for k in page.sinks {
            let _ = writeln!(
                h,
                "<tr class=\"sink\"><td>{}</td><td class=\"{}\">{}</td><td class=\"backlog\">{}</td></tr>",
                esc(&sink_label(&k.name)),
                if k.up { "up" } else { "down" },
                if k.up { "正常 up" } else { "故障 down" },
                k.backlog
            );
        }
        h.push_str("</table>\n");
    }

    let updated = s
        .updated
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let _ = write!(
        h,
        "<p class=\"meta\">更新于 {} · <a href=\"/v1/alerts\">/v1/alerts</a> · <a href=\"/v1/silences\">/v1/silences</a> · <a href=\"/v1/hotspots\">/v1/hotspots</a> · <a href=\"/v1/stats\">/v1/stats</a> · <a href=\"/metrics\">/metrics</a></p>",
        time_el(updated, off)
    );
    h.push('\n');
    h.push_str(&SCRIPT.replace("REFRESH_MS", &(REFRESH_SECS * 1000).to_string()));
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_colours() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(heat(0.0), "#ffffff");
        assert_eq!(heat(1.0), "#d7301f");
        assert_eq!(heat(2.0), "#d7301f");
        assert_ne!(heat(0.6), heat(0.3));
    }

    #[test]
    fn province_and_surge_alerts_show_scope_kind_and_baseline() {
        use crate::alert::Alert;
        use crate::service::state::OpenAlertView;
        let line = r#"{"alert_id":"crbt:province:浙江:1773538061000:WO1","state":"firing","business":"crbt","business_name":"彩铃","region":"浙江","scope":"province","kind":"surge","department":"vas","department_name":"数据业务部","count":31,"threshold":30,"baseline":2.35,"p_value":1e-12,"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00","triggered_by":"WO1","event_ts":"2026-03-15T09:27:41+08:00","templates":{"crbt.copy_fail":31},"samples":[]}"#;
        let surge: Alert = serde_json::from_str(line).unwrap();
        let city: Alert = serde_json::from_str(
            &line
                .replace("crbt:province:浙江", "crbt:杭州")
                .replace(
                    "\"region\":\"浙江\",\"scope\":\"province\",\"kind\":\"surge\"",
                    "\"region\":\"杭州\",\"scope\":\"region\",\"kind\":\"threshold\"",
                )
                .replace(",\"baseline\":2.35,\"p_value\":1e-12", ""),
        )
        .unwrap();
        // A surge of the place test.
        let place: Alert = serde_json::from_str(
            &line
                .replace("crbt:province:浙江", "crbt:舟山")
                .replace(
                    "\"region\":\"浙江\",\"scope\":\"province\"",
                    "\"region\":\"舟山\",\"scope\":\"region\"",
                )
                .replace(",\"p_value\":1e-12", ",\"terms\":[\"岱山县丽都花园\"]"),
        )
        .unwrap();
        let hot = |region: &str, scope: &'static str, n: u32, t: u32| Hotspot {
            business: "crbt".into(),
            business_name: "彩铃".into(),
            region: region.into(),
            scope,
            department: "vas".into(),
            distinct_callers: n,
            threshold: t,
            ratio: n as f64 / t as f64,
            trend: 0,
            firing: n >= t,
        };
        let snap = Snapshot {
            watermark: Some(1_773_538_061_000),
            watermarks: Default::default(),
            stats: Default::default(),
            open_alerts: vec![
                OpenAlertView::new(&surge, 31, 1_773_538_200_000, "main"),
                OpenAlertView::new(&city, 23, 1_773_538_200_000, "main"),
                OpenAlertView::new(&place, 31, 1_773_538_200_000, "main"),
            ],
            hotspots: vec![
                hot("杭州", "region", 23, 23),
                hot("浙江", "province", 31, 40),
            ],
            rules: std::sync::Arc::new(crate::rules::embedded().unwrap()),
            keys: 2,
            updated: std::time::SystemTime::now(),
            dispatch: Default::default(),
        };
        let page = render(&snap, &Page::default());
        assert!(
            page.contains("<tr class=\"alert\"><td>浙江</td><td class=\"scope\">全省 province</td><td class=\"kind\">突增 surge</td>"),
            "{page}"
        );
        assert!(
            page.contains("<td class=\"threshold\">30 (基线 baseline 2.35)</td>"),
            "{page}"
        );
        assert!(
            page.contains("<tr class=\"alert\"><td>杭州</td><td class=\"scope\">城市 region</td><td class=\"kind\">阈值 threshold</td>"),
            "{page}"
        );
        assert!(page.contains("<td class=\"threshold\">30</td>"), "{page}");
        assert!(
            page.contains("<tr class=\"alert\"><td>舟山<br><span class=\"place\">地点 岱山县丽都花园</span></td><td class=\"scope\">城市 region</td><td class=\"kind\">突增 surge</td>"),
            "{page}"
        );
        let heat = &page[page.find("<table id=\"heat\"").unwrap()..];
        let heat = &heat[..heat.find("</table>").unwrap()];
        assert!(
            heat.contains("<th>杭州</th>") && !heat.contains("浙江"),
            "{heat}"
        );
        let prov = &page[page.find("<table id=\"heat-province\"").unwrap()..];
        assert!(prov.contains("<th>浙江 全省</th>"), "{prov}");
        assert!(prov.contains(">31/40</td>"), "{prov}");
        // The embedded rules have no [discovery]: no new-topic section.
        assert!(!page.contains("New topics"), "{page}");
    }

    #[test]
    fn open_new_topics_have_their_own_table() {
        use crate::alert::Alert;
        use crate::service::state::OpenAlertView;
        let line = r#"{"alert_id":"new_topic:杭州:幸运星套餐扣费异常:1773541181288:WO1","state":"firing","business":null,"business_name":null,"region":"杭州","scope":"region","kind":"new_topic","department":"cs","department_name":"客服部","count":8,"threshold":8,"baseline":0.05,"p_value":9.27e-16,"terms":["幸运星套餐扣费异常","幸运星套餐"],"window_start":"2026-03-15T09:50:00+08:00","window_end":"2026-03-15T10:20:00+08:00","triggered_by":"WO1","event_ts":"2026-03-15T10:19:41.288+08:00","templates":{},"samples":[{"id":"WO1","text":"用户来电称幸运星套餐扣费异常<b>，回访号码150****0005。"}]}"#;
        let topic: Alert = serde_json::from_str(line).unwrap();
        let mut rules = crate::rules::embedded().unwrap();
        rules.discovery = Some(crate::rules::Discovery {
            department: 0,
            min_callers: 8,
        });
        let mut snap = Snapshot {
            watermark: Some(1_773_541_181_288),
            watermarks: Default::default(),
            stats: Default::default(),
            open_alerts: vec![OpenAlertView::new(&topic, 10, 1_773_542_000_000, "main")],
            hotspots: vec![],
            rules: std::sync::Arc::new(rules),
            keys: 0,
            updated: std::time::SystemTime::now(),
            dispatch: Default::default(),
        };
        let page = render(&snap, &Page::default());
        assert!(
            page.contains("<tr class=\"topic\"><td>杭州</td><td class=\"scope\">城市 region</td><td class=\"terms\">幸运星套餐扣费异常 · 幸运星套餐</td><td>客服部 (cs)</td><td>8 (max 10)</td><td>0.05</td>"),
            "{page}"
        );
        assert!(
            page.contains("扣费异常&lt;b&gt;，回访号码150****0005。"),
            "{page}"
        );
        // Acknowledged like any alert: the dispatch cell with its buttons.
        assert!(
            page.contains("<td class=\"dispatch unacknowledged\">"),
            "{page}"
        );
        // Not in the businesses' table.
        assert!(page.contains("id=\"no-alerts\""), "{page}");
        snap.open_alerts.clear();
        let page = render(&snap, &Page::default());
        assert!(page.contains("id=\"no-topics\""), "{page}");
    }

    #[test]
    fn dispatch_resolved_sinks_local_times_and_heat_order() {
        use crate::alert::Alert;
        use crate::service::dispatch::{Board, Tracked};
        use crate::service::state::OpenAlertView;
        let firing = |region: &str, count: u32, threshold: u32| -> Alert {
            serde_json::from_str(&format!(r#"{{"alert_id":"crbt:{region}:1773538061000:WO1","state":"firing","business":"crbt","business_name":"彩铃","region":"{region}","department":"vas","department_name":"数据业务部","count":{count},"threshold":{threshold},"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00","triggered_by":"WO1","event_ts":"2026-03-15T09:27:41+08:00","templates":{{}},"samples":[{{"id":"WO1","text":"彩铃复制失败，回访13812345678"}}]}}"#)).unwrap()
        };
        // 温州 is hotter (30/20) than 杭州 (25/23), though 杭 < 温.
        let hz = firing("杭州", 23, 23);
        let wz = firing("温州", 20, 20);
        let mut hz_view = OpenAlertView::new(&hz, 25, 1_773_538_200_000, "main");
        hz_view.dispatch = serde_json::from_str(r#"{"ack_state":"acknowledged","ack":{"by":"张<三>","note":"在查","at":"2026-03-15T09:30:00+08:00"},"deadline":"2026-03-15T09:45:00+08:00"}"#).unwrap();
        let wz_view = OpenAlertView::new(&wz, 30, 1_773_538_200_000, "main");
        let mut done = serde_json::from_str::<Tracked>(&format!(
            r#"{{"firing":{},"resolved_ts":1773541661000,"max_count":31,"ack":{{"by":"李四","note":"","at":1773538300000}}}}"#,
            firing("宁波", 23, 23).to_json()
        ))
        .unwrap();
        done.firing.alert_id = "crbt:宁波:1:WO9".into();
        let snap = Snapshot {
            watermark: Some(1_773_541_661_000),
            watermarks: Default::default(),
            stats: Default::default(),
            open_alerts: vec![hz_view, wz_view],
            hotspots: vec![],
            rules: std::sync::Arc::new(crate::rules::embedded().unwrap()),
            keys: 2,
            updated: std::time::SystemTime::now(),
            dispatch: std::sync::Arc::new(Board {
                resolved: vec![done],
                ..Board::default()
            }),
        };
        let sinks = [
            SinkHealth {
                name: "webhook:vas:https://oapi.dingtalk.com/robot/send?access_token=SECRET".into(),
                backlog: 3,
                up: false,
            },
            SinkHealth {
                name: "file:/tmp/a.jsonl".into(),
                backlog: 0,
                up: true,
            },
        ];
        let page = render(
            &snap,
            &Page {
                offset_min: 8 * 60,
                sinks: &sinks,
                now_ms: 1_773_539_200_000, // 09:46:40: past 杭州's deadline
            },
        );
        // Hottest first.
        let (w, h) = (
            page.find("<td>温州</td>").unwrap(),
            page.find("<td>杭州</td>").unwrap(),
        );
        assert!(w < h, "温州 (1.5) before 杭州 (1.09)");
        // The ack, escaped; the deadline, passed; buttons: close only.
        assert!(
            page.contains("已确认 acknowledged: <b>张&lt;三&gt;</b>"),
            "{page}"
        );
        assert!(page.contains("<div class=\"deadline overdue\">时限 deadline <time datetime=\"2026-03-15T09:45:00+08:00\">2026-03-15 09:45:00</time> 已超时 overdue</div>"), "{page}");
        let hz_row = &page[h..];
        let hz_row = &hz_row[..hz_row.find("</tr>").unwrap()];
        assert!(
            !hz_row.contains("button.ack") && !hz_row.contains("value=\"ack\""),
            "{hz_row}"
        );
        assert!(hz_row.contains("value=\"close\""), "{hz_row}");
        let wz_row = &page[w..];
        let wz_row = &wz_row[..wz_row.find("</tr>").unwrap()];
        assert!(
            wz_row.contains("data-id=\"crbt:温州:1773538061000:WO1\""),
            "{wz_row}"
        );
        assert!(wz_row.contains("value=\"ack\""), "{wz_row}");
        // Masked samples.
        assert!(wz_row.contains("回访138****5678") && !page.contains("13812345678"));
        // Readable local times.
        assert!(
            page.contains(
                "<time datetime=\"2026-03-15T09:27:41+08:00\">2026-03-15 09:27:41</time>"
            )
        );
        // Resolved in the last 24 h: duration, who acknowledged.
        let resolved = &page[page.find("<table id=\"resolved\"").unwrap()..];
        let resolved = &resolved[..resolved.find("</table>").unwrap()];
        assert!(
            resolved.contains("<td>宁波</td>") && resolved.contains("31 / 23"),
            "{resolved}"
        );
        assert!(
            resolved.contains("<td class=\"duration\">1h00m</td>"),
            "{resolved}"
        );
        assert!(
            resolved.contains("<td class=\"who\">李四 <time"),
            "{resolved}"
        );
        // Sinks: state and backlog, no access token.
        assert!(page.contains("<td>webhook:vas:https://oapi.dingtalk.com/robot/send?…</td><td class=\"down\">故障 down</td><td class=\"backlog\">3</td>"), "{page}");
        assert!(!page.contains("SECRET"));
        // Another time zone.
        let utc = render(
            &snap,
            &Page {
                offset_min: 0,
                sinks: &[],
                now_ms: 0,
            },
        );
        assert!(utc.contains(">2026-03-15 01:27:41</time>") && utc.contains("UTC+00:00"));
        assert_eq!(offset_name(-330), "-05:30");
        assert_eq!(span(3_725_000), "1h02m");
        assert_eq!(span(65_000), "1m05s");
    }
}
