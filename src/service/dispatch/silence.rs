//! Silences (CONTRACT 9): "no notifications for these alerts until then",
//! for planned work. A silence has matchers on an alert's business,
//! region, department and scope (each optional, at least one given; all
//! given must equal the alert's), an end (`until`), who set it and why.
//! It stops notifications, never detection: the alerts file and
//! `/v1/alerts` are unchanged.

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Scope};
use crate::time::format_cst;

/// Active silences at most (more are refused: bounded memory whatever a
/// client sends).
pub(crate) const MAX_ACTIVE: usize = 1000;
/// Expired silences kept for `GET /v1/silences` and the status page.
pub(crate) const KEEP_EXPIRED: usize = 100;
/// Characters of a matcher value at most.
pub(crate) const MAX_MATCHER_CHARS: usize = 128;

/// What a silence matches: every given field must equal the alert's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matchers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<String>,
    /// The alert's `region`: a city, or a province's name for a province
    /// alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// `region` or `province` (an alert of rules without section 8 keys is
    /// a `region` alert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl Matchers {
    /// Checks a client's matchers: at least one, none empty or too long,
    /// `scope` one of the two.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("business", &self.business),
            ("region", &self.region),
            ("department", &self.department),
            ("scope", &self.scope),
        ];
        if fields.iter().all(|(_, v)| v.is_none()) {
            return Err(
                "matchers: give at least one of business, region, department, scope".into(),
            );
        }
        for (name, v) in fields {
            if let Some(v) = v {
                if v.trim().is_empty() {
                    return Err(format!("matchers.{name} is empty"));
                }
                if v.chars().count() > MAX_MATCHER_CHARS {
                    return Err(format!(
                        "matchers.{name} is longer than {MAX_MATCHER_CHARS} characters"
                    ));
                }
            }
        }
        if let Some(s) = &self.scope {
            if s != "region" && s != "province" {
                return Err(format!(
                    "matchers.scope must be \"region\" or \"province\" (got {s:?})"
                ));
            }
        }
        Ok(())
    }

    pub fn matches(&self, a: &Alert) -> bool {
        let scope = a.scope.unwrap_or(Scope::Region).as_str();
        self.business.as_deref().is_none_or(|b| b == a.business)
            && self.region.as_deref().is_none_or(|r| r == a.region)
            && self.department.as_deref().is_none_or(|d| d == a.department)
            && self.scope.as_deref().is_none_or(|s| s == scope)
    }
}

/// One silence, active until `until` or until it is expired early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Silence {
    pub id: String,
    pub matchers: Matchers,
    /// Epoch ms.
    pub until: i64,
    pub by: String,
    pub why: String,
    pub created: i64,
    /// When it stopped (its `until`, or an early `DELETE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_by: Option<String>,
}

impl Silence {
    pub fn active(&self) -> bool {
        self.expired.is_none()
    }

    /// Whether it silences `a` now.
    pub fn silences(&self, a: &Alert) -> bool {
        self.active() && self.matchers.matches(a)
    }

    /// As `GET /v1/silences` shows it.
    pub fn view(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "state": if self.active() { "active" } else { "expired" },
            "matchers": self.matchers,
            "until": format_cst(self.until),
            "by": self.by,
            "why": self.why,
            "created": format_cst(self.created),
        });
        if let Some(e) = self.expired {
            v["expired"] = format_cst(e).into();
        }
        if let Some(b) = &self.expired_by {
            v["expired_by"] = b.clone().into();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(business: &str, region: &str, scope: Option<Scope>) -> Alert {
        let mut a: Alert = serde_json::from_str(r#"{"alert_id":"x","state":"firing","business":"crbt","region":"杭州","department":"vas","count":8,"threshold":8,"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00","triggered_by":"WO1","event_ts":"2026-03-15T09:01:00+08:00"}"#).unwrap();
        a.business = business.into();
        a.region = region.into();
        a.scope = scope;
        a
    }

    #[test]
    fn matchers_match_every_given_field() {
        let m = Matchers {
            business: Some("crbt".into()),
            region: Some("杭州".into()),
            ..Matchers::default()
        };
        assert!(m.check().is_ok());
        assert!(m.matches(&alert("crbt", "杭州", None)));
        assert!(!m.matches(&alert("crbt", "温州", None)));
        assert!(!m.matches(&alert("gprs", "杭州", None)));
        let p = Matchers {
            scope: Some("province".into()),
            ..Matchers::default()
        };
        assert!(p.matches(&alert("crbt", "浙江", Some(Scope::Province))));
        assert!(!p.matches(&alert("crbt", "杭州", None)));
        assert!(Matchers::default().check().is_err());
        let bad = Matchers {
            scope: Some("city".into()),
            ..Matchers::default()
        };
        assert!(bad.check().unwrap_err().contains("scope"));
        let empty = Matchers {
            region: Some(" ".into()),
            ..Matchers::default()
        };
        assert!(empty.check().unwrap_err().contains("region is empty"));
        let unknown = serde_json::from_str::<Matchers>(r#"{"city":"杭州"}"#);
        assert!(unknown.is_err());
    }
}
