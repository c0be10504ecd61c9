//! Alertmanager (CONTRACT 7, `--alertmanager URL`): every alert line becomes
//! an alert POSTed to `/api/v2/alerts`, so that Alertmanager routes it to the
//! responsible department by the `department` label.
//!
//! Labels are `alertname="BatchComplaint"`, `business`, `region`,
//! `department` and `severity="warning"`; annotations carry a Chinese
//! summary (`杭州 彩铃 批量投诉：30分钟内 12 位客户 (阈值 8)`), the counts,
//! the window, the `alert_id` and the masked samples. `startsAt` is the
//! triggering record's event time; a resolved line sets `endsAt`. While an
//! alert is open the service re-sends it every `resend` interval (see
//! `service`), because Alertmanager resolves an alert on its own when it
//! has not heard of it for its `resolve_timeout`.

use serde_json::{Value, json};

use super::outbox::Item;
use crate::alert::{Alert, AlertState};
use crate::time::format_cst;

pub struct AlertmanagerTarget {
    url: String,
    client: reqwest::Client,
    generator_url: String,
    /// Alerts this sink has told Alertmanager are firing (and not yet
    /// resolved), by alert id: what the periodic re-send repeats. It is kept
    /// by the sink's own delivery task, in delivery order, so a re-send can
    /// never overtake a resolution and re-open an alert.
    open: std::collections::BTreeMap<String, Alert>,
    resend: Option<std::time::Duration>,
    last_resend: std::time::Instant,
}

/// The Alertmanager API v2 object for an alert line.
pub fn am_alert(a: &Alert, generator_url: &str) -> Value {
    let samples: Vec<String> = a
        .samples
        .iter()
        .map(|s| format!("{}: {}", s.id, s.text))
        .collect();
    let templates: Vec<String> = a
        .templates
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    let mut v = json!({
        "labels": {
            "alertname": "BatchComplaint",
            "business": a.business,
            "region": a.region,
            "department": a.department,
            "severity": "warning",
        },
        "annotations": {
            "summary": a.summary(),
            "alert_id": a.alert_id,
            "business_name": a.business_name,
            "department_name": a.department_name,
            "count": a.count.to_string(),
            "threshold": a.threshold.to_string(),
            "window": format!("{} – {}", format_cst(a.window_start), format_cst(a.window_end)),
            "triggered_by": a.triggered_by.clone().unwrap_or_default(),
            "templates": templates.join(", "),
            "samples": samples.join("\n"),
        },
        "startsAt": format_cst(a.event_ts),
        "generatorURL": generator_url,
    });
    if a.state == AlertState::Resolved {
        v["endsAt"] = Value::String(format_cst(a.event_ts));
        // A resolved line has no samples; the firing summary stays useful.
        v["annotations"]["resolved_by"] = Value::String(a.resolved_by.clone().unwrap_or_default());
    }
    v
}

impl AlertmanagerTarget {
    pub fn new(url: &str, client: reqwest::Client, generator_url: &str) -> Self {
        AlertmanagerTarget {
            url: url.trim_end_matches('/').to_owned(),
            client,
            generator_url: generator_url.to_owned(),
            open: Default::default(),
            resend: None,
            last_resend: std::time::Instant::now(),
        }
    }

    pub fn name(&self) -> String {
        format!("alertmanager:{}", self.url)
    }

    /// Re-send open alerts every `every`, starting from the alerts open now.
    pub fn set_resend(&mut self, every: std::time::Duration, open: &[Alert]) {
        self.resend = (!every.is_zero()).then_some(every);
        self.open = open
            .iter()
            .map(|a| (a.alert_id.clone(), a.clone()))
            .collect();
    }

    /// Records a delivered line (firing opens, resolved closes).
    pub fn delivered(&mut self, a: &Alert) {
        if a.state == AlertState::Firing {
            self.open.insert(a.alert_id.clone(), a.clone());
        } else {
            self.open.remove(&a.alert_id);
        }
    }

    /// How long until the next re-send is due, if re-sending is on.
    pub fn resend_in(&self) -> Option<std::time::Duration> {
        self.resend
            .map(|r| r.saturating_sub(self.last_resend.elapsed()))
    }

    /// Re-sends every open alert (failures are only logged: the next
    /// re-send repeats them).
    pub async fn resend_now(&mut self) {
        self.last_resend = std::time::Instant::now();
        if self.open.is_empty() {
            return;
        }
        let alerts: Vec<Value> = self
            .open
            .values()
            .map(|a| am_alert(a, &self.generator_url))
            .collect();
        if let Err(e) = self.post(&alerts).await {
            tracing::debug!(error = %e, "re-sending open alerts to Alertmanager failed");
        }
    }

    pub async fn send(&self, item: &Item) -> Result<(), String> {
        // The resolved line does not carry the firing time: keep startsAt at
        // the firing's event time, which the alert id holds.
        let mut v = am_alert(&item.alert, &self.generator_url);
        if item.alert.state == AlertState::Resolved {
            if let Some(ms) = item
                .alert
                .alert_id
                .rsplit(':')
                .nth(1)
                .and_then(|s| s.parse::<i64>().ok())
            {
                v["startsAt"] = Value::String(format_cst(ms));
            }
        }
        self.post(&[v]).await
    }

    /// POSTs alerts to `/api/v2/alerts`.
    pub async fn post(&self, alerts: &[Value]) -> Result<(), String> {
        let url = format!("{}/api/v2/alerts", self.url);
        let resp = self
            .client
            .post(&url)
            .json_body(alerts)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url} answered {}", resp.status()))
        }
    }
}

/// `RequestBuilder::json` needs reqwest's `json` feature; this is the same
/// in three lines without it.
trait JsonBody {
    fn json_body<T: serde::Serialize + ?Sized>(self, body: &T) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        self.header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default())
    }
}
