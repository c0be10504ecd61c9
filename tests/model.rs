//! Property tests of the engine against a plain model of CONTRACT 5, and of
//! replay against how its input is chunked.
//!
//! The model is deliberately naive: it keeps every accepted complaint, and
//! for every check recounts distinct callers of every window by scanning
//! them all, straight from the definitions (windows `[k*slide, k*slide +
//! size)`, resolution when no window with `end > watermark - lateness` is at
//! or above the threshold). The engine, with its bins, caller occurrence
//! lists, heaps and frees, must give byte-identical alert lines on random
//! streams with late records, repeat and anonymous callers, several regions
//! and businesses, and odd window geometries.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use hotspot::alert::{Alert, AlertSample, AlertState, Kind, Scope, scoped_alert_id};
use hotspot::engine::{Collect, Engine, EngineConfig};
use hotspot::mask::mask_and_cut;
use hotspot::normalize::normalize;
use hotspot::replay::{ReplayOutputs, replay};
use hotspot::rules::{Rules, load_str};
use hotspot::sink::JsonlWriter;
use proptest::prelude::*;

fn rules_text(size: &str, slide: &str, lateness: &str, t1: u32, t2: u32) -> String {
    rules_text_s8(size, slide, lateness, t1, t2, None)
}

/// With `s8 = Some((override, province))`: section 8's region table
/// (杭州 and 宁波 in 浙江; 温州 in no province), a per-region threshold for
/// 宁波 in crbt, and province thresholds for both businesses.
fn rules_text_s8(
    size: &str,
    slide: &str,
    lateness: &str,
    t1: u32,
    t2: u32,
    s8: Option<(u32, u32)>,
) -> String {
    let (regions, crbt8, data8) = match s8 {
        None => (String::new(), String::new(), String::new()),
        Some((o, p)) => (
            "[[region]]\nid = \"杭州\"\nprovince = \"浙江\"\n[[region]]\nid = \"宁波\"\nprovince = \"浙江\"\nsubscribers = 900000\n".to_string(),
            format!("region_thresholds = {{ \"宁波\" = {o} }}\nprovince_threshold = {p}\n"),
            format!("province_threshold = {}\n", p + 1),
        ),
    };
    format!(
        r#"
[window]
size = "{size}"
slide = "{slide}"
allowed_lateness = "{lateness}"
[[department]]
id = "vas"
name = "数据业务部"
[[department]]
id = "net"
{regions}
[[business]]
id = "crbt"
name = "彩铃"
department = "vas"
threshold = {t1}
{crbt8}
[[business]]
id = "data"
department = "net"
threshold = {t2}
{data8}
[[template]]
id = "crbt.copy"
business = "crbt"
all_of = [["彩铃", "炫铃"], ["复制", "同步"]]
none_of = ["咨询如何"]
[[template]]
id = "crbt.gone"
business = "crbt"
all_of = [["彩铃"], ["没有了"]]
[[template]]
id = "data.gprs"
business = "data"
all_of = [["gprs", "上不了网"]]
none_of = ["已恢复"]
"#
    )
}

const TEXTS: &[&str] = &[
    "客户反映彩铃复制失败，联系电话13812345678",
    "炫铃同步不了",
    "彩铃没有了，要求处理",
    "彩铃复制失败，手机ＧＰＲＳ上不了网",
    "咨询如何复制彩铃",
    "手机Gprs异常",
    "上不了网，已恢复",
    "表扬营业员",
    "彩铃复制彩铃没有了",
];
const REGIONS: &[&str] = &["杭州", "宁波", "温州"];
const CALLERS: &[&str] = &["a", "b", "c", "d", "e", "f", "g"];

#[derive(Debug, Clone)]
struct Rec {
    id: String,
    ts: i64,
    region: &'static str,
    text: &'static str,
    caller: Option<&'static str>,
}

impl Rec {
    fn line(&self) -> String {
        let mut v = serde_json::json!({"id": self.id, "ts": self.ts, "region": self.region, "text": self.text});
        if let Some(c) = self.caller {
            v["caller"] = c.into();
        }
        v.to_string()
    }
}

