//! The status page at `GET /`: for whoever has no Grafana open. A business
//! × region heat table of distinct callers against thresholds, the open
//! alerts with their departments, and the intake counts — one self-contained
//! HTML page (no scripts, styles or fonts from elsewhere) that reloads itself
//! every few seconds.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::state::Snapshot;
use crate::alert::{Kind, Scope};
use crate::time::format_cst;
use crate::window::store::Hotspot;

/// Seconds between reloads.
pub const REFRESH_SECS: u32 = 5;

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

/// One business × place table of hot keys; `suffix` follows each place's
/// name in the header (` 全省` for provinces).
fn heat_table(
    h: &mut String,
    s: &Snapshot,
    id: &str,
    corner: &str,
    suffix: &str,
    keys: &[&Hotspot],
) {
    let mut places = BTreeSet::new();
    let mut cells: BTreeMap<(usize, String), (u32, u32, f64, bool)> = BTreeMap::new();
    for k in keys {
        let b = s.rules.business_index(&k.business).unwrap_or(usize::MAX);
        places.insert(k.region.clone());
        cells.insert(
            (b, k.region.clone()),
            (k.distinct_callers, k.threshold, k.ratio, k.firing),
        );
    }
    let _ = write!(h, "<table id=\"{id}\"><tr><th>{}</th>", esc(corner));
    for r in &places {
        let _ = write!(h, "<th>{}{}</th>", esc(r), esc(suffix));
    }
    h.push_str("</tr>\n");
    let businesses: BTreeSet<usize> = cells.keys().map(|(b, _)| *b).collect();
    for b in businesses {
        let name = s
            .rules
            .businesses
            .get(b)
            .map(|x| format!("{} {}", x.name, x.id))
            .unwrap_or_default();
        let _ = write!(h, "<tr><td class=\"k\">{}</td>", esc(&name));
        for r in &places {
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
fn new_topics(h: &mut String, s: &Snapshot) {
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
    h.push_str("<table id=\"topics\"><tr><th>地区 region</th><th>范围 scope</th><th>话题 terms</th><th>责任部门 department</th><th>客户数 callers</th><th>预期 expected</th><th>窗口 window</th><th>触发 triggered</th><th>样例 sample</th></tr>\n");
    for a in topics {
        let al = &a.alert;
        let terms: Vec<String> = al.terms.iter().map(|t| esc(t)).collect();
        let sample = al.samples.last().map(|x| esc(&x.text)).unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr class=\"topic\"><td>{}</td><td class=\"scope\">{}</td><td class=\"terms\">{}</td><td>{} ({})</td><td>{} (max {})</td><td>{}</td><td>{} – {}</td><td>{}</td><td class=\"sample\">{}</td></tr>",
            esc(&al.region),
            scope_name(al.scope.unwrap_or(Scope::Region)),
            terms.join(" · "),
            esc(&al.department_name),
            esc(&al.department),
            al.count,
            a.max_count,
            al.baseline.map(|b| b.to_string()).unwrap_or_default(),
            esc(&format_cst(al.window_start)),
            esc(&format_cst(al.window_end)),
            esc(&format_cst(al.event_ts)),
            sample,
        );
    }
    h.push_str("</table>\n");
}

/// Renders the page.
pub fn render(s: &Snapshot) -> String {
    let mut h = String::with_capacity(16 << 10);
    let wm = s.watermark.map(format_cst).unwrap_or_else(|| "—".into());
    let _ = write!(
        h,
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECS}">
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
#alerts td{{text-align:left}}
.stat{{display:inline-block;margin-right:1.5em}}
</style></head><body>
<h1>hotspot · 批量投诉监控</h1>
<div class="meta">水位 watermark <b id="watermark">{wm}</b> · 规则 rules {ver} · 活跃键 keys {keys} · 每 {REFRESH_SECS} 秒刷新</div>
<div class="meta" id="intake"><span class="stat">接收 accepted <b>{acc}</b></span><span class="stat">拒收 rejected <b>{rej}</b></span><span class="stat">迟到 late <b>{late}</b></span><span class="stat">告警 alerts <b>{fired}</b> 次, 当前 <b>{open}</b> 条</span></div>
"#,
        ver = esc(&s.rules.version),
        keys = s.keys,
        acc = s.stats.accepted,
        rej = s.stats.rejected_total(),
        late = s.stats.late_dropped,
        fired = s.stats.alerts_firing,
        open = s.open_alerts.len(),
    );

    // Open alerts.
    h.push_str("<h2>当前告警 Open alerts</h2>\n");
    if s.open_alerts.iter().all(|a| a.alert.is_new_topic()) {
        h.push_str("<p class=\"none\" id=\"no-alerts\">无告警 — no open alerts</p>\n");
    } else {
        h.push_str("<table id=\"alerts\"><tr><th>地区 region</th><th>范围 scope</th><th>类型 kind</th><th>业务 business</th><th>责任部门 department</th><th>客户数 callers</th><th>阈值 threshold</th><th>窗口 window</th><th>触发 triggered</th></tr>\n");
        for a in s.open_alerts.iter().filter(|a| !a.alert.is_new_topic()) {
            let al = &a.alert;
            let scope = al.scope.unwrap_or(Scope::Region);
            let kind = al.kind.unwrap_or(Kind::Threshold);
            let threshold = match (kind, al.baseline) {
                (Kind::Surge, Some(b)) => format!("{} (基线 baseline {b})", al.threshold),
                _ => al.threshold.to_string(),
            };
            let _ = writeln!(
                h,
                "<tr class=\"alert\"><td>{}</td><td class=\"scope\">{}</td><td class=\"kind\">{}</td><td>{} ({})</td><td>{} ({})</td><td>{} (max {})</td><td class=\"threshold\">{}</td><td>{} – {}</td><td>{}</td></tr>",
                esc(&al.region),
                scope_name(scope),
                kind_name(kind),
                esc(&al.business_name),
                esc(&al.business),
                esc(&al.department_name),
                esc(&al.department),
                al.count,
                a.max_count,
                esc(&threshold),
                esc(&format_cst(al.window_start)),
                esc(&format_cst(al.window_end)),
                esc(&format_cst(al.event_ts)),
            );
        }
        h.push_str("</table>\n");
    }

    new_topics(&mut h, s);

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
    let _ = write!(
        h,
        "<p class=\"meta\">更新于 {} · <a href=\"/v1/alerts\">/v1/alerts</a> · <a href=\"/v1/hotspots\">/v1/hotspots</a> · <a href=\"/v1/stats\">/v1/stats</a> · <a href=\"/metrics\">/metrics</a></p>\n</body></html>\n",
        esc(&format_cst(
            s.updated
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        ))
    );
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
            ],
            hotspots: vec![
                hot("杭州", "region", 23, 23),
                hot("浙江", "province", 31, 40),
            ],
            rules: std::sync::Arc::new(crate::rules::embedded().unwrap()),
            keys: 2,
            updated: std::time::SystemTime::now(),
        };
        let page = render(&snap);
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
        };
        let page = render(&snap);
        assert!(
            page.contains("<tr class=\"topic\"><td>杭州</td><td class=\"scope\">城市 region</td><td class=\"terms\">幸运星套餐扣费异常 · 幸运星套餐</td><td>客服部 (cs)</td><td>8 (max 10)</td><td>0.05</td>"),
            "{page}"
        );
        assert!(
            page.contains("扣费异常&lt;b&gt;，回访号码150****0005。"),
            "{page}"
        );
        // Not in the businesses' table.
        assert!(page.contains("id=\"no-alerts\""), "{page}");
        snap.open_alerts.clear();
        let page = render(&snap);
        assert!(page.contains("id=\"no-topics\""), "{page}");
    }
}
