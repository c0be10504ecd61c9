//! The engine: drives each line through decode → lateness → normalise →
//! match → windows → alerts, in input order, synchronously (CONTRACT 5).
//!
//! One [`Engine`] is one event-time stream with one watermark. Replay, the
//! live service and each Fluvio partition all feed lines to an engine the
//! same way, so the same lines give the same alerts whatever delivered them.
//! The engine knows nothing of files, sockets or tokio: it takes bytes and
//! hands alerts and rejects to an [`Output`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::matcher::{Matcher, Matches};
use crate::normalize::Normalizer;
use crate::record::{Decoded, Decoder, Reject, RejectInfo};
use crate::rules::Rules;
use crate::topics::{TopicDoc, Topics, TopicsState};
use crate::window::baseline::Volume;
use crate::window::key::caller_id;
use crate::window::store::{Counted, KeyStoreState};
use crate::window::{Geometry, KeyStore, Resolver};

/// Where the engine puts what it produces.
pub trait Output {
    /// An alert line (firing or resolved), in output order.
    fn alert(&mut self, alert: &Alert);
    /// A rejected line: its 1-based number, raw bytes and the reason.
    fn reject(&mut self, line: u64, raw: &[u8], info: &RejectInfo);
}

/// Collects alerts and rejects in memory (tests, HTTP answers).
#[derive(Debug, Default)]
pub struct Collect {
    pub alerts: Vec<Alert>,
    pub rejects: Vec<(u64, Reject)>,
}

impl Output for Collect {
    fn alert(&mut self, alert: &Alert) {
        self.alerts.push(alert.clone());
    }
    fn reject(&mut self, line: u64, _raw: &[u8], info: &RejectInfo) {
        self.rejects.push((line, info.reason));
    }
}

/// What happened to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Blank,
    /// Accepted; `matched` tells whether any template matched.
    Accepted {
        matched: bool,
    },
    /// Older than the watermark minus the allowed lateness (5.1).
    Late,
    Rejected(RejectInfo),
}

/// The run's counts (the `--summary` object and the metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Lines read, blank ones included.
    pub lines: u64,
    pub blank: u64,
    pub accepted: u64,
    pub late_dropped: u64,
    /// Per [`Reject`], in [`Reject::ALL`] order.
    pub rejected: [u64; 4],
    /// (accepted record, business) matches: a record matching templates of
    /// two businesses counts twice (the summary's `matched_total`).
    pub matched: u64,
    /// Accepted records that matched at least one template.
    pub matched_records: u64,
    pub alerts_firing: u64,
    pub alerts_resolved: u64,
    /// Bytes of input, newlines included.
    pub bytes: u64,
    /// Complaints not counted because the key limit was reached.
    pub keys_overflow: u64,
    /// The new-topic detector's counts (rules with `[discovery]` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_topics: Option<crate::topics::TopicStats>,
}

impl Stats {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Adds another engine's counts (parallel shards, partitions).
    pub fn add(&mut self, o: &Stats) {
        self.lines += o.lines;
        self.blank += o.blank;
        self.accepted += o.accepted;
        self.late_dropped += o.late_dropped;
        for (a, b) in self.rejected.iter_mut().zip(o.rejected) {
            *a += b;
        }
        self.matched += o.matched;
        self.matched_records += o.matched_records;
        self.alerts_firing += o.alerts_firing;
        self.alerts_resolved += o.alerts_resolved;
        self.bytes += o.bytes;
        self.keys_overflow += o.keys_overflow;
        if let Some(t) = &o.new_topics {
            self.new_topics.get_or_insert_with(Default::default).add(t);
        }
    }
}

/// Tunables that are not part of the rules.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// The most (business, region) keys held at once; complaints for new
    /// keys beyond it are counted in `keys_overflow` and not windowed.
    /// A live key costs about 1.5 KB (window counts, bins, callers, three
    /// samples), so the default 50,000 bounds keyed state near 80 MB; a
    /// province has some hundreds to a few thousand real keys.
    pub max_keys: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { max_keys: 50_000 }
    }
}

/// The per-record scratch state of decoding and matching, reusable across
/// records and threads-local by construction.
pub struct Scratch {
    pub decoder: Decoder,
    pub normalizer: Normalizer,
    pub matches: Matches,
}

