//! What a reload from one rule library to another changes (`check-rules
//! --diff OLD NEW`, `POST /-/reload?dry_run=true`): businesses and
//! templates added, removed or changed, thresholds, departments, the
//! window and the region table — and, per business, whether its window
//! state (and so its open alerts) and its learned baselines survive.
//!
//! Survival is decided here, once, for the dry run and the real reload
//! alike: [`window_state_kept`] and [`baselines_kept`] are what the key
//! store's restore calls (`hotspot`'s `window::store`), so a dry run says exactly
//! what a reload then does. The rule: a business keeps its window state when
//! the window settings and its [`Rules::business_fingerprint`] (id,
//! threshold, department, section 8 settings, templates' ids and keywords)
//! are unchanged; names, phenomena, descriptions and examples do not count.
//! Its open alerts stay open with it; otherwise they resolve at once with
//! `"reason": "rules_reload"` and the keys start empty. A business with a
//! surge test keeps its baselines when the window and its
//! [`Rules::learning_fingerprint`] are unchanged (retuning thresholds or
//! `ratio`/`min`/`p_value` keeps them); otherwise it learns afresh from the
//! reload and fires no surge until it has.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Rules, Template, WindowSpec};
use crate::time::format_duration;

/// Whether business `id`'s window state, saved under window `saved_window`
/// with fingerprint `saved_fingerprint`, survives into `rules`: its index
/// there, or `None` (gone, or counting differently). A state saved before
/// fingerprints existed (`None`) is kept while the business exists.
pub fn window_state_kept(
    saved_window: Option<WindowSpec>,
    saved_fingerprint: Option<u64>,
    rules: &Rules,
    id: &str,
) -> Option<usize> {
    let b = rules.business_index(id)?;
    let same_window = saved_window.is_none_or(|w| w == rules.window);
    (same_window && saved_fingerprint.is_none_or(|f| f == rules.business_fingerprint(b)))
        .then_some(b)
}

/// Whether business `b` of `rules` (with a surge test) keeps baselines
/// learned under window `saved_window` with learning fingerprint
/// `saved_learning`.
pub fn baselines_kept(
    saved_window: Option<WindowSpec>,
    saved_learning: Option<u64>,
    rules: &Rules,
    b: usize,
) -> bool {
    saved_window.is_none_or(|w| w == rules.window)
        && saved_learning == Some(rules.learning_fingerprint(b))
}

/// What becomes of a business's window state and open alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateFate {
    /// Counts and open alerts carry over.
    Kept,
    /// Keys start empty; open alerts resolve with reason `rules_reload`.
    Dropped,
    /// A new business: its keys start empty.
    New,
}

/// What becomes of a surge business's learned baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineFate {
    Kept,
    /// Learned afresh from the reload: no surge alert until it has learned
    /// for two days.
    Relearn,
}

/// How one business differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusinessDiff {
    pub id: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// What changed, for people: `threshold 23 → 30`, `templates: + crbt.x`.
    pub details: Vec<String>,
    /// `(old, new)` when the threshold changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<(u32, u32)>,
    /// A removed business's state is dropped.
    pub window_state: StateFate,
    /// For a business of the new rules with a surge test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baselines: Option<BaselineFate>,
}

/// How one template differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateDiff {
    pub id: String,
    /// Its business (in the new rules; the old for a removed template).
    pub business: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    pub details: Vec<String>,
}

/// Everything a reload from `old` to `new` changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesDiff {
    pub from: Side,
    pub to: Side,
    /// `from → to` of the window settings, when they changed (every
    /// business then drops its state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<(String, String)>,
    pub departments: Vec<String>,
    /// Businesses that changed, in old-rules order, then added ones.
    pub businesses: Vec<BusinessDiff>,
    pub templates: Vec<TemplateDiff>,
    /// Region table (section 8) changes, for people.
    pub regions: Vec<String>,
    /// `[discovery]` changes, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<String>,
    /// Business ids of the new rules whose window state is kept / dropped
    /// (changed or new ones start empty), and of removed businesses.
    pub state_kept: Vec<String>,
    pub state_dropped: Vec<String>,
    pub removed: Vec<String>,
}

