//! Unit tests of the dispatch book (decisions, steps, silences, folding,
//! checkpoints) and of its timer under `tokio::time::pause`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::timer::{Clock, NotApplied, run};
use super::*;
use crate::rules::load_str;

const RULES: &str = r#"
[[department]]
id = "vas"
name = "数据业务部"
ack_within = "10m"
escalate_to = "duty"

[[department]]
id = "duty"
name = "值班室"
ack_within = "20m"
escalate_to = "boss"

[[department]]
id = "boss"

[[department]]
id = "net"

[[business]]
id = "crbt"
name = "彩铃"
department = "vas"
threshold = 8
province_threshold = 20

[[business]]
id = "gprs"
department = "net"
threshold = 8

[[template]]
id = "crbt.copy_fail"
business = "crbt"
all_of = [["彩铃"]]

[[template]]
id = "gprs.slow"
business = "gprs"
all_of = [["上网"]]

[[region]]
id = "杭州"
province = "浙江"

[[region]]
id = "温州"
province = "浙江"
"#;

const T0: i64 = 1_773_538_061_000;
const MIN: i64 = 60_000;

fn rules() -> Rules {
    load_str(RULES, "t.toml").unwrap()
}

fn line(state: &str, business: &str, region: &str, scope: &str, n: u32) -> Alert {
    let dept = if business == "crbt" { "vas" } else { "net" };
    let id = if scope == "province" {
        format!("{business}:province:{region}:{T0}:WO{n}")
    } else {
        format!("{business}:{region}:{T0}:WO{n}")
    };
    let tail = if state == "firing" {
        format!(
            r#""triggered_by":"WO{n}","event_ts":"2026-03-15T09:27:41+08:00","templates":{{}},"samples":[]"#
        )
    } else {
        r#""event_ts":"2026-03-15T10:27:41+08:00","resolved_by":"WO99","watermark":"2026-03-15T10:27:41+08:00","end_of_input":false"#.to_string()
    };
    serde_json::from_str(&format!(
        r#"{{"alert_id":"{id}","state":"{state}","business":"{business}","region":"{region}","scope":"{scope}","kind":"threshold","department":"{dept}","count":{n},"threshold":8,"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00",{tail}}}"#
    ))
    .unwrap()
}

/// The resolved line of firing line `a`, with the most callers `count`.
fn resolved(a: &Alert, count: u32) -> Alert {
    let mut r = a.clone();
    r.state = AlertState::Resolved;
    r.count = count;
    r.event_ts += 3_600_000;
    r.resolved_by = Some("WO99".into());
    r.watermark = Some(r.event_ts);
    r.triggered_by = None;
    r
}

fn book() -> Dispatch {
    Dispatch::new(&prometheus::Registry::new())
}

fn steps_of(v: &[(Alert, Notice)]) -> Vec<String> {
    v.iter()
        .map(|(a, n)| match n.step.as_ref().unwrap() {
            Step::Reminder { to, .. } => format!("{} reminder→{to}", a.alert_id),
            Step::Escalation { to, level, .. } => {
                format!("{} escalation{level}→{to}", a.alert_id)
            }
        })
        .collect()
}

