//! The report as one self-contained HTML page: inline CSS, every chart an
//! inline `<svg id="chart-…">` drawn by `plotters`, the incident table,
//! nothing loaded from anywhere and no script. Chinese labels; times in
//! `+08:00`. Every text from the alerts or the input is escaped, samples
//! are masked again (see `alerts`).

use std::fmt::Write as _;

use plotters::prelude::*;

use super::Context;
use super::alerts::DETAIL_ROWS;
use super::charts::{self, CHARTS, WIDTH};
use super::figures::{
    Figures, TtdMethod, business_label, dept_label, kind_label, median_p90, place_label, short_time,
};
use crate::time::format_cst;

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Chart `id` as an inline SVG element with that id.
fn svg(id: &str, title: &str, f: &Figures) -> anyhow::Result<String> {
    let h = charts::height(id, f);
    let mut s = String::new();
    {
        let backend = SVGBackend::with_string(&mut s, (WIDTH, h));
        let area = backend.into_drawing_area();
        area.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("chart {id}: {e}"))?;
        charts::draw(id, &area, f, None).map_err(|e| anyhow::anyhow!("chart {id}: {e}"))?;
        area.present()
            .map_err(|e| anyhow::anyhow!("chart {id}: {e}"))?;
    }
    let attrs = format!(
        "<svg id=\"chart-{id}\" class=\"chart\" role=\"img\" aria-label=\"{}\" ",
        esc(title)
    );
    Ok(s.replacen("<svg ", &attrs, 1))
}

const STYLE: &str = "\
body{font-family:\"Noto Sans CJK SC\",\"Noto Sans SC\",\"Source Han Sans SC\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif;\
margin:0;background:#f5f6f8;color:#333}\
main{max-width:1160px;margin:0 auto;padding:16px 24px 40px}\
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:0 0 6px}\
.period{color:#666;margin:0 0 14px}\
#kpi{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}\
.kpi{background:#fff;border-radius:6px;padding:10px 18px;min-width:110px;box-shadow:0 1px 2px #0002}\
.kpi b{display:block;font-size:24px}.kpi span{color:#666;font-size:13px}\
section.card{background:#fff;border-radius:6px;padding:14px 16px;margin-bottom:16px;box-shadow:0 1px 2px #0002}\
.note{color:#666;font-size:13px;margin:4px 0 8px}\
svg.chart{display:block;max-width:100%;height:auto}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{border-bottom:1px solid #e6e6e6;padding:5px 6px;text-align:left;vertical-align:top}\
th{background:#fafafa;white-space:nowrap}td.n{text-align:right;white-space:nowrap}\
td.t,td.w{white-space:nowrap}ul.samples{margin:0;padding-left:16px;color:#555}\
.kind-surge{color:#d45087}.kind-new_topic{color:#c77c00}\
footer{color:#888;font-size:12px;margin-top:8px}";

/// The whole page.
pub(crate) fn page(cx: &Context, f: &Figures) -> anyhow::Result<String> {
    let mut h = String::with_capacity(256 << 10);
    let period = f.period_text();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>批量投诉分析报告 {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&period)
    );
    let _ = write!(
        h,
        "<header><h1>批量投诉分析报告</h1><p class=\"period\">统计期间：<b id=\"period\">{}</b>（北京时间）· 告警文件 {}",
        esc(&period),
        esc(&cx.alerts_name)
    );
    if let (Some(name), Some(facts)) = (&cx.input_name, &cx.input) {
        let _ = write!(h, " · 投诉文件 {}（{} 条投诉）", esc(name), facts.records);
    }
    h.push_str("</p></header>\n");

    // Key figures.
    let n = f.rows.len();
    let resolved = f
        .rows
        .iter()
        .filter(|r| r.inc.resolved_end.is_some())
        .count();
    let depts = f.departments.len();
    let places: std::collections::BTreeSet<String> =
        f.rows.iter().map(|r| place_label(r.inc)).collect();
    let ttd = median_p90(&f.ttd);
    h.push_str("<section id=\"kpi\">");
    let mut kpi = |id: &str, v: String, label: &str| {
        let _ = write!(
            h,
            "<div class=\"kpi\"><b id=\"kpi-{id}\">{}</b><span>{label}</span></div>",
            esc(&v)
        );
    };
    kpi("alerts", n.to_string(), "告警");
    kpi("resolved", resolved.to_string(), "已恢复");
    kpi("departments", depts.to_string(), "涉及部门");
    kpi("places", places.len().to_string(), "涉及地市/省");
    match ttd {
        Some((m, p)) => {
            kpi("ttd-median", format!("{m:.1} 分钟"), "发现时长中位数");
            kpi("ttd-p90", format!("{p:.1} 分钟"), "发现时长 P90");
        }
        None => {
            kpi("ttd-median", "—".into(), "发现时长中位数");
            kpi("ttd-p90", "—".into(), "发现时长 P90");
        }
    }
    h.push_str("</section>\n");

    for (id, title) in CHARTS {
        let _ = write!(
            h,
            "<section class=\"card\" id=\"sec-{id}\"><h2>{}</h2>",
            esc(title)
        );
        let note = note(id, cx, f);
        if !note.is_empty() {
            let _ = write!(h, "<p class=\"note\">{}</p>", esc(&note));
        }
        h.push_str(&svg(id, title, f)?);
        h.push_str("</section>\n");
    }

    incidents(&mut h, f);
    let _ = write!(
        h,
        "<footer>由 hotspot report {} 生成。时间均为北京时间（+08:00）；样例中的手机号、身份证号已脱敏。</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    );
    Ok(h)
}

