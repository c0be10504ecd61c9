//! The rule library: departments, businesses with thresholds, and keyword
//! templates, plus the window settings (CONTRACT 2 and 5.14).
//!
//! [`Rules`] is the validated, index-based form the engine works with: every
//! cross reference (template → business → department) is an index, keywords
//! are already normalised, and templates are ordered by (business, template
//! id) so that "the templates of one business, keys sorted" is a contiguous,
//! already sorted range. Loading and error reporting live in [`load`]:
//! [`load()`] is the one loader every command and every reload uses.

pub mod diff;
pub mod load;

pub use load::{EMBEDDED_NAME, RulesError, RulesErrors, load, load_str};

/// Window settings shared by every business (CONTRACT 2, 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowSpec {
    /// Window length, milliseconds.
    pub size_ms: i64,
    /// A window starts every `slide_ms`.
    pub slide_ms: i64,
    /// Records older than `watermark - allowed_lateness_ms` are dropped.
    pub allowed_lateness_ms: i64,
}

impl Default for WindowSpec {
    fn default() -> Self {
        WindowSpec {
            size_ms: 30 * 60_000,
            slide_ms: 60_000,
            allowed_lateness_ms: 10 * 60_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub id: String,
    pub name: String,
    /// Section 9: the dispatch deadline of this department's alerts,
    /// milliseconds (`ack_within`), if it has one.
    pub ack_within_ms: Option<i64>,
    /// Section 9: the department told when that deadline passes
    /// unacknowledged (`escalate_to`), an index into [`Rules::departments`].
    pub escalate_to: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Business {
    pub id: String,
    pub name: String,
    /// Index into [`Rules::departments`].
    pub department: usize,
    /// Distinct callers in one window and region that make a batch complaint.
    pub threshold: u32,
    /// Indices into [`Rules::templates`], a contiguous ascending range.
    pub templates: std::ops::Range<usize>,
    /// Section 8: per-region overrides of `threshold`, indexed like
    /// [`Rules::regions`] (0 = no override). Empty when none is set.
    pub region_thresholds: Vec<u32>,
    /// Section 8: the threshold of the (business, province) keys.
    pub province_threshold: Option<u32>,
    /// Section 8: adaptive detection against a learned baseline.
    pub surge: Option<Surge>,
}

impl Business {
    /// The threshold of the (business, region) key of table region `r`
    /// (`None`: a region not in the table).
    #[inline]
    pub fn threshold_in(&self, r: Option<usize>) -> u32 {
        match r.and_then(|r| self.region_thresholds.get(r)) {
            Some(&t) if t > 0 => t,
            _ => self.threshold,
        }
    }

    /// Whether this business counts province keys: it has a province
    /// threshold or a surge test (province keys have a baseline too).
    #[inline]
    pub fn counts_provinces(&self) -> bool {
        self.province_threshold.is_some() || self.surge.is_some()
    }
}

/// The 64-bit hash of a region or province name that the key store
/// indexes keys by (with the business).
#[inline]
pub fn place_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// `surge = { ratio, min, p_value }` (CONTRACT 8): a window is a surge when
/// it has at least `min` distinct callers, at least `ratio` × baseline, and
/// a Poisson tail probability under the baseline below `p_value`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Surge {
    pub ratio: f64,
    pub min: u32,
    pub p_value: f64,
    /// `place = K` (an extension of section 8): a window in which `K`
    /// distinct callers of the key name the same neighbourhood (`XX区`/
    /// `XX县` + a 小区, 花园, 路 …, see `hotspot::window::spot`) is a surge
    /// too, whatever the key's count. `None`: no place test.
    pub place: Option<u32>,
}

/// The default `p_value` of a surge test. A province has some thousands of
/// (business, place) keys, each tested on every complaint; at 1e-6 the
/// chance fluctuation of a key that is exactly at its baseline alerts about
/// once a year per thousand keys, where 1e-3 (a usual "significant") would
/// alert every day. See the README's "Surge" section.
pub const DEFAULT_P_VALUE: f64 = 1e-6;

/// One `[[region]]` entry: a city (the records' exact `region` string) and
/// its province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionDef {
    pub id: String,
    /// Index into [`Rules::provinces`].
    pub province: usize,
    pub subscribers: Option<u64>,
}

/// A province: the regions of the table that name it, in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Province {
    pub name: String,
    pub regions: Vec<usize>,
    /// The key store's hash of `name` (computed once).
    pub hash: u64,
}

/// `[discovery]`: who receives new-topic alerts, and from how many callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Index into [`Rules::departments`].
    pub department: usize,
    pub min_callers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: String,
    /// Index into [`Rules::businesses`].
    pub business: usize,
    pub phenomenon: String,
    /// Keyword groups, normalised; every group must hit.
    pub all_of: Vec<Vec<String>>,
    /// Normalised keywords; any one present vetoes the match.
    pub none_of: Vec<String>,
    /// The line of the template in its file, for messages.
    pub line: usize,
    /// `examples`: texts the template must match, as written (not
    /// normalised), each with its line. Checked by `check-rules`, at `run`
    /// start and on reload (`crate::explain::examples`); the engine never
    /// reads them.
    pub examples: Vec<Example>,
    /// `counter_examples`: texts the template must not match.
    pub counter_examples: Vec<Example>,
}

/// One text of a template's `examples` or `counter_examples`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    /// Its 1-based line in the rules file.
    pub line: usize,
}

