//! Per-department webhooks (CONTRACT 7 and 9, `--webhook
//! DEPARTMENT=[FORMAT+]URL`): every alert line of a department is POSTed to
//! each of that department's URLs and retried until the receiver takes it.
//! The department `*` receives every alert.
//!
//! The body is the alert object itself (format `json`, the default), or a
//! group robot's message ([`super::notify`]: `wecom`, `dingtalk`,
//! `feishu`), signed when the webhook has a secret ([`super::robot`]). A
//! `json` receiver takes a line with any 2xx; a robot only when its answer
//! body also says so (`errcode` / `code` 0): a refusal is a failed attempt,
//! logged, counted in `hotspot_sink_refusals_total` and retried.
//!
//! Dispatch steps (CONTRACT 9) go the same way: a reminder to the alert's
//! department, an escalation to the `escalate_to` department — as the alert
//! object plus `"reminder"` or `"escalation"` (`json`), or a robot message
//! headed `【提醒】` / `【升级】` — and a province alert lists the city alerts
//! folded into it (see `sink::notice`, which also drops silenced and folded
//! lines).
//!
//! Each request carries `Idempotency-Key: <alert_id>/<state>` (steps:
//! `<alert_id>/reminder`, `<alert_id>/escalation-<level>`; see
//! [`super::notice::idempotency_key`]): a receiver
//! can use it to drop the rare duplicate that no sender can rule out over
//! HTTP (a crash after the receiver answered but before the sender recorded
//! the answer), and `X-Hotspot-Alert-Id: <alert_id>`.
//!
//! Alert ids hold region names (`crbt:温州:1773456255334:WO…`), and header
//! values are read as bytes or Latin-1 by most receivers, so in both headers
//! the alert id is percent-encoded ([`header_safe`]): every byte of its
//! UTF-8 form outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) is
//! written `%XX`, e.g. `crbt%3A%E6%B8%A9%E5%B7%9E%3A1773456255334%3AWO…`.
//! Any URL-decoding function gives back the id as the body has it; the
//! state after the last `/` of the key is plain ASCII (`firing`,
//! `resolved`).
//!
//! A robot's URL holds its credential (WeCom `key=`, DingTalk
//! `access_token=`, Feishu's hook path), so a robot webhook is named in
//! metrics, logs and cursor files by department, format, host and a hash of
//! the URL, never by the URL.

use prometheus::IntCounter;

use super::notify::{Format, Notification};
use super::outbox::Item;
use super::robot::{Secret, check_answer, dingtalk_sign, feishu_sign};

pub struct WebhookTarget {
    department: String,
    url: String,
    format: Format,
    secret: Option<Secret>,
    /// Where the status page is, for the link in robot messages.
    public_url: Option<String>,
    client: reqwest::Client,
    /// Counts robot refusals (`hotspot_sink_refusals_total{sink}`).
    refusals: Option<IntCounter>,
}

/// The most of an answer body that is read (a robot's answer is tiny).
const MAX_ANSWER: usize = 64 << 10;

impl WebhookTarget {
    pub fn new(department: &str, url: &str, client: reqwest::Client) -> Self {
        WebhookTarget {
            department: department.to_owned(),
            url: url.to_owned(),
            format: Format::Json,
            secret: None,
            public_url: None,
            client,
            refusals: None,
        }
    }

    /// Posts `format`'s message, signed with `secret` (DingTalk, Feishu).
    pub fn with_format(mut self, format: Format, secret: Option<Secret>) -> Self {
        self.format = format;
        self.secret = secret;
        self
    }

    /// Robot messages link to the alert on the status page at `public_url`.
    pub fn with_link(mut self, public_url: Option<&str>) -> Self {
        self.public_url = public_url.map(str::to_owned);
        self
    }

    /// Counts the robot's refusals here.
    pub fn with_refusals(mut self, counter: IntCounter) -> Self {
        self.refusals = Some(counter);
        self
    }

    pub fn name(&self) -> String {
        webhook_name(&self.department, self.format, &self.url)
    }

    pub fn department(&self) -> &str {
        &self.department
    }