/// The explanation under a chart's title.
fn note(id: &str, cx: &Context, f: &Figures) -> String {
    match id {
        "daily" => "按告警（firing）时间所在日期统计，每条告警计一次；颜色为负责部门。".into(),
        "heatmap" => "每格为该业务在该地市（或全省）的告警条数，颜色越深越多。".into(),
        "ttd" => match f.ttd_method {
            TtdMethod::Onset => {
                let mut s = format!(
                    "发现时长 = 告警时间 − 异常开始。异常开始：告警前 {} 内，该业务在该地的投诉中，独立来电数相对平常水平（该业务在此地的投诉占全部投诉的比例 × 同时段全部投诉量）最显著升高的起点（泊松似然比变点）。",
                    duration_text(super::onset::look_back_ms(cx.window_ms))
                );
                if f.ttd_fallbacks > 0 {
                    let _ = write!(
                        s,
                        "其中 {} 条告警无法从投诉文件确定异常开始（新话题、规则中没有的业务或没有该业务的投诉），按告警窗口起点计。",
                        f.ttd_fallbacks
                    );
                }
                s
            }
            TtdMethod::WindowStart => format!(
                "未提供投诉文件（--input）：按告警窗口起点到告警时间计，最多为一个窗口（{}）。提供 --input 可得到从异常开始算起的发现时长。",
                duration_text(cx.window_ms)
            ),
        },
        "hours" => "告警（firing）时间所在的小时，按告警类型区分。".into(),
        "templates" => {
            if f.templates_from_input {
                "告警期间（告警窗口起点至恢复）该业务在该地匹配到的投诉，按模板统计；一条投诉可匹配多个模板。".into()
            } else {
                "各告警触发窗口内的投诉按模板汇总（告警行的 templates）；提供 --input 时按告警期间匹配到的全部投诉统计。".into()
            }
        }
        _ => String::new(),
    }
}

fn duration_text(ms: i64) -> String {
    let m = ms / 60_000;
    if m >= 60 && m % 60 == 0 {
        format!("{} 小时", m / 60)
    } else {
        format!("{m} 分钟")
    }
}

/// The incident table: the first [`DETAIL_ROWS`] incidents in file order.
fn incidents(h: &mut String, f: &Figures) {
    let _ = write!(
        h,
        "<section class=\"card\" id=\"sec-incidents\"><h2>告警明细</h2><p class=\"note\">按告警先后排列。客户数 = 触发窗口内的独立来电数（括号内为告警期间单个窗口的最多来电数）；窗口 = 触发窗口起点至最后一个超阈值窗口的结束；发现时长带 * 的按窗口起点计。"
    );
    if f.rows.len() > DETAIL_ROWS {
        let _ = write!(
            h,
            "共 {} 条，此处列出前 {DETAIL_ROWS} 条（用 --from/--to 缩小统计期间可看到其余告警）。",
            f.rows.len()
        );
    }
    h.push_str(
        "</p>\n<table id=\"incidents\"><thead><tr><th>#</th><th>告警时间</th><th>地点</th><th>业务</th><th>类型</th><th>部门</th><th>客户数/阈值</th><th>窗口</th><th>异常开始</th><th>发现时长</th><th>主要模板</th><th>样例（已脱敏）</th></tr></thead>\n<tbody>\n",
    );
    for (i, r) in f.rows.iter().take(DETAIL_ROWS).enumerate() {
        let inc = r.inc;
        let kind = inc.kind.as_str();
        let _ = write!(
            h,
            "<tr class=\"incident\" data-line=\"{}\" data-alert-id=\"{}\" data-event-ts=\"{}\" data-ttd-min=\"{:.1}\"",
            inc.line,
            esc(&inc.alert_id),
            format_cst(inc.event_ts),
            r.ttd_min
        );
        if let Some(o) = r.onset {
            let _ = write!(h, " data-onset=\"{}\"", format_cst(o));
        }
        let count = match inc.max_count {
            Some(m) if m != inc.count => format!("{} ({m})/{}", inc.count, inc.threshold),
            _ => format!("{}/{}", inc.count, inc.threshold),
        };
        let end = match inc.resolved_end {
            Some(e) => short_time(e.max(inc.window_end)),
            None => "未恢复".into(),
        };
        let _ = write!(
            h,
            "><td class=\"n\">{}</td><td class=\"t\">{}</td><td class=\"w\">{}</td><td class=\"w\">{}</td><td class=\"w kind-{kind}\">{}</td><td class=\"w\">{}</td><td class=\"n\">{}</td><td class=\"t\">{} – {}</td><td class=\"t onset\">{}</td><td class=\"n\">{:.1}{}</td><td>",
            i + 1,
            short_time(inc.event_ts),
            esc(&place_label(inc)),
            esc(&business_label(inc)),
            kind_label(inc.kind),
            esc(&dept_label(inc)),
            esc(&count),
            short_time(inc.window_start),
            esc(&end),
            r.onset.map(short_time).unwrap_or_else(|| "—".into()),
            r.ttd_min,
            if r.from_onset { "" } else { "*" },
        );
        let mut top = inc.templates.clone();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let top: Vec<String> = top
            .iter()
            .take(2)
            .map(|(t, n)| format!("{} ×{n}", esc(t)))
            .collect();
        h.push_str(&top.join("<br>"));
        if !inc.terms.is_empty() {
            let _ = write!(h, "{}", esc(&inc.terms.join(" / ")));
        }
        h.push_str("</td><td><ul class=\"samples\">");
        for (id, text) in &inc.samples {
            let _ = write!(h, "<li>{}：{}</li>", esc(id), esc(text));
        }
        h.push_str("</ul></td></tr>\n");
    }
    h.push_str("</tbody></table></section>\n");
}
