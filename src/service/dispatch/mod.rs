//! The dispatch book of `hotspot run` (CONTRACT 9): what happens to an
//! alert once it is told — acknowledged, assigned, closed by people;
//! reminded and escalated when nobody does within its department's
//! `ack_within`; silenced during planned work; folded into its province's
//! alert — and which notifications that takes.
//!
//! It lives on the engine thread, next to the engines, and changes only
//! through two doors, both in the order the engine sees them:
//!
//! * [`Dispatch::on_line`]: every alert line the engine produces. A firing
//!   line is decided once — notified, silenced (a matching silence is
//!   active) or folded (a region alert whose province's alert of the same
//!   business is open) — and its resolved line follows that decision, so
//!   that no receiver is left with a firing it will never see resolved.
//! * [`Dispatch::apply`]: an [`Event`] — a person's ack/assign/close, a
//!   silence set or expired, the first delivery of a firing line (which
//!   starts its deadline), or a timer tick (which expires silences and
//!   sends the reminders and escalations that are due). Events are
//!   journaled with their wall-clock time before they are applied, like
//!   the input, and the book's state is part of every checkpoint; so after
//!   a `kill -9` the journal re-run makes the very same decisions, and the
//!   outbox (which numbers lines by position) delivers each notification
//!   exactly once.
//!
//! Notifications are outbox lines with a [`Notice`]: a reminder goes to
//! the alert's department at half its `ack_within`; at `ack_within` the
//! alert is escalated to `escalate_to` (and on along the chain, each
//! department's `ack_within` after the last step). Only firing alerts that
//! were notified and that nobody has acknowledged, assigned or closed are
//! reminded or escalated. Steps that fall due during a matching silence
//! wait until it ends. The wall clock is read where events arise (the HTTP
//! handlers, the sinks, the timer: [`timer`]); the book itself never reads
//! it, which is what makes it replayable.

pub(crate) mod http;
pub mod silence;
pub(crate) mod timer;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertState, Scope};
use crate::rules::Rules;
use crate::sink::notice::{Grouped, Notice, Step, Suppressed};
use crate::time::format_cst;
use silence::{Matchers, Silence};

/// Resolved alerts kept for the status page (and late acks) at most, and
/// for how long in event time after the newest resolution.
pub(crate) const KEEP_RESOLVED: usize = 500;
pub(crate) const RESOLVED_HORIZON_MS: i64 = 24 * 3600 * 1000;
/// Region alerts a province alert lists at most.
const MAX_GROUPED: usize = 200;

/// Something a person did to an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Action {
    pub by: String,
    pub note: String,
    /// Epoch ms.
    pub at: i64,
}

impl Action {
    fn view(&self) -> serde_json::Value {
        serde_json::json!({"by": self.by, "note": self.note, "at": format_cst(self.at)})
    }
}

/// An assignment: `by` gave the alert to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Assignment {
    pub by: String,
    pub to: String,
    pub note: String,
    pub at: i64,
}

/// An escalation that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Escalated {
    pub from: String,
    pub to: String,
    pub at: i64,
    pub level: u32,
}

/// An alert the book follows, from its firing line to its resolution.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tracked {
    pub firing: Alert,
    /// A region alert: the province its region belongs to (grouping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
    /// When its firing line was first delivered (the deadline's start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Assignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Action>,
    #[serde(default)]
    pub reminded: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<Escalated>,
    /// A province alert: its region alerts of the same business.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grouped: Vec<Grouped>,
    /// Resolved alerts: the resolution's event time and the most callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_ts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
}

impl Tracked {
    fn new(firing: Alert) -> Tracked {
        Tracked {
            firing,
            province: None,
            suppressed: None,
            notified_at: None,
            ack: None,
            assigned: None,
            closed: None,
            reminded: false,
            escalations: Vec::new(),
            grouped: Vec::new(),
            resolved_ts: None,
            max_count: None,
        }
    }