/// An accepted complaint in the model: (seq, ts, caller identity,
/// templates, id, text).
type Event = (u64, i64, String, Vec<usize>, String, String);

/// A model key: scope (region keys first), business, place.
type MKey = (Scope, usize, String);

/// The plain model.
struct Model<'r> {
    rules: &'r Rules,
    size: i64,
    slide: i64,
    lateness: i64,
    wm: Option<i64>,
    /// key (scope, business, place) -> accepted complaints (seq, ts,
    /// caller identity, templates, id, text)
    events: BTreeMap<MKey, Vec<Event>>,
    open: BTreeMap<MKey, (Alert, u32, i64)>,
    out: Vec<Alert>,
}

impl<'r> Model<'r> {
    fn new(rules: &'r Rules) -> Self {
        let w = rules.window;
        Model {
            rules,
            size: w.size_ms,
            slide: w.slide_ms,
            lateness: w.allowed_lateness_ms,
            wm: None,
            events: BTreeMap::new(),
            open: BTreeMap::new(),
            out: Vec::new(),
        }
    }

    fn windows_containing(&self, ts: i64) -> Vec<i64> {
        let mut ks = Vec::new();
        let mut k = ts.div_euclid(self.slide);
        while k * self.slide + self.size > ts {
            if k * self.slide <= ts {
                ks.push(k);
            }
            k -= 1;
        }
        ks.reverse();
        ks
    }

    /// The threshold of a key, straight from section 8.
    fn threshold(&self, key: &MKey) -> u32 {
        let bus = &self.rules.businesses[key.1];
        match key.0 {
            Scope::Region => {
                let r = self.rules.regions.iter().position(|r| r.id == key.2);
                match r.and_then(|r| bus.region_thresholds.get(r)) {
                    Some(&t) if t > 0 => t,
                    _ => bus.threshold,
                }
            }
            Scope::Province => bus.province_threshold.unwrap_or(u32::MAX),
        }
    }

    fn count(&self, key: &MKey, k: i64) -> u32 {
        let (s, e) = (k * self.slide, k * self.slide + self.size);
        let mut callers: Vec<&String> = self.events[key]
            .iter()
            .filter(|ev| ev.1 >= s && ev.1 < e)
            .map(|ev| &ev.2)
            .collect();
        callers.sort();
        callers.dedup();
        callers.len() as u32
    }