impl Scratch {
    pub fn new(matcher: &Matcher) -> Self {
        Scratch {
            decoder: Decoder::new(),
            normalizer: Normalizer::new(),
            matches: matcher.scratch(),
        }
    }
}

/// The saved form of an [`Engine`]: watermark, counts and keyed state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineState {
    pub watermark: Option<i64>,
    pub stats: Stats,
    /// Business id → accepted records that matched it.
    pub matched: std::collections::BTreeMap<String, u64>,
    pub keys: KeyStoreState,
    /// The stream's volume (rules with a surge test only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<Volume>,
    /// The new-topic detector (rules with `[discovery]` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<TopicsState>,
}

/// A sequential engine over one event-time stream.
pub struct Engine {
    rules: Arc<Rules>,
    matcher: Arc<Matcher>,
    geo: Geometry,
    scratch: Scratch,
    keys: KeyStore,
    watermark: Option<i64>,
    stats: Stats,
    per_business: Vec<u64>,
    resolved: Vec<Alert>,
    fired: Vec<Alert>,
    /// The stream's volume, kept when a business has a surge test.
    volume: Option<Volume>,
    /// The new-topic detector, with `[discovery]`.
    topics: Option<Topics>,
    config: EngineConfig,
    /// Remember the last record's region and businesses (live metrics).
    tracking: bool,
    last_region: String,
    last_businesses: Vec<usize>,
}

impl Engine {
    /// An engine for `rules`, compiling its matcher.
    pub fn new(
        rules: Arc<Rules>,
        config: EngineConfig,
    ) -> Result<Self, crate::matcher::BuildError> {
        let matcher = Arc::new(Matcher::new(&rules)?);
        Ok(Self::with_matcher(rules, matcher, config))
    }

    /// An engine sharing an already compiled matcher.
    pub fn with_matcher(rules: Arc<Rules>, matcher: Arc<Matcher>, config: EngineConfig) -> Self {
        let has_surge = rules.has_surge();
        Engine {
            geo: Geometry::new(rules.window),
            scratch: Scratch::new(&matcher),
            keys: KeyStore::new(rules.clone(), config.max_keys),
            topics: Topics::new(rules.clone()),
            per_business: vec![0; rules.businesses.len()],
            rules,
            matcher,
            watermark: None,
            stats: Stats::default(),
            resolved: Vec::new(),
            fired: Vec::new(),
            volume: has_surge.then(Volume::default),
            config,
            tracking: false,
            last_region: String::new(),
            last_businesses: Vec::new(),
        }
    }

    /// Makes the engine remember the region and matched businesses of the
    /// last accepted record ([`Engine::last_region`],
    /// [`Engine::last_businesses`]), for per-region metrics.
    pub fn set_tracking(&mut self, on: bool) {
        self.tracking = on;
    }

    pub fn last_region(&self) -> &str {
        &self.last_region
    }

    pub fn last_businesses(&self) -> &[usize] {
        &self.last_businesses
    }

    /// The saved form of this engine (checkpoints).
    pub fn export(&self) -> EngineState {
        EngineState {
            watermark: self.watermark,
            stats: self.stats(),
            matched: self
                .rules
                .businesses
                .iter()
                .map(|b| b.id.clone())
                .zip(self.per_business.iter().copied())
                .collect(),
            keys: self.keys.export(),
            volume: self.volume.clone(),
            topics: self.topics.as_ref().map(Topics::export),
        }
    }