    /// Someone took it: acknowledged, assigned or closed.
    pub fn handled(&self) -> bool {
        self.ack.is_some() || self.assigned.is_some() || self.closed.is_some()
    }

    /// `unacknowledged`, `acknowledged`, `assigned` or `closed` (the
    /// furthest it got).
    pub fn ack_state(&self) -> &'static str {
        if self.closed.is_some() {
            "closed"
        } else if self.assigned.is_some() {
            "assigned"
        } else if self.ack.is_some() {
            "acknowledged"
        } else {
            "unacknowledged"
        }
    }

    fn is_province(&self) -> bool {
        self.firing.scope == Some(Scope::Province)
    }

    /// Where its deadline stands under `rules`: the department that must
    /// act now, since when, and its `ack_within`; None when no step can
    /// come (not notified, taken, suppressed, or no deadline).
    fn clock(&self, rules: &Rules) -> Option<(usize, i64, i64)> {
        if self.suppressed.is_some() || self.handled() || self.resolved_ts.is_some() {
            return None;
        }
        let notified = self.notified_at?;
        let (dept, since) = match self.escalations.last() {
            None => (rules.department_index(&self.firing.department)?, notified),
            Some(e) => (rules.department_index(&e.to)?, e.at),
        };
        let aw = rules.departments[dept].ack_within_ms?;
        Some((dept, since, aw))
    }

    /// The lifecycle keys `/v1/alerts` adds to the alert object.
    pub fn view(&self, rules: &Rules) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("ack_state".into(), self.ack_state().into());
        if let Some(a) = &self.ack {
            m.insert("ack".into(), a.view());
        }
        if let Some(a) = &self.assigned {
            m.insert(
                "assigned".into(),
                serde_json::json!({"by": a.by, "to": a.to, "note": a.note, "at": format_cst(a.at)}),
            );
        }
        if let Some(a) = &self.closed {
            m.insert("closed".into(), a.view());
        }
        if let Some(n) = self.notified_at {
            m.insert("notified_at".into(), format_cst(n).into());
        }
        if let Some((_, since, aw)) = self.clock(rules) {
            m.insert("deadline".into(), format_cst(since + aw).into());
        }
        if !self.escalations.is_empty() {
            m.insert(
                "escalations".into(),
                self.escalations
                    .iter()
                    .map(|e| serde_json::json!({"from": e.from, "to": e.to, "at": format_cst(e.at), "level": e.level}))
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        if let Some(s) = &self.suppressed {
            m.insert(
                "suppressed".into(),
                serde_json::to_value(s).unwrap_or_default(),
            );
        }
        if !self.grouped.is_empty() {
            m.insert(
                "grouped".into(),
                serde_json::to_value(&self.grouped).unwrap_or_default(),
            );
        }
        m
    }
}

/// Something that changes the book, journaled before it is applied. Times
/// are epoch ms of the wall clock where the event arose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Ack {
        alert_id: String,
        by: String,
        note: String,
        at: i64,
    },
    Assign {
        alert_id: String,
        by: String,
        to: String,
        note: String,
        at: i64,
    },
    Close {
        alert_id: String,
        by: String,
        note: String,
        at: i64,
    },
    Silence {
        matchers: Matchers,
        until: i64,
        by: String,
        why: String,
        at: i64,
    },
    Expire {
        id: String,
        by: String,
        at: i64,
    },
    /// A firing line reached a sink that tells its department.
    Delivered {
        alert_id: String,
        at: i64,
    },
    /// The timer: whatever is due at `at`.
    Tick {
        at: i64,
    },
}

/// The book's answer to an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok(serde_json::Value),
    NotFound(String),
    Invalid(String),
}

/// What the book saves in a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct DispatchState {
    /// Open alerts by id.
    #[serde(default)]
    pub alerts: BTreeMap<String, Tracked>,
    /// Resolved alerts, oldest first.
    #[serde(default)]
    pub resolved: VecDeque<Tracked>,
    /// Active silences, then expired ones, each in the order set.
    #[serde(default)]
    pub silences: Vec<Silence>,
    /// The number of the next silence (`s1`, `s2`, ...).
    #[serde(default)]
    pub next_silence: u64,
}