/// A validated rule library.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Where the rules came from (a path, or a name for embedded rules).
    pub source: String,
    /// A short hash of the file's bytes: changes whenever the file does.
    pub version: String,
    pub window: WindowSpec,
    pub departments: Vec<Department>,
    /// In rules-file order: the order alerts of one record are written in.
    pub businesses: Vec<Business>,
    /// Ordered by (business index, template id).
    pub templates: Vec<Template>,
    /// Section 8 `[[region]]` table, in file order.
    pub regions: Vec<RegionDef>,
    /// Provinces in order of first mention in the region table.
    pub provinces: Vec<Province>,
    /// Region id → index into `regions`.
    pub region_lookup: std::collections::HashMap<String, usize>,
    pub discovery: Option<Discovery>,
    /// Whether the file uses any section 8 key: alerts then carry `scope`
    /// and `kind`. Without one, everything is exactly sections 1-5.
    pub extended: bool,
}

impl Rules {
    /// The index of a department by id.
    pub fn department_index(&self, id: &str) -> Option<usize> {
        self.departments.iter().position(|d| d.id == id)
    }

    /// The index of a business by id.
    pub fn business_index(&self, id: &str) -> Option<usize> {
        self.businesses.iter().position(|b| b.id == id)
    }

    /// The table index of a record's region, if the table has it.
    #[inline]
    pub fn region_of(&self, region: &str) -> Option<usize> {
        if self.regions.is_empty() {
            return None;
        }
        self.region_lookup.get(region).copied()
    }

    /// The province a record's region counts in, if any.
    #[inline]
    pub fn province_of(&self, region: Option<usize>) -> Option<usize> {
        region.map(|r| self.regions[r].province)
    }

    /// Whether any business has a surge test (the engine then keeps the
    /// stream's volume).
    pub fn has_surge(&self) -> bool {
        self.businesses.iter().any(|b| b.surge.is_some())
    }

    /// The department of business `b`.
    pub fn department_of(&self, b: usize) -> &Department {
        &self.departments[self.businesses[b].department]
    }

    /// The distinct normalised keywords of all templates (`all_of` and
    /// `none_of`), sorted.
    pub fn keywords(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .templates
            .iter()
            .flat_map(|t| t.all_of.iter().flatten().chain(t.none_of.iter()))
            .map(String::as_str)
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Number of distinct normalised keywords across all templates.
    pub fn keyword_count(&self) -> usize {
        self.keywords().len()
    }

    /// A hash of what business `b`'s baselines learn from: its id, its
    /// templates' keywords and the region table's provinces (not its
    /// thresholds or surge settings: retuning `ratio` keeps what was
    /// learned). Baselines survive a reload only when this is unchanged.
    pub fn learning_fingerprint(&self, b: usize) -> u64 {
        let bus = &self.businesses[b];
        let mut canon = format!("{}\u{1}{:?}", bus.id, self.window);
        for t in &self.templates[bus.templates.clone()] {
            canon.push_str(&format!(
                "\u{2}{}\u{3}{:?}\u{3}{:?}",
                t.id, t.all_of, t.none_of
            ));
        }
        for r in &self.regions {
            canon.push_str(&format!(
                "\u{4}{}\u{5}{}",
                r.id, self.provinces[r.province].name
            ));
        }
        xxhash_rust::xxh3::xxh3_64(canon.as_bytes())
    }

    /// A hash of everything that decides how business `b` counts and
    /// alerts: id, threshold, department id, and its templates' ids and
    /// keywords. Window state of a business survives a reload (or a restart
    /// with other rules) only when this and the window settings are
    /// unchanged. Names and descriptions do not count.
    pub fn business_fingerprint(&self, b: usize) -> u64 {
        let bus = &self.businesses[b];
        let mut canon = format!(
            "{}\u{1}{}\u{1}{}",
            bus.id, bus.threshold, self.departments[bus.department].id
        );
        // Section 8 settings change what the keys of `b` count or when they
        // alert; absent, the canonical form (and so every checkpoint made
        // before section 8 existed) is unchanged.
        if !bus.region_thresholds.is_empty()
            || bus.province_threshold.is_some()
            || bus.surge.is_some()
        {
            let overrides: Vec<(&str, u32)> = bus
                .region_thresholds
                .iter()
                .enumerate()
                .filter(|(_, t)| **t > 0)
                .map(|(r, t)| (self.regions[r].id.as_str(), *t))
                .collect();
            let provinces: Vec<(&str, &str)> = self
                .regions
                .iter()
                .map(|r| (r.id.as_str(), self.provinces[r.province].name.as_str()))
                .collect();
            // The surge as it was written before `place` existed, so that
            // state saved then survives; `place` only where set.
            let surge = bus.surge.map(|s| {
                let base = format!(
                    "Some(Surge {{ ratio: {:?}, min: {:?}, p_value: {:?} }})",
                    s.ratio, s.min, s.p_value
                );
                match s.place {
                    Some(k) => format!("{base}\u{6}{k}"),
                    None => base,
                }
            });
            canon.push_str(&format!(
                "\u{4}{overrides:?}\u{4}{:?}\u{4}{}\u{4}{provinces:?}",
                bus.province_threshold,
                surge.as_deref().unwrap_or("None")
            ));
        }
        for t in &self.templates[bus.templates.clone()] {
            canon.push_str(&format!(
                "\u{2}{}\u{3}{:?}\u{3}{:?}",
                t.id, t.all_of, t.none_of
            ));
        }
        xxhash_rust::xxh3::xxh3_64(canon.as_bytes())
    }
}

/// The rule library compiled into the binary: the fixture library a
/// provincial operator can start from (`fixtures/rules.toml`).
pub const EMBEDDED_RULES: &str = include_str!("../../../../fixtures/rules.toml");

/// Loads [`EMBEDDED_RULES`] (checked by the test suite, so this only fails
/// in a broken build): [`load()`] without a path, less the text.
pub fn embedded() -> Result<Rules, RulesErrors> {
    load(None).map(|(rules, _)| rules)
}