    /// An engine for `rules` continuing from `saved`. Keys of businesses
    /// that are gone or count differently under `rules` are dropped; their
    /// open alerts resolve (reason `rules_reload`) into `out`, at input
    /// position `seq`.
    pub fn restore(
        rules: Arc<Rules>,
        matcher: Arc<Matcher>,
        config: EngineConfig,
        saved: EngineState,
        seq: u64,
        out: &mut dyn Output,
    ) -> Self {
        let mut e = Engine::with_matcher(rules.clone(), matcher, config);
        e.watermark = saved.watermark;
        e.stats = saved.stats;
        if e.volume.is_some() {
            e.volume = Some(saved.volume.unwrap_or_default());
        }
        for (b, bus) in rules.businesses.iter().enumerate() {
            e.per_business[b] = saved.matched.get(&bus.id).copied().unwrap_or(0);
        }
        let mut dropped = Vec::new();
        e.keys = KeyStore::restore(
            rules,
            config.max_keys,
            saved.keys,
            saved.watermark,
            seq,
            &mut dropped,
        );
        e.keys.overflow = e.stats.keys_overflow;
        match saved.topics {
            Some(t) => {
                e.topics = Topics::restore(e.rules.clone(), t, saved.watermark, seq, &mut dropped)
            }
            // Learning starts now (a reload that adds `[discovery]`).
            None => {}
        }
        for a in &dropped {
            e.stats.alerts_resolved += 1;
            out.alert(a);
        }
        e
    }

    /// Switches to new rules, keeping the window state of every business
    /// that counts the same way under them (see [`Engine::restore`]).
    pub fn reload(
        &mut self,
        rules: Arc<Rules>,
        matcher: Arc<Matcher>,
        seq: u64,
        out: &mut dyn Output,
    ) {
        let saved = self.export();
        let tracking = self.tracking;
        *self = Engine::restore(rules, matcher, self.config, saved, seq, out);
        self.tracking = tracking;
    }

    /// The idle watermark (off in replay): with no record for a while, the
    /// live service moves the watermark on with the wall clock so that open
    /// alerts resolve after traffic stops. Resolutions carry reason `idle`
    /// and no resolving record. Returns whether the watermark moved.
    pub fn advance_idle(&mut self, wm: i64, seq: u64, out: &mut dyn Output) -> bool {
        if self.watermark.is_none_or(|w| wm <= w) {
            return false;
        }
        self.watermark = Some(wm);
        // Called once a tick, not per record: sweep everything due.
        self.keys.sweep_up_to(wm, usize::MAX);
        self.resolved.clear();
        self.keys
            .resolve_because(wm, seq, "idle", &mut self.resolved);
        if let Some(t) = &mut self.topics {
            t.resolve_because(wm, seq, "idle", &mut self.resolved);
        }
        for a in &self.resolved {
            self.stats.alerts_resolved += 1;
            out.alert(a);
        }
        true
    }

    pub fn matcher(&self) -> &Arc<Matcher> {
        &self.matcher
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.keys_overflow = self.keys.overflow;
        s.new_topics = self.topics.as_ref().map(Topics::stats);
        s
    }

    pub fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// The new-topic detector (rules with `[discovery]`).
    pub fn topics(&self) -> Option<&Topics> {
        self.topics.as_ref()
    }

