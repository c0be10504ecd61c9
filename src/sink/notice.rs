//! What an outbox line asks of the sinks that tell people (webhooks,
//! Alertmanager) beyond the alert line itself (CONTRACT 9): a dispatch
//! step that is no alert line (a reminder, an escalation), a line that is
//! not to be notified (a silence, or a region alert folded into its
//! province's), and the region alerts a province alert lists.
//!
//! The live service's dispatch book (`service::dispatch`) decides these on
//! the engine thread, in outbox order, and the outbox keeps them with the
//! line (a third column of `outbox.log`), so a restart delivers exactly
//! what was decided. The alerts file and the Fluvio alerts topic take only
//! alert lines, every one of them (detection is never silenced); a webhook
//! body is the alert object plus the notice's keys ([`webhook_body`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::outbox::Item;

/// The notifying side of one outbox line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// A dispatch step: the line is a notification, not an alert line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// Why the line is not notified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
    /// A province alert's lines: its region alerts of the same business
    /// (CONTRACT 9 grouping).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grouped: Vec<Grouped>,
}

/// A notification of an alert's dispatch, sent to `to`'s webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Half the deadline has passed unacknowledged: the department is
    /// told again.
    Reminder {
        to: String,
        /// Seconds since the alert was delivered.
        after_s: i64,
        /// The department's `ack_within`, seconds.
        ack_within_s: i64,
    },
    /// The deadline passed unacknowledged: `to` (the `escalate_to` of
    /// `from`) is told. `level` counts the escalations of this alert (a
    /// chain a → b → c has levels 1 and 2).
    Escalation {
        from: String,
        to: String,
        after_s: i64,
        level: u32,
    },
}

impl Step {
    /// The department whose webhooks send it.
    pub fn to(&self) -> &str {
        match self {
            Step::Reminder { to, .. } | Step::Escalation { to, .. } => to,
        }
    }
}

/// Why a line is not notified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Suppressed {
    /// A silence matched when the alert fired (webhooks and Alertmanager).
    Silence { id: String },
    /// A region alert that fired while its province's alert of the same
    /// business was open: folded into that one (webhooks only).
    Grouped { into: String },
}

/// A region alert as a province alert's notification lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouped {
    pub alert_id: String,
    pub region: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub count: u32,
    pub threshold: u32,
    /// Whether its own lines were notified (false: folded into this one).
    pub notified: bool,
}

/// Whether the line is an alert line of the engine (not a dispatch step):
/// what the alerts file and the Fluvio topic take.
pub fn is_alert_line(item: &Item) -> bool {
    item.notice.as_ref().is_none_or(|n| n.step.is_none())
}

/// Whether a webhook of `department` (`*`: every department) sends the
/// line: its department's alert lines that are not suppressed, and the
/// steps addressed to it.
pub fn webhook_wants(item: &Item, department: &str) -> bool {
    match item.notice.as_deref() {
        Some(Notice {
            step: Some(step), ..
        }) => department == "*" || step.to() == department,
        Some(Notice {
            suppressed: Some(_),
            ..
        }) => false,
        _ => department == "*" || item.alert.department == department,
    }
}

/// Whether Alertmanager takes the line: alert lines that no silence
/// suppressed (folding is for the departments' webhooks; Alertmanager has
/// inhibition rules of its own).
pub fn alertmanager_wants(item: &Item) -> bool {
    match item.notice.as_deref() {
        None => true,
        Some(n) => n.step.is_none() && !matches!(n.suppressed, Some(Suppressed::Silence { .. })),
    }
}

/// The webhook body: the alert line, plus `"reminder"`, `"escalation"`
/// and `"grouped"` when the notice has them.
pub fn webhook_body(item: &Item) -> Cow<'_, str> {
    let Some(n) = item.notice.as_deref() else {
        return Cow::Borrowed(&item.json);
    };
    let mut extra = serde_json::Map::new();
    match &n.step {
        Some(Step::Reminder {
            after_s,
            ack_within_s,
            ..
        }) => {
            extra.insert(
                "reminder".into(),
                serde_json::json!({"after_s": after_s, "ack_within_s": ack_within_s}),
            );
        }
        Some(Step::Escalation {
            from,
            to,
            after_s,
            level,
        }) => {
            extra.insert(
                "escalation".into(),
                serde_json::json!({"from": from, "to": to, "after_s": after_s, "level": level}),
            );
        }
        None => {}
    }
    if !n.grouped.is_empty() {
        extra.insert(
            "grouped".into(),
            serde_json::to_value(&n.grouped).unwrap_or_default(),
        );
    }
    if extra.is_empty() {
        return Cow::Borrowed(&item.json);
    }
    // The line is a JSON object written by `Alert::to_json`: append the
    // keys before its closing brace, keeping its bytes and order.
    let extra = serde_json::Value::Object(extra).to_string();
    let body = item.json.trim_end();
    match body.strip_suffix('}') {
        Some(head) => {
            let sep = if head.trim_end().ends_with('{') {
                ""
            } else {
                ","
            };
            Cow::Owned(format!("{head}{sep}{}", &extra[1..]))
        }
        None => Cow::Borrowed(&item.json),
    }
}

