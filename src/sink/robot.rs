//! The group robots' protocols beyond the message: signatures and answers.
//!
//! * **DingTalk** (钉钉 custom robot, security setting 加签): the request URL
//!   gets `timestamp` (milliseconds) and `sign` = urlencode(base64(
//!   HMAC-SHA256(key = secret, message = timestamp + "\n" + secret))) as
//!   query parameters.
//! * **Feishu** (飞书 custom bot, 签名校验): the body gets `timestamp`
//!   (seconds, a string) and `sign` = base64(HMAC-SHA256(key = timestamp +
//!   "\n" + secret, message = empty)).
//! * WeCom (企业微信) group robots have no signature: the `key` in the URL
//!   is the credential.
//!
//! Both signatures hold for an hour, so every attempt is signed anew.
//!
//! A robot answers HTTP 200 also when it refuses a message, with the
//! reason in the body: WeCom and DingTalk `{"errcode": 0, "errmsg": "ok"}`,
//! anything but 0 a refusal (DingTalk 310000: bad signature or keyword;
//! WeCom 93000: bad key; 45009: rate limit); Feishu `{"code": 0, ...}`
//! (older answers `{"StatusCode": 0}`), e.g. 19021 for a bad signature.
//! A refusal, or an answer without that field, is a failed attempt: retried
//! like a receiver that is down.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::notify::Format;

type HmacSha256 = Hmac<Sha256>;

/// A webhook secret: never printed (`Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// DingTalk's `sign` for `timestamp_ms`, before URL encoding.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Feishu's `sign` for `timestamp_s`.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    let mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    BASE64.encode(mac.finalize().into_bytes())
}

/// What a robot's answer body says: `Ok` when it took the message, else
/// the refusal (code and message) to log.
pub fn check_answer(format: Format, body: &[u8]) -> Result<(), Refusal> {
    let v: Value = serde_json::from_slice(body).map_err(|_| Refusal {
        code: None,
        message: format!(
            "not the robot's JSON answer: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    })?;
    let (code_field, msg_field) = match format {
        Format::Feishu => ("code", "msg"),
        _ => ("errcode", "errmsg"),
    };
    let code = v
        .get(code_field)
        .or_else(|| match format {
            Format::Feishu => v.get("StatusCode"),
            _ => None,
        })
        .and_then(Value::as_i64);
    let message = v
        .get(msg_field)
        .or_else(|| v.get("StatusMessage"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    match code {
        Some(0) => Ok(()),
        Some(c) => Err(Refusal {
            code: Some(c),
            message,
        }),
        None => Err(Refusal {
            code: None,
            message: format!("answer without {code_field:?}"),
        }),
    }
}

/// A robot's refusal of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Option<i64>,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(c) => write!(f, "the robot refused the message: {c} {}", self.message),
            None => write!(f, "the robot's answer is unusable: {}", self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_documented_algorithms() {
        // DingTalk: HMAC-SHA256(key=secret, msg="1700000000000\nSECabc"),
        // Feishu: HMAC-SHA256(key="1700000000\nsecret", msg=""); the
        // values as Python's hmac/base64 compute them (the docs' sample
        // code).
        assert_eq!(
            dingtalk_sign("SECabc", 1_700_000_000_000),
            "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM="
        );
        assert_eq!(
            feishu_sign("secret", 1_700_000_000),
            "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA="
        );
    }

    #[test]
    fn answers_with_an_error_code_are_refusals() {
        assert_eq!(
            check_answer(Format::Wecom, br#"{"errcode":0,"errmsg":"ok"}"#),
            Ok(())
        );
        let r = check_answer(
            Format::Dingtalk,
            br#"{"errcode":310000,"errmsg":"sign not match"}"#,
        )
        .unwrap_err();
        assert_eq!(r.code, Some(310000));
        assert_eq!(
            r.to_string(),
            "the robot refused the message: 310000 sign not match"
        );
        assert_eq!(
            check_answer(Format::Feishu, br#"{"code":0,"msg":"success","data":{}}"#),
            Ok(())
        );
        assert_eq!(
            check_answer(
                Format::Feishu,
                br#"{"StatusCode":0,"StatusMessage":"success"}"#
            ),
            Ok(())
        );
        let r = check_answer(
            Format::Feishu,
            br#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#,
        )
        .unwrap_err();
        assert_eq!(r.code, Some(19021));
        assert!(check_answer(Format::Wecom, b"{}").is_err());
        assert!(check_answer(Format::Wecom, b"<html>").is_err());
        assert!(check_answer(Format::Feishu, br#"{"errcode":0}"#).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret("SECabc".into())), "Secret(***)");
    }
}
