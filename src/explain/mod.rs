//! Why a complaint text matches what it matches (`hotspot explain`, `GET
//! /v1/explain`, and the messages of failing template examples): the
//! normalised text, every template that one of its `all_of` groups hit,
//! with each group's hit keyword (or the miss) and each veto, and the
//! businesses that result.
//!
//! The explanation reads the same automaton scan as the engine (the
//! matcher's found keywords), then evaluates the templates that a found
//! keyword names on its own, group by group, from the rules. The engine's
//! evaluation and this one are two implementations of CONTRACT 2's rule;
//! the tests hold them equal on the conformance traffic. A text costs the
//! scan plus its hits, never a pass over the library, so a 5,000-template
//! library explains a text in microseconds (benches/micro.rs `explain`).
//!
//! Texts are explained as given; whoever shows an explanation masks phone
//! and ID numbers in it ([`Explanation::to_json`] does).

pub mod examples;

use std::sync::Arc;

use serde::Serialize;

use crate::mask::mask;
use crate::matcher::{Matcher, Matches};
use crate::normalize::{Normalizer, normalize};
use crate::rules::Rules;

/// A use of a keyword by a template: in `all_of` group `group` (0-based), or
/// as a veto ([`VETO`]).
#[derive(Debug, Clone, Copy)]
struct Use {
    template: u32,
    group: u8,
}

/// [`Use::group`] of a `none_of` keyword.
const VETO: u8 = u8::MAX;

/// Explains texts against one rule library (build once per library).
#[derive(Debug)]
pub struct Explainer {
    rules: Arc<Rules>,
    matcher: Arc<Matcher>,
    /// `uses[use_start[p]..use_start[p + 1]]`: the templates that keyword
    /// `p` (the matcher's pattern id) is in, and where.
    use_start: Vec<u32>,
    uses: Vec<Use>,
    /// Per template, its keywords' pattern ids: `all_of` groups in order,
    /// then `none_of`, flattened in rules order (`kw_start[t]..kw_start[t + 1]`).
    kw_start: Vec<u32>,
    kw: Vec<u32>,
}

/// One `all_of` group of a template, for a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupHit {
    /// The group's keywords (normalised), in rules order.
    pub keywords: Vec<String>,
    /// The first of them that the text holds; `None`: the group missed.
    pub hit: Option<String>,
}

/// One `none_of` keyword of a template, for a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VetoHit {
    pub keyword: String,
    /// Whether the text holds it (and so vetoes the template).
    pub hit: bool,
}

/// One template, for a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateExplanation {
    pub id: String,
    /// The business id.
    pub business: String,
    pub phenomenon: String,
    /// Every group hit and no veto did.
    pub matched: bool,
    pub groups: Vec<GroupHit>,
    pub vetoes: Vec<VetoHit>,
    /// Index into [`Rules::templates`].
    #[serde(skip)]
    pub index: usize,
}

impl TemplateExplanation {
    /// The groups and vetoes in one line: `group 1 hit "彩铃", no keyword of
    /// group 2 (复制|同步), veto "咨询如何" fired` (`no veto fired` when
    /// none did).
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| match &group.hit {
                Some(k) => format!("group {} hit \"{}\"", g + 1, mask(k)),
                None => format!(
                    "no keyword of group {} ({})",
                    g + 1,
                    mask(&group.keywords.join("|"))
                ),
            })
            .collect();
        let fired: Vec<String> = self
            .vetoes
            .iter()
            .filter(|v| v.hit)
            .map(|v| format!("\"{}\"", mask(&v.keyword)))
            .collect();
        parts.push(match fired.len() {
            0 => "no veto fired".to_owned(),
            1 => format!("veto {} fired", fired[0]),
            _ => format!("vetoes {} fired", fired.join(", ")),
        });
        parts.join(", ")
    }
}

/// A business that the text counts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BusinessHit {
    pub id: String,
    pub name: String,
    /// The department id.
    pub department: String,
    /// Its matched templates (ids, rules order).
    pub templates: Vec<String>,
}

/// What one text matches, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The text as given.
    pub text: String,
    /// After NFKC and ASCII lower-case: what keywords are looked for in.
    pub normalized: String,
    /// Every template one of whose `all_of` groups the text hit, in rules
    /// order (business, then template id).
    pub templates: Vec<TemplateExplanation>,
    /// The businesses the complaint counts for, in rules order.
    pub businesses: Vec<BusinessHit>,
}

