//! Notifications for people: an alert line rendered as the message a
//! department reads — each group robot's documented message (WeCom and
//! DingTalk markdown, a Feishu card) and an e-mail — in Chinese.
//!
//! Every format says the same things, from the alert object alone (so an
//! alert renders the same after a reload or a restart): the place (city or
//! province), business, distinct callers against the threshold (or the
//! surge baseline), window, department, kind, the top templates, the masked
//! samples, the alert id and a link to the alert on the status page. The
//! dispatch book's steps ([`super::notice`], CONTRACT 9) render from the
//! same alert: a reminder (half the deadline passed unacknowledged) is
//! headed `【提醒】`, an escalation to the next department `【升级】` and
//! says from whom and after how long; a province alert names the city
//! alerts folded into it.
//!
//! Texts from complaints and rules are untrusted markdown: the characters
//! that robots' markdown acts on are written as their full-width forms
//! (`*` → `＊`, `[` → `［`, `<` → `＜` …), line breaks as spaces, so a
//! sample can neither format nor link. Phone and ID-card numbers are masked
//! again (the engine's samples already are). Messages stay inside the
//! robots' size limits: samples are cut first, then dropped.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::notice::{Grouped, Step};
use super::outbox::Item;
use crate::alert::{Alert, AlertState, Kind, Scope};
use crate::mask::{mask, mask_and_cut};
use crate::time::format_cst;

/// How a webhook's messages are written (`--webhook DEPARTMENT=FORMAT+URL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The alert object itself (CONTRACT 7): the bytes of the alert line.
    #[default]
    Json,
    /// WeCom (企业微信) group robot: `msgtype: markdown`.
    Wecom,
    /// DingTalk (钉钉) custom robot: `msgtype: markdown` with title and text.
    Dingtalk,
    /// Feishu (飞书) custom bot: `msg_type: interactive` card.
    Feishu,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Wecom => "wecom",
            Format::Dingtalk => "dingtalk",
            Format::Feishu => "feishu",
        }
    }

    /// Whether the robot's requests can be signed with a secret.
    pub fn signed(self) -> bool {
        matches!(self, Format::Dingtalk | Format::Feishu)
    }

    /// Whether the answer body says whether the robot took the message.
    pub fn is_robot(self) -> bool {
        self != Format::Json
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "json" => Ok(Format::Json),
            "wecom" => Ok(Format::Wecom),
            "dingtalk" => Ok(Format::Dingtalk),
            "feishu" => Ok(Format::Feishu),
            o => Err(format!(
                "{o:?}: expected a format of json, wecom, dingtalk or feishu"
            )),
        }
    }
}

/// An escalation of an unacknowledged alert (a [`Step::Escalation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The department that did not acknowledge in time.
    pub from: String,
    /// The department told now.
    pub to: String,
    /// Seconds from delivery to escalation.
    pub after_s: u64,
    /// 1 for the first escalation of the alert, 2 for the next, …
    pub level: u32,
}

/// A reminder to the alert's own department (a [`Step::Reminder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// Seconds since delivery.
    pub after_s: u64,
    /// The department's deadline, seconds.
    pub ack_within_s: u64,
}

/// What a notification is about: an alert line, perhaps a reminder or an
/// escalation of it, and where people can see it.
pub struct Notification<'a> {
    item: &'a Item,
    pub alert: &'a Alert,
    pub escalation: Option<Escalation>,
    pub reminder: Option<Reminder>,
    /// A province alert's city alerts of the same business.
    pub grouped: &'a [Grouped],
    /// The alert on the status page.
    pub link: Option<String>,
}

/// The status page's address of an alert: `PUBLIC_URL/?alert=ID` with the
/// id percent-encoded.
pub fn alert_link(public_url: &str, alert_id: &str) -> String {
    format!(
        "{}/?alert={}",
        public_url.trim_end_matches('/'),
        super::webhook::header_safe(alert_id)
    )
}