    fn feed(&mut self, seq: u64, r: &Rec) {
        if let Some(wm) = self.wm {
            if r.ts < wm - self.lateness {
                return;
            }
        }
        self.wm = Some(self.wm.map_or(r.ts, |w| w.max(r.ts)));
        let norm = normalize(r.text);
        let mut matched: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (t, tpl) in self.rules.templates.iter().enumerate() {
            let all = tpl
                .all_of
                .iter()
                .all(|g| g.iter().any(|k| norm.contains(k.as_str())));
            let none = tpl.none_of.iter().any(|k| norm.contains(k.as_str()));
            if all && !none {
                matched.entry(tpl.business).or_default().push(t);
            }
        }
        let caller = r
            .caller
            .map(|c| format!("c:{c}"))
            .unwrap_or_else(|| format!("anon:{seq}"));
        // Region keys (businesses in rules order), then province keys.
        let mut keys: Vec<(MKey, Vec<usize>)> = matched
            .iter()
            .map(|(&b, t)| ((Scope::Region, b, r.region.to_string()), t.clone()))
            .collect();
        if let Some(reg) = self.rules.regions.iter().find(|x| x.id == r.region) {
            let province = self.rules.provinces[reg.province].name.clone();
            for (&b, t) in &matched {
                if self.rules.businesses[b].province_threshold.is_some() {
                    keys.push(((Scope::Province, b, province.clone()), t.clone()));
                }
            }
        }
        for (key, templates) in keys {
            let b = key.1;
            self.events.entry(key.clone()).or_default().push((
                seq,
                r.ts,
                caller.clone(),
                templates,
                r.id.clone(),
                r.text.to_string(),
            ));
            let threshold = self.threshold(&key);
            let counts: Vec<(i64, u32)> = self
                .windows_containing(r.ts)
                .into_iter()
                .map(|k| (k, self.count(&key, k)))
                .collect();
            let max = counts.iter().map(|c| c.1).max().unwrap_or(0);
            let hot_end = counts
                .iter()
                .filter(|c| c.1 >= threshold)
                .map(|c| c.0 * self.slide + self.size)
                .max();
            if let Some((_, max_count, end)) = self.open.get_mut(&key) {
                *max_count = (*max_count).max(max);
                if let Some(h) = hot_end {
                    *end = (*end).max(h);
                }
                continue;
            }
            let Some(&(k, c)) = counts.iter().filter(|c| c.1 >= threshold).fold(
                None,
                |best: Option<&(i64, u32)>, x| match best {
                    Some(b) if b.1 >= x.1 => Some(b),
                    _ => Some(x),
                },
            ) else {
                continue;
            };
            let (s, e) = (k * self.slide, k * self.slide + self.size);
            let in_window: Vec<_> = self.events[&key]
                .iter()
                .filter(|ev| ev.1 >= s && ev.1 < e)
                .collect();
            let mut per_template: BTreeMap<String, u32> = BTreeMap::new();
            for ev in &in_window {
                for &t in &ev.3 {
                    *per_template
                        .entry(self.rules.templates[t].id.clone())
                        .or_default() += 1;
                }
            }
            let mut by_seq = in_window.clone();
            by_seq.sort_by_key(|ev| ev.0);
            let samples = by_seq
                .iter()
                .rev()
                .take(3)
                .rev()
                .map(|ev| AlertSample {
                    id: ev.4.clone(),
                    text: mask_and_cut(&ev.5, 300),
                })
                .collect();
            let bus = &self.rules.businesses[b];
            let dept = &self.rules.departments[bus.department];
            let extended = self.rules.extended;
            let alert = Alert {
                alert_id: scoped_alert_id(&bus.id, key.0, &key.2, r.ts, &r.id),
                state: AlertState::Firing,
                business: bus.id.clone(),
                business_name: bus.name.clone(),
                region: key.2.clone(),
                department: dept.id.clone(),
                department_name: dept.name.clone(),
                scope: extended.then_some(key.0),
                kind: extended.then_some(Kind::Threshold),
                baseline: None,
                p_value: None,
                count: c,
                threshold,
                window_start: s,
                window_end: e,
                triggered_by: Some(r.id.clone()),
                event_ts: r.ts,
                templates: per_template.into_iter().collect(),
                samples,
                terms: Vec::new(),
                resolved_by: None,
                watermark: None,
                end_of_input: false,
                reason: None,
                seq,
                business_index: b,
            };
            self.out.push(alert.clone());
            self.open.insert(key, (alert, max, hot_end.unwrap_or(e)));
        }
        // Resolution, straight from 5.5: no window that can still receive
        // events is at or above the threshold.
        let wm = self.wm.unwrap_or(0);
        let limit = wm - self.lateness;
        let keys: Vec<MKey> = self.open.keys().cloned().collect();
        let mut resolved = Vec::new();
        for key in keys {
            let threshold = self.threshold(&key);
            let first = (limit - self.size).div_euclid(self.slide) + 1;
            let last = wm.div_euclid(self.slide);
            let hot = (first..=last)
                .any(|k| k * self.slide + self.size > limit && self.count(&key, k) >= threshold);
            if !hot {
                resolved.push(key);
            }
        }
        for key in resolved {
            let (f, max, end) = self.open.remove(&key).unwrap();
            self.out
                .push(resolve(f, max, end, wm, Some(&r.id), r.ts, false));
        }
    }

    fn finish(&mut self) {
        let wm = self.wm.unwrap_or(0);
        let open = std::mem::take(&mut self.open);
        for (_, (f, max, end)) in open {
            self.out.push(resolve(f, max, end, wm, None, wm, true));
        }
    }
}