impl DispatchState {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.resolved.is_empty()
            && self.silences.is_empty()
            && self.next_silence == 0
    }
}

/// What the status page and `/v1/silences` show, rebuilt when the book
/// changes.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// Resolved alerts, newest first.
    pub(crate) resolved: Vec<Tracked>,
    /// Active silences, then expired ones.
    pub(crate) silences: Vec<Silence>,
    /// Lifecycle keys of each open alert, by id.
    pub(crate) open: BTreeMap<String, Tracked>,
}

/// The book's metrics, registered in the service's registry.
struct DispatchMetrics {
    /// hotspot_alerts_open_by_ack{department, ack}
    open_by_ack: IntGaugeVec,
    /// hotspot_alerts_overdue{department}: open, untaken, past the deadline
    /// of the department that must act now.
    overdue: IntGaugeVec,
    /// hotspot_alert_ack_seconds{department}: delivery to the first ack,
    /// assign or close.
    ack_seconds: HistogramVec,
    /// hotspot_dispatch_actions_total{action}
    actions: IntCounterVec,
    /// hotspot_dispatch_notifications_total{department, step}
    steps: IntCounterVec,
    /// hotspot_notifications_suppressed_total{reason}: firing lines not
    /// notified (`silence`, `grouped`).
    suppressed: IntCounterVec,
    /// hotspot_silences_active
    silences: IntGauge,
}

impl DispatchMetrics {
    fn new(registry: &prometheus::Registry) -> DispatchMetrics {
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("metric definitions are static and valid");
                // A second book on one registry (tests) keeps the first's.
                let _ = registry.register(Box::new(m.clone()));
                m
            }};
        }
        let m = DispatchMetrics {
            open_by_ack: reg!(IntGaugeVec::new(
                Opts::new(
                    "hotspot_alerts_open_by_ack",
                    "Open alerts by department and acknowledgement state"
                ),
                &["department", "ack"]
            )),
            overdue: reg!(IntGaugeVec::new(
                Opts::new(
                    "hotspot_alerts_overdue",
                    "Open alerts nobody took within the deadline of the department that must act"
                ),
                &["department"]
            )),
            ack_seconds: reg!(HistogramVec::new(
                HistogramOpts::new(
                    "hotspot_alert_ack_seconds",
                    "Delivery of an alert to its first ack, assign or close"
                )
                .buckets(vec![
                    30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
                    86400.0
                ]),
                &["department"]
            )),
            actions: reg!(IntCounterVec::new(
                Opts::new(
                    "hotspot_dispatch_actions_total",
                    "Acks, assigns, closes and silences by action"
                ),
                &["action"]
            )),
            steps: reg!(IntCounterVec::new(
                Opts::new(
                    "hotspot_dispatch_notifications_total",
                    "Reminders and escalations queued, by receiving department"
                ),
                &["department", "step"]
            )),
            suppressed: reg!(IntCounterVec::new(
                Opts::new(
                    "hotspot_notifications_suppressed_total",
                    "Firing alerts not notified, by reason (silence, grouped)"
                ),
                &["reason"]
            )),
            silences: reg!(IntGauge::with_opts(Opts::new(
                "hotspot_silences_active",
                "Active silences"
            ))),
        };
        for a in ["ack", "assign", "close", "silence", "expire"] {
            m.actions.with_label_values(&[a]);
        }
        for r in ["silence", "grouped"] {
            m.suppressed.with_label_values(&[r]);
        }
        m
    }
}

/// The dispatch book.
pub(crate) struct Dispatch {
    state: DispatchState,
    metrics: DispatchMetrics,
    board: Arc<Board>,
    board_stale: bool,
}