#[test]
fn ack_assign_close_and_unknown_ids() {
    let r = rules();
    let mut d = book();
    let a = line("firing", "crbt", "杭州", "region", 9);
    assert_eq!(d.on_line(&a, &r), None, "an ordinary line has no notice");
    let (reply, steps) = d.apply(
        Event::Ack {
            alert_id: a.alert_id.clone(),
            by: "张三".into(),
            note: "在查".into(),
            at: T0,
        },
        &r,
    );
    assert!(steps.is_empty());
    let Reply::Ok(v) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(v["ack"]["by"], "张三");
    assert_eq!(v["ack"]["note"], "在查");
    assert_eq!(v["ack_state"], "acknowledged");
    // A second ack keeps the first.
    d.apply(
        Event::Ack {
            alert_id: a.alert_id.clone(),
            by: "李四".into(),
            note: String::new(),
            at: T0 + 1,
        },
        &r,
    );
    let view = d.view(&a.alert_id, &r).unwrap();
    assert_eq!(view["ack"]["by"], "张三");
    d.apply(
        Event::Assign {
            alert_id: a.alert_id.clone(),
            by: "张三".into(),
            to: "王五".into(),
            note: String::new(),
            at: T0 + 2,
        },
        &r,
    );
    assert_eq!(d.view(&a.alert_id, &r).unwrap()["assigned"]["to"], "王五");
    let (reply, _) = d.apply(
        Event::Close {
            alert_id: "crbt:杭州:0:nope".into(),
            by: "x".into(),
            note: String::new(),
            at: T0,
        },
        &r,
    );
    assert!(matches!(reply, Reply::NotFound(_)), "{reply:?}");
    // Resolved alerts can still be acknowledged (for the record).
    let b = line("firing", "gprs", "温州", "region", 8);
    d.on_line(&b, &r);
    d.on_line(&resolved(&b, 12), &r);
    let (reply, _) = d.apply(
        Event::Ack {
            alert_id: b.alert_id.clone(),
            by: "赵六".into(),
            note: String::new(),
            at: T0,
        },
        &r,
    );
    let Reply::Ok(v) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(v["state"], "resolved");
    let board = d.board(&r, T0);
    assert_eq!(board.resolved.len(), 1);
    assert_eq!(board.resolved[0].ack.as_ref().unwrap().by, "赵六");
    assert_eq!(board.resolved[0].max_count, Some(12));
}

#[test]
fn reminder_at_half_then_escalation_chain_each_once() {
    let r = rules();
    let mut d = book();
    let a = line("firing", "crbt", "杭州", "region", 9);
    d.on_line(&a, &r);
    // Not delivered yet: no clock.
    assert_eq!(d.next_due(&r), None);
    assert!(d.apply(Event::Tick { at: T0 + 60 * MIN }, &r).1.is_empty());
    d.apply(
        Event::Delivered {
            alert_id: a.alert_id.clone(),
            at: T0,
        },
        &r,
    );
    // A second delivery (another webhook) does not move the start.
    d.apply(
        Event::Delivered {
            alert_id: a.alert_id.clone(),
            at: T0 + MIN,
        },
        &r,
    );
    assert_eq!(d.next_due(&r), Some(T0 + 5 * MIN));
    assert!(
        d.apply(
            Event::Tick {
                at: T0 + 5 * MIN - 1
            },
            &r
        )
        .1
        .is_empty()
    );
    let (_, s) = d.apply(Event::Tick { at: T0 + 5 * MIN }, &r);
    assert_eq!(steps_of(&s), [format!("{} reminder→vas", a.alert_id)]);
    assert!(d.apply(Event::Tick { at: T0 + 6 * MIN }, &r).1.is_empty());
    assert_eq!(d.next_due(&r), Some(T0 + 10 * MIN));
    let (_, s) = d.apply(
        Event::Tick {
            at: T0 + 10 * MIN + 300,
        },
        &r,
    );
    assert_eq!(steps_of(&s), [format!("{} escalation1→duty", a.alert_id)]);
    let Some(Step::Escalation { from, after_s, .. }) = &s[0].1.step else {
        panic!()
    };
    assert_eq!((from.as_str(), *after_s), ("vas", 600));
    assert!(d.apply(Event::Tick { at: T0 + 11 * MIN }, &r).1.is_empty());
    // duty's 20 minutes run from the escalation.
    assert_eq!(d.next_due(&r), Some(T0 + 30 * MIN + 300));
    let (_, s) = d.apply(Event::Tick { at: T0 + 31 * MIN }, &r);
    assert_eq!(steps_of(&s), [format!("{} escalation2→boss", a.alert_id)]);
    // boss has no deadline: nothing more, ever.
    assert_eq!(d.next_due(&r), None);
    assert!(d.apply(Event::Tick { at: T0 + 600 * MIN }, &r).1.is_empty());
    let v = d.view(&a.alert_id, &r).unwrap();
    assert_eq!(v["escalations"].as_array().unwrap().len(), 2);
}