    /// Its department's alert lines that are not suppressed, and the
    /// steps addressed to it (see `sink::notice::webhook_wants`).
    pub fn wants(&self, item: &Item) -> bool {
        super::notice::webhook_wants(item, &self.department)
    }

    /// The URL as logs may show it: a robot's without its credential.
    fn shown_url(&self) -> String {
        if self.format.is_robot() {
            self.name()
        } else {
            self.url.clone()
        }
    }

    pub async fn send(&self, item: &Item) -> Result<(), String> {
        let notice = Notification::new(item, self.public_url.as_deref());
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", notice.idempotency_key())
            .header("x-hotspot-alert-id", header_safe(&item.alert.alert_id));
        req = match self.format {
            Format::Json => req.body(super::notice::webhook_body(item).into_owned()),
            Format::Dingtalk => {
                if let Some(s) = &self.secret {
                    let ts = crate::time::now_ms();
                    req = req.query(&[
                        ("timestamp", ts.to_string()),
                        ("sign", dingtalk_sign(&s.0, ts)),
                    ]);
                }
                req.body(notice.dingtalk().to_string())
            }
            Format::Feishu => {
                let mut body = notice.feishu();
                if let Some(s) = &self.secret {
                    let ts = crate::time::now_ms() / 1000;
                    body["timestamp"] = ts.to_string().into();
                    body["sign"] = feishu_sign(&s.0, ts).into();
                }
                req.body(body.to_string())
            }
            Format::Wecom => req.body(notice.wecom().to_string()),
        };
        let shown = self.shown_url();
        let mut resp = req.send().await.map_err(|e| {
            if self.format.is_robot() {
                format!("{shown}: {}", e.without_url())
            } else {
                format!("{shown}: {e}")
            }
        })?;
        if !resp.status().is_success() {
            return Err(format!("{shown} answered {}", resp.status()));
        }
        if !self.format.is_robot() {
            return Ok(());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("{shown}: reading the answer: {}", e.without_url()))?
        {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
            if body.len() >= MAX_ANSWER {
                break;
            }
        }
        check_answer(self.format, &body).map_err(|r| {
            if let Some(c) = &self.refusals {
                c.inc();
            }
            format!("{shown}: {r}")
        })
    }
}

/// A webhook sink's name: `webhook:DEPARTMENT:URL` for `json` (as before
/// formats existed, so cursors in a state directory stay valid), and
/// `webhook:DEPARTMENT:FORMAT:HOST:HASH` for a robot, whose URL holds its
/// credential.
pub fn webhook_name(department: &str, format: Format, url: &str) -> String {
    if !format.is_robot() {
        return format!("webhook:{department}:{url}");
    }
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_default();
    let hash = xxhash_rust::xxh3::xxh3_64(url.as_bytes()) as u32;
    format!("webhook:{department}:{}:{host}:{hash:08x}", format.as_str())
}

/// `s` with every byte of its UTF-8 form outside RFC 3986's unreserved set
/// (`A-Z a-z 0-9 - . _ ~`) written as `%XX` (upper-case hex): plain ASCII
/// that any header parser keeps intact and any URL decoder reverses.
pub(crate) fn header_safe(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::header_safe;

    #[test]
    fn alert_ids_become_ascii_that_decodes_back() {
        let id = "crbt:温州:1773456255334:WO2026031400001692";
        let safe = header_safe(id);
        assert_eq!(
            safe,
            "crbt%3A%E6%B8%A9%E5%B7%9E%3A1773456255334%3AWO2026031400001692"
        );
        assert!(safe.bytes().all(|b| b.is_ascii_graphic()));
        assert!(axum::http::HeaderValue::from_str(&safe).is_ok());
        let mut back = Vec::new();
        let mut it = safe.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let h: String = [it.next().unwrap(), it.next().unwrap()]
                    .iter()
                    .map(|&c| c as char)
                    .collect();
                back.push(u8::from_str_radix(&h, 16).unwrap());
            } else {
                back.push(b);
            }
        }
        assert_eq!(String::from_utf8(back).unwrap(), id);
        assert_eq!(header_safe("A-z.0_9~"), "A-z.0_9~");
        assert_eq!(header_safe("a/b c%"), "a%2Fb%20c%25");
    }
}