    /// Processes one line (without its newline). `line_no` is its 1-based
    /// position in the stream; it orders samples and names dead letters, so
    /// it must grow with every line.
    pub fn process_line(&mut self, line_no: u64, line: &[u8], out: &mut dyn Output) -> Outcome {
        self.stats.lines += 1;
        self.stats.bytes += line.len() as u64 + 1;
        // Split the borrows: the decoded record borrows the scratch decoder.
        let Engine { scratch, .. } = self;
        let rec = match scratch.decoder.decode(line) {
            Decoded::Blank => {
                self.stats.blank += 1;
                return Outcome::Blank;
            }
            Decoded::Rejected(info) => {
                self.stats.rejected[info.reason.index()] += 1;
                out.reject(line_no, line, &info);
                return Outcome::Rejected(info);
            }
            Decoded::Record(r) => r,
        };
        let geo = self.geo;
        if geo.is_late(rec.ts, self.watermark) {
            self.stats.late_dropped += 1;
            return Outcome::Late;
        }
        self.stats.accepted += 1;
        let scale = match &mut self.volume {
            Some(v) => v.observe(rec.ts, self.watermark),
            None => 1.0,
        };
        self.matcher
            .find_text(rec.text, &mut scratch.normalizer, &mut scratch.matches);
        let matched = !scratch.matches.is_empty();
        if self.tracking {
            self.last_region.clear();
            self.last_region.push_str(rec.region);
            self.last_businesses.clear();
            self.last_businesses
                .extend(scratch.matches.businesses().map(|(b, _)| b));
        }
        if matched {
            self.stats.matched_records += 1;
            for (b, _) in scratch.matches.businesses() {
                self.stats.matched += 1;
                self.per_business[b] += 1;
            }
            let counted = Counted {
                seq: line_no,
                id: rec.id,
                ts: rec.ts,
                region: rec.region,
                text: rec.text,
                caller: rec.caller.map(caller_id),
            };
            self.fired.clear();
            let matches = &scratch.matches;
            self.keys.count_record(
                &self.rules,
                || matches.businesses(),
                &counted,
                scale,
                &mut self.fired,
            );
            for a in &self.fired {
                self.stats.alerts_firing += 1;
                out.alert(a);
            }
        } else if let Some(t) = &mut self.topics {
            // New topics: complaints no template covers (CONTRACT 8).
            if !scratch.matches.is_known() {
                self.fired.clear();
                t.observe(
                    &TopicDoc {
                        seq: line_no,
                        id: rec.id,
                        ts: rec.ts,
                        region: rec.region,
                        text: rec.text,
                        caller: rec.caller.map(caller_id),
                    },
                    self.watermark,
                    &mut self.fired,
                );
                for a in &self.fired {
                    self.stats.alerts_firing += 1;
                    out.alert(a);
                }
            }
        }
        let advanced = self.watermark.is_none_or(|wm| rec.ts > wm);
        if advanced {
            self.watermark = Some(rec.ts);
            self.keys.sweep(rec.ts);
            self.resolved.clear();
            self.keys.resolve(
                rec.ts,
                Resolver {
                    seq: line_no,
                    id: Some(rec.id),
                    ts: rec.ts,
                },
                &mut self.resolved,
            );
            if let Some(t) = &mut self.topics {
                t.resolve(
                    rec.ts,
                    Resolver {
                        seq: line_no,
                        id: Some(rec.id),
                        ts: rec.ts,
                    },
                    &mut self.resolved,
                );
            }
            for a in &self.resolved {
                self.stats.alerts_resolved += 1;
                out.alert(a);
            }
        }
        Outcome::Accepted { matched }
    }