#[test]
fn a_late_tick_escalates_without_the_reminder_and_ack_stops_everything() {
    let r = rules();
    let mut d = book();
    let a = line("firing", "crbt", "杭州", "region", 9);
    let b = line("firing", "crbt", "温州", "region", 10);
    for x in [&a, &b] {
        d.on_line(x, &r);
        d.apply(
            Event::Delivered {
                alert_id: x.alert_id.clone(),
                at: T0,
            },
            &r,
        );
    }
    d.apply(
        Event::Ack {
            alert_id: b.alert_id.clone(),
            by: "张三".into(),
            note: String::new(),
            at: T0 + MIN,
        },
        &r,
    );
    // The service was down through the reminder and the deadline.
    let (_, s) = d.apply(Event::Tick { at: T0 + 12 * MIN }, &r);
    assert_eq!(steps_of(&s), [format!("{} escalation1→duty", a.alert_id)]);
    // Resolved: no more steps.
    d.on_line(&resolved(&a, 9), &r);
    assert_eq!(d.next_due(&r), None);
    assert!(d.apply(Event::Tick { at: T0 + 60 * MIN }, &r).1.is_empty());
    // Departments without ack_within: never.
    let g = line("firing", "gprs", "杭州", "region", 8);
    d.on_line(&g, &r);
    d.apply(
        Event::Delivered {
            alert_id: g.alert_id.clone(),
            at: T0,
        },
        &r,
    );
    assert_eq!(d.next_due(&r), None);
}

fn silence(d: &mut Dispatch, r: &Rules, m: Matchers, until: i64, at: i64) -> String {
    let (reply, _) = d.apply(
        Event::Silence {
            matchers: m,
            until,
            by: "运维".into(),
            why: "割接".into(),
            at,
        },
        r,
    );
    let Reply::Ok(v) = reply else {
        panic!("{reply:?}")
    };
    v["id"].as_str().unwrap().to_owned()
}

#[test]
fn silences_suppress_lines_and_steps_then_expire() {
    let r = rules();
    let mut d = book();
    let crbt = Matchers {
        business: Some("crbt".into()),
        ..Matchers::default()
    };
    // Bad silences are refused.
    for (m, until) in [(Matchers::default(), T0 + MIN), (crbt.clone(), T0)] {
        let (reply, _) = d.apply(
            Event::Silence {
                matchers: m,
                until,
                by: "x".into(),
                why: String::new(),
                at: T0,
            },
            &r,
        );
        assert!(matches!(reply, Reply::Invalid(_)), "{reply:?}");
    }
    // An alert notified before the silence.
    let early = line("firing", "crbt", "杭州", "region", 9);
    d.on_line(&early, &r);
    d.apply(
        Event::Delivered {
            alert_id: early.alert_id.clone(),
            at: T0,
        },
        &r,
    );
    let id = silence(&mut d, &r, crbt.clone(), T0 + 30 * MIN, T0 + MIN);
    assert_eq!(id, "s1");
    // Fired under the silence: not notified, nor its resolution.
    let a = line("firing", "crbt", "温州", "region", 9);
    let n = d.on_line(&a, &r).unwrap();
    assert_eq!(n.suppressed, Some(Suppressed::Silence { id: id.clone() }));
    let other = line("firing", "gprs", "温州", "region", 9);
    assert_eq!(d.on_line(&other, &r), None, "other businesses are told");
    // The early alert's reminder and deadline fall in the silence: held.
    assert_eq!(d.next_due(&r), Some(T0 + 30 * MIN), "the silence's end");
    assert!(d.apply(Event::Tick { at: T0 + 20 * MIN }, &r).1.is_empty());
    // The silence ends: the held escalation goes at once.
    let (_, s) = d.apply(Event::Tick { at: T0 + 30 * MIN }, &r);
    assert_eq!(
        steps_of(&s),
        [format!("{} escalation1→duty", early.alert_id)]
    );
    let board = d.board(&r, T0 + 30 * MIN);
    assert!(!board.silences[0].active());
    assert_eq!(board.silences[0].expired, Some(T0 + 30 * MIN));
    // The silenced alert's resolution follows its firing.
    let n = d.on_line(&resolved(&a, 9), &r).unwrap();
    assert_eq!(n.suppressed, Some(Suppressed::Silence { id }));
    // After the silence, a new alert is told.
    assert_eq!(
        d.on_line(&line("firing", "crbt", "温州", "region", 11), &r),
        None
    );
    // Expiring early, and an unknown or expired id.
    let s2 = silence(&mut d, &r, crbt, T0 + 90 * MIN, T0 + 31 * MIN);
    let (reply, _) = d.apply(
        Event::Expire {
            id: s2.clone(),
            by: "运维".into(),
            at: T0 + 32 * MIN,
        },
        &r,
    );
    let Reply::Ok(v) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(v["state"], "expired");
    assert_eq!(v["expired_by"], "运维");
    let (reply, _) = d.apply(
        Event::Expire {
            id: s2,
            by: String::new(),
            at: T0 + 33 * MIN,
        },
        &r,
    );
    assert!(matches!(reply, Reply::NotFound(_)));
}