impl Explanation {
    /// The stable JSON form (README "Rule authors"): `text` and
    /// `normalized` with phone and ID numbers masked, `matched`, the rules'
    /// `rules_version`, `templates` and `businesses`.
    pub fn to_json(&self, rules: &Rules) -> serde_json::Value {
        let mut v = serde_json::json!({
            "rules_version": rules.version,
            "text": mask(&self.text),
            "normalized": mask(&self.normalized),
            "matched": !self.businesses.is_empty(),
            "templates": self.templates,
            "businesses": self.businesses,
        });
        // Keywords are the rules' own, but a template could name a number.
        if let Some(ts) = v["templates"].as_array_mut() {
            for t in ts {
                for g in t["groups"].as_array_mut().into_iter().flatten() {
                    if let Some(h) = g["hit"].as_str() {
                        g["hit"] = mask(h).into_owned().into();
                    }
                }
            }
        }
        v
    }

    /// The matched templates (indices into [`Rules::templates`], ascending).
    pub fn matched(&self) -> Vec<usize> {
        self.templates
            .iter()
            .filter(|t| t.matched)
            .map(|t| t.index)
            .collect()
    }

    /// For people, several lines: the normalised text, each template with
    /// its groups and vetoes, the businesses.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(out, "normalised: {}", mask(&self.normalized));
        if self.templates.is_empty() {
            let _ = writeln!(out, "no template has a keyword group in this text");
        }
        for t in &self.templates {
            let _ = writeln!(
                out,
                "{} {} ({}): {}",
                if t.matched { "MATCH" } else { "miss " },
                t.id,
                t.business,
                if t.phenomenon.is_empty() {
                    "-"
                } else {
                    &t.phenomenon
                }
            );
            for (g, group) in t.groups.iter().enumerate() {
                let keywords = mask(&group.keywords.join(" | ")).into_owned();
                match &group.hit {
                    Some(k) => {
                        let _ =
                            writeln!(out, "    group {} hit {:<8} [{keywords}]", g + 1, mask(k));
                    }
                    None => {
                        let _ = writeln!(out, "    no keyword of group {} [{keywords}]", g + 1);
                    }
                }
            }
            for v in &t.vetoes {
                if v.hit {
                    let _ = writeln!(out, "    veto {} fired", mask(&v.keyword));
                }
            }
            let quiet = t.vetoes.iter().filter(|v| !v.hit).count();
            if quiet > 0 {
                let _ = writeln!(
                    out,
                    "    {} veto{} not in the text",
                    quiet,
                    if quiet == 1 { "" } else { "es" }
                );
            }
        }
        if self.businesses.is_empty() {
            let _ = writeln!(
                out,
                "businesses: none (the complaint counts for no business)"
            );
        } else {
            let list: Vec<String> = self
                .businesses
                .iter()
                .map(|b| {
                    format!(
                        "{} {} → {} [{}]",
                        b.id,
                        b.name,
                        b.department,
                        b.templates.join(", ")
                    )
                })
                .collect();
            let _ = writeln!(out, "businesses: {}", list.join("; "));
        }
        out
    }
}

impl Explainer {
    /// Indexes the library's keywords by the matcher's pattern ids.
    pub fn new(rules: Arc<Rules>, matcher: Arc<Matcher>) -> Self {
        let (use_start, uses, kw_start, kw) = Self::index(&rules, &matcher);
        Explainer {
            rules,
            matcher,
            use_start,
            uses,
            kw_start,
            kw,
        }
    }