fn resolve(f: Alert, max: u32, end: i64, wm: i64, by: Option<&str>, ts: i64, eoi: bool) -> Alert {
    Alert {
        state: AlertState::Resolved,
        count: max,
        window_end: end,
        triggered_by: None,
        event_ts: ts,
        templates: vec![],
        samples: vec![],
        resolved_by: by.map(str::to_owned),
        watermark: Some(wm),
        end_of_input: eoi,
        ..f
    }
}

fn recs() -> impl Strategy<Value = Vec<Rec>> {
    let one = (
        0i64..40,
        0i64..60,
        0..REGIONS.len(),
        0..TEXTS.len(),
        proptest::option::weighted(0.85, 0..CALLERS.len()),
        0u8..10,
    );
    proptest::collection::vec(one, 0..120).prop_map(|v| {
        let mut minute = 0i64;
        v.into_iter()
            .enumerate()
            .map(|(i, (step, sec, region, text, caller, jitter))| {
                // Mostly forward in time, sometimes a few minutes back.
                minute += step / 8;
                let back = if jitter == 0 {
                    13
                } else if jitter < 3 {
                    4
                } else {
                    0
                };
                Rec {
                    id: format!("WO{i}"),
                    ts: 1_773_532_800_000 + (minute - back) * 60_000 + sec * 1000,
                    region: REGIONS[region],
                    text: TEXTS[text],
                    caller: caller.map(|c| CALLERS[c]),
                }
            })
            .collect()
    })
}