impl<'a> Notification<'a> {
    pub fn new(item: &'a Item, public_url: Option<&str>) -> Notification<'a> {
        let notice = item.notice.as_deref();
        let (mut escalation, mut reminder) = (None, None);
        match notice.and_then(|n| n.step.as_ref()) {
            Some(Step::Escalation {
                from,
                to,
                after_s,
                level,
            }) => {
                escalation = Some(Escalation {
                    from: from.clone(),
                    to: to.clone(),
                    after_s: (*after_s).max(0) as u64,
                    level: *level,
                });
            }
            Some(Step::Reminder {
                after_s,
                ack_within_s,
                ..
            }) => {
                reminder = Some(Reminder {
                    after_s: (*after_s).max(0) as u64,
                    ack_within_s: (*ack_within_s).max(0) as u64,
                });
            }
            None => {}
        }
        Notification {
            item,
            alert: &item.alert,
            escalation,
            reminder,
            grouped: notice.map(|n| n.grouped.as_slice()).unwrap_or(&[]),
            link: public_url.map(|u| alert_link(u, &item.alert.alert_id)),
        }
    }

    /// Whether it is a dispatch step (a reminder or an escalation), not an
    /// alert line.
    fn is_step(&self) -> bool {
        self.escalation.is_some() || self.reminder.is_some()
    }

    /// The key a receiver can drop duplicates by (see
    /// [`super::notice::idempotency_key`]): `<alert_id>/<state>`,
    /// `<alert_id>/reminder` or `<alert_id>/escalation-<level>`.
    pub fn idempotency_key(&self) -> String {
        super::notice::idempotency_key(self.item)
    }

    /// The one-line title: the alert's summary (`温州 彩铃 批量投诉：30分钟内
    /// 23 位客户 (阈值 23)`), `【升级】` before it for an escalation,
    /// `【提醒】` for a reminder.
    pub fn title(&self) -> String {
        let s = plain(&self.alert.summary());
        match (&self.escalation, &self.reminder) {
            (Some(_), _) => format!("【升级】{s}"),
            (None, Some(_)) => format!("【提醒】{s}"),
            (None, None) => s,
        }
    }

    /// The step's sentence: `数据业务部 (vas) 15 分钟未确认，升级通知`, or
    /// for a reminder `已 7 分 30 秒未确认（时限 15 分钟），请尽快确认`.
    fn step_line(&self) -> Option<String> {
        if let Some(r) = &self.reminder {
            return Some(format!(
                "已 {}未确认（时限 {}），请尽快确认",
                span_words(r.after_s),
                span_words(r.ack_within_s)
            ));
        }
        let e = self.escalation.as_ref()?;
        let from = if e.from == self.alert.department && !self.alert.department_name.is_empty() {
            format!("{} ({})", self.alert.department_name, e.from)
        } else {
            e.from.clone()
        };
        let level = if e.level > 1 {
            format!("（第 {} 次升级）", e.level)
        } else {
            String::new()
        };
        Some(format!(
            "{} {}未确认，升级通知{level}",
            plain(&from),
            span_words(e.after_s)
        ))
    }

    /// The facts, as (label, value) pairs of plain text.
    fn facts(&self) -> Vec<(&'static str, String)> {
        let a = self.alert;
        let mut f = Vec::new();
        let state = match (a.state, &self.escalation, &self.reminder) {
            (_, Some(_), _) => "升级 (未确认)",
            (_, None, Some(_)) => "提醒 (未确认)",
            (AlertState::Firing, None, None) => "告警中 firing",
            (AlertState::Resolved, None, None) => "已恢复 resolved",
        };
        f.push(("状态", state.to_owned()));
        let place = match a.scope {
            Some(Scope::Province) => format!("{}（全省）", a.region),
            _ => a.region.clone(),
        };
        f.push(("地区", place));
        // A surge of the place test names the neighbourhood its callers
        // name: where the field team goes first.
        if a.kind == Some(Kind::Surge) {
            if let Some(spot) = a.terms.first() {
                f.push(("地点", spot.clone()));
            }
        }
        if !a.business.is_empty() {
            let b = if a.business_name.is_empty() || a.business_name == a.business {
                a.business.clone()
            } else {
                format!("{} ({})", a.business_name, a.business)
            };
            f.push(("业务", b));
        }
        let kind = match a.kind {
            Some(Kind::Surge) => match a.baseline {
                Some(b) => format!("投诉突增 surge，基线 {b}"),
                None => "投诉突增 surge".to_owned(),
            },
            Some(Kind::NewTopic) => "新话题 new topic".to_owned(),
            _ => "批量投诉 threshold".to_owned(),
        };
        f.push(("类型", kind));
        let against = match a.kind {
            Some(Kind::Surge) => "突增线",
            Some(Kind::NewTopic) => "最少",
            _ => "阈值",
        };
        let callers = match a.state {
            AlertState::Firing => format!("{} 位（{against} {}）", a.count, a.threshold),
            AlertState::Resolved => format!("最多 {} 位（{against} {}）", a.count, a.threshold),
        };
        f.push(("客户数", callers));
        f.push(("窗口", window(a.window_start, a.window_end)));
        let dept = if a.department_name.is_empty() || a.department_name == a.department {
            a.department.clone()
        } else {
            format!("{} ({})", a.department_name, a.department)
        };
        f.push(("责任部门", dept));
        match a.state {
            AlertState::Firing => {
                let by = a.triggered_by.as_deref().unwrap_or("");
                f.push(("触发", format!("{} {}", clock(a.event_ts), mask(by))));
            }
            AlertState::Resolved => {
                let why = match (&a.reason, a.end_of_input) {
                    (Some(r), _) if r == "idle" => "（无新投诉，按时钟恢复）".to_owned(),
                    (Some(r), _) if r == "rules_reload" => "（规则重载）".to_owned(),
                    (Some(r), _) => format!("（{r}）"),
                    (None, true) => "（输入结束）".to_owned(),
                    (None, false) => String::new(),
                };
                let at = a.watermark.unwrap_or(a.event_ts);
                f.push(("恢复", format!("{}{why}", clock(at))));
            }
        }
        if !self.grouped.is_empty() {
            f.push(("并入城市", grouped_cities(self.grouped)));
        }
        if !a.templates.is_empty() {
            f.push(("主要模板", top_templates(&a.templates, 5)));
        }
        f.push(("告警编号", mask(&a.alert_id).into_owned()));
        f
    }

    /// The samples as (id, text) of plain text, each text cut to `max`
    /// characters.
    fn samples(&self, max: usize) -> Vec<(String, String)> {
        self.alert
            .samples
            .iter()
            .map(|s| (mask(&s.id).into_owned(), mask_and_cut(&s.text, max)))
            .collect()
    }

    /// WeCom group robot, `msgtype: markdown` (content at most 4096 bytes).
    pub fn wecom(&self) -> Value {
        let content = fit(WECOM_MAX_BYTES, |max_sample, samples| {
            let mut t = String::new();
            let color = match self.alert.state {
                _ if self.is_step() => "warning",
                AlertState::Firing => "warning",
                AlertState::Resolved => "info",
            };
            let _ = writeln!(t, "## <font color=\"{color}\">{}</font>", md(&self.title()));
            if let Some(e) = self.step_line() {
                let _ = writeln!(t, "**{}**", md(&e));
            }
            for (k, v) in self.facts() {
                let _ = writeln!(t, "**{k}**：{}", md(&v));
            }
            let s = self.samples(max_sample);
            if samples > 0 && !s.is_empty() {
                let _ = writeln!(t, "**样例**（已脱敏）：");
                for (id, text) in s.iter().take(samples) {
                    let _ = writeln!(t, "> {}：{}", md(id), md(text));
                }
            }
            if let Some(l) = &self.link {
                let _ = writeln!(t, "[在状态页查看]({l})");
            }
            t
        });
        json!({"msgtype": "markdown", "markdown": {"content": content}})
    }

    /// DingTalk custom robot, `msgtype: markdown` with `title` (the
    /// notification preview) and `text`.
    pub fn dingtalk(&self) -> Value {
        let text = fit(DINGTALK_MAX_BYTES, |max_sample, samples| {
            let mut t = String::new();
            let _ = write!(t, "### {}\n\n", md(&self.title()));
            if let Some(e) = self.step_line() {
                let _ = write!(t, "**{}**\n\n", md(&e));
            }
            for (k, v) in self.facts() {
                let _ = writeln!(t, "- **{k}**：{}", md(&v));
            }
            t.push('\n');
            let s = self.samples(max_sample);
            if samples > 0 && !s.is_empty() {
                t.push_str("**样例**（已脱敏）：\n\n");
                for (id, text) in s.iter().take(samples) {
                    let _ = write!(t, "> {}：{}\n\n", md(id), md(text));
                }
            }
            if let Some(l) = &self.link {
                let _ = writeln!(t, "[在状态页查看]({l})");
            }
            t
        });
        json!({"msgtype": "markdown", "markdown": {"title": self.title(), "text": text}})
    }

    /// Feishu custom bot, `msg_type: interactive`: a card with a coloured
    /// header, the facts, the samples and a button to the status page.
    pub fn feishu(&self) -> Value {
        let template = match (self.alert.state, &self.escalation, &self.reminder) {
            (_, Some(_), _) => "orange",
            (_, None, Some(_)) => "yellow",
            (AlertState::Firing, None, None) => "red",
            (AlertState::Resolved, None, None) => "green",
        };
        let mut out = Value::Null;
        // The card's text parts share the byte budget; `fit` measures them
        // joined.
        let _ = fit(FEISHU_MAX_BYTES, |max_sample, samples| {
            let mut facts = String::new();
            if let Some(e) = self.step_line() {
                let _ = writeln!(facts, "**{}**", md(&e));
            }
            for (k, v) in self.facts() {
                let _ = writeln!(facts, "**{k}**：{}", md(&v));
            }
            let mut elements = vec![
                json!({"tag": "div", "text": {"tag": "lark_md", "content": facts.trim_end()}}),
            ];
            let s = self.samples(max_sample);
            let mut sample_text = String::new();
            if samples > 0 && !s.is_empty() {
                sample_text.push_str("**样例**（已脱敏）：\n");
                for (id, text) in s.iter().take(samples) {
                    let _ = writeln!(sample_text, "{}：{}", md(id), md(text));
                }
                elements.push(json!({"tag": "hr"}));
                elements.push(json!({"tag": "div", "text": {"tag": "lark_md", "content": sample_text.trim_end()}}));
            }
            if let Some(l) = &self.link {
                elements.push(json!({"tag": "action", "actions": [{
                    "tag": "button",
                    "text": {"tag": "plain_text", "content": "在状态页查看"},
                    "type": "primary",
                    "url": l,
                }]}));
            }
            out = json!({
                "msg_type": "interactive",
                "card": {
                    "config": {"wide_screen_mode": true},
                    "header": {
                        "title": {"tag": "plain_text", "content": self.title()},
                        "template": template,
                    },
                    "elements": elements,
                }
            });
            out.to_string()
        });
        out
    }

    /// E-mail: the subject and a plain-text body with the same content.
    pub fn email(&self) -> (String, String) {
        let subject = format!("[hotspot] {}", self.title());
        let mut t = String::new();
        let _ = write!(t, "{}\n\n", self.title());
        if let Some(e) = self.step_line() {
            let _ = write!(t, "{e}\n\n");
        }
        for (k, v) in self.facts() {
            let _ = writeln!(t, "{k}：{v}");
        }
        let s = self.samples(EMAIL_SAMPLE_CHARS);
        if !s.is_empty() {
            t.push_str("\n样例（已脱敏）：\n");
            for (id, text) in &s {
                let _ = writeln!(t, "  {id}：{}", plain(text));
            }
        }
        if let Some(l) = &self.link {
            let _ = write!(t, "\n在状态页查看：{l}\n");
        }
        t.push_str("\n—— hotspot 批量投诉监测\n");
        (subject, t)
    }
}

/// WeCom's documented limit for markdown content.
const WECOM_MAX_BYTES: usize = 4096;
/// DingTalk documents no byte limit for markdown; messages are kept to
/// WeCom's size, which reads well on a phone.
const DINGTALK_MAX_BYTES: usize = 4096;
/// Feishu's limit is 20 KB for the whole request; the card's text stays
/// well inside it.
const FEISHU_MAX_BYTES: usize = 8192;
/// Characters of one sample in a robot message (before it is cut further
/// to fit).
const SAMPLE_CHARS: usize = 200;
const EMAIL_SAMPLE_CHARS: usize = 1000;

/// Renders with ever smaller samples until the text fits `max` bytes:
/// `render(chars per sample, how many samples)`. A text that does not fit
/// even without samples is cut at a character boundary.
fn fit(max: usize, mut render: impl FnMut(usize, usize) -> String) -> String {
    for (chars, n) in [
        (SAMPLE_CHARS, 3),
        (100, 3),
        (60, 3),
        (60, 2),
        (60, 1),
        (0, 0),
    ] {
        let t = render(chars, n);
        if t.len() <= max {
            return t;
        }
    }
    let mut t = render(0, 0);
    let mut cut = max;
    while !t.is_char_boundary(cut) {
        cut -= 1;
    }
    t.truncate(cut);
    t
}

/// `2026-03-14 10:15–10:45` (the end's date too when it differs).
fn window(start: i64, end: i64) -> String {
    let (s, e) = (format_cst(start), format_cst(end));
    let day = |x: &str| x[..10].to_owned();
    let hm = |x: &str| x[11..16].to_owned();
    if day(&s) == day(&e) {
        format!("{} {}–{}", day(&s), hm(&s), hm(&e))
    } else {
        format!("{} {} – {} {}", day(&s), hm(&s), day(&e), hm(&e))
    }
}

/// `2026-03-14 10:44:15` in +08:00.
fn clock(ms: i64) -> String {
    let s = format_cst(ms);
    format!("{} {}", &s[..10], &s[11..19])
}

/// `15 分钟`, `90 秒`, `2 小时`.
fn span_words(secs: u64) -> String {
    if secs >= 3600 && secs % 3600 == 0 {
        format!("{} 小时", secs / 3600)
    } else if secs >= 60 && secs % 60 == 0 {
        format!("{} 分钟", secs / 60)
    } else if secs >= 60 {
        format!("{} 分 {} 秒", secs / 60, secs % 60)
    } else {
        format!("{secs} 秒")
    }
}

/// The `n` templates with the most complaints, most first (ties by id):
/// `crbt.copy_fail 22、crbt.not_play 1`, and how many more.
fn top_templates(t: &[(String, u32)], n: usize) -> String {
    let mut v: Vec<&(String, u32)> = t.iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut s = v
        .iter()
        .take(n)
        .map(|(id, c)| format!("{id} {c}"))
        .collect::<Vec<_>>()
        .join("、");
    if v.len() > n {
        let _ = write!(s, " 等 {} 个", v.len());
    }
    s
}

/// Line breaks and other control characters as spaces: one line of text.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The city alerts a province alert lists: `温州 9 位、台州 10 位（已恢复）`,
/// at most ten, then how many more.
fn grouped_cities(g: &[Grouped]) -> String {
    let mut parts: Vec<String> = g
        .iter()
        .take(10)
        .map(|c| {
            let state = if c.state == "resolved" {
                "（已恢复）"
            } else {
                ""
            };
            format!("{} {} 位{state}", c.region, c.count)
        })
        .collect();
    if g.len() > 10 {
        parts.push(format!("等 {} 个", g.len()));
    }
    parts.join("、")
}

/// Untrusted text inside robot markdown: one line, with the characters
/// that markdown, HTML or the robots' tags act on written full-width.
pub(crate) fn md(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '*' => '＊',
            '`' => '｀',
            '[' => '［',
            ']' => '］',
            '<' => '＜',
            '>' => '＞',
            '#' => '＃',
            '|' => '｜',
            '~' => '～',
            '\\' => '＼',
            '!' => '！',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertSample;

    fn firing() -> Alert {
        serde_json::from_str(r#"{"alert_id":"crbt:温州:1773456255334:WO2026031400001692","state":"firing","business":"crbt","business_name":"彩铃","region":"温州","department":"vas","department_name":"数据业务部","count":23,"threshold":23,"window_start":"2026-03-14T10:15:00+08:00","window_end":"2026-03-14T10:45:00+08:00","triggered_by":"WO2026031400001692","event_ts":"2026-03-14T10:44:15.334+08:00","templates":{"crbt.copy_fail":22,"crbt.not_play":1,"crbt.set_fail":1},"samples":[{"id":"AP2026031400001675","text":"炫铃无法复制，机主身份证号码330310********9260。"},{"id":"WO2026031400001681","text":"复制好友的彩铃**一直不成功**，[点我](http://x) <b>回访</b> 19512341661。"}]}"#).unwrap()
    }

    fn item(alert: &Alert, json: &str) -> Item {
        Item {
            seq: 1,
            alert: std::sync::Arc::new(alert.clone()),
            json: json.into(),
            received: None,
            notice: None,
        }
    }

    fn step(alert: &Alert, notice: super::super::notice::Notice) -> Item {
        Item {
            notice: Some(std::sync::Arc::new(notice)),
            ..item(alert, &alert.to_json())
        }
    }

    #[test]
    fn formats_parse_and_say_what_they_accept() {
        assert_eq!("wecom".parse::<Format>(), Ok(Format::Wecom));
        assert_eq!("feishu".parse::<Format>(), Ok(Format::Feishu));
        let e = "slack".parse::<Format>().unwrap_err();
        assert!(e.contains("json, wecom, dingtalk or feishu"), "{e}");
        assert!(Format::Dingtalk.signed() && Format::Feishu.signed());
        assert!(!Format::Wecom.signed() && !Format::Json.signed());
    }

    #[test]
    fn wecom_markdown_names_everything_and_masks_and_escapes_samples() {
        let a = firing();
        let it = item(&a, &a.to_json());
        let n = Notification::new(&it, Some("http://hotspot.example:8080/"));
        let v = n.wecom();
        assert_eq!(v["msgtype"], "markdown");
        let c = v["markdown"]["content"].as_str().unwrap();
        for want in [
            "温州 彩铃 批量投诉：30分钟内 23 位客户 (阈值 23)",
            "**地区**：温州",
            "**业务**：彩铃 (crbt)",
            "**客户数**：23 位（阈值 23）",
            "**窗口**：2026-03-14 10:15–10:45",
            "**责任部门**：数据业务部 (vas)",
            "**主要模板**：crbt.copy_fail 22、crbt.not_play 1、crbt.set_fail 1",
            // Masked digits too are written full-width: `****` is markdown.
            "> AP2026031400001675：炫铃无法复制，机主身份证号码330310＊＊＊＊＊＊＊＊9260。",
            "195＊＊＊＊1661",
            "[在状态页查看](http://hotspot.example:8080/?alert=crbt%3A%E6%B8%A9%E5%B7%9E%3A1773456255334%3AWO2026031400001692)",
        ] {
            assert!(c.contains(want), "{want:?} missing in:\n{c}");
        }
        assert!(!c.contains("19512341661"), "unmasked phone: {c}");
        // The sample cannot format or link: its markdown is full-width.
        assert!(
            c.contains("＊＊一直不成功＊＊，［点我］(http://x) ＜b＞回访＜/b＞"),
            "{c}"
        );
        assert!(c.len() <= WECOM_MAX_BYTES);
        assert_eq!(
            n.idempotency_key(),
            "crbt%3A%E6%B8%A9%E5%B7%9E%3A1773456255334%3AWO2026031400001692/firing"
        );
    }

    #[test]
    fn dingtalk_has_title_and_text_and_feishu_a_card() {
        let a = firing();
        let it = item(&a, &a.to_json());
        let n = Notification::new(&it, Some("http://h:1"));
        let d = n.dingtalk();
        assert_eq!(d["msgtype"], "markdown");
        assert_eq!(
            d["markdown"]["title"],
            "温州 彩铃 批量投诉：30分钟内 23 位客户 (阈值 23)"
        );
        assert!(
            d["markdown"]["text"]
                .as_str()
                .unwrap()
                .starts_with("### 温州 彩铃")
        );
        let f = n.feishu();
        assert_eq!(f["msg_type"], "interactive");
        assert_eq!(f["card"]["header"]["template"], "red");
        assert_eq!(f["card"]["header"]["title"]["tag"], "plain_text");
        let els = f["card"]["elements"].as_array().unwrap();
        assert_eq!(els[0]["text"]["tag"], "lark_md");
        assert!(
            els[0]["text"]["content"]
                .as_str()
                .unwrap()
                .contains("**客户数**：23 位（阈值 23）")
        );
        let button = &els.last().unwrap()["actions"][0];
        assert_eq!(button["tag"], "button");
        assert!(
            button["url"]
                .as_str()
                .unwrap()
                .starts_with("http://h:1/?alert=crbt%3A")
        );
    }

    #[test]
    fn resolved_surge_province_and_escalation_render() {
        let mut a = firing();
        a.state = AlertState::Resolved;
        a.scope = Some(Scope::Province);
        a.kind = Some(Kind::Surge);
        a.region = "浙江".into();
        a.count = 40;
        a.threshold = 12;
        a.templates.clear();
        a.samples.clear();
        a.watermark = Some(a.event_ts + 600_000);
        a.reason = Some("idle".into());
        let it = item(&a, &a.to_json());
        let n = Notification::new(&it, None);
        let c = n.wecom()["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            c.contains("<font color=\"info\">浙江全省 彩铃 投诉突增已恢复"),
            "{c}"
        );
        assert!(c.contains("**地区**：浙江（全省）"), "{c}");
        assert!(c.contains("**客户数**：最多 40 位（突增线 12）"), "{c}");
        assert!(
            c.contains("**恢复**：2026-03-14 10:54:15（无新投诉，按时钟恢复）"),
            "{c}"
        );
        assert!(!c.contains("样例") && !c.contains("在状态页查看"), "{c}");
        assert_eq!(n.feishu()["card"]["header"]["template"], "green");

        // An escalation: the dispatch book's step with the alert.
        let a = firing();
        let it = step(
            &a,
            super::super::notice::Notice {
                step: Some(Step::Escalation {
                    from: "vas".into(),
                    to: "duty".into(),
                    after_s: 900,
                    level: 1,
                }),
                ..Default::default()
            },
        );
        let n = Notification::new(&it, Some("http://h:1"));
        assert_eq!(
            n.escalation,
            Some(Escalation {
                from: "vas".into(),
                to: "duty".into(),
                after_s: 900,
                level: 1,
            })
        );
        assert!(n.title().starts_with("【升级】温州 彩铃 批量投诉"));
        let c = n.wecom()["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            c.contains("**数据业务部 (vas) 15 分钟未确认，升级通知**"),
            "{c}"
        );
        assert_eq!(n.feishu()["card"]["header"]["template"], "orange");
        assert!(n.idempotency_key().ends_with("/escalation-1"));
        let (subject, body) = n.email();
        assert!(
            subject.starts_with("[hotspot] 【升级】温州 彩铃"),
            "{subject}"
        );
        assert!(body.contains("数据业务部 (vas) 15 分钟未确认"), "{body}");

        // A reminder to the alert's own department.
        let it = step(
            &a,
            super::super::notice::Notice {
                step: Some(Step::Reminder {
                    to: "vas".into(),
                    after_s: 450,
                    ack_within_s: 900,
                }),
                ..Default::default()
            },
        );
        let n = Notification::new(&it, None);
        assert!(n.title().starts_with("【提醒】温州 彩铃 批量投诉"));
        let c = n.dingtalk()["markdown"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            c.contains("**已 7 分 30 秒未确认（时限 15 分钟），请尽快确认**"),
            "{c}"
        );
        assert!(c.contains("**状态**：提醒 (未确认)"), "{c}");
        assert_eq!(n.feishu()["card"]["header"]["template"], "yellow");
        assert!(n.idempotency_key().ends_with("/reminder"));
    }

    #[test]
    fn a_surge_of_the_place_test_names_the_neighbourhood() {
        let mut a = firing();
        a.kind = Some(Kind::Surge);
        a.baseline = Some(0.42);
        a.terms = vec!["岱山县丽都花园".into()];
        let it = step(&a, Default::default());
        let n = Notification::new(&it, None);
        let c = n.wecom()["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(c.contains("**地点**：岱山县丽都花园"), "{c}");
        // Other alerts have no such line.
        let plain = firing();
        let it = step(&plain, Default::default());
        let c = Notification::new(&it, None).wecom()["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!c.contains("地点"), "{c}");
    }

    #[test]
    fn a_province_alert_names_the_city_alerts_folded_into_it() {
        let mut a = firing();
        a.scope = Some(Scope::Province);
        a.region = "浙江".into();
        let it = step(
            &a,
            super::super::notice::Notice {
                grouped: vec![
                    Grouped {
                        alert_id: "crbt:温州:1:WO1".into(),
                        region: "温州".into(),
                        state: "firing".into(),
                        count: 9,
                        threshold: 8,
                        notified: false,
                    },
                    Grouped {
                        alert_id: "crbt:台州:1:WO2".into(),
                        region: "台州".into(),
                        state: "resolved".into(),
                        count: 10,
                        threshold: 8,
                        notified: true,
                    },
                ],
                ..Default::default()
            },
        );
        let n = Notification::new(&it, None);
        let c = n.wecom()["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            c.contains("**并入城市**：温州 9 位、台州 10 位（已恢复）"),
            "{c}"
        );
        assert!(n.title().starts_with("浙江全省"), "{}", n.title());
    }

    #[test]
    fn long_samples_are_cut_to_fit_the_robots_limits() {
        let mut a = firing();
        a.samples = (0..3)
            .map(|i| AlertSample {
                id: format!("WO{i}"),
                text: "彩铃复制失败".repeat(700),
            })
            .collect();
        a.business_name = "彩".repeat(2000);
        let it = item(&a, &a.to_json());
        let n = Notification::new(&it, Some("http://h:1"));
        let c = n.wecom()["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(c.len() <= WECOM_MAX_BYTES, "{}", c.len());
        let d = n.dingtalk()["markdown"]["text"].as_str().unwrap().len();
        assert!(d <= DINGTALK_MAX_BYTES);
        assert!(n.feishu().to_string().len() < 20_000);
        // Shorter names keep their samples, cut.
        let mut a = firing();
        a.samples = (0..3)
            .map(|i| AlertSample {
                id: format!("WO{i}"),
                text: "彩铃复制失败".repeat(700),
            })
            .collect();
        let it = item(&a, &a.to_json());
        let n = Notification::new(&it, None);
        let c = n.wecom()["markdown"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(c.len() <= WECOM_MAX_BYTES);
        assert_eq!(c.matches("> WO").count(), 3, "{c}");
    }

    #[test]
    fn email_body_is_plain_text_with_the_same_facts() {
        let a = firing();
        let it = item(&a, &a.to_json());
        let (subject, body) = Notification::new(&it, Some("http://h:1")).email();
        assert_eq!(
            subject,
            "[hotspot] 温州 彩铃 批量投诉：30分钟内 23 位客户 (阈值 23)"
        );
        for want in [
            "地区：温州",
            "客户数：23 位（阈值 23）",
            "窗口：2026-03-14 10:15–10:45",
            "责任部门：数据业务部 (vas)",
            "  WO2026031400001681：复制好友的彩铃**一直不成功**",
            "195****1661",
            "在状态页查看：http://h:1/?alert=",
        ] {
            assert!(body.contains(want), "{want:?} missing in:\n{body}");
        }
        assert!(!body.contains("19512341661"));
    }

    #[test]
    fn helpers() {
        assert_eq!(span_words(900), "15 分钟");
        assert_eq!(span_words(7200), "2 小时");
        assert_eq!(span_words(90), "1 分 30 秒");
        assert_eq!(span_words(5), "5 秒");
        assert_eq!(
            window(1_773_504_000_000 - 600_000, 1_773_504_000_000 + 600_000),
            "2026-03-14 23:50 – 2026-03-15 00:10"
        );
        assert_eq!(md("a*b\n[c]<d>"), "a＊b ［c］＜d＞");
        assert_eq!(
            top_templates(&[("b".into(), 2), ("a".into(), 2), ("c".into(), 9)], 2),
            "c 9、a 2 等 3 个"
        );
    }
}
