//! All keys of one engine (or one shard of it): the [`KeyState`] of every
//! live (business, region), the open alert of each, and the bookkeeping that
//! fires, resolves and frees them (CONTRACT 5.3-5.6).
//!
//! Keys live in a slab indexed by a hash map from (business, region); a slot
//! is reused once its key has no live window and no open alert. Open alerts
//! sit in a min-heap on the end of their last hot window, so the check
//! "after each accepted record, for every open alert" costs one peek unless
//! something actually resolves. Heap entries are never updated in place: a
//! newer entry is pushed and stale ones are recognised by their generation
//! when they surface.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hashbrown::{Equivalent, HashMap};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::Geometry;
use super::baseline::{Baseline, MAX_BASELINES, surge_level};
use super::key::{CallerId, KeyState, Sample, keeps_sample};
use crate::alert::{Alert, AlertSample, AlertState, Kind, Scope, round_sig, scoped_alert_id};
use crate::rules::diff::{baselines_kept, window_state_kept};
use crate::rules::{Rules, place_hash};

/// Keys trimmed per [`KeyStore::sweep`] call at most. Sweeping is pure
/// housekeeping (it frees what no event can reach; no alert depends on
/// when it happens), so it is spread over the records that move the
/// watermark instead of trimming every due key on the one record that
/// opens a new window — which made that record take tens of
/// microseconds, the live service's per-record p99. A record adds at most
/// one heap entry per business it matched, so a budget of 16 drains the
/// heap faster than records can fill it.
pub const SWEEP_BUDGET: usize = 16;

/// A region name held inline (city and district names fit in 16 bytes of
/// UTF-8), so that checking a key's region reads the slot the key lives in
/// rather than a separate allocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Region(SmallVec<[u8; 16]>);

impl Region {
    fn new(s: &str) -> Self {
        Region(SmallVec::from_slice(s.as_bytes()))
    }

    fn as_str(&self) -> &str {
        // SAFETY: built only from a `&str` (see `Region::new`).
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl PartialOrd for Region {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Region {
    /// Code point order (that of the UTF-8 bytes), as 5.7 asks.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

/// A key: business index and exact region string.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyId {
    business: u16,
    region: Region,
}

impl Hash for KeyId {
    fn hash<H: Hasher>(&self, h: &mut H) {
        KeyRef(self.business, self.region.as_str()).hash(h)
    }
}

/// A borrowed key, to look up without allocating.
struct KeyRef<'a>(u16, &'a str);

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u16(self.0);
        self.1.hash(h);
    }
}

impl Equivalent<KeyId> for KeyRef<'_> {
    fn equivalent(&self, k: &KeyId) -> bool {
        self.0 == k.business && self.1 == k.region.as_str()
    }
}

/// The 64-bit hash of a region name that keys are indexed by (with the
/// business). Two names of one hash are told apart by the exact name kept
/// in the slot; see [`KeyStore::slot_for`].
#[inline]
pub fn region_hash(region: &str) -> u64 {
    crate::rules::place_hash(region)
}

/// Hashes the index's (business, region hash) pairs: the region hash is
/// already uniform, so a multiply mixes in the business.
#[derive(Default, Clone, Copy)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u16(&mut self, n: u16) {
        self.0 = self.0.rotate_left(16) ^ n as u64;
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(23) ^ n;
    }
}

type PairIndex = HashMap<(u16, u64), u32, std::hash::BuildHasherDefault<PairHasher>>;

/// An open alert of a key.
#[derive(Debug, Clone)]
pub struct OpenAlert {
    /// The firing line as it was written.
    pub firing: Alert,
    /// End of the latest window at or above the threshold while open.
    pub hot_end: i64,
    /// The most distinct callers of one window while open.
    pub max_count: u32,
    generation: u64,
}

/// No baseline (slot field).
const NO_BASELINE: u32 = u32::MAX;

/// The most neighbourhood complaints a key keeps for the place test (the
/// oldest go first): a window of a key holds a few dozen complaints.
const MAX_SPOTS: usize = 256;

/// The most distinct callers of one neighbourhood (`spot`) in any of the
/// windows `lo..=hi`, among a key's `spots`.
fn spot_callers(g: &Geometry, spots: &[(i64, u64, u64)], spot: u64, lo: i64, hi: i64) -> u32 {
    // The neighbourhood's own complaints first: nearly always one or two.
    let mine: SmallVec<[(i64, u64); 16]> = spots
        .iter()
        .filter(|&&(_, h, _)| h == spot)
        .map(|&(bin, _, c)| (bin, c))
        .collect();
    if mine.len() <= 1 {
        return mine.len() as u32;
    }
    let mut best = 0;
    let mut callers: SmallVec<[u64; 16]> = SmallVec::new();
    for w in lo..=hi {
        let (a, b) = g.bins_of_window(w);
        callers.clear();
        callers.extend(
            mine.iter()
                .filter(|&&(bin, _)| (a..=b).contains(&bin))
                .map(|&(_, c)| c),
        );
        callers.sort_unstable();
        callers.dedup();
        best = best.max(callers.len() as u32);
    }
    best
}

#[derive(Debug)]
struct Slot {
    key: KeyId,
    /// [`region_hash`] of the key's region.
    hash: u64,
    /// The distinct callers that open a threshold alert (`u32::MAX`: none,
    /// a province key of a business with a surge test only).
    threshold: u32,
    /// Index into [`KeyStore::baselines`] (keys of businesses with a surge
    /// test), or [`NO_BASELINE`].
    baseline: u32,
    /// Fresh complaints not learned yet, as (bin, weight), in input order:
    /// a baseline learns a complaint only once it is a window old, so that
    /// the window under test is never part of its own baseline, and the
    /// ramp of an outage that opens an alert is dropped with it.
    pending: Vec<(i64, f32)>,
    /// The surge test's expected count and level for the hour of event
    /// time and the volume scale (in steps of 0.05) they were computed at:
    /// (hour, scale bits, λ, level). Cleared when the key's exposure
    /// changes (an alert resolved).
    surge_cache: Option<(i64, u32, f64, u32)>,
    state: KeyState,
    /// The place test (`surge.place`): the live complaints of this key
    /// that name a neighbourhood, as (bin, [`place_hash`] of it, caller),
    /// in input order. Most keys have none; at most [`MAX_SPOTS`].
    spots: Vec<(i64, u64, u64)>,
    /// Boxed: an open alert is rare and large (the whole firing line), and
    /// inline it spread the slots that every count touches over more cache
    /// lines.
    alert: Option<Box<OpenAlert>>,
    used: bool,
    /// Bumped when the slot is freed, so stale sweep entries are ignored.
    generation: u32,
    /// Whether the sweep heap holds an entry for this slot.
    scheduled: bool,
}

