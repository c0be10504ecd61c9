//! The rule library: departments, businesses with thresholds, and keyword
//! templates, plus the window settings (CONTRACT 2 and 5.14).
//!
//! [`Rules`] is the validated, index-based form the engine works with: every
//! cross reference (template → business → department) is an index, keywords
//! are already normalised, and templates are ordered by (business, template
//! id) so that "the templates of one business, keys sorted" is a contiguous,
//! already sorted range. Loading and error reporting live in [`load`]:
//! [`load()`] is the one loader every command and every reload uses.

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Business {
    pub id: String,
    pub name: String,
    /// Index into [`Rules::departments`].
    pub department: usize,
    /// Distinct callers in one window and region that make a batch complaint.
    pub threshold: u32,
    /// Indices into [`Rules::templates`], a contiguous ascending range.
    pub templates: std::ops::Range<usize>,
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
}

impl Rules {
    /// The index of a business by id.
    pub fn business_index(&self, id: &str) -> Option<usize> {
        self.businesses.iter().position(|b| b.id == id)
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
pub const EMBEDDED_RULES: &str = include_str!("../../fixtures/rules.toml");

/// Loads [`EMBEDDED_RULES`] (checked by the test suite, so this only fails
/// in a broken build): [`load()`] without a path, less the text.
pub fn embedded() -> Result<Rules, RulesErrors> {
    load(None).map(|(rules, _)| rules)
}