impl Dispatch {
    pub fn new(registry: &prometheus::Registry) -> Dispatch {
        Dispatch {
            state: DispatchState::default(),
            metrics: DispatchMetrics::new(registry),
            board: Arc::new(Board::default()),
            board_stale: true,
        }
    }

    /// The state for a checkpoint.
    pub fn export(&self) -> DispatchState {
        self.state.clone()
    }

    /// Restores a checkpoint's state.
    pub fn restore(&mut self, state: DispatchState) {
        self.state = state;
        self.board_stale = true;
    }

    /// Follows open alerts the book does not know (an engine state from
    /// before the book existed): they can be acknowledged, and are
    /// neither reminded nor escalated (their delivery time is unknown).
    pub fn adopt(&mut self, firing: &Alert) {
        if !self.state.alerts.contains_key(&firing.alert_id) {
            self.state
                .alerts
                .insert(firing.alert_id.clone(), Tracked::new(firing.clone()));
            self.board_stale = true;
        }
    }

    fn silenced_by(&self, a: &Alert) -> Option<&Silence> {
        self.state.silences.iter().find(|s| s.silences(a))
    }

    /// An alert line of the engine: decides and records how it is
    /// notified. Returns the line's notice (None: an ordinary line).
    pub fn on_line(&mut self, a: &Alert, rules: &Rules) -> Option<Notice> {
        self.board_stale = true;
        match a.state {
            AlertState::Firing => {
                let mut t = Tracked::new(a.clone());
                if a.scope == Some(Scope::Region) {
                    t.province = rules
                        .region_of(&a.region)
                        .and_then(|r| rules.province_of(Some(r)))
                        .map(|p| rules.provinces[p].name.clone());
                }
                let into = t.province.as_ref().and_then(|p| {
                    self.state
                        .alerts
                        .values()
                        .find(|o| {
                            o.is_province()
                                && o.firing.business == a.business
                                && &o.firing.region == p
                        })
                        .map(|o| o.firing.alert_id.clone())
                });
                t.suppressed = match (self.silenced_by(a), into) {
                    (Some(s), _) => Some(Suppressed::Silence { id: s.id.clone() }),
                    (None, Some(into)) => Some(Suppressed::Grouped { into }),
                    (None, None) => None,
                };
                match &t.suppressed {
                    Some(Suppressed::Silence { .. }) => self
                        .metrics
                        .suppressed
                        .with_label_values(&["silence"])
                        .inc(),
                    Some(Suppressed::Grouped { into }) => {
                        self.metrics
                            .suppressed
                            .with_label_values(&["grouped"])
                            .inc();
                        let entry = grouped_entry(&t, false);
                        if let Some(p) = self.state.alerts.get_mut(into) {
                            if p.grouped.len() < MAX_GROUPED {
                                p.grouped.push(entry);
                            }
                        }
                    }
                    None => {}
                }
                if t.is_province() {
                    // The region alerts of its business already open: told
                    // separately before, listed for the whole picture.
                    t.grouped = self
                        .state
                        .alerts
                        .values()
                        .filter(|o| {
                            o.firing.business == a.business
                                && o.province.as_deref() == Some(a.region.as_str())
                        })
                        .take(MAX_GROUPED)
                        .map(|o| grouped_entry(o, o.suppressed.is_none()))
                        .collect();
                }
                let notice = Notice {
                    step: None,
                    suppressed: t.suppressed.clone(),
                    grouped: t.grouped.clone(),
                };
                self.state.alerts.insert(a.alert_id.clone(), t);
                (notice != Notice::default()).then_some(notice)
            }
            AlertState::Resolved => {
                let mut t = self.state.alerts.remove(&a.alert_id)?;
                // Its entry in its province alert's list.
                for p in self.state.alerts.values_mut().filter(|p| p.is_province()) {
                    for g in p.grouped.iter_mut().filter(|g| g.alert_id == a.alert_id) {
                        g.state = "resolved".into();
                        g.count = a.count;
                    }
                }
                let notice = Notice {
                    step: None,
                    suppressed: t.suppressed.clone(),
                    grouped: t.grouped.clone(),
                };
                t.resolved_ts = Some(a.event_ts);
                t.max_count = Some(a.count);
                t.firing.samples.clear();
                t.firing.templates.clear();
                self.state.resolved.push_back(t);
                let newest = a.event_ts;
                while self.state.resolved.len() > KEEP_RESOLVED
                    || self
                        .state
                        .resolved
                        .front()
                        .is_some_and(|r| r.resolved_ts.unwrap_or(0) < newest - RESOLVED_HORIZON_MS)
                {
                    self.state.resolved.pop_front();
                }
                (notice != Notice::default()).then_some(notice)
            }
        }
    }

