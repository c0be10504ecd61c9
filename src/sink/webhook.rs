//! Per-department webhooks (CONTRACT 7, `--webhook DEPARTMENT=URL`): every
//! alert line of a department is POSTed as its JSON object to each of that
//! department's URLs and retried until a 2xx. The department `*` receives
//! every alert.
//!
//! Each request carries `Idempotency-Key: <alert_id>/<state>`: a receiver
//! can use it to drop the rare duplicate that no sender can rule out over
//! HTTP (a crash after the receiver answered but before the sender recorded
//! the answer).

use super::outbox::Item;
use crate::alert::Alert;

pub struct WebhookTarget {
    department: String,
    url: String,
    client: reqwest::Client,
}

impl WebhookTarget {
    pub fn new(department: &str, url: &str, client: reqwest::Client) -> Self {
        WebhookTarget {
            department: department.to_owned(),
            url: url.to_owned(),
            client,
        }
    }

    pub fn name(&self) -> String {
        format!("webhook:{}:{}", self.department, self.url)
    }

    pub fn wants(&self, alert: &Alert) -> bool {
        self.department == "*" || alert.department == self.department
    }

    pub async fn send(&self, item: &Item) -> Result<(), String> {
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                format!("{}/{}", item.alert.alert_id, item.alert.state.as_str()),
            )
            .header("x-hotspot-alert-id", item.alert.alert_id.as_str())
            .body(item.json.to_string())
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.url))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {}", self.url, resp.status()))
        }
    }
}