    #[allow(clippy::type_complexity)]
    fn index(rules: &Rules, matcher: &Matcher) -> (Vec<u32>, Vec<Use>, Vec<u32>, Vec<u32>) {
        let ids: hashbrown::HashMap<&str, u32> = (0..matcher.pattern_count() as u32)
            .map(|p| (matcher.keyword(p), p))
            .collect();
        let id = |k: &str| ids.get(k).copied().unwrap_or(u32::MAX);
        let mut per_pattern: Vec<Vec<Use>> = vec![Vec::new(); matcher.pattern_count()];
        let mut kw_start = Vec::with_capacity(rules.templates.len() + 1);
        let mut kw = Vec::new();
        for (t, tpl) in rules.templates.iter().enumerate() {
            kw_start.push(kw.len() as u32);
            let groups = tpl.all_of.iter().enumerate().map(|(g, ks)| (g as u8, ks));
            for (group, ks) in groups.chain(std::iter::once((VETO, &tpl.none_of))) {
                for k in ks {
                    let p = id(k);
                    kw.push(p);
                    if let Some(list) = per_pattern.get_mut(p as usize) {
                        let u = Use {
                            template: t as u32,
                            group,
                        };
                        // A keyword twice in one group is one use.
                        if !list
                            .last()
                            .is_some_and(|l| l.template == u.template && l.group == group)
                        {
                            list.push(u);
                        }
                    }
                }
            }
        }
        kw_start.push(kw.len() as u32);
        let mut use_start = Vec::with_capacity(per_pattern.len() + 1);
        let mut uses = Vec::new();
        for list in per_pattern {
            use_start.push(uses.len() as u32);
            uses.extend(list);
        }
        use_start.push(uses.len() as u32);
        (use_start, uses, kw_start, kw)
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    pub fn matcher(&self) -> &Arc<Matcher> {
        &self.matcher
    }

    /// Explains `text` (as written: it is normalised here).
    pub fn explain(&self, text: &str) -> Explanation {
        let mut m = self.matcher.scratch();
        self.explain_with(text, &mut m)
    }

    /// [`Explainer::explain`] with reused matcher scratch state.
    pub fn explain_with(&self, text: &str, m: &mut Matches) -> Explanation {
        let normalized = normalize(text);
        self.matcher.find(&normalized, m);
        let mut found: Vec<u32> = m.patterns().to_vec();
        found.sort_unstable();
        let mut candidates: Vec<u32> = found
            .iter()
            .flat_map(|&p| self.uses_of(p))
            .filter(|u| u.group != VETO)
            .map(|u| u.template)
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let templates: Vec<TemplateExplanation> = candidates
            .iter()
            .map(|&t| self.template_with(t as usize, &found))
            .collect();
        let mut businesses: Vec<BusinessHit> = Vec::new();
        for t in templates.iter().filter(|t| t.matched) {
            let b = self.rules.templates[t.index].business;
            let bus = &self.rules.businesses[b];
            match businesses.last_mut() {
                Some(last) if last.id == bus.id => last.templates.push(t.id.clone()),
                _ => businesses.push(BusinessHit {
                    id: bus.id.clone(),
                    name: bus.name.clone(),
                    department: self.rules.departments[bus.department].id.clone(),
                    templates: vec![t.id.clone()],
                }),
            }
        }
        Explanation {
            text: text.to_owned(),
            normalized,
            templates,
            businesses,
        }
    }

    /// How template `t` (index into [`Rules::templates`]) sees `text`,
    /// whether or not a group of it hit.
    pub fn template(&self, t: usize, text: &str) -> TemplateExplanation {
        let mut m = self.matcher.scratch();
        self.matcher.find_text(text, &mut Normalizer::new(), &mut m);
        let mut found: Vec<u32> = m.patterns().to_vec();
        found.sort_unstable();
        self.template_with(t, &found)
    }

    /// Whether, of the patterns `found` in a text that matched no
    /// template, every `all_of` group of some template hit: a veto stopped
    /// it (CONTRACT 8 calls such a text known, not new).
    pub fn vetoed(&self, found: &[u32]) -> bool {
        let mut sorted = found.to_vec();
        sorted.sort_unstable();
        let mut seen: Vec<u32> = Vec::new();
        for &p in &sorted {
            for u in self.uses_of(p) {
                if u.group == VETO || seen.contains(&u.template) {
                    continue;
                }
                seen.push(u.template);
                let t = u.template as usize;
                let ids = &self.kw[self.kw_start[t] as usize..self.kw_start[t + 1] as usize];
                let mut at = 0;
                let all = self.rules.templates[t].all_of.iter().all(|g| {
                    let hit = ids[at..at + g.len()]
                        .iter()
                        .any(|q| sorted.binary_search(q).is_ok());
                    at += g.len();
                    hit
                });
                if all {
                    return true;
                }
            }
        }
        false
    }

    fn uses_of(&self, p: u32) -> &[Use] {
        let p = p as usize;
        &self.uses[self.use_start[p] as usize..self.use_start[p + 1] as usize]
    }

    /// Template `t` against the sorted pattern ids `found`.
    fn template_with(&self, t: usize, found: &[u32]) -> TemplateExplanation {
        let tpl = &self.rules.templates[t];
        let ids = &self.kw[self.kw_start[t] as usize..self.kw_start[t + 1] as usize];
        let has = |p: u32| found.binary_search(&p).is_ok();
        let mut at = 0;
        let groups: Vec<GroupHit> = tpl
            .all_of
            .iter()
            .map(|keywords| {
                let ids = &ids[at..at + keywords.len()];
                at += keywords.len();
                GroupHit {
                    keywords: keywords.clone(),
                    hit: keywords
                        .iter()
                        .zip(ids)
                        .find(|(_, p)| has(**p))
                        .map(|(k, _)| k.clone()),
                }
            })
            .collect();
        let vetoes: Vec<VetoHit> = tpl
            .none_of
            .iter()
            .zip(&ids[at..])
            .map(|(k, &p)| VetoHit {
                keyword: k.clone(),
                hit: has(p),
            })
            .collect();
        let matched = groups.iter().all(|g| g.hit.is_some()) && !vetoes.iter().any(|v| v.hit);
        TemplateExplanation {
            id: tpl.id.clone(),
            business: self.rules.businesses[tpl.business].id.clone(),
            phenomenon: tpl.phenomenon.clone(),
            matched,
            groups,
            vetoes,
            index: t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;

    const RULES: &str = r#"
[[department]]
id = "vas"
name = "数据业务部"
[[business]]
id = "crbt"
name = "彩铃"
department = "vas"
threshold = 2
[[business]]
id = "data"
department = "vas"
threshold = 2
[[template]]
id = "crbt.copy"
business = "crbt"
phenomenon = "彩铃复制失败"
all_of = [["彩铃", "炫铃"], ["复制", "同步"]]
none_of = ["咨询如何", "测试工单"]
[[template]]
id = "crbt.set"
business = "crbt"
all_of = [["彩铃"], ["设置"]]
[[template]]
id = "data.gprs"
business = "data"
all_of = [["GPRS"], ["失败"]]
"#;

    fn explainer() -> Explainer {
        let rules = Arc::new(load_str(RULES, "r.toml").unwrap());
        let matcher = Arc::new(Matcher::new(&rules).unwrap());
        Explainer::new(rules, matcher)
    }

    #[test]
    fn groups_vetoes_and_businesses() {
        let e = explainer();
        let x = e.explain("客户反映炫铃复制不了，ＧＰＲＳ失败");
        assert_eq!(x.normalized, "客户反映炫铃复制不了,gprs失败");
        let ids: Vec<(&str, bool)> = x
            .templates
            .iter()
            .map(|t| (t.id.as_str(), t.matched))
            .collect();
        assert_eq!(ids, [("crbt.copy", true), ("data.gprs", true)]);
        assert_eq!(x.templates[0].groups[0].hit.as_deref(), Some("炫铃"));
        assert_eq!(x.templates[0].groups[1].hit.as_deref(), Some("复制"));
        let b: Vec<&str> = x.businesses.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(b, ["crbt", "data"]);

        // A miss and a veto, each named.
        let x = e.explain("咨询如何设置彩铃");
        let copy = &x.templates[0];
        assert_eq!(copy.id, "crbt.copy");
        assert!(!copy.matched);
        assert_eq!(
            copy.summary(),
            "group 1 hit \"彩铃\", no keyword of group 2 (复制|同步), veto \"咨询如何\" fired"
        );
        assert!(x.templates[1].matched, "crbt.set");
        assert_eq!(x.businesses.len(), 1);
        assert_eq!(x.businesses[0].templates, ["crbt.set"]);

        // Only a veto: no template is listed.
        let x = e.explain("测试工单");
        assert!(x.templates.is_empty() && x.businesses.is_empty());
    }

    #[test]
    fn json_is_masked() {
        let e = explainer();
        let x = e.explain("彩铃复制失败，回访13812345678");
        let v = x.to_json(e.rules());
        assert_eq!(v["text"], "彩铃复制失败，回访138****5678");
        assert_eq!(v["normalized"], "彩铃复制失败,回访138****5678");
        assert_eq!(v["matched"], true);
        assert_eq!(v["templates"][0]["groups"][1]["hit"], "复制");
        assert_eq!(v["businesses"][0]["department"], "vas");
        assert!(!x.render().contains("12345678"));
    }
}