/// One side of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub source: String,
    pub version: String,
}

impl RulesDiff {
    /// Whether nothing differs but the file's bytes (comments, order).
    pub fn is_empty(&self) -> bool {
        self.window.is_none()
            && self.departments.is_empty()
            && self.businesses.is_empty()
            && self.templates.is_empty()
            && self.regions.is_empty()
            && self.discovery.is_none()
    }

    /// For people, one line an item.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} (version {}) → {} (version {})",
            self.from.source, self.from.version, self.to.source, self.to.version
        );
        if self.is_empty() {
            let _ = writeln!(
                out,
                "  no change that a reload would act on: every business keeps its window state and open alerts"
            );
            return out;
        }
        if let Some((a, b)) = &self.window {
            let _ = writeln!(
                out,
                "  window: {a} → {b}: every business drops its window state; open alerts resolve (reason rules_reload)"
            );
        }
        for d in &self.departments {
            let _ = writeln!(out, "  department {d}");
        }
        for r in &self.regions {
            let _ = writeln!(out, "  region {r}");
        }
        if let Some(d) = &self.discovery {
            let _ = writeln!(out, "  discovery: {d}");
        }
        for b in &self.businesses {
            let fate = match b.window_state {
                StateFate::Kept => "window state and open alerts kept",
                StateFate::Dropped if b.change == "removed" => {
                    "window state dropped; open alerts resolve (reason rules_reload)"
                }
                StateFate::Dropped => {
                    "window state dropped, keys start empty; open alerts resolve (reason rules_reload)"
                }
                StateFate::New => "keys start empty",
            };
            let baselines = match b.baselines {
                Some(BaselineFate::Kept) => "; surge baselines kept",
                Some(BaselineFate::Relearn) => {
                    "; surge baselines learned afresh (no surge alert until learned)"
                }
                None => "",
            };
            let details = if b.details.is_empty() {
                String::new()
            } else {
                format!(" ({})", b.details.join("; "))
            };
            let _ = writeln!(
                out,
                "  business {} {}{details}: {fate}{baselines}",
                b.id, b.change
            );
        }
        for t in &self.templates {
            let details = if t.details.is_empty() {
                String::new()
            } else {
                format!(": {}", t.details.join("; "))
            };
            let _ = writeln!(
                out,
                "  template {} {} ({}){details}",
                t.id, t.change, t.business
            );
        }
        let _ = writeln!(
            out,
            "  a reload keeps the window state of {} business{} and drops it for {}{}",
            self.state_kept.len(),
            if self.state_kept.len() == 1 { "" } else { "es" },
            self.state_dropped.len() + self.removed.len(),
            if self.state_dropped.is_empty() && self.removed.is_empty() {
                String::new()
            } else {
                let mut all = self.state_dropped.clone();
                all.extend(self.removed.iter().cloned());
                format!(" ({})", all.join(", "))
            }
        );
        out
    }
}

fn window_text(w: &WindowSpec) -> String {
    format!(
        "size {}, slide {}, allowed lateness {}",
        format_duration(w.size_ms),
        format_duration(w.slide_ms),
        format_duration(w.allowed_lateness_ms)
    )
}

/// What differs in one template, for people.
fn template_details(rules_a: &Rules, a: &Template, rules_b: &Rules, b: &Template) -> Vec<String> {
    let mut d = Vec::new();
    let (ba, bb) = (
        &rules_a.businesses[a.business].id,
        &rules_b.businesses[b.business].id,
    );
    if ba != bb {
        d.push(format!("business {ba} → {bb}"));
    }
    if a.all_of != b.all_of {
        d.push(format!("all_of {:?} → {:?}", a.all_of, b.all_of));
    }
    if a.none_of != b.none_of {
        d.push(format!("none_of {:?} → {:?}", a.none_of, b.none_of));
    }
    if a.phenomenon != b.phenomenon {
        d.push(format!("phenomenon {} → {}", a.phenomenon, b.phenomenon));
    }
    if a.examples != b.examples || a.counter_examples != b.counter_examples {
        d.push("examples".into());
    }
    d
}

