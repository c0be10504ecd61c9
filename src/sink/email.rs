//! E-mail to departments (`--email DEPARTMENT=ADDR[,ADDR]`, `--smtp
//! HOST:PORT`): each alert line of a department becomes one message to all
//! its addresses, sent to an SMTP server with `lettre` — plain SMTP, or
//! STARTTLS with the `tls` feature, optionally with a login.
//!
//! The subject and the plain-text body say what the robot messages say
//! ([`super::notify::Notification::email`]), in Chinese, samples masked. An e-mail
//! sink is one more outbox sink: in order, retried with backoff until the
//! server accepts the message (a 4xx or 5xx answer, or no server, is a
//! failed attempt), never dropped. The `Message-ID` is derived from the
//! idempotency key (`<alert_id>/<state>`), so the rare duplicate after a
//! crash carries the same Message-ID and mail systems fold it; the key
//! itself is in `X-Hotspot-Idempotency-Key`.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};

use super::notify::Notification;
use super::outbox::Item;
use super::robot::Secret;
use crate::mask::mask;

/// Where and how mail is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// The sender, e.g. `hotspot <hotspot@example.com>`.
    pub from: Mailbox,
    /// Upgrade the connection with STARTTLS (and require it).
    pub starttls: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// One department's e-mail sink.
pub struct EmailTarget {
    department: String,
    to: Vec<Mailbox>,
    from: Mailbox,
    public_url: Option<String>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
}

impl EmailTarget {
    /// A sink for `department`'s addresses; `timeout` bounds each SMTP
    /// command.
    pub fn new(
        department: &str,
        to: &[Mailbox],
        smtp: &SmtpSettings,
        public_url: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<EmailTarget> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
            .port(smtp.port)
            .timeout(Some(timeout))
            .hello_name(ClientId::Domain("hotspot".into()));
        if smtp.starttls {
            b = starttls(b, &smtp.host)?;
        }
        if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
            b = b.credentials(Credentials::new(u.clone(), p.0.clone()));
        }
        Ok(EmailTarget {
            department: department.to_owned(),
            to: to.to_vec(),
            from: smtp.from.clone(),
            public_url: public_url.map(str::to_owned),
            transport: b.build(),
            server: format!("{}:{}", smtp.host, smtp.port),
        })
    }

    pub fn name(&self) -> String {
        email_name(&self.department)
    }

    pub fn department(&self) -> &str {
        &self.department
    }

    /// What a webhook of its department would send (see
    /// `sink::notice::webhook_wants`).
    pub fn wants(&self, item: &Item) -> bool {
        super::notice::webhook_wants(item, &self.department)
    }

    /// The message for one alert line.
    pub fn message(&self, item: &Item) -> anyhow::Result<Message> {
        let notice = Notification::new(item, self.public_url.as_deref());
        let key = notice.idempotency_key();
        let (subject, body) = notice.email();
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(message_id(&key, self.from.email.domain())))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Hotspot-Idempotency-Key"),
                key,
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Hotspot-Alert-Id"),
                super::webhook::header_safe(&item.alert.alert_id),
            ))
            .header(ContentType::TEXT_PLAIN);
        let to: Mailboxes = self.to.iter().cloned().collect();
        for m in to {
            b = b.to(m);
        }
        Ok(b.body(body)?)
    }

    pub async fn send(&self, item: &Item) -> Result<(), String> {
        let msg = self
            .message(item)
            .map_err(|e| format!("cannot write the e-mail: {e}"))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("smtp {}: {}", self.server, mask(&e.to_string())))
    }
}

/// An e-mail sink's name in metrics, logs and cursor files.
pub fn email_name(department: &str) -> String {
    format!("email:{department}")
}

/// `<HEX@DOMAIN>`: the first 128 bits of SHA-256 of the idempotency key,
/// the same for every attempt and every process.
pub fn message_id(key: &str, domain: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    let mut hex = String::with_capacity(32);
    for b in &h[..16] {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    format!("<{hex}.hotspot@{domain}>")
}

#[cfg(feature = "tls")]
fn starttls(
    b: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    host: &str,
) -> anyhow::Result<lettre::transport::smtp::AsyncSmtpTransportBuilder> {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let p = TlsParameters::new(host.into())?;
    Ok(b.tls(Tls::Required(p)))
}

#[cfg(not(feature = "tls"))]
fn starttls(
    _: lettre::transport::smtp::AsyncSmtpTransportBuilder,
    _: &str,
) -> anyhow::Result<lettre::transport::smtp::AsyncSmtpTransportBuilder> {
    anyhow::bail!("smtp starttls needs a build with TLS: cargo build --release --features tls")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_follow_the_key() {
        let a = message_id("crbt%3A1/firing", "example.com");
        assert_eq!(a, message_id("crbt%3A1/firing", "example.com"));
        assert_ne!(a, message_id("crbt%3A1/resolved", "example.com"));
        assert!(
            a.starts_with('<') && a.ends_with(".hotspot@example.com>"),
            "{a}"
        );
        assert_eq!(a.len(), "<.hotspot@example.com>".len() + 32);
    }

    #[test]
    fn the_message_has_the_alert_in_chinese_and_its_ids() {
        use crate::alert::Alert;
        let alert: Alert = serde_json::from_str(r#"{"alert_id":"crbt:温州:1:WO1","state":"firing","business":"crbt","business_name":"彩铃","region":"温州","department":"vas","department_name":"数据业务部","count":23,"threshold":23,"window_start":"2026-03-14T10:15:00+08:00","window_end":"2026-03-14T10:45:00+08:00","triggered_by":"WO1","event_ts":"2026-03-14T10:44:15+08:00","templates":{"crbt.copy_fail":22},"samples":[{"id":"WO1","text":"彩铃复制失败 13912345678"}]}"#).unwrap();
        let item = Item {
            seq: 1,
            json: alert.to_json().into(),
            alert: std::sync::Arc::new(alert),
            received: None,
            notice: None,
        };
        let smtp = SmtpSettings {
            host: "127.0.0.1".into(),
            port: 2525,
            from: "hotspot <hotspot@example.com>".parse().unwrap(),
            starttls: false,
            username: None,
            password: None,
        };
        let t = EmailTarget::new(
            "vas",
            &[
                "a@example.com".parse().unwrap(),
                "b@example.com".parse().unwrap(),
            ],
            &smtp,
            Some("http://h:1"),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(t.name(), "email:vas");
        let m = t.message(&item).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        let key = "crbt%3A%E6%B8%A9%E5%B7%9E%3A1%3AWO1/firing";
        assert!(
            raw.contains(&format!("Message-ID: {}", message_id(key, "example.com"))),
            "{raw}"
        );
        assert!(
            raw.contains(&format!("X-Hotspot-Idempotency-Key: {key}")),
            "{raw}"
        );
        assert!(raw.contains("To: a@example.com, b@example.com"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert_eq!(m.envelope().to().len(), 2);
    }
}