/// The key a complaint counts in: a (business, region) or, with section
/// 8's provinces, a (business, province).
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub business: usize,
    pub scope: Scope,
    /// The region or province name.
    pub name: &'a str,
    /// [`region_hash`] of `name`.
    pub hash: u64,
    /// The threshold of this key (region overrides applied; `u32::MAX`
    /// when only a surge can open it).
    pub threshold: u32,
    /// The neighbourhood the complaint names ([`super::spot::spot_in`]),
    /// for a business with a place test; `None` otherwise.
    pub spot: Option<&'a str>,
}

impl<'a> Place<'a> {
    /// A (business, region) key with the business's own threshold.
    pub fn region(rules: &Rules, business: usize, region: &'a str) -> Self {
        Place {
            business,
            scope: Scope::Region,
            name: region,
            hash: region_hash(region),
            threshold: rules.businesses[business].threshold,
            spot: None,
        }
    }
}

/// An accepted, matched record as the key store counts it.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// Input position.
    pub seq: u64,
    pub id: &'a str,
    pub ts: i64,
    pub region: &'a str,
    pub text: &'a str,
    pub caller: Option<CallerId>,
}

/// The record that resolves alerts (5.5): the one whose watermark made them
/// resolve, or none at the end of input.
#[derive(Debug, Clone, Copy)]
pub struct Resolver<'a> {
    pub seq: u64,
    pub id: Option<&'a str>,
    pub ts: i64,
}

/// One row of the "hottest keys now" view.
#[derive(Debug, Clone, Serialize)]
pub struct Hotspot {
    pub business: String,
    pub business_name: String,
    pub region: String,
    /// `region` or `province`.
    pub scope: &'static str,
    pub department: String,
    /// Most distinct callers in one live window.
    pub distinct_callers: u32,
    pub threshold: u32,
    /// `distinct_callers / threshold`.
    pub ratio: f64,
    /// Distinct callers of the newest window minus those of the window one
    /// window-length earlier: positive while the key heats up.
    pub trend: i64,
    pub firing: bool,
}

/// What a reload would do to one key ([`KeyStore::reload_plan`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyFate {
    pub business: String,
    /// The region (or, for a province key, the province).
    pub region: String,
    pub scope: Scope,
    /// Whether its window state carries over; if not, the key starts empty.
    pub kept: bool,
    /// Its open alert, which stays open when the key is kept and resolves
    /// (reason `rules_reload`) when it is not.
    pub alert_id: Option<String>,
}

/// The saved form of a [`KeyStore`] (checkpoints, reloads): every key with
/// its windows and open alert, businesses named by id, plus what is needed
/// to tell whether the rules it was made with still count the same way.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyStoreState {
    pub window: Option<crate::rules::WindowSpec>,
    /// Business id → [`Rules::business_fingerprint`] of the rules in force.
    pub fingerprints: std::collections::BTreeMap<String, u64>,
    pub keys: Vec<KeyEntry>,
    /// Section 8: the first record's time (baselines' exposure) and the
    /// learned baselines, by business, scope, then place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baselines: Vec<BaselineEntry>,
    /// Per business with a surge test: [`Rules::learning_fingerprint`] and
    /// when it started learning (`None`: with the stream).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub learning: std::collections::BTreeMap<String, (u64, Option<i64>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    pub business: String,
    pub region: String,
    /// Absent for region keys (and in checkpoints from before section 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub state: KeyState,
    pub alert: Option<OpenAlertState>,
    /// Fresh complaints its baseline has not learned yet (bin, weight).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<(i64, f32)>,
    /// The place test's live complaints (bin, neighbourhood hash, caller
    /// hash): hashes only, no name or number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spots: Vec<(i64, u64, u64)>,
    /// The surge test's cached expected count and level (hour, scale bits,
    /// λ bits, level): a restored key must test against the same λ as the
    /// run that was not interrupted, and λ moves within the hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surge_cache: Option<(i64, u32, u64, u32)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineEntry {
    pub business: String,
    pub scope: Scope,
    pub place: String,
    pub baseline: Baseline,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenAlertState {
    /// The firing line as written.
    pub firing: String,
    pub hot_end: i64,
    pub max_count: u32,
}

/// The keyed state of an engine.
#[derive(Debug)]
pub struct KeyStore {
    rules: Arc<Rules>,
    geo: Geometry,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// (business, region hash) → slot. Looking a key up reads only this
    /// table and the slot, which holds the exact name to check.
    index: PairIndex,
    /// Keys whose (business, region hash) another key already holds in
    /// `index` (two names of one 64-bit hash: possible, never seen).
    collisions: HashMap<KeyId, u32>,
    heap: BinaryHeap<Reverse<(i64, u32, u64)>>,
    /// Keys by the window at which their oldest data dies: the sweep visits
    /// only keys that have something to free.
    due: BinaryHeap<Reverse<(i64, u32, u32)>>,
    pool: Vec<Sample>,
    swept: i64,
    generation: u64,
    max_keys: usize,
    /// Complaints not counted because the key limit was reached.
    pub overflow: u64,
    peak_keys: usize,
    /// Businesses in the rules: key class `b` is (b, region), `b + nb` is
    /// (b, province).
    nb: usize,
    /// Learned baselines, by key; they outlive the key's window state.
    baselines: Vec<Baseline>,
    baseline_index: HashMap<KeyId, u32>,
    /// The first watermark and the newest (baselines' exposure).
    started: Option<i64>,
    wm: Option<i64>,
    /// Per business: when its baselines started learning, if later than
    /// the stream (a surge test added, or its templates changed, by a
    /// reload): no surge fires before it has learned for
    /// [`super::baseline::LEARNING_MS`].
    learning_since: Vec<Option<i64>>,
}

impl KeyStore {
    /// An empty store; at most `max_keys` keys are held at once.
    pub fn new(rules: Arc<Rules>, max_keys: usize) -> Self {
        let geo = Geometry::new(rules.window);
        let nb = rules.businesses.len();
        KeyStore {
            rules,
            geo,
            slots: Vec::new(),
            free: Vec::new(),
            index: PairIndex::default(),
            collisions: HashMap::new(),
            heap: BinaryHeap::new(),
            due: BinaryHeap::new(),
            pool: Vec::new(),
            swept: i64::MIN,
            generation: 0,
            max_keys: max_keys.max(1),
            overflow: 0,
            peak_keys: 0,
            nb,
            baselines: Vec::new(),
            baseline_index: HashMap::new(),
            started: None,
            wm: None,
            learning_since: vec![None; nb],
        }
    }

    /// The business and scope of a key class.
    #[inline]
    fn class(&self, k: u16) -> (usize, Scope) {
        let k = k as usize;
        if k >= self.nb {
            (k - self.nb, Scope::Province)
        } else {
            (k, Scope::Region)
        }
    }

    #[inline]
    fn class_of(&self, business: usize, scope: Scope) -> u16 {
        match scope {
            Scope::Region => business as u16,
            Scope::Province => (business + self.nb) as u16,
        }
    }

    /// Learned baselines held.
    pub fn baseline_count(&self) -> usize {
        self.baselines.len()
    }