    /// Applies an event; returns the answer for whoever sent it and the
    /// notifications to queue, in order.
    pub fn apply(&mut self, event: Event, rules: &Rules) -> (Reply, Vec<(Alert, Notice)>) {
        self.board_stale = true;
        match event {
            Event::Ack {
                alert_id,
                by,
                note,
                at,
            } => {
                self.metrics.actions.with_label_values(&["ack"]).inc();
                let r = self.with_alert(&alert_id, rules, |t| {
                    if t.ack.is_none() {
                        t.ack = Some(Action { by, note, at });
                    }
                });
                (r, Vec::new())
            }
            Event::Assign {
                alert_id,
                by,
                to,
                note,
                at,
            } => {
                self.metrics.actions.with_label_values(&["assign"]).inc();
                let r = self.with_alert(&alert_id, rules, |t| {
                    t.assigned = Some(Assignment { by, to, note, at });
                });
                (r, Vec::new())
            }
            Event::Close {
                alert_id,
                by,
                note,
                at,
            } => {
                self.metrics.actions.with_label_values(&["close"]).inc();
                let r = self.with_alert(&alert_id, rules, |t| {
                    if t.closed.is_none() {
                        t.closed = Some(Action { by, note, at });
                    }
                });
                (r, Vec::new())
            }
            Event::Silence {
                matchers,
                until,
                by,
                why,
                at,
            } => {
                if let Err(e) = matchers.check() {
                    return (Reply::Invalid(e), Vec::new());
                }
                if until <= at {
                    return (
                        Reply::Invalid(format!(
                            "until ({}) is not in the future",
                            format_cst(until)
                        )),
                        Vec::new(),
                    );
                }
                let active = self.state.silences.iter().filter(|s| s.active()).count();
                if active >= silence::MAX_ACTIVE {
                    return (
                        Reply::Invalid(format!(
                            "{active} silences are active, the most there may be; expire some first"
                        )),
                        Vec::new(),
                    );
                }
                self.metrics.actions.with_label_values(&["silence"]).inc();
                self.state.next_silence += 1;
                let s = Silence {
                    id: format!("s{}", self.state.next_silence),
                    matchers,
                    until,
                    by,
                    why,
                    created: at,
                    expired: None,
                    expired_by: None,
                };
                let view = s.view();
                let first_expired = self
                    .state
                    .silences
                    .iter()
                    .position(|s| !s.active())
                    .unwrap_or(self.state.silences.len());
                self.state.silences.insert(first_expired, s);
                (Reply::Ok(view), Vec::new())
            }
            Event::Expire { id, by, at } => {
                let Some(i) = self
                    .state
                    .silences
                    .iter()
                    .position(|s| s.id == id && s.active())
                else {
                    return (
                        Reply::NotFound(format!("no active silence {id}")),
                        Vec::new(),
                    );
                };
                self.metrics.actions.with_label_values(&["expire"]).inc();
                let view = self.expire(i, at, Some(by));
                // Steps that waited for it are due now.
                let steps = self.steps(at, rules);
                (Reply::Ok(view), steps)
            }
            Event::Delivered { alert_id, at } => {
                if let Some(t) = self.state.alerts.get_mut(&alert_id) {
                    t.notified_at.get_or_insert(at);
                }
                (Reply::Ok(serde_json::Value::Null), Vec::new())
            }
            Event::Tick { at } => {
                while let Some(i) = self
                    .state
                    .silences
                    .iter()
                    .position(|s| s.active() && s.until <= at)
                {
                    let until = self.state.silences[i].until;
                    self.expire(i, until, None);
                }
                let steps = self.steps(at, rules);
                (Reply::Ok(serde_json::Value::Null), steps)
            }
        }
    }