/// Compares two rule libraries (see the module docs).
pub fn diff(old: &Rules, new: &Rules) -> RulesDiff {
    let window =
        (old.window != new.window).then(|| (window_text(&old.window), window_text(&new.window)));

    let mut departments = Vec::new();
    for d in &old.departments {
        match new.departments.iter().find(|n| n.id == d.id) {
            None => departments.push(format!("{} removed", d.id)),
            Some(n) if n.name != d.name => {
                departments.push(format!("{} renamed {} → {}", d.id, d.name, n.name))
            }
            Some(_) => {}
        }
    }
    for d in &new.departments {
        if !old.departments.iter().any(|o| o.id == d.id) {
            departments.push(format!("{} added ({})", d.id, d.name));
        }
    }

    // Templates by id.
    let old_t: BTreeMap<&str, &Template> =
        old.templates.iter().map(|t| (t.id.as_str(), t)).collect();
    let new_t: BTreeMap<&str, &Template> =
        new.templates.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut templates = Vec::new();
    // In the new rules' order (business, id), removed ones after.
    for t in &new.templates {
        let business = new.businesses[t.business].id.clone();
        match old_t.get(t.id.as_str()) {
            None => templates.push(TemplateDiff {
                id: t.id.clone(),
                business,
                change: "added",
                details: Vec::new(),
            }),
            Some(o) => {
                let details = template_details(old, o, new, t);
                if !details.is_empty() {
                    templates.push(TemplateDiff {
                        id: t.id.clone(),
                        business,
                        change: "changed",
                        details,
                    });
                }
            }
        }
    }
    for t in &old.templates {
        if !new_t.contains_key(t.id.as_str()) {
            templates.push(TemplateDiff {
                id: t.id.clone(),
                business: old.businesses[t.business].id.clone(),
                change: "removed",
                details: Vec::new(),
            });
        }
    }

    let mut businesses = Vec::new();
    let (mut state_kept, mut state_dropped, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let old_fp = |b: usize| Some(old.business_fingerprint(b));
    for (ob, o) in old.businesses.iter().enumerate() {
        let Some(nb) = new.business_index(&o.id) else {
            removed.push(o.id.clone());
            businesses.push(BusinessDiff {
                id: o.id.clone(),
                change: "removed",
                details: Vec::new(),
                threshold: None,
                window_state: StateFate::Dropped,
                baselines: None,
            });
            continue;
        };
        let n = &new.businesses[nb];
        let kept = window_state_kept(Some(old.window), old_fp(ob), new, &o.id).is_some();
        let baselines = n.surge.map(|_| {
            let learned = o.surge.map(|_| old.learning_fingerprint(ob));
            if baselines_kept(Some(old.window), learned, new, nb) {
                BaselineFate::Kept
            } else {
                BaselineFate::Relearn
            }
        });
        let mut details = Vec::new();
        if o.name != n.name {
            details.push(format!("name {} → {}", o.name, n.name));
        }
        let (od, nd) = (
            &old.departments[o.department].id,
            &new.departments[n.department].id,
        );
        if od != nd {
            details.push(format!("department {od} → {nd}"));
        }
        let threshold = (o.threshold != n.threshold).then_some((o.threshold, n.threshold));
        if let Some((a, b)) = threshold {
            details.push(format!("threshold {a} → {b}"));
        }
        let overrides = |r: &Rules, b: &super::Business| -> Vec<(String, u32)> {
            b.region_thresholds
                .iter()
                .enumerate()
                .filter(|(_, t)| **t > 0)
                .map(|(i, t)| (r.regions[i].id.clone(), *t))
                .collect()
        };
        let (oo, no) = (overrides(old, o), overrides(new, n));
        if oo != no {
            details.push(format!("region_thresholds {oo:?} → {no:?}"));
        }
        if o.province_threshold != n.province_threshold {
            details.push(format!(
                "province_threshold {:?} → {:?}",
                o.province_threshold, n.province_threshold
            ));
        }
        if o.surge != n.surge {
            let s = |s: &Option<super::Surge>| match s {
                Some(s) => {
                    let mut t = format!("ratio {} min {} p_value {:e}", s.ratio, s.min, s.p_value);
                    if let Some(k) = s.place {
                        t.push_str(&format!(" place {k}"));
                    }
                    t
                }
                None => "none".into(),
            };
            details.push(format!("surge {} → {}", s(&o.surge), s(&n.surge)));
        }
        let changed_templates: Vec<&TemplateDiff> = templates
            .iter()
            .filter(|t| {
                t.business == o.id
                    || (t.change != "added"
                        && old_t
                            .get(t.id.as_str())
                            .is_some_and(|ot| old.businesses[ot.business].id == o.id))
            })
            .filter(|t| {
                // Only what the engine reads: examples and phenomena alone
                // change nothing here.
                t.change != "changed"
                    || t.details
                        .iter()
                        .any(|d| !(d == "examples" || d.starts_with("phenomenon ")))
            })
            .collect();
        if !changed_templates.is_empty() {
            let list: Vec<String> = changed_templates
                .iter()
                .map(|t| {
                    let sign = match t.change {
                        "added" => "+",
                        "removed" => "-",
                        _ => "~",
                    };
                    format!("{sign}{}", t.id)
                })
                .collect();
            details.push(format!("templates {}", list.join(" ")));
        }
        if kept {
            state_kept.push(o.id.clone());
        } else {
            state_dropped.push(o.id.clone());
        }
        if !details.is_empty() || !kept || baselines == Some(BaselineFate::Relearn) {
            if !kept && details.is_empty() {
                // Counting changed without a visible change of its own:
                // the region table it counts provinces or overrides by.
                details.push("region table".into());
            }
            businesses.push(BusinessDiff {
                id: o.id.clone(),
                change: "changed",
                details,
                threshold,
                window_state: if kept {
                    StateFate::Kept
                } else {
                    StateFate::Dropped
                },
                baselines,
            });
        }
    }
    for (nb, n) in new.businesses.iter().enumerate() {
        if old.business_index(&n.id).is_none() {
            let _ = nb;
            businesses.push(BusinessDiff {
                id: n.id.clone(),
                change: "added",
                details: vec![format!(
                    "threshold {}, department {}, {} templates",
                    n.threshold,
                    new.departments[n.department].id,
                    n.templates.len()
                )],
                threshold: None,
                window_state: StateFate::New,
                baselines: n.surge.map(|_| BaselineFate::Relearn),
            });
        }
    }

    let mut regions = Vec::new();
    for r in &old.regions {
        match new.region_of(&r.id) {
            None => regions.push(format!("{} removed", r.id)),
            Some(i) => {
                let n = &new.regions[i];
                let (op, np) = (
                    &old.provinces[r.province].name,
                    &new.provinces[n.province].name,
                );
                if op != np {
                    regions.push(format!("{} province {op} → {np}", r.id));
                }
                if r.subscribers != n.subscribers {
                    regions.push(format!(
                        "{} subscribers {:?} → {:?}",
                        r.id, r.subscribers, n.subscribers
                    ));
                }
            }
        }
    }
    for r in &new.regions {
        if old.region_of(&r.id).is_none() {
            regions.push(format!(
                "{} added (province {})",
                r.id, new.provinces[r.province].name
            ));
        }
    }
    let disc = |r: &Rules| {
        r.discovery.as_ref().map(|d| {
            format!(
                "department {}, min_callers {}",
                r.departments[d.department].id, d.min_callers
            )
        })
    };
    let discovery = match (disc(old), disc(new)) {
        (a, b) if a == b => None,
        (a, b) => Some(format!(
            "{} → {}",
            a.unwrap_or_else(|| "off".into()),
            b.unwrap_or_else(|| "off".into())
        )),
    };
    // Added businesses start empty: neither kept nor dropped.
    RulesDiff {
        from: Side {
            source: old.source.clone(),
            version: old.version.clone(),
        },
        to: Side {
            source: new.source.clone(),
            version: new.version.clone(),
        },
        window,
        departments,
        businesses,
        templates,
        regions,
        discovery,
        state_kept,
        state_dropped,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;

    const OLD: &str = r#"
[[department]]
id = "vas"
name = "数据业务部"
[[business]]
id = "crbt"
name = "彩铃"
department = "vas"
threshold = 8
[[business]]
id = "mms"
department = "vas"
threshold = 5
[[business]]
id = "sms"
department = "vas"
threshold = 5
[[template]]
id = "crbt.copy"
business = "crbt"
all_of = [["彩铃"], ["复制"]]
[[template]]
id = "mms.fail"
business = "mms"
all_of = [["彩信"], ["失败"]]
[[template]]
id = "sms.fail"
business = "sms"
all_of = [["短信"], ["失败"]]
"#;

    #[test]
    fn thresholds_templates_and_state() {
        let old = load_str(OLD, "old.toml").unwrap();
        let same = diff(
            &old,
            &load_str(&OLD.replace("name = \"彩铃\"", "name = \"炫铃\""), "n.toml").unwrap(),
        );
        // A name alone: reported, state kept.
        assert_eq!(same.businesses.len(), 1);
        assert_eq!(same.businesses[0].window_state, StateFate::Kept);
        assert_eq!(same.state_kept, ["crbt", "mms", "sms"]);

        let new_text = OLD
            .replace("threshold = 8", "threshold = 10")
            .replace("[[template]]\nid = \"mms.fail\"\nbusiness = \"mms\"\nall_of = [[\"彩信\"], [\"失败\"]]\n", "")
            .replace("[[business]]\nid = \"mms\"\ndepartment = \"vas\"\nthreshold = 5\n", "")
            .replace("[\"短信\"], [\"失败\"]", "[\"短信\"], [\"失败\", \"发不出\"]")
            + "[[business]]\nid = \"cloud\"\ndepartment = \"vas\"\nthreshold = 3\n[[template]]\nid = \"cloud.sync\"\nbusiness = \"cloud\"\nall_of = [[\"云盘\"]]\n";
        let d = diff(&old, &load_str(&new_text, "new.toml").unwrap());
        let b: Vec<(&str, &str, StateFate)> = d
            .businesses
            .iter()
            .map(|b| (b.id.as_str(), b.change, b.window_state))
            .collect();
        assert_eq!(
            b,
            [
                ("crbt", "changed", StateFate::Dropped),
                ("mms", "removed", StateFate::Dropped),
                ("sms", "changed", StateFate::Dropped),
                ("cloud", "added", StateFate::New),
            ]
        );
        assert_eq!(d.businesses[0].threshold, Some((8, 10)));
        assert_eq!(d.businesses[2].details, ["templates ~sms.fail"]);
        let t: Vec<(&str, &str)> = d
            .templates
            .iter()
            .map(|t| (t.id.as_str(), t.change))
            .collect();
        assert_eq!(
            t,
            [
                ("sms.fail", "changed"),
                ("cloud.sync", "added"),
                ("mms.fail", "removed")
            ]
        );
        assert!(d.state_kept.is_empty());
        assert_eq!(d.state_dropped, ["crbt", "sms"]);
        assert_eq!(d.removed, ["mms"]);
        let text = d.render();
        assert!(
            text.contains("business crbt changed (threshold 8 → 10): window state dropped"),
            "{text}"
        );
        assert!(text.contains("drops it for 3 (crbt, sms, mms)"), "{text}");
    }

    #[test]
    fn examples_and_comments_change_nothing() {
        let old = load_str(OLD, "old.toml").unwrap();
        let new = load_str(
            &OLD.replace(
                "all_of = [[\"彩铃\"], [\"复制\"]]",
                "all_of = [[\"彩铃\"], [\"复制\"]]\n# c\nexamples = [\"彩铃复制失败\"]",
            ),
            "new.toml",
        )
        .unwrap();
        let d = diff(&old, &new);
        assert!(d.businesses.is_empty(), "{d:?}");
        assert_eq!(d.templates[0].details, ["examples"]);
        assert_eq!(d.state_kept.len(), 3);
    }
}