#[test]
fn city_alerts_fold_into_an_open_province_alert() {
    let r = rules();
    let mut d = book();
    // A city alert before the province's: told on its own.
    let hz = line("firing", "crbt", "杭州", "region", 9);
    assert_eq!(d.on_line(&hz, &r), None);
    // The province alert lists it.
    let zj = line("firing", "crbt", "浙江", "province", 21);
    let n = d.on_line(&zj, &r).unwrap();
    assert_eq!(n.suppressed, None);
    assert_eq!(n.grouped.len(), 1);
    assert!(n.grouped[0].notified && n.grouped[0].region == "杭州");
    // A city alert while it is open: folded, and so is its resolution.
    let wz = line("firing", "crbt", "温州", "region", 8);
    let n = d.on_line(&wz, &r).unwrap();
    assert_eq!(
        n.suppressed,
        Some(Suppressed::Grouped {
            into: zj.alert_id.clone()
        })
    );
    // Another business in the province is not folded.
    assert_eq!(
        d.on_line(&line("firing", "gprs", "温州", "region", 8), &r),
        None
    );
    let n = d.on_line(&resolved(&wz, 10), &r).unwrap();
    assert!(matches!(n.suppressed, Some(Suppressed::Grouped { .. })));
    // The city told on its own resolves on its own.
    assert_eq!(d.on_line(&resolved(&hz, 9), &r), None);
    // The province's resolution lists both, with their last state.
    let n = d.on_line(&resolved(&zj, 25), &r).unwrap();
    let got: Vec<(&str, &str, u32, bool)> = n
        .grouped
        .iter()
        .map(|g| (g.region.as_str(), g.state.as_str(), g.count, g.notified))
        .collect();
    assert_eq!(
        got,
        [
            ("杭州", "resolved", 9, true),
            ("温州", "resolved", 10, false)
        ]
    );
    // Once the province resolved, cities are told on their own again.
    assert_eq!(
        d.on_line(&line("firing", "crbt", "温州", "region", 12), &r),
        None
    );
}

#[test]
fn the_checkpointed_book_decides_the_same() {
    let r = rules();
    let mut d = book();
    let a = line("firing", "crbt", "杭州", "region", 9);
    d.on_line(&a, &r);
    d.apply(
        Event::Delivered {
            alert_id: a.alert_id.clone(),
            at: T0,
        },
        &r,
    );
    d.apply(Event::Tick { at: T0 + 5 * MIN }, &r);
    silence(
        &mut d,
        &r,
        Matchers {
            region: Some("温州".into()),
            ..Matchers::default()
        },
        T0 + 60 * MIN,
        T0,
    );
    let text = serde_json::to_string(&d.export()).unwrap();
    let mut e = book();
    e.restore(serde_json::from_str(&text).unwrap());
    let b = line("firing", "crbt", "温州", "region", 9);
    assert_eq!(d.on_line(&b, &r), e.on_line(&b, &r));
    let tick = Event::Tick { at: T0 + 10 * MIN };
    let (x, y) = (d.apply(tick.clone(), &r), e.apply(tick, &r));
    assert_eq!(steps_of(&x.1), steps_of(&y.1));
    assert_eq!(
        x.1.len(),
        1,
        "the reminder was taken before: only the escalation"
    );
    assert_eq!(
        serde_json::to_string(&d.export()).unwrap(),
        serde_json::to_string(&e.export()).unwrap()
    );
}