    /// Expires silence `i` (moves it behind the active ones); returns its
    /// view.
    fn expire(&mut self, i: usize, at: i64, by: Option<String>) -> serde_json::Value {
        let mut s = self.state.silences.remove(i);
        s.expired = Some(at);
        s.expired_by = by;
        let view = s.view();
        let first_expired = self
            .state
            .silences
            .iter()
            .position(|s| !s.active())
            .unwrap_or(self.state.silences.len());
        self.state.silences.insert(first_expired, s);
        let expired =
            self.state.silences.len() - self.state.silences.iter().filter(|s| s.active()).count();
        if expired > silence::KEEP_EXPIRED {
            self.state.silences.pop();
        }
        view
    }

    /// Runs `f` on the open or recently resolved alert `id`; answers with
    /// its lifecycle keys.
    fn with_alert(&mut self, id: &str, rules: &Rules, f: impl FnOnce(&mut Tracked)) -> Reply {
        let t = match self.state.alerts.get_mut(id) {
            Some(t) => t,
            None => match self
                .state
                .resolved
                .iter_mut()
                .rev()
                .find(|t| t.firing.alert_id == id)
            {
                Some(t) => t,
                None => return Reply::NotFound(format!("unknown alert id {id}")),
            },
        };
        let was_handled = t.handled();
        f(t);
        if !was_handled && t.handled() {
            if let (Some(n), Some(at)) = (t.notified_at, first_action_at(t)) {
                self.metrics
                    .ack_seconds
                    .with_label_values(&[&t.firing.department])
                    .observe(((at - n).max(0)) as f64 / 1000.0);
            }
        }
        let mut v = t.view(rules);
        v.insert("alert_id".into(), id.into());
        v.insert(
            "state".into(),
            if t.resolved_ts.is_some() {
                "resolved"
            } else {
                "firing"
            }
            .into(),
        );
        Reply::Ok(serde_json::Value::Object(v))
    }

    /// The reminders and escalations due at `at`, recorded as sent.
    fn steps(&mut self, at: i64, rules: &Rules) -> Vec<(Alert, Notice)> {
        let mut out = Vec::new();
        let silences = &self.state.silences;
        for t in self.state.alerts.values_mut() {
            let Some((dept, since, aw)) = t.clock(rules) else {
                continue;
            };
            if silences.iter().any(|s| s.silences(&t.firing)) {
                continue; // waits for the silence to end
            }
            let notified = t.notified_at.unwrap_or(since);
            if t.escalations.is_empty() && !t.reminded {
                if at >= since + aw {
                    t.reminded = true; // the deadline itself is due: no reminder
                } else if at >= since + aw / 2 {
                    t.reminded = true;
                    let to = rules.departments[dept].id.clone();
                    self.metrics
                        .steps
                        .with_label_values(&[&to, "reminder"])
                        .inc();
                    out.push((
                        t.firing.clone(),
                        Notice {
                            step: Some(Step::Reminder {
                                to,
                                after_s: (at - notified) / 1000,
                                ack_within_s: aw / 1000,
                            }),
                            suppressed: None,
                            grouped: t.grouped.clone(),
                        },
                    ));
                }
            }
            let Some(next) = rules.departments[dept].escalate_to else {
                continue;
            };
            if at < since + aw || t.escalations.len() >= rules.departments.len() {
                continue;
            }
            let from = rules.departments[dept].id.clone();
            let to = rules.departments[next].id.clone();
            let level = t.escalations.len() as u32 + 1;
            t.escalations.push(Escalated {
                from: from.clone(),
                to: to.clone(),
                at,
                level,
            });
            self.metrics
                .steps
                .with_label_values(&[&to, "escalation"])
                .inc();
            out.push((
                t.firing.clone(),
                Notice {
                    step: Some(Step::Escalation {
                        from,
                        to,
                        after_s: (at - notified) / 1000,
                        level,
                    }),
                    suppressed: None,
                    grouped: t.grouped.clone(),
                },
            ));
        }
        out
    }