    /// The baseline of a key, made if its business has a surge test and
    /// the limit allows.
    fn baseline_for(&mut self, key: &KeyId) -> u32 {
        let (b, scope) = self.class(key.business);
        if self.rules.businesses[b].surge.is_none() {
            return NO_BASELINE;
        }
        // With a region table, only its regions (and provinces) learn: a
        // flood of made-up region names cannot take the baselines' room.
        if scope == Scope::Region
            && !self.rules.regions.is_empty()
            && self.rules.region_of(key.region.as_str()).is_none()
        {
            return NO_BASELINE;
        }
        if let Some(&i) = self.baseline_index.get(key) {
            return i;
        }
        if self.baselines.len() >= MAX_BASELINES {
            return NO_BASELINE;
        }
        let i = self.baselines.len() as u32;
        self.baselines.push(Baseline::default());
        self.baseline_index.insert(key.clone(), i);
        i
    }

    /// Tells the store the watermark moved (baselines measure the stream's
    /// time from its first watermark).
    #[inline]
    fn clock(&mut self, wm: i64) {
        self.started.get_or_insert(wm);
        self.wm = Some(self.wm.map_or(wm, |w| w.max(wm)));
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// Live keys now.
    pub fn len(&self) -> usize {
        self.index.len() + self.collisions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys held at once.
    pub fn peak_keys(&self) -> usize {
        self.peak_keys
    }

    /// The slot of (business, region), made if the key is new and the
    /// limit allows; `hash` is [`region_hash`] of `region`.
    fn slot_for(&mut self, business: u16, region: &str, hash: u64, threshold: u32) -> Option<u32> {
        let taken = match self.find(business, region, hash) {
            Ok(i) => return Some(i),
            Err(taken) => taken,
        };
        if self.len() >= self.max_keys {
            return None;
        }
        let key = KeyId {
            business,
            region: Region::new(region),
        };
        let baseline = self.baseline_for(&key);
        let slot = Slot {
            key: key.clone(),
            hash,
            threshold,
            baseline,
            pending: Vec::new(),
            surge_cache: None,
            state: KeyState::default(),
            spots: Vec::new(),
            alert: None,
            used: true,
            generation: 0,
            scheduled: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                let generation = self.slots[i as usize].generation;
                self.slots[i as usize] = Slot { generation, ..slot };
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        if taken {
            self.collisions.insert(key, i);
        } else {
            self.index.insert((business, hash), i);
        }
        self.peak_keys = self.peak_keys.max(self.len());
        Some(i)
    }

    /// The slot of (business, region) if the key is held, else whether
    /// another key holds its (business, region hash) in `index`.
    #[inline]
    fn find(&self, business: u16, region: &str, hash: u64) -> Result<u32, bool> {
        match self.index.get(&(business, hash)) {
            Some(&i) if self.slots[i as usize].key.region.as_str() == region => Ok(i),
            Some(_) => self
                .collisions
                .get(&KeyRef(business, region))
                .copied()
                .ok_or(true),
            None => Err(false),
        }
    }

    /// Counts one matched record in every key it belongs to, appending the
    /// alerts it fires to `fired` in output order (5.7, extended by section
    /// 8): its (business, region) keys, businesses in rules order, then its
    /// (business, province) keys the same way. `matched` yields each
    /// matched business with its template indices.
    pub fn count_record<'t, I>(
        &mut self,
        rules: &Rules,
        matched: impl Fn() -> I,
        rec: &Counted<'_>,
        scale: f32,
        fired: &mut Vec<Alert>,
    ) where
        I: Iterator<Item = (usize, &'t [u32])>,
    {
        // `rules` is the store's own (the caller's `Arc` of them): taking
        // it as an argument spares an `Arc` clone per record.
        debug_assert!(std::ptr::eq(rules, &*self.rules));
        let r = rules.region_of(rec.region);
        let hash = region_hash(rec.region);
        // The neighbourhood, read once and only for a place test.
        let mut spot: Option<Option<&str>> = None;
        for (b, templates) in matched() {
            let bus = &rules.businesses[b];
            let spot = match bus.surge.and_then(|s| s.place) {
                Some(_) => *spot.get_or_insert_with(|| super::spot::spot_in(rec.text)),
                None => None,
            };
            let place = Place {
                business: b,
                scope: Scope::Region,
                name: rec.region,
                hash,
                threshold: bus.threshold_in(r),
                spot,
            };
            fired.extend(self.count_at(
                place, templates, rec.seq, rec.id, rec.ts, rec.text, rec.caller, scale,
            ));
        }
        let Some(p) = rules.province_of(r) else {
            return;
        };
        let province = &rules.provinces[p];
        for (b, templates) in matched() {
            let bus = &rules.businesses[b];
            if !bus.counts_provinces() {
                continue;
            }
            let place = Place {
                business: b,
                scope: Scope::Province,
                name: &province.name,
                hash: province.hash,
                threshold: bus.province_threshold.unwrap_or(u32::MAX),
                spot: None,
            };
            fired.extend(self.count_at(
                place, templates, rec.seq, rec.id, rec.ts, rec.text, rec.caller, scale,
            ));
        }
    }

    /// Counts one accepted complaint for `business` in `region` with the
    /// business's own threshold: [`KeyStore::count_at`] for a rules file
    /// without section 8 (tests, benchmarks).
    #[allow(clippy::too_many_arguments)]
    pub fn count(
        &mut self,
        business: usize,
        templates: &[u32],
        seq: u64,
        id: &str,
        ts: i64,
        region: &str,
        text: &str,
        caller: Option<CallerId>,
    ) -> Option<Alert> {
        let place = Place::region(&self.rules, business, region);
        self.count_at(place, templates, seq, id, ts, text, caller, 1.0)
    }

    /// Counts one accepted complaint in the key `place` (matched through
    /// the template indices `templates` of its business) and returns the
    /// alert it fires, if any (5.3, 5.4; section 8's surge test when the
    /// business has one). `scale` is the stream's volume scale for this
    /// record ([`super::baseline::Volume`]).
    #[allow(clippy::too_many_arguments)]
    pub fn count_at(
        &mut self,
        place: Place<'_>,
        templates: &[u32],
        seq: u64,
        id: &str,
        ts: i64,
        text: &str,
        caller: Option<CallerId>,
        scale: f32,
    ) -> Option<Alert> {
        let business = place.business;
        let class = self.class_of(business, place.scope);
        let Some(i) = self.slot_for(class, place.name, place.hash, place.threshold) else {
            self.overflow += 1;
            return None;
        };
        // (No `Arc` clone of the rules to hold `b` across the mutations
        // below: its two atomic operations per count showed in profiles.)
        let (base, surge) = {
            let b = &self.rules.businesses[business];
            (b.templates.start, b.surge)
        };
        let geo = self.geo;
        let slot = &mut self.slots[i as usize];
        slot.state.prefetch();
        // Dead windows are freed here, when the key is touched anyway and
        // its data is in the cache, rather than by a sweep that would visit
        // every key each time the oldest live window moves (see
        // `schedule`). The record's own windows are all live: it is not late.
        if self.swept != i64::MIN {
            slot.state.trim(&geo, self.swept, &mut self.pool);
        }
        // Complaints a window old are learned now, before this one is
        // tested against the baseline.
        if !slot.pending.is_empty() {
            if let Some(wm) = self.wm {
                let before = geo.bin_of(wm) - geo.n;
                let done = slot.pending.iter().take_while(|p| p.0 < before).count();
                if done > 0 {
                    let bl = &mut self.baselines[slot.baseline as usize];
                    for &(bin, w) in &slot.pending[..done] {
                        bl.learn_weight(bin * geo.bin, w);
                    }
                    slot.pending.drain(..done);
                }
            }
        }
        let added = slot.state.add(
            &geo,
            geo.bin_of(ts),
            caller,
            templates.iter().map(|&t| (t as usize - base) as u16),
        )?;
        // The place test: the most distinct callers of this complaint's
        // neighbourhood in one of its windows.
        let mut at_spot = 0;
        if let (Some(spot), Some(_)) = (place.spot, surge.and_then(|s| s.place)) {
            let h = place_hash(spot);
            if self.swept != i64::MIN {
                let first = self.swept * geo.s;
                if slot.spots.first().is_some_and(|&(bin, _, _)| bin < first) {
                    slot.spots.retain(|&(bin, _, _)| bin >= first);
                }
            }
            if slot.spots.len() >= MAX_SPOTS {
                slot.spots.remove(0);
            }
            // An anonymous complaint is its own caller.
            let who = match caller {
                Some(c) => (c as u64) ^ ((c >> 64) as u64),
                None => !seq,
            };
            slot.spots.push((added.bin, h, who));
            at_spot = spot_callers(&geo, &slot.spots, h, added.lo, added.hi);
        }
        // An open alert keeps the level it opened at (a surge's level, or
        // the key's threshold); a closed key fires at the lower of its
        // threshold and, with a surge test, the fewest callers a surge
        // needs.
        let open_level = slot.alert.as_ref().map(|a| a.firing.threshold);
        let threshold = open_level.unwrap_or(slot.threshold);
        // The surge test's expected count and level now (cached per hour).
        let mut surge_now: Option<(f64, u32)> = None;
        if let (Some(sg), None, true, Some(start), Some(wm)) = (
            surge,
            open_level,
            slot.baseline != NO_BASELINE,
            self.started,
            self.wm,
        ) {
            let since = self.learning_since[business].map_or(start, |s| s.max(start));
            if wm - since >= super::baseline::LEARNING_MS {
                // Once an hour of event time per key, and again when the
                // volume scale moves by a step of 0.05 or the key's
                // exposure changes (an alert resolved): an hour's learning
                // moves a baseline of days by little, and the level is
                // the costly part.
                let hour = ts.div_euclid(3_600_000);
                let scale_q = ((scale * 20.0).round() / 20.0).max(1.0);
                surge_now = match slot.surge_cache {
                    Some((hr, sb, l, lv)) if hr == hour && sb == scale_q.to_bits() => Some((l, lv)),
                    _ => {
                        let l = self.baselines[slot.baseline as usize].expected(
                            start,
                            ts.max(start),
                            geo.size,
                            scale_q,
                        );
                        let lv = surge_level(l, sg.ratio, sg.min, sg.p_value);
                        slot.surge_cache = Some((hour, scale_q.to_bits(), l, lv));
                        Some((l, lv))
                    }
                };
            }
        }
        // Samples are kept from a little below the lowest level the key
        // can fire at (the level moves slowly with the hour and volume).
        let sample_floor = match surge_now {
            Some((_, lv)) => threshold.min(lv.saturating_sub(2).max(1)),
            None => threshold,
        };
        // A neighbourhood near its place test keeps its complaints too.
        let spot_level = surge.and_then(|s| s.place).unwrap_or(u32::MAX);
        let keep_spot = at_spot > 0 && keeps_sample(at_spot, spot_level);
        let (last_hot, max) = slot.state.hot_span(added.lo, added.hi, threshold);
        if keeps_sample(max, sample_floor) || keep_spot {
            slot.state.keep_sample(added, seq, id, text, &mut self.pool);
        }
        // Baselines learn fresh complaints of keys without an open alert
        // (a window later, see `Slot::pending`).
        if added.fresh && open_level.is_none() && slot.baseline != NO_BASELINE {
            let w = 1.0 / scale;
            match slot.pending.last_mut() {
                Some(last) if last.0 == added.bin => last.1 += w,
                _ => slot.pending.push((added.bin, w)),
            }
        }
        self.schedule(i);
        let slot = &mut self.slots[i as usize];
        if let Some(open) = &mut slot.alert {
            open.max_count = open.max_count.max(max);
            if let Some(w) = last_hot {
                let end = geo.end(w);
                if end > open.hot_end {
                    open.hot_end = end;
                    self.heap.push(Reverse((end, i, open.generation)));
                }
            }
            return None;
        }
        // Which rule opens it, at what level.
        let mut terms = Vec::new();
        let (kind, level, lambda, last_hot) = if max >= threshold {
            (Kind::Threshold, threshold, None, last_hot)
        } else {
            let (lambda, level) = surge_now?;
            if max >= level {
                let (last_hot, _) = slot.state.hot_span(added.lo, added.hi, level);
                (Kind::Surge, level, Some(lambda), last_hot)
            } else if at_spot >= spot_level {
                // The place test: the key's window as it is now is the
                // level, so that the alert resolves when it cools down.
                terms.push(place.spot.unwrap_or_default().to_owned());
                let (last_hot, _) = slot.state.hot_span(added.lo, added.hi, max);
                (Kind::Surge, max, Some(lambda), last_hot)
            } else {
                return None;
            }
        };
        let (w, count) = slot.state.hottest(added.lo, added.hi, level)?;
        // Written with three significant digits (stable, readable bytes).
        let baseline = lambda.map(|l| round_sig(l, 3));
        // (A place test's count is not improbable for the whole key: it has
        // no p_value.)
        let p_value = lambda
            .filter(|_| terms.is_empty())
            .map(|l| round_sig(super::baseline::poisson_tail(l, count), 3));
        let rules = &self.rules;
        let b = &rules.businesses[business];
        let dept = &rules.departments[b.department];
        let templates = slot
            .state
            .template_counts(&geo, w)
            .into_iter()
            .map(|(t, n)| (rules.templates[base + t as usize].id.clone(), n))
            .collect();
        let samples = slot
            .state
            .samples(&geo, w)
            .into_iter()
            .map(|s| AlertSample {
                id: s.id.clone(),
                // Masked and cut when it was kept.
                text: s.text.clone(),
            })
            .collect();
        let extended = rules.extended;
        let alert = Alert {
            alert_id: scoped_alert_id(&b.id, place.scope, place.name, ts, id),
            state: AlertState::Firing,
            business: b.id.clone(),
            business_name: b.name.clone(),
            region: place.name.to_owned(),
            department: dept.id.clone(),
            department_name: dept.name.clone(),
            scope: extended.then_some(place.scope),
            kind: extended.then_some(kind),
            baseline,
            p_value,
            count,
            threshold: level,
            window_start: geo.start(w),
            window_end: geo.end(w),
            triggered_by: Some(id.to_owned()),
            event_ts: ts,
            templates,
            samples,
            terms,
            resolved_by: None,
            watermark: None,
            end_of_input: false,
            reason: None,
            seq,
            business_index: business,
        };
        self.generation += 1;
        let hot_end = geo.end(last_hot.unwrap_or(w));
        // What led up to the alert is not normal traffic.
        slot.pending.clear();
        slot.alert = Some(Box::new(OpenAlert {
            firing: alert.clone(),
            hot_end,
            max_count: max.max(count),
            generation: self.generation,
        }));
        self.heap.push(Reverse((hot_end, i, self.generation)));
        Some(alert)
    }

    /// Resolves every open alert none of whose windows that can still
    /// receive events is hot at watermark `wm` (5.5); the resolutions are
    /// appended to `out` by business (rules order), then region (5.7).
    pub fn resolve(&mut self, wm: i64, by: Resolver<'_>, out: &mut Vec<Alert>) {
        let limit = wm - self.geo.lateness;
        let mut due: smallvec::SmallVec<[u32; 8]> = smallvec::SmallVec::new();
        while let Some(&Reverse((end, i, generation))) = self.heap.peek() {
            if end > limit {
                break;
            }
            self.heap.pop();
            let slot = &self.slots[i as usize];
            if slot.used
                && slot
                    .alert
                    .as_ref()
                    .is_some_and(|a| a.generation == generation && a.hot_end == end)
            {
                due.push(i);
            }
        }
        if due.is_empty() {
            return;
        }
        due.sort_by(|&a, &b| {
            let (a, b) = (&self.slots[a as usize].key, &self.slots[b as usize].key);
            (a.business, &a.region).cmp(&(b.business, &b.region))
        });
        due.dedup();
        for i in due {
            if let Some(open) = self.slots[i as usize].alert.take() {
                let b = self.slots[i as usize].baseline;
                if b != NO_BASELINE {
                    self.baselines[b as usize].exclude(open.firing.window_start, open.hot_end);
                    self.slots[i as usize].surge_cache = None;
                }
                out.push(resolved(*open, wm, by, false, None));
                if self.slots[i as usize].state.is_empty() {
                    self.free_slot(i);
                }
            }
        }
    }

    /// Frees the keys that can receive no more events at watermark `wm`,
    /// at most [`SWEEP_BUDGET`] keys per call (the rest on later calls).
    pub fn sweep(&mut self, wm: i64) {
        self.sweep_up_to(wm, SWEEP_BUDGET);
    }

    /// Like [`KeyStore::sweep`], visiting at most `budget` keys.
    pub fn sweep_up_to(&mut self, wm: i64, mut budget: usize) {
        self.clock(wm);
        let first_window = self.geo.first_live_window(wm);
        if first_window > self.swept {
            self.swept = first_window;
        }
        let first_window = self.swept;
        let geo = self.geo;
        while let Some(&Reverse((due, i, generation))) = self.due.peek() {
            if due > first_window || budget == 0 {
                break;
            }
            budget -= 1;
            self.due.pop();
            let slot = &mut self.slots[i as usize];
            if !slot.used || slot.generation != generation {
                continue;
            }
            slot.scheduled = false;
            // Counted again since it was scheduled: it dies later.
            if slot.state.back_due(&geo).is_some_and(|d| d > first_window) {
                self.schedule(i);
                continue;
            }
            if slot.state.trim(&geo, first_window, &mut self.pool) && slot.alert.is_none() {
                self.free_slot(i);
            } else {
                self.schedule(i);
            }
        }
    }

    /// Puts a key on the sweep heap for when all its data is dead.
    ///
    /// A key is trimmed when it is counted ([`KeyStore::count`]), so the
    /// sweep only has to find the keys nobody counts any more and free
    /// them. Scheduling each key for the death of its *newest* data rather
    /// than its oldest makes that one heap entry per key per quiet spell,
    /// where trimming every key as its oldest window died cost as much as
    /// all the counting (a key is counted every few minutes of event time,
    /// and its oldest window dies every minute). An entry that surfaces for
    /// a key counted since is pushed again with its new date.
    fn schedule(&mut self, i: u32) {
        let geo = self.geo;
        let slot = &mut self.slots[i as usize];
        if slot.scheduled {
            return;
        }
        if let Some(due) = slot.state.back_due(&geo) {
            slot.scheduled = true;
            self.due.push(Reverse((due, i, slot.generation)));
        }
    }

    fn free_slot(&mut self, i: u32) {
        let slot = &mut self.slots[i as usize];
        // A key freed has nothing live: whatever it has not learned yet is
        // learned now (in input order, as a later count would).
        if !slot.pending.is_empty() {
            let bl = &mut self.baselines[slot.baseline as usize];
            for &(bin, w) in &slot.pending {
                bl.learn_weight(bin * self.geo.bin, w);
            }
            slot.pending.clear();
        }
        slot.used = false;
        slot.scheduled = false;
        slot.generation = slot.generation.wrapping_add(1);
        slot.state = KeyState::default();
        slot.spots = Vec::new();
        let (business, hash) = (slot.key.business, slot.hash);
        let key = std::mem::take(&mut slot.key.region);
        if self.index.get(&(business, hash)) == Some(&i) {
            self.index.remove(&(business, hash));
            // A key of the same hash waiting in `collisions` takes its place.
            let heir = self
                .collisions
                .iter()
                .find(|&(k, &j)| k.business == business && self.slots[j as usize].hash == hash)
                .map(|(k, &j)| (k.clone(), j));
            if let Some((k, j)) = heir {
                self.collisions.remove(&k);
                self.index.insert((business, hash), j);
            }
        } else {
            self.collisions.remove(&KeyRef(business, key.as_str()));
        }
        self.free.push(i);
    }

    /// End of input (5.6): every open alert resolves, by business then
    /// region, with `end_of_input` set.
    pub fn finish(&mut self, wm: i64, out: &mut Vec<Alert>) {
        let mut open: Vec<u32> = (0..self.slots.len() as u32)
            .filter(|&i| self.slots[i as usize].used && self.slots[i as usize].alert.is_some())
            .collect();
        open.sort_by(|&a, &b| {
            let (a, b) = (&self.slots[a as usize].key, &self.slots[b as usize].key);
            (a.business, &a.region).cmp(&(b.business, &b.region))
        });
        for i in open {
            if let Some(alert) = self.slots[i as usize].alert.take() {
                out.push(resolved(
                    *alert,
                    wm,
                    Resolver {
                        seq: u64::MAX,
                        id: None,
                        ts: wm,
                    },
                    true,
                    None,
                ));
            }
        }
        self.heap.clear();
    }

    /// The open alerts, by business then region.
    pub fn open_alerts(&self) -> Vec<&OpenAlert> {
        let mut v: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| s.used && s.alert.is_some())
            .collect();
        v.sort_by(|a, b| (a.key.business, &a.key.region).cmp(&(b.key.business, &b.key.region)));
        v.into_iter().filter_map(|s| s.alert.as_deref()).collect()
    }

    /// The `limit` keys closest to (or beyond) their threshold at watermark
    /// `wm`, hottest first.
    pub fn hotspots(&self, wm: i64, limit: usize) -> Vec<Hotspot> {
        let first = self.geo.first_live_window(wm);
        let newest = wm.div_euclid(self.geo.slide);
        let back = (self.geo.size / self.geo.slide).max(1);
        let mut rows: Vec<Hotspot> = self
            .slots
            .iter()
            .filter(|s| s.used)
            .filter_map(|s| {
                let (count, _) = s.state.current_max(first);
                if count == 0 && s.alert.is_none() {
                    return None;
                }
                let (bi, scope) = self.class(s.key.business);
                let b = &self.rules.businesses[bi];
                // The level the key alerts at: its open alert's, else its
                // threshold (a surge-only province key: its surge minimum).
                let threshold = match &s.alert {
                    Some(a) => a.firing.threshold,
                    None if s.threshold == u32::MAX => b.surge.map_or(u32::MAX, |sg| sg.min),
                    None => s.threshold,
                };
                Some(Hotspot {
                    business: b.id.clone(),
                    business_name: b.name.clone(),
                    region: s.key.region.as_str().to_string(),
                    scope: scope.as_str(),
                    department: self.rules.departments[b.department].id.clone(),
                    distinct_callers: count,
                    threshold,
                    ratio: count as f64 / threshold as f64,
                    trend: s.state.count(newest) as i64 - s.state.count(newest - back) as i64,
                    firing: s.alert.is_some(),
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            b.ratio
                .partial_cmp(&a.ratio)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| (&a.business, &a.region).cmp(&(&b.business, &b.region)))
        });
        rows.truncate(limit);
        rows
    }

    /// Resolves the alerts due at watermark `wm` like [`KeyStore::resolve`],
    /// marking them with `reason` (the idle watermark has no record).
    pub fn resolve_because(&mut self, wm: i64, seq: u64, reason: &str, out: &mut Vec<Alert>) {
        let from = out.len();
        self.resolve(
            wm,
            Resolver {
                seq,
                id: None,
                ts: wm,
            },
            out,
        );
        for a in &mut out[from..] {
            a.reason = Some(reason.to_owned());
        }
    }

    /// The saved form of the store (keys by business, then region).
    pub fn export(&self) -> KeyStoreState {
        let mut keys: Vec<&Slot> = self.slots.iter().filter(|s| s.used).collect();
        keys.sort_by(|a, b| (a.key.business, &a.key.region).cmp(&(b.key.business, &b.key.region)));
        KeyStoreState {
            window: Some(self.rules.window),
            fingerprints: (0..self.rules.businesses.len())
                .map(|b| {
                    (
                        self.rules.businesses[b].id.clone(),
                        self.rules.business_fingerprint(b),
                    )
                })
                .collect(),
            keys: keys
                .into_iter()
                .map(|s| KeyEntry {
                    business: self.rules.businesses[self.class(s.key.business).0]
                        .id
                        .clone(),
                    region: s.key.region.as_str().to_string(),
                    scope: match self.class(s.key.business).1 {
                        Scope::Region => None,
                        Scope::Province => Some(Scope::Province),
                    },
                    state: s.state.clone(),
                    pending: s.pending.clone(),
                    spots: s.spots.clone(),
                    surge_cache: s.surge_cache.map(|(h, sc, l, lv)| (h, sc, l.to_bits(), lv)),
                    alert: s.alert.as_ref().map(|a| OpenAlertState {
                        firing: a.firing.to_json(),
                        hot_end: a.hot_end,
                        max_count: a.max_count,
                    }),
                })
                .collect(),
            started: self.started.filter(|_| !self.baselines.is_empty()),
            learning: (0..self.rules.businesses.len())
                .filter(|&b| self.rules.businesses[b].surge.is_some())
                .map(|b| {
                    (
                        self.rules.businesses[b].id.clone(),
                        (self.rules.learning_fingerprint(b), self.learning_since[b]),
                    )
                })
                .collect(),
            baselines: {
                let mut v: Vec<(&KeyId, u32)> =
                    self.baseline_index.iter().map(|(k, &i)| (k, i)).collect();
                v.sort_by(|a, b| (a.0.business, &a.0.region).cmp(&(b.0.business, &b.0.region)));
                v.into_iter()
                    .map(|(k, i)| {
                        let (b, scope) = self.class(k.business);
                        BaselineEntry {
                            business: self.rules.businesses[b].id.clone(),
                            scope,
                            place: k.region.as_str().to_owned(),
                            baseline: self.baselines[i as usize].clone(),
                        }
                    })
                    .collect()
            },
        }
    }

    /// What a reload to `rules` would do to each key (a dry run): the same
    /// decision as [`KeyStore::restore`] of this store's
    /// [`KeyStore::export`], without exporting. Keys by business, then
    /// region, like the export.
    pub fn reload_plan(&self, rules: &Rules) -> Vec<KeyFate> {
        let kept: Vec<Option<usize>> = (0..self.rules.businesses.len())
            .map(|b| {
                let id = &self.rules.businesses[b].id;
                window_state_kept(
                    Some(self.rules.window),
                    Some(self.rules.business_fingerprint(b)),
                    rules,
                    id,
                )
            })
            .collect();
        let mut keys: Vec<&Slot> = self.slots.iter().filter(|s| s.used).collect();
        keys.sort_by(|a, b| (a.key.business, &a.key.region).cmp(&(b.key.business, &b.key.region)));
        keys.into_iter()
            .map(|s| {
                let (b, scope) = self.class(s.key.business);
                let kept = kept[b]
                    .filter(|&nb| scope == Scope::Region || rules.businesses[nb].counts_provinces())
                    .is_some();
                KeyFate {
                    business: self.rules.businesses[b].id.clone(),
                    region: s.key.region.as_str().to_owned(),
                    scope,
                    kept,
                    alert_id: s.alert.as_ref().map(|a| a.firing.alert_id.clone()),
                }
            })
            .collect()
    }

    /// Rebuilds a store for `rules` from a saved state. Keys of businesses
    /// that no longer exist, or count differently (another threshold,
    /// department or templates, or other window settings), are dropped;
    /// their open alerts are resolved into `dropped` with reason
    /// `rules_reload`, at watermark `wm`.
    pub fn restore(
        rules: Arc<Rules>,
        max_keys: usize,
        saved: KeyStoreState,
        wm: Option<i64>,
        seq: u64,
        dropped: &mut Vec<Alert>,
    ) -> Self {
        let mut store = KeyStore::new(rules.clone(), max_keys);
        store.started = saved.started;
        store.wm = wm;
        // The one rule of what survives, shared with the dry run
        // (`KeyStore::reload_plan`, `check-rules --diff`).
        let keep = |id: &str| -> Option<usize> {
            window_state_kept(
                saved.window,
                saved.fingerprints.get(id).copied(),
                &rules,
                id,
            )
        };
        // Baselines of businesses that learn from the same complaints
        // (thresholds and surge settings may have changed); a business
        // whose surge test is new, or whose templates changed, learns
        // afresh from the reload on, and fires no surge until it has.
        let mut learns = vec![false; rules.businesses.len()];
        let old_learning = |id: &str| -> Option<(u64, Option<i64>)> {
            match saved.learning.get(id) {
                Some(&l) => Some(l),
                // A state from before this field: only what the window
                // fingerprint kept.
                None if saved.learning.is_empty() && keep(id).is_some() => rules
                    .business_index(id)
                    .map(|b| (rules.learning_fingerprint(b), None)),
                None => None,
            }
        };
        for (b, bus) in rules.businesses.iter().enumerate() {
            if bus.surge.is_none() {
                continue;
            }
            match old_learning(&bus.id) {
                Some((fp, since))
                    if baselines_kept(saved.window, Some(fp), &rules, b)
                        && saved.started.is_some() =>
                {
                    learns[b] = true;
                    store.learning_since[b] = since;
                }
                // Nothing learned before (a new stream): with the stream.
                _ if saved.started.is_none() => {}
                _ => store.learning_since[b] = wm,
            }
        }
        let mut gone: Vec<(usize, String, OpenAlert)> = Vec::new();
        for entry in saved.keys {
            let open = entry.alert.and_then(|a| {
                let mut firing: Alert = serde_json::from_str(&a.firing).ok()?;
                firing.business_index = saved_business_order(&saved.fingerprints, &entry.business);
                Some(OpenAlert {
                    firing,
                    hot_end: a.hot_end,
                    max_count: a.max_count,
                    generation: 0,
                })
            });
            let scope = entry.scope.unwrap_or(Scope::Region);
            let keep = keep(&entry.business)
                .filter(|&b| scope == Scope::Region || rules.businesses[b].counts_provinces());
            match keep {
                Some(b) => {
                    let threshold = match scope {
                        Scope::Region => {
                            rules.businesses[b].threshold_in(rules.region_of(&entry.region))
                        }
                        Scope::Province => {
                            rules.businesses[b].province_threshold.unwrap_or(u32::MAX)
                        }
                    };
                    let class = store.class_of(b, scope);
                    let Some(i) =
                        store.slot_for(class, &entry.region, region_hash(&entry.region), threshold)
                    else {
                        continue;
                    };
                    let slot = &mut store.slots[i as usize];
                    slot.state = entry.state;
                    slot.spots = entry.spots;
                    if learns[b] {
                        slot.surge_cache = entry
                            .surge_cache
                            .map(|(h, sc, l, lv)| (h, sc, f64::from_bits(l), lv));
                    }
                    if slot.baseline != NO_BASELINE && learns[b] {
                        slot.pending = entry.pending;
                    }
                    if let Some(mut open) = open {
                        open.firing.business_index = b;
                        store.generation += 1;
                        open.generation = store.generation;
                        store.heap.push(Reverse((open.hot_end, i, open.generation)));
                        slot.alert = Some(Box::new(open));
                    }
                    store.schedule(i);
                }
                None => {
                    if let Some(open) = open {
                        gone.push((open.firing.business_index, entry.region, open));
                    }
                }
            }
        }
        for e in saved.baselines {
            let Some(b) = rules.business_index(&e.business) else {
                continue;
            };
            if !learns[b] {
                continue;
            }
            let key = KeyId {
                business: store.class_of(b, e.scope),
                region: Region::new(&e.place),
            };
            let i = store.baseline_for(&key);
            if i != NO_BASELINE {
                store.baselines[i as usize] = e.baseline;
                // Slots made above before their baseline was restored
                // already point at it (same index).
            }
        }
        gone.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let wm = wm.unwrap_or(0);
        for (_, _, open) in gone {
            dropped.push(resolved(
                open,
                wm,
                Resolver {
                    seq,
                    id: None,
                    ts: wm,
                },
                false,
                Some("rules_reload"),
            ));
        }
        store
    }

    /// Approximate heap bytes of all keys.
    pub fn heap_bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|s| {
                s.state.heap_bytes()
                    + std::mem::size_of::<Slot>()
                    + s.spots.capacity() * std::mem::size_of::<(i64, u64, u64)>()
            })
            .sum::<usize>()
            + self.index.capacity() * (std::mem::size_of::<(u16, u64)>() + 5)
            + self.collisions.capacity() * (std::mem::size_of::<KeyId>() + 5)
    }
}

/// A business's position in the rules a state was saved with (the order of
/// its fingerprint map is by id, which is only used to order resolutions of
/// dropped alerts deterministically).
fn saved_business_order(fingerprints: &std::collections::BTreeMap<String, u64>, id: &str) -> usize {
    fingerprints
        .keys()
        .position(|k| k == id)
        .unwrap_or(usize::MAX)
}

fn resolved(
    open: OpenAlert,
    wm: i64,
    by: Resolver<'_>,
    end_of_input: bool,
    reason: Option<&str>,
) -> Alert {
    resolved_line(
        open.firing,
        open.max_count,
        open.hot_end,
        wm,
        by,
        end_of_input,
        reason,
    )
}

/// The resolved line of an alert whose firing line was `f` (5.5, 5.6):
/// `max_count` and `hot_end` as it stood when it resolved, at watermark
/// `wm`, by `by`.
pub(crate) fn resolved_line(
    f: Alert,
    max_count: u32,
    hot_end: i64,
    wm: i64,
    by: Resolver<'_>,
    end_of_input: bool,
    reason: Option<&str>,
) -> Alert {
    Alert {
        alert_id: f.alert_id,
        state: AlertState::Resolved,
        business: f.business,
        business_name: f.business_name,
        region: f.region,
        department: f.department,
        department_name: f.department_name,
        scope: f.scope,
        kind: f.kind,
        baseline: None,
        p_value: None,
        count: max_count,
        threshold: f.threshold,
        window_start: f.window_start,
        window_end: hot_end,
        triggered_by: None,
        event_ts: by.ts,
        templates: Vec::new(),
        samples: Vec::new(),
        terms: f.terms,
        resolved_by: by.id.map(str::to_owned),
        watermark: Some(wm),
        end_of_input,
        reason: reason.map(str::to_owned),
        seq: by.seq,
        business_index: f.business_index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;

    const M: i64 = 60_000;

    fn store(max_keys: usize) -> KeyStore {
        let rules = load_str(
            r#"
[window]
size = "10m"
slide = "1m"
allowed_lateness = "2m"
[[department]]
id = "d"
[[business]]
id = "b"
department = "d"
threshold = 3
[[template]]
id = "b.t"
business = "b"
all_of = [["x"]]
"#,
            "t.toml",
        )
        .unwrap();
        KeyStore::new(Arc::new(rules), max_keys)
    }

    /// Counts one complaint the way the engine does: count, then the
    /// watermark step (sweep and resolution) when it is the newest.
    fn feed(k: &mut KeyStore, seq: u64, ts: i64, region: &str, caller: &str) -> Vec<Alert> {
        feed_hashed(k, seq, ts, region, caller, region_hash(region))
    }

    /// A weak hash, so that a test can go through the path for names that
    /// share one: a region's hash is its length ("ab", "cd" and "ef" share
    /// one). The production hash runs in every other test.
    fn weak(region: &str) -> u64 {
        region.len() as u64
    }

    fn feed_weak(k: &mut KeyStore, seq: u64, ts: i64, region: &str, caller: &str) -> Vec<Alert> {
        feed_hashed(k, seq, ts, region, caller, weak(region))
    }

    fn feed_hashed(
        k: &mut KeyStore,
        seq: u64,
        ts: i64,
        region: &str,
        caller: &str,
        hash: u64,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let place = Place {
            hash,
            ..Place::region(&k.rules.clone(), 0, region)
        };
        out.extend(k.count_at(
            place,
            &[0],
            seq,
            "id",
            ts,
            "x",
            Some(caller_id(caller)),
            1.0,
        ));
        k.sweep(ts);
        k.resolve(
            ts,
            Resolver {
                seq,
                id: Some("id"),
                ts,
            },
            &mut out,
        );
        out
    }

    use crate::window::key::caller_id;

    #[test]
    fn keys_are_freed_once_all_their_windows_are_dead() {
        let mut k = store(100);
        feed(&mut k, 1, 100 * M, "a", "1");
        feed(&mut k, 2, 100 * M, "b", "1");
        // "a" is counted again later: its data now dies later than b's.
        feed(&mut k, 3, 105 * M, "a", "2");
        assert_eq!(k.len(), 2);
        // b's only window ending last is [100,110): dead once
        // wm - 2m >= 110m, i.e. at wm 112m; a's newest at 117m.
        feed(&mut k, 4, 112 * M, "c", "1");
        assert_eq!(k.len(), 2, "b freed, a and c live");
        assert!(k.find(0, "b", region_hash("b")).is_err());
        feed(&mut k, 5, 117 * M, "c", "2");
        assert!(k.find(0, "a", region_hash("a")).is_err(), "a freed at 117m");
        assert_eq!(k.len(), 1);
    }

    #[test]
    fn a_key_with_an_open_alert_is_kept_until_it_resolves() {
        let mut k = store(100);
        assert!(feed(&mut k, 1, 100 * M, "a", "1").is_empty());
        assert!(feed(&mut k, 2, 100 * M, "a", "2").is_empty());
        let fired = feed(&mut k, 3, 100 * M, "a", "3");
        assert_eq!(fired.len(), 1);
        let mut resolved = Vec::new();
        for (i, m) in (101..=112).enumerate() {
            resolved.extend(feed(&mut k, 10 + i as u64, m * M, "z", "w"));
        }
        assert_eq!(resolved.len(), 1, "resolves at wm 112m");
        assert!(!resolved[0].is_firing());
        assert!(
            k.find(0, "a", region_hash("a")).is_err(),
            "freed with its alert"
        );
    }

    #[test]
    fn a_key_counted_every_minute_keeps_only_its_live_windows() {
        let mut k = store(100);
        for m in 0..10_000i64 {
            // Two callers alternating: never three distinct, never fires.
            feed(
                &mut k,
                m as u64 + 1,
                m * M,
                "a",
                if m % 2 == 0 { "p" } else { "q" },
            );
        }
        let slot = &k.slots[k.find(0, "a", region_hash("a")).unwrap() as usize];
        // Live: windows ending after wm - 2m, up to the newest: 10 + 2 + 1.
        assert!(
            slot.state.heap_bytes() < 4096,
            "{} bytes after 10,000 minutes",
            slot.state.heap_bytes()
        );
        assert!(slot.state.callers() <= 2);
    }

    #[test]
    fn a_flood_of_keys_stays_within_the_limit_and_is_counted() {
        let mut k = store(50);
        // 1,000 distinct regions in the same minute: 50 held, 950 over.
        for i in 0..1_000u64 {
            feed(&mut k, i + 1, 100 * M, &format!("r{i}"), "1");
            assert!(k.len() <= 50);
        }
        assert_eq!(k.len(), 50);
        assert_eq!(k.overflow, 950);
        assert_eq!(k.peak_keys(), 50);
        // Once their windows die the slots are free for new keys.
        for i in 0..100u64 {
            feed(&mut k, 2_000 + i, 200 * M, &format!("s{i}"), "1");
        }
        assert_eq!(k.len(), 50);
        assert_eq!(k.overflow, 950 + 50);
    }

    #[test]
    fn keys_whose_region_hashes_collide_stay_apart() {
        // With the weak hash "ab", "cd" and "ef" share one.
        let mut k = store(100);
        feed_weak(&mut k, 1, 100 * M, "ab", "1");
        feed_weak(&mut k, 2, 100 * M, "cd", "1");
        assert_eq!(k.len(), 2);
        assert_eq!(k.collisions.len(), 1);
        // "ab" dies first (its last window [100,110) at wm 112m); "cd",
        // counted again at 108m, lives on and takes its place in the index.
        feed_weak(&mut k, 3, 108 * M, "cd", "2");
        feed_weak(&mut k, 4, 112 * M, "xyz", "1");
        assert!(k.find(0, "ab", weak("ab")).is_err());
        let cd = k.find(0, "cd", weak("cd")).unwrap();
        assert!(k.collisions.is_empty());
        assert_eq!(k.index.get(&(0, weak("cd"))), Some(&cd));
        // Its windows kept counting: [103,113) holds caller 2 at 108m and
        // 3 and 4 at 112m: the third distinct caller fires.
        assert!(feed_weak(&mut k, 5, 112 * M, "cd", "3").is_empty());
        let fired = feed_weak(&mut k, 6, 112 * M, "cd", "4");
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!((fired[0].region.as_str(), fired[0].count), ("cd", 3));
        // A third name of the same hash.
        feed_weak(&mut k, 7, 112 * M, "ef", "1");
        assert_eq!(k.find(0, "ef", weak("ef")).map(|i| i != cd), Ok(true));
        assert_eq!(k.len(), 3);
    }
}