    /// End of input: every open alert resolves (5.6).
    pub fn finish(&mut self, out: &mut dyn Output) {
        let Some(wm) = self.watermark else { return };
        self.resolved.clear();
        self.keys.finish(wm, &mut self.resolved);
        if let Some(t) = &mut self.topics {
            t.finish(wm, &mut self.resolved);
        }
        for a in &self.resolved {
            self.stats.alerts_resolved += 1;
            out.alert(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;

    const RULES: &str = r#"
[window]
size = "10m"
slide = "1m"
allowed_lateness = "2m"
[[department]]
id = "vas"
[[business]]
id = "crbt"
department = "vas"
threshold = 3
[[business]]
id = "mms"
department = "vas"
threshold = 2
[[template]]
id = "crbt.copy"
business = "crbt"
all_of = [["彩铃"], ["复制"]]
[[template]]
id = "mms.fail"
business = "mms"
all_of = [["彩信"]]
"#;

    fn line(id: &str, minute: i64, region: &str, text: &str, caller: &str) -> String {
        format!(
            r#"{{"id":"{id}","ts":{},"region":"{region}","text":"{text}","caller":"{caller}"}}"#,
            1_773_532_800_000 + minute * 60_000
        )
    }

    fn run(lines: &[String]) -> (Collect, Stats) {
        let rules = Arc::new(load_str(RULES, "t.toml").unwrap());
        let mut e = Engine::new(rules, EngineConfig::default()).unwrap();
        let mut out = Collect::default();
        for (i, l) in lines.iter().enumerate() {
            e.process_line(i as u64 + 1, l.as_bytes(), &mut out);
        }
        e.finish(&mut out);
        (out, e.stats())
    }

    #[test]
    fn fires_at_threshold_and_resolves_after_lateness() {
        let lines = vec![
            line("1", 0, "杭州", "彩铃复制失败", "a"),
            line("2", 1, "杭州", "彩铃复制失败", "a"),
            line("3", 2, "杭州", "彩铃复制失败", "b"),
            line("4", 3, "杭州", "彩铃复制失败", "c"), // third distinct caller: fires
            line("5", 4, "杭州", "彩铃复制失败", "d"), // update only
            line("6", 13, "宁波", "无关", "x"),        // wm 13: limit 11 < 12, still open
            line("7", 14, "宁波", "无关", "x"),        // wm 14: limit 12 >= 12, resolves
        ];
        let (out, stats) = run(&lines);
        // Windows are [w, w+10) in minutes. At record 4 (c at 3), windows
        // -6..=1 hold a, b and c; the most callers, earliest start is -6.
        let fired = &out.alerts[0];
        assert_eq!(
            (fired.state, fired.triggered_by.as_deref(), fired.count),
            (crate::alert::AlertState::Firing, Some("4"), 3)
        );
        assert_eq!(fired.window_start, 1_773_532_800_000 - 6 * 60_000);
        assert_eq!(fired.window_end, 1_773_532_800_000 + 4 * 60_000);
        assert_eq!(
            fired
                .samples
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            vec!["2", "3", "4"]
        );
        assert_eq!(fired.templates, vec![("crbt.copy".to_string(), 4)]);
        assert_eq!(stats.alerts_firing, 1);
        assert_eq!(out.alerts.len(), 2);
        // d at 4 makes windows -5..=1 hold 4 callers and window 2 ([2,12))
        // hold b, c, d: the last hot window ends at minute 12.
        let resolved = &out.alerts[1];
        assert_eq!(resolved.count, 4);
        assert_eq!(resolved.window_start, fired.window_start);
        assert_eq!(resolved.window_end, 1_773_532_800_000 + 12 * 60_000);
        assert_eq!(resolved.resolved_by.as_deref(), Some("7"));
        assert_eq!(resolved.watermark, Some(1_773_532_800_000 + 14 * 60_000));
        assert_eq!(resolved.alert_id, fired.alert_id);
        assert!(!resolved.end_of_input);
    }

    #[test]
    fn end_of_input_resolves_in_business_then_region_order() {
        let lines = vec![
            line("1", 0, "温州", "彩信收不到", "a"),
            line("2", 0, "杭州", "彩信收不到", "b"),
            line("3", 0, "温州", "彩信收不到", "c"),
            line("4", 0, "杭州", "彩信收不到 彩铃复制", "d"),
            line("5", 0, "杭州", "彩铃复制", "e"),
            line("6", 0, "杭州", "彩铃复制", "f"),
        ];
        let (out, _) = run(&lines);
        let order: Vec<(String, String, String)> = out
            .alerts
            .iter()
            .map(|a| {
                (
                    a.state.as_str().into(),
                    a.business.clone(),
                    a.region.clone(),
                )
            })
            .collect();
        assert_eq!(
            order,
            vec![
                ("firing".into(), "mms".into(), "温州".into()),
                ("firing".into(), "mms".into(), "杭州".into()),
                ("firing".into(), "crbt".into(), "杭州".into()),
                ("resolved".into(), "crbt".into(), "杭州".into()),
                ("resolved".into(), "mms".into(), "杭州".into()),
                ("resolved".into(), "mms".into(), "温州".into()),
            ]
        );
        assert!(out.alerts[3].end_of_input && out.alerts[3].resolved_by.is_none());
    }

    #[test]
    fn late_records_are_dropped_and_counted() {
        let lines = vec![
            line("1", 10, "杭州", "彩信", "a"),
            line("2", 8, "杭州", "彩信", "b"), // exactly wm - lateness: kept, fires
            line("3", 7, "杭州", "彩信", "c"), // late
            "".to_string(),
            "{bad".to_string(),
        ];
        let (out, stats) = run(&lines);
        assert_eq!(stats.accepted, 2);
        assert_eq!(stats.late_dropped, 1);
        assert_eq!(stats.blank, 1);
        assert_eq!(stats.rejected[Reject::InvalidJson.index()], 1);
        assert_eq!(stats.lines, 5);
        assert_eq!(out.rejects, vec![(5, Reject::InvalidJson)]);
        assert_eq!(out.alerts[0].triggered_by.as_deref(), Some("2"));
        assert_eq!(out.alerts[0].event_ts, 1_773_532_800_000 + 8 * 60_000);
    }
}
