//! Per-department webhooks (CONTRACT 7, `--webhook DEPARTMENT=URL`): every
//! alert line of a department is POSTed as its JSON object to each of that
//! department's URLs and retried until a 2xx. The department `*` receives
//! every alert.
//!
//! Dispatch steps (CONTRACT 9) go the same way: a reminder to the alert's
//! department, an escalation to the `escalate_to` department, each as the
//! alert object plus `"reminder"` or `"escalation"` (see `sink::notice`,
//! which also drops silenced and folded lines).
//!
//! Each request carries `Idempotency-Key: <alert_id>/<state>` (steps:
//! `<alert_id>/reminder`, `<alert_id>/escalation-<level>`): a receiver
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

use super::outbox::Item;

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

    pub fn department(&self) -> &str {
        &self.department
    }

    pub fn wants(&self, item: &Item) -> bool {
        super::notice::webhook_wants(item, &self.department)
    }

    pub async fn send(&self, item: &Item) -> Result<(), String> {
        let id = header_safe(&item.alert.alert_id);
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", super::notice::idempotency_key(item))
            .header("x-hotspot-alert-id", id)
            .body(super::notice::webhook_body(item).into_owned())
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
