//! Alertmanager (CONTRACT 7, `--alertmanager URL`): every alert line becomes
//! an alert POSTed to `/api/v2/alerts`, so that Alertmanager routes it to the
//! responsible department by the `department` label.
//!
//! Labels are `alertname="BatchComplaint"`, `business`, `region`,
//! `department` and `severity="warning"`; annotations carry a Chinese
//! summary (`杭州 彩铃 批量投诉：30分钟内 12 位客户 (阈值 8)`), the counts,
//! the window, the `alert_id` and the masked samples. With section 8 rules
//! the labels also carry `scope` (`region` or `province`: a province and a
//! city of one name are different alerts) and `kind` (`threshold`, `surge`,
//! `new_topic`), and a surge's firing line has a `baseline` annotation (and
//! `p_value`); a new topic (empty `business`) has a `topic` label, its
//! phrase, and a `terms` annotation; a surge of the place test has a
//! `place` annotation (the neighbourhood); alerts of plain rules have
//! exactly the labels above. `startsAt` is the
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
    if let Some(scope) = a.scope {
        v["labels"]["scope"] = Value::String(scope.as_str().to_owned());
    }
    if let Some(kind) = a.kind {
        v["labels"]["kind"] = Value::String(kind.as_str().to_owned());
    }
    if a.is_new_topic() {
        // No business: the phrase tells two new topics of one place apart.
        v["labels"]["topic"] = Value::String(a.terms.first().cloned().unwrap_or_default());
        v["annotations"]["terms"] = Value::String(a.terms.join("、"));
    } else if let Some(spot) = a.terms.first() {
        // A surge of the place test: the neighbourhood, for people (the
        // key stays (business, region): no label).
        v["annotations"]["place"] = Value::String(spot.clone());
    }
    if let Some(b) = a.baseline {
        v["annotations"]["baseline"] = Value::String(b.to_string());
    }
    if let Some(p) = a.p_value {
        v["annotations"]["p_value"] = Value::String(format!("{p:e}"));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Kind, Scope};

    fn alert(line: &str) -> Alert {
        serde_json::from_str(line).unwrap()
    }

    const PLAIN: &str = r#"{"alert_id":"crbt:杭州:1773538061000:WO1","state":"firing","business":"crbt","business_name":"彩铃","region":"杭州","department":"vas","department_name":"数据业务部","count":8,"threshold":8,"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00","triggered_by":"WO1","event_ts":"2026-03-15T09:27:41+08:00","templates":{"crbt.copy_fail":8},"samples":[]}"#;

    #[test]
    fn a_place_surge_names_its_neighbourhood_in_an_annotation() {
        let a = alert(
            r#"{"alert_id":"crbt:杭州:1:P3","state":"firing","business":"crbt","business_name":"彩铃","region":"杭州","scope":"region","kind":"surge","department":"vas","department_name":"增值业务部","count":8,"threshold":8,"baseline":4.3,"terms":["西湖区文三路"],"window_start":"2026-03-14T09:37:00+08:00","window_end":"2026-03-14T10:07:00+08:00","triggered_by":"P3","event_ts":"2026-03-14T10:06:45+08:00","templates":{},"samples":[]}"#,
        );
        let v = am_alert(&a, "");
        assert_eq!(v["annotations"]["place"], "西湖区文三路");
        assert!(v["labels"].get("topic").is_none(), "{v}");
    }

    #[test]
    fn plain_rules_keep_their_labels() {
        let v = am_alert(&alert(PLAIN), "http://h/");
        let mut labels: Vec<&str> = v["labels"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        labels.sort_unstable();
        assert_eq!(
            labels,
            ["alertname", "business", "department", "region", "severity"]
        );
        assert!(v["annotations"].get("baseline").is_none());
        assert_eq!(
            v["annotations"]["summary"],
            "杭州 彩铃 批量投诉：30分钟内 8 位客户 (阈值 8)"
        );
    }

    #[test]
    fn section_8_alerts_carry_scope_kind_and_the_baseline() {
        let mut a = alert(PLAIN);
        a.scope = Some(Scope::Province);
        a.kind = Some(Kind::Surge);
        a.region = "浙江".into();
        a.alert_id = "crbt:province:浙江:1773538061000:WO1".into();
        a.baseline = Some(2.35);
        a.p_value = Some(1.2e-9);
        a.count = 30;
        a.threshold = 30;
        let v = am_alert(&a, "http://h/");
        assert_eq!(v["labels"]["scope"], "province");
        assert_eq!(v["labels"]["kind"], "surge");
        assert_eq!(v["labels"]["region"], "浙江");
        assert_eq!(v["labels"]["alertname"], "BatchComplaint");
        assert_eq!(v["annotations"]["baseline"], "2.35");
        assert_eq!(v["annotations"]["p_value"], "1.2e-9");
        assert_eq!(
            v["annotations"]["summary"],
            "浙江全省 彩铃 投诉突增：30分钟内 30 位客户 (基线 2.35, 突增线 30)"
        );
        // A city of the same name is a different Alertmanager alert.
        let mut city = a.clone();
        city.scope = Some(Scope::Region);
        city.kind = Some(Kind::Threshold);
        city.baseline = None;
        city.p_value = None;
        let c = am_alert(&city, "http://h/");
        assert_ne!(c["labels"], v["labels"]);
        assert_eq!(c["labels"]["kind"], "threshold");
        assert!(c["annotations"].get("baseline").is_none());
    }
}