/// The `Idempotency-Key` of a webhook request: `<alert_id>/<state>` for
/// alert lines, `<alert_id>/reminder` and `<alert_id>/escalation-<level>`
/// for steps; the alert id percent-encoded (see `webhook::header_safe`).
pub fn idempotency_key(item: &Item) -> String {
    let id = super::webhook::header_safe(&item.alert.alert_id);
    match item.notice.as_ref().and_then(|n| n.step.as_ref()) {
        Some(Step::Reminder { .. }) => format!("{id}/reminder"),
        Some(Step::Escalation { level, .. }) => format!("{id}/escalation-{level}"),
        None => format!("{id}/{}", item.alert.state.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::alert::Alert;

    fn item(notice: Option<Notice>) -> Item {
        let json = r#"{"alert_id":"crbt:杭州:1:WO1","state":"firing","business":"crbt","region":"杭州","department":"vas","count":8,"threshold":8,"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00","triggered_by":"WO1","event_ts":"2026-03-15T09:01:00+08:00"}"#;
        let alert: Alert = serde_json::from_str(json).unwrap();
        Item {
            seq: 1,
            json: alert.to_json().into(),
            alert: Arc::new(alert),
            received: None,
            notice: notice.map(Arc::new),
        }
    }

    #[test]
    fn routing_of_lines_and_steps() {
        let plain = item(None);
        assert!(is_alert_line(&plain) && alertmanager_wants(&plain));
        assert!(webhook_wants(&plain, "vas") && webhook_wants(&plain, "*"));
        assert!(!webhook_wants(&plain, "net"));
        assert_eq!(webhook_body(&plain), &*plain.json);
        assert_eq!(
            idempotency_key(&plain),
            "crbt%3A%E6%9D%AD%E5%B7%9E%3A1%3AWO1/firing"
        );

        let esc = item(Some(Notice {
            step: Some(Step::Escalation {
                from: "vas".into(),
                to: "duty".into(),
                after_s: 901,
                level: 1,
            }),
            ..Notice::default()
        }));
        assert!(!is_alert_line(&esc) && !alertmanager_wants(&esc));
        assert!(webhook_wants(&esc, "duty") && webhook_wants(&esc, "*"));
        assert!(!webhook_wants(&esc, "vas"));
        let body: serde_json::Value = serde_json::from_str(&webhook_body(&esc)).unwrap();
        assert_eq!(body["alert_id"], "crbt:杭州:1:WO1");
        assert_eq!(
            body["escalation"],
            serde_json::json!({"from": "vas", "to": "duty", "after_s": 901, "level": 1})
        );
        assert!(idempotency_key(&esc).ends_with("/escalation-1"));

        let silenced = item(Some(Notice {
            suppressed: Some(Suppressed::Silence { id: "s1".into() }),
            ..Notice::default()
        }));
        assert!(is_alert_line(&silenced));
        assert!(!alertmanager_wants(&silenced) && !webhook_wants(&silenced, "vas"));
        let folded = item(Some(Notice {
            suppressed: Some(Suppressed::Grouped { into: "p".into() }),
            ..Notice::default()
        }));
        assert!(alertmanager_wants(&folded) && !webhook_wants(&folded, "*"));
    }

    #[test]
    fn grouped_keys_are_appended_to_the_line() {
        let g = item(Some(Notice {
            grouped: vec![Grouped {
                alert_id: "crbt:温州:2:WO2".into(),
                region: "温州".into(),
                state: "firing".into(),
                count: 9,
                threshold: 8,
                notified: false,
            }],
            ..Notice::default()
        }));
        let body = webhook_body(&g);
        assert!(body.starts_with(&g.json[..g.json.len() - 1]), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["grouped"][0]["region"], "温州");
        assert_eq!(v["grouped"][0]["notified"], false);
        let back: Notice =
            serde_json::from_str(&serde_json::to_string(&*g.notice.clone().unwrap()).unwrap())
                .unwrap();
        assert_eq!(&back, &*g.notice.unwrap());
    }
}