fn geometry() -> impl Strategy<Value = (&'static str, &'static str, &'static str, u32, u32)> {
    (
        prop_oneof![
            Just(("10m", "1m")),
            Just(("5m", "1m")),
            Just(("90s", "1m")),
            Just(("6m", "4m")),
            Just(("2m", "3m")),
            Just(("3m", "3m")),
        ],
        prop_oneof![Just("0s"), Just("2m"), Just("5m")],
        2u32..5,
        1u32..4,
    )
        .prop_map(|((size, slide), late, t1, t2)| (size, slide, late, t1, t2))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_the_plain_model(recs in recs(), (size, slide, late, t1, t2) in geometry()) {
        let rules = Arc::new(load_str(&rules_text(size, slide, late, t1, t2), "model.toml").unwrap());
        let mut engine = Engine::new(rules.clone(), EngineConfig::default()).unwrap();
        let mut out = Collect::default();
        let mut model = Model::new(&rules);
        for (i, r) in recs.iter().enumerate() {
            engine.process_line(i as u64 + 1, r.line().as_bytes(), &mut out);
            model.feed(i as u64 + 1, r);
        }
        engine.finish(&mut out);
        model.finish();
        let got: Vec<String> = out.alerts.iter().map(Alert::to_json).collect();
        let want: Vec<String> = model.out.iter().map(Alert::to_json).collect();
        prop_assert_eq!(got, want);
    }

    /// Section 8: per-region thresholds and province roll-ups against the
    /// same model, keys per (scope, business, place).
    #[test]
    fn section8_engine_equals_the_plain_model(
        recs in recs(),
        (size, slide, late, t1, t2) in geometry(),
        o in 1u32..5,
        p in 2u32..7,
    ) {
        let rules = Arc::new(load_str(&rules_text_s8(size, slide, late, t1, t2, Some((o, p))), "model8.toml").unwrap());
        prop_assert!(rules.extended);
        let mut engine = Engine::new(rules.clone(), EngineConfig::default()).unwrap();
        let mut out = Collect::default();
        let mut model = Model::new(&rules);
        for (i, r) in recs.iter().enumerate() {
            engine.process_line(i as u64 + 1, r.line().as_bytes(), &mut out);
            model.feed(i as u64 + 1, r);
        }
        engine.finish(&mut out);
        model.finish();
        let got: Vec<String> = out.alerts.iter().map(Alert::to_json).collect();
        let want: Vec<String> = model.out.iter().map(Alert::to_json).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn output_does_not_depend_on_chunking(recs in recs(), reads in proptest::collection::vec(1usize..700, 1..20)) {
        let rules = Arc::new(load_str(&rules_text("10m", "1m", "2m", 2, 2), "model.toml").unwrap());
        let mut input = String::new();
        for (i, r) in recs.iter().enumerate() {
            input.push_str(&r.line());
            input.push_str(if i % 7 == 3 { "\r\n" } else { "\n" });
            if i % 11 == 5 {
                input.push_str("\n{not json\n");
            }
        }
        let whole = run_replay(&rules, input.as_bytes());
        let chunked = run_replay(&rules, Chunked { data: input.as_bytes(), reads: &reads, i: 0 });
        prop_assert_eq!(whole, chunked);
    }
}

/// A reader that returns data in the given read sizes, cycling.
struct Chunked<'a> {
    data: &'a [u8],
    reads: &'a [usize],
    i: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.reads[self.i % self.reads.len()]
            .min(buf.len())
            .min(self.data.len());
        self.i += 1;
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn run_replay(rules: &Arc<Rules>, input: impl Read) -> (Vec<u8>, Vec<u8>) {
    let alerts = SharedBuf::default();
    let dead = SharedBuf::default();
    let mut a = JsonlWriter::new(Box::new(alerts.clone()));
    let mut d = JsonlWriter::new(Box::new(dead.clone()));
    replay(
        rules.clone(),
        input,
        &mut ReplayOutputs {
            alerts: &mut a,
            dead_letters: Some(&mut d),
        },
        EngineConfig::default(),
        None,
    )
    .unwrap();
    drop((a, d));
    (alerts.take(), dead.take())
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn model_sanity_a_simple_batch_fires_and_resolves() {
    let rules = load_str(&rules_text("10m", "1m", "2m", 3, 3), "m.toml").unwrap();
    let mut m = Model::new(&rules);
    for (i, c) in ["a", "b", "c"].iter().enumerate() {
        m.feed(
            i as u64 + 1,
            &Rec {
                id: format!("{i}"),
                ts: i as i64 * 60_000,
                region: "杭州",
                text: TEXTS[0],
                caller: Some(c),
            },
        );
    }
    m.feed(
        4,
        &Rec {
            id: "4".into(),
            ts: 60 * 60_000,
            region: "杭州",
            text: TEXTS[7],
            caller: None,
        },
    );
    let states: Vec<AlertState> = m.out.iter().map(|a| a.state).collect();
    assert_eq!(states, vec![AlertState::Firing, AlertState::Resolved]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// `--threads N` gives the sequential bytes whatever the workers,
    /// shards and chunk size.
    #[test]
    fn parallel_replay_equals_sequential(
        recs in recs(),
        (size, slide, late, t1, t2) in geometry(),
        workers in 1usize..5,
        shards in 1usize..4,
        chunk in 64usize..2000,
        bom in any::<bool>(),
        reads in proptest::collection::vec(1usize..700, 1..6),
        s8 in proptest::option::of((1u32..5, 2u32..7)),
    ) {
        let rules = Arc::new(load_str(&rules_text_s8(size, slide, late, t1, t2, s8), "model.toml").unwrap());
        // A byte-order mark is skipped by both; the parallel reader also
        // gets short reads, so buffers are recycled with a line carried
        // over at every size.
        let mut input = String::from(if bom { "\u{feff}" } else { "" });
        for (i, r) in recs.iter().enumerate() {
            input.push_str(&r.line());
            input.push('\n');
            if i % 13 == 4 {
                input.push_str("{broken\n\n");
            }
        }
        let sequential = run_replay(&rules, input.as_bytes());
        let alerts = SharedBuf::default();
        let dead = SharedBuf::default();
        let mut a = JsonlWriter::new(Box::new(alerts.clone()));
        let mut d = JsonlWriter::new(Box::new(dead.clone()));
        let layout = hotspot::parallel::Layout { workers, shards, chunk_bytes: chunk };
        let parallel_input = Chunked { data: input.as_bytes(), reads: &reads, i: 0 };
        hotspot::parallel::replay_parallel(rules.clone(), parallel_input, &mut ReplayOutputs { alerts: &mut a, dead_letters: Some(&mut d) }, EngineConfig::default(), layout, None).unwrap();
        drop((a, d));
        prop_assert_eq!(sequential, (alerts.take(), dead.take()));
    }
}