    /// When the next tick has work: a silence ends, a reminder or an
    /// escalation falls due. Always later than any tick already applied.
    pub fn next_due(&self, rules: &Rules) -> Option<i64> {
        let silences = &self.state.silences;
        let mut due = silences
            .iter()
            .filter(|s| s.active())
            .map(|s| s.until)
            .min();
        for t in self.state.alerts.values() {
            let Some((dept, since, aw)) = t.clock(rules) else {
                continue;
            };
            if silences.iter().any(|s| s.silences(&t.firing)) {
                continue; // its silence's end is due already
            }
            let mut next = None;
            if t.escalations.is_empty() && !t.reminded {
                next = Some(since + aw / 2);
            } else if rules.departments[dept].escalate_to.is_some()
                && t.escalations.len() < rules.departments.len()
            {
                next = Some(since + aw);
            }
            if let Some(n) = next {
                due = Some(due.map_or(n, |d: i64| d.min(n)));
            }
        }
        due
    }

    /// The lifecycle keys of an open alert for `/v1/alerts`.
    pub fn view(
        &self,
        alert_id: &str,
        rules: &Rules,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.state.alerts.get(alert_id).map(|t| t.view(rules))
    }

    /// The status page's and `/v1/silences`' view, rebuilt if stale; also
    /// refreshes the gauges.
    pub fn board(&mut self, rules: &Rules, now: i64) -> Arc<Board> {
        if self.board_stale {
            self.board_stale = false;
            self.board = Arc::new(Board {
                resolved: self.state.resolved.iter().rev().cloned().collect(),
                silences: self.state.silences.clone(),
                open: self.state.alerts.clone(),
            });
        }
        let m = &self.metrics;
        m.open_by_ack.reset();
        m.overdue.reset();
        for d in &rules.departments {
            for s in ["unacknowledged", "acknowledged", "assigned", "closed"] {
                m.open_by_ack.with_label_values(&[&d.id, s]).set(0);
            }
            if d.ack_within_ms.is_some() {
                m.overdue.with_label_values(&[&d.id]).set(0);
            }
        }
        for t in self.state.alerts.values() {
            m.open_by_ack
                .with_label_values(&[&t.firing.department, t.ack_state()])
                .inc();
            if let Some((dept, since, aw)) = t.clock(rules) {
                if now >= since + aw {
                    m.overdue
                        .with_label_values(&[&rules.departments[dept].id])
                        .inc();
                }
            }
        }
        m.silences
            .set(self.state.silences.iter().filter(|s| s.active()).count() as i64);
        self.board.clone()
    }
}

/// When `t` was first taken (ack, assign or close).
fn first_action_at(t: &Tracked) -> Option<i64> {
    [
        t.ack.as_ref().map(|a| a.at),
        t.assigned.as_ref().map(|a| a.at),
        t.closed.as_ref().map(|a| a.at),
    ]
    .into_iter()
    .flatten()
    .min()
}

fn grouped_entry(t: &Tracked, notified: bool) -> Grouped {
    Grouped {
        alert_id: t.firing.alert_id.clone(),
        region: t.firing.region.clone(),
        state: "firing".into(),
        count: t.firing.count,
        threshold: t.firing.threshold,
        notified,
    }
}

#[cfg(test)]
mod tests;