/// The timer, on tokio's paused clock: one alert acknowledged in time,
/// one not; the timer's ticks go through a book as the engine thread's
/// would. The escalation comes within 5 s after the deadline, once; the
/// acknowledged alert gets its reminder and nothing more.
#[tokio::test(start_paused = true)]
async fn the_timer_fires_due_steps_on_time() {
    let r = Arc::new(rules());
    let clock = Clock::starting_at(T0);
    let book = Arc::new(Mutex::new(book()));
    let (due_tx, due_rx) = tokio::sync::watch::channel(None);
    let due_tx = Arc::new(due_tx);
    let sent: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
    let a = line("firing", "crbt", "杭州", "region", 9);
    let b = line("firing", "crbt", "温州", "region", 10);
    {
        let mut d = book.lock().unwrap();
        for x in [&a, &b] {
            d.on_line(x, &r);
            d.apply(
                Event::Delivered {
                    alert_id: x.alert_id.clone(),
                    at: clock.now_ms(),
                },
                &r,
            );
        }
        due_tx.send_replace(d.next_due(&r));
    }
    let timer = {
        let (book, r, due_tx, sent) = (book.clone(), r.clone(), due_tx.clone(), sent.clone());
        tokio::spawn(run(clock, due_rx, move |at| {
            let (book, r, due_tx, sent) = (book.clone(), r.clone(), due_tx.clone(), sent.clone());
            async move {
                let mut d = book.lock().unwrap();
                let (_, steps) = d.apply(Event::Tick { at }, &r);
                for s in steps_of(&steps) {
                    sent.lock().unwrap().push((at, s));
                }
                due_tx.send_replace(d.next_due(&r));
                Ok::<(), NotApplied>(())
            }
        }))
    };
    // Seven minutes in, someone acknowledges b (after both reminders).
    tokio::time::sleep(Duration::from_secs(7 * 60)).await;
    {
        let mut d = book.lock().unwrap();
        d.apply(
            Event::Ack {
                alert_id: b.alert_id.clone(),
                by: "张三".into(),
                note: String::new(),
                at: clock.now_ms(),
            },
            &r,
        );
        due_tx.send_replace(d.next_due(&r));
    }
    tokio::time::sleep(Duration::from_secs(60 * 60)).await;
    let sent = sent.lock().unwrap().clone();
    let deadline = T0 + 10 * MIN;
    let escalations: Vec<&(i64, String)> = sent
        .iter()
        .filter(|(_, s)| s.contains("escalation1"))
        .collect();
    assert_eq!(escalations.len(), 1, "{sent:?}");
    assert!(escalations[0].1.starts_with(&a.alert_id), "{sent:?}");
    let late = escalations[0].0 - deadline;
    assert!(
        (0..5000).contains(&late),
        "escalated {late} ms after the deadline"
    );
    assert_eq!(
        sent.iter().filter(|(_, s)| s.contains("reminder")).count(),
        2,
        "{sent:?}"
    );
    // duty's deadline, 20 minutes after the escalation: to boss.
    assert!(
        sent.iter()
            .any(|(at, s)| s.contains("escalation2→boss")
                && *at - (escalations[0].0 + 20 * MIN) < 5000),
        "{sent:?}"
    );
    assert!(
        !sent
            .iter()
            .any(|(_, s)| s.starts_with(&b.alert_id) && s.contains("escalation"))
    );
    timer.abort();
}
