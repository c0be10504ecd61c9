//! Loading a rules file: TOML through serde (unknown keys refused), then
//! validation that collects *every* problem, each naming the file, the line
//! and the item (`rules.toml:41: template 'crbt.copy_fail': unknown business
//! 'crbtt'`), so that a rule author fixes them in one pass.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Business, DEFAULT_P_VALUE, Department, Discovery, Example, Province, RegionDef, Rules, Surge,
    Template, WindowSpec,
};
use crate::normalize::normalize;
use crate::time::parse_duration;

/// One problem in a rules file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {item}: {message}")]
pub struct RulesError {
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What the problem is in: `template 'crbt.copy_fail'`, `[window]`, ...
    pub item: String,
    pub message: String,
}

/// The most `all_of` groups one template may have (they are a bit mask).
pub const MAX_GROUPS: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    window: Option<Spanned<RawWindow>>,
    #[serde(default)]
    department: Vec<Spanned<RawDepartment>>,
    #[serde(default)]
    business: Vec<Spanned<RawBusiness>>,
    #[serde(default)]
    template: Vec<Spanned<RawTemplate>>,
    #[serde(default)]
    region: Vec<Spanned<RawRegion>>,
    #[serde(default)]
    discovery: Option<Spanned<RawDiscovery>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    id: Spanned<String>,
    province: Spanned<String>,
    subscribers: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSurge {
    ratio: Spanned<f64>,
    min: Spanned<i64>,
    p_value: Option<Spanned<f64>>,
    place: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    department: Spanned<String>,
    min_callers: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    size: Option<Spanned<String>>,
    slide: Option<Spanned<String>>,
    allowed_lateness: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    id: Spanned<String>,
    name: Option<String>,
    description: Option<String>,
    /// Section 9: dispatch deadline, a duration.
    ack_within: Option<Spanned<String>>,
    /// Section 9: the department told when the deadline passes.
    escalate_to: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBusiness {
    id: Spanned<String>,
    name: Option<String>,
    department: Spanned<String>,
    threshold: Spanned<i64>,
    description: Option<String>,
    region_thresholds: Option<Spanned<std::collections::BTreeMap<String, Spanned<i64>>>>,
    province_threshold: Option<Spanned<i64>>,
    surge: Option<Spanned<RawSurge>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: Spanned<String>,
    business: Spanned<String>,
    phenomenon: Option<String>,
    all_of: Spanned<Vec<Vec<String>>>,
    #[serde(default)]
    none_of: Option<Spanned<Vec<String>>>,
    description: Option<String>,
    /// Texts the template must match (checked by `check-rules`, at `run`
    /// start and on every reload).
    #[serde(default)]
    examples: Option<Spanned<Vec<Spanned<String>>>>,
    /// Texts the template must not match.
    #[serde(default)]
    counter_examples: Option<Spanned<Vec<Spanned<String>>>>,
}

/// The name embedded rules go by in messages and in `/v1/rules`.
pub const EMBEDDED_NAME: &str = "fixtures/rules.toml (embedded)";

/// Every problem that makes a rules file unusable, in file order (never
/// empty). As an error it reads as one line: the first problem and how many
/// more there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesErrors(pub Vec<RulesError>);

impl std::fmt::Display for RulesErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unusable rules")?;
        if let Some(first) = self.0.first() {
            write!(f, ": {first}")?;
        }
        if self.0.len() > 1 {
            write!(
                f,
                " (and {} more; see hotspot check-rules)",
                self.0.len() - 1
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RulesErrors {}

impl RulesErrors {
    /// Each problem as one line (`file:line: item: message`).
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// The one way rules are loaded, by `check-rules`, `replay`, `generate`,
/// `run` and every reload: the file at `path`, or the library compiled into
/// the binary when there is none. Returns the validated rules and the text
/// they were read from (the live service checkpoints and journals it), or
/// every problem, each naming the file, line and item.
pub fn load(path: Option<&Path>) -> Result<(Rules, String), RulesErrors> {
    let (text, name) = match path {
        None => (super::EMBEDDED_RULES.to_owned(), EMBEDDED_NAME.to_owned()),
        Some(p) => {
            let name = p.display().to_string();
            match std::fs::read_to_string(p) {
                Ok(text) => (text, name),
                Err(e) => {
                    return Err(RulesErrors(vec![RulesError {
                        file: name,
                        line: 0,
                        item: "file".into(),
                        message: format!("cannot read: {e}"),
                    }]));
                }
            }
        }
    };
    match load_str(&text, &name) {
        Ok(rules) => Ok((rules, text)),
        Err(errors) => Err(RulesErrors(errors)),
    }
}

/// Byte offset → 1-based line number. Built once per file: every template
/// records its line, and counting newlines from the top for each one made
/// loading a 5,000-template library quadratic.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        LineIndex(memchr::memchr_iter(b'\n', text.as_bytes()).collect())
    }

    fn line_of(&self, offset: usize) -> usize {
        1 + self.0.partition_point(|&nl| nl < offset)
    }
}

/// Names the item that encloses byte `offset`: the nearest table header
/// above it and, for array tables, the `id` inside that table.
fn item_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let header_start = before
        .rfind("\n[")
        .map(|i| i + 1)
        .or_else(|| before.starts_with('[').then_some(0));
    let Some(start) = header_start else {
        return "top level".into();
    };
    let header_line = text[start..].lines().next().unwrap_or("").trim();
    let kind = header_line.trim_matches(|c| c == '[' || c == ']').trim();
    let body_end = text[start + 1..]
        .find("\n[")
        .map(|i| start + 1 + i)
        .unwrap_or(text.len());
    let id = text[start..body_end].lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("id")?.trim_start().strip_prefix('=')?.trim();
        Some(rest.trim_matches('"').trim_matches('\'').to_owned())
    });
    match (header_line.starts_with("[["), id) {
        (true, Some(id)) => format!("{kind} '{id}'"),
        (true, None) => format!("a [[{kind}]] entry"),
        _ => format!("[{kind}]"),
    }
}

/// Section 9: resolves every `escalate_to` to its department and refuses
/// an unknown department, an `escalate_to` without `ack_within` (there is
/// no deadline to escalate on), and a cycle (`a` → `b` → `a`: an alert
/// would be escalated round forever). Each problem is reported at the
/// `escalate_to` that causes it.
fn check_escalations(
    raw: &[Spanned<RawDepartment>],
    departments: &mut [Department],
    dept_index: &HashMap<String, usize>,
    error: &mut dyn FnMut(Range<usize>, String, String),
) {
    for d in raw {
        let d = d.get_ref();
        let Some(to) = &d.escalate_to else { continue };
        let item = format!("department '{}'", d.id.get_ref());
        let Some(&from) = dept_index.get(d.id.get_ref()) else {
            continue; // a duplicate or empty id, reported already
        };
        match dept_index.get(to.get_ref()) {
            None => error(
                to.span(),
                item,
                format!("escalate_to names unknown department '{}'", to.get_ref()),
            ),
            Some(_) if d.ack_within.is_none() => error(
                to.span(),
                item,
                "escalate_to is set but ack_within is not: there is no deadline to escalate on"
                    .into(),
            ),
            Some(&target) => departments[from].escalate_to = Some(target),
        }
    }
    // Cycles: follow each chain; one that comes back to a department it
    // passed is reported once, at the department where it closes.
    let mut in_cycle = vec![false; departments.len()];
    for start in 0..departments.len() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(next) = departments[at].escalate_to {
            if let Some(i) = path.iter().position(|&p| p == next) {
                let cycle = path[i..].to_vec();
                if !cycle.iter().any(|&c| in_cycle[c]) {
                    cycle.iter().for_each(|&c| in_cycle[c] = true);
                    let names: Vec<&str> = cycle
                        .iter()
                        .chain(std::iter::once(&next))
                        .map(|&c| departments[c].id.as_str())
                        .collect();
                    let raw_d = raw
                        .iter()
                        .find(|r| r.get_ref().id.get_ref() == &departments[next].id);
                    if let Some(to) = raw_d.and_then(|r| r.get_ref().escalate_to.as_ref()) {
                        error(
                            to.span(),
                            format!("department '{}'", departments[next].id),
                            format!("escalation cycle: {}", names.join(" → ")),
                        );
                    }
                }
                break;
            }
            path.push(next);
            at = next;
        }
    }
    // A cycle is an error; break it so that nothing loops on it.
    for (i, c) in in_cycle.iter().enumerate() {
        if *c {
            departments[i].escalate_to = None;
        }
    }
}

/// Loads rules from TOML text; `file` names it in errors.
pub fn load_str(text: &str, file: &str) -> Result<Rules, Vec<RulesError>> {
    let lines = LineIndex::new(text);
    let line_of = |_: &str, offset: usize| lines.line_of(offset);
    let at = |span: Range<usize>, item: String, message: String| RulesError {
        file: file.to_owned(),
        line: line_of(text, span.start),
        item,
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().replace('\n', " ");
        vec![at(span.clone(), item_at(text, span.start), message)]
    })?;

    let mut errors = Vec::new();

    // [window]
    let mut window = WindowSpec::default();
    if let Some(w) = &raw.window {
        let item = || "[window]".to_owned();
        let mut read = |field: &Option<Spanned<String>>, name: &str, target: &mut i64, min: i64| {
            if let Some(v) = field {
                match parse_duration(v.get_ref()) {
                    Ok(ms) if ms >= min => *target = ms,
                    Ok(_) => errors.push(at(
                        v.span(),
                        item(),
                        format!(
                            "{name} must be at least {}",
                            if min == 0 { "0s" } else { "1ms" }
                        ),
                    )),
                    Err(e) => errors.push(at(v.span(), item(), format!("{name}: {e}"))),
                }
            }
        };
        let w = w.get_ref();
        read(&w.size, "size", &mut window.size_ms, 1);
        read(&w.slide, "slide", &mut window.slide_ms, 1);
        read(
            &w.allowed_lateness,
            "allowed_lateness",
            &mut window.allowed_lateness_ms,
            0,
        );
    }

    // Departments.
    let mut departments = Vec::new();
    let mut dept_index = HashMap::new();
    for d in &raw.department {
        let id = &d.get_ref().id;
        let item = format!("department '{}'", id.get_ref());
        if id.get_ref().trim().is_empty() {
            errors.push(at(id.span(), item, "id is empty".into()));
            continue;
        }
        if dept_index
            .insert(id.get_ref().clone(), departments.len())
            .is_some()
        {
            errors.push(at(id.span(), item, "duplicate department id".into()));
            continue;
        }
        let _ = &d.get_ref().description;
        let ack_within_ms =
            d.get_ref()
                .ack_within
                .as_ref()
                .and_then(|a| match parse_duration(a.get_ref()) {
                    Ok(ms) if ms >= 1000 => Some(ms),
                    Ok(_) => {
                        errors.push(at(
                            a.span(),
                            item.clone(),
                            "ack_within must be at least 1s".into(),
                        ));
                        None
                    }
                    Err(e) => {
                        errors.push(at(a.span(), item.clone(), format!("ack_within: {e}")));
                        None
                    }
                });
        departments.push(Department {
            id: id.get_ref().clone(),
            name: d
                .get_ref()
                .name
                .clone()
                .unwrap_or_else(|| id.get_ref().clone()),
            ack_within_ms,
            escalate_to: None,
        });
    }
    // Section 9: escalation targets, once every department is known.
    check_escalations(
        &raw.department,
        &mut departments,
        &dept_index,
        &mut |span, item, msg| errors.push(at(span, item, msg)),
    );

    // Section 8: the region table, provinces in order of first mention.
    let mut regions: Vec<RegionDef> = Vec::new();
    let mut provinces: Vec<Province> = Vec::new();
    let mut region_lookup: HashMap<String, usize> = HashMap::new();
    for r in &raw.region {
        let raw_r = r.get_ref();
        let id = raw_r.id.get_ref();
        let item = format!("region '{id}'");
        if id.is_empty() {
            errors.push(at(raw_r.id.span(), item, "id is empty".into()));
            continue;
        }
        if region_lookup.contains_key(id) {
            errors.push(at(raw_r.id.span(), item, "duplicate region id".into()));
            continue;
        }
        let province = raw_r.province.get_ref();
        if province.trim().is_empty() {
            errors.push(at(
                raw_r.province.span(),
                item,
                "province is empty: every region belongs to a province".into(),
            ));
            continue;
        }
        let subscribers = match &raw_r.subscribers {
            Some(s) if *s.get_ref() < 1 => {
                errors.push(at(
                    s.span(),
                    item,
                    format!("subscribers must be at least 1 (got {})", s.get_ref()),
                ));
                continue;
            }
            Some(s) => Some(*s.get_ref() as u64),
            None => None,
        };
        let p = match provinces.iter().position(|p| &p.name == province) {
            Some(p) => p,
            None => {
                provinces.push(Province {
                    name: province.clone(),
                    regions: Vec::new(),
                    hash: super::place_hash(province),
                });
                provinces.len() - 1
            }
        };
        provinces[p].regions.push(regions.len());
        region_lookup.insert(id.clone(), regions.len());
        regions.push(RegionDef {
            id: id.clone(),
            province: p,
            subscribers,
        });
    }
    let discovery = raw.discovery.as_ref().and_then(|d| {
        let d = d.get_ref();
        let item = || "[discovery]".to_owned();
        let department = dept_index.get(d.department.get_ref()).copied();
        if department.is_none() {
            errors.push(at(
                d.department.span(),
                item(),
                format!("unknown department '{}'", d.department.get_ref()),
            ));
        }
        let min = *d.min_callers.get_ref();
        if min < 1 || min > u32::MAX as i64 {
            errors.push(at(
                d.min_callers.span(),
                item(),
                format!("min_callers must be at least 1 (got {min})"),
            ));
            return None;
        }
        Some(Discovery {
            department: department?,
            min_callers: min as u32,
        })
    });
    let mut extended = !raw.region.is_empty() || raw.discovery.is_some();

    // Businesses.
    struct B {
        id: String,
        name: String,
        department: usize,
        threshold: u32,
        region_thresholds: Vec<u32>,
        province_threshold: Option<u32>,
        surge: Option<Surge>,
    }
    let mut businesses: Vec<B> = Vec::new();
    let mut business_index = HashMap::new();
    for b in &raw.business {
        let raw_b = b.get_ref();
        let id = raw_b.id.get_ref();
        let item = format!("business '{id}'");
        let mut ok = true;
        if id.trim().is_empty() {
            errors.push(at(raw_b.id.span(), item.clone(), "id is empty".into()));
            ok = false;
        } else if business_index.contains_key(id) {
            errors.push(at(
                raw_b.id.span(),
                item.clone(),
                "duplicate business id".into(),
            ));
            ok = false;
        }
        let department = dept_index.get(raw_b.department.get_ref()).copied();
        if department.is_none() {
            errors.push(at(
                raw_b.department.span(),
                item.clone(),
                format!("unknown department '{}'", raw_b.department.get_ref()),
            ));
            ok = false;
        }
        let threshold = *raw_b.threshold.get_ref();
        if threshold < 1 || threshold > u32::MAX as i64 {
            errors.push(at(
                raw_b.threshold.span(),
                item.clone(),
                format!("threshold must be at least 1 (got {threshold})"),
            ));
            ok = false;
        }
        let _ = &raw_b.description;
        // Section 8 keys.
        let mut region_thresholds = Vec::new();
        if let Some(o) = &raw_b.region_thresholds {
            extended = true;
            region_thresholds = vec![0u32; regions.len()];
            for (name, t) in o.get_ref() {
                let v = *t.get_ref();
                match region_lookup.get(name) {
                    None => {
                        errors.push(at(
                            t.span(),
                            item.clone(),
                            format!(
                                "region_thresholds names region '{name}', which is not in the [[region]] table"
                            ),
                        ));
                        ok = false;
                    }
                    Some(_) if v < 1 || v > u32::MAX as i64 => {
                        errors.push(at(
                            t.span(),
                            item.clone(),
                            format!("region_thresholds '{name}' must be at least 1 (got {v})"),
                        ));
                        ok = false;
                    }
                    Some(&r) => region_thresholds[r] = v as u32,
                }
            }
        }
        let mut province_threshold = None;
        if let Some(p) = &raw_b.province_threshold {
            extended = true;
            let v = *p.get_ref();
            if v < 1 || v > u32::MAX as i64 {
                errors.push(at(
                    p.span(),
                    item.clone(),
                    format!("province_threshold must be at least 1 (got {v})"),
                ));
                ok = false;
            } else if provinces.is_empty() {
                errors.push(at(
                    p.span(),
                    item.clone(),
                    "province_threshold is set but no [[region]] names a province: add the region table".into(),
                ));
                ok = false;
            } else {
                province_threshold = Some(v as u32);
            }
        }
        let mut surge = None;
        if let Some(sg) = &raw_b.surge {
            extended = true;
            let sg = sg.get_ref();
            let ratio = *sg.ratio.get_ref();
            let min = *sg.min.get_ref();
            let p_value = sg.p_value.as_ref().map(|p| *p.get_ref());
            let mut good = true;
            if !(ratio.is_finite() && ratio >= 1.0) {
                errors.push(at(
                    sg.ratio.span(),
                    item.clone(),
                    format!("surge ratio must be at least 1 (got {ratio})"),
                ));
                good = false;
            }
            if min < 1 || min > u32::MAX as i64 {
                errors.push(at(
                    sg.min.span(),
                    item.clone(),
                    format!("surge min must be at least 1 (got {min})"),
                ));
                good = false;
            }
            if let (Some(p), Some(raw_p)) = (p_value, &sg.p_value) {
                if !(p > 0.0 && p < 1.0) {
                    errors.push(at(
                        raw_p.span(),
                        item.clone(),
                        format!("surge p_value must be between 0 and 1, exclusive (got {p})"),
                    ));
                    good = false;
                }
            }
            let place = sg.place.as_ref().map(|p| *p.get_ref());
            if let (Some(k), Some(raw_k)) = (place, &sg.place) {
                if !(2..=1_000).contains(&k) {
                    errors.push(at(
                        raw_k.span(),
                        item.clone(),
                        format!("surge place must be between 2 and 1000 callers (got {k})"),
                    ));
                    good = false;
                }
            }
            if good {
                surge = Some(Surge {
                    ratio,
                    min: min as u32,
                    p_value: p_value.unwrap_or(DEFAULT_P_VALUE),
                    place: place.map(|k| k as u32),
                });
            } else {
                ok = false;
            }
        }
        if ok {
            business_index.insert(id.clone(), businesses.len());
            businesses.push(B {
                id: id.clone(),
                name: raw_b.name.clone().unwrap_or_else(|| id.clone()),
                department: department.unwrap_or(0),
                threshold: threshold as u32,
                region_thresholds,
                province_threshold,
                surge,
            });
        }
    }

    // Templates.
    let mut templates: Vec<Template> = Vec::new();
    let mut template_ids = HashMap::new();
    for t in &raw.template {
        let raw_t = t.get_ref();
        let id = raw_t.id.get_ref();
        let item = format!("template '{id}'");
        let mut ok = true;
        if id.trim().is_empty() {
            errors.push(at(raw_t.id.span(), item.clone(), "id is empty".into()));
            ok = false;
        } else if template_ids.insert(id.clone(), ()).is_some() {
            errors.push(at(
                raw_t.id.span(),
                item.clone(),
                "duplicate template id".into(),
            ));
            ok = false;
        }
        let business = business_index.get(raw_t.business.get_ref()).copied();
        if business.is_none() {
            errors.push(at(
                raw_t.business.span(),
                item.clone(),
                format!("unknown business '{}'", raw_t.business.get_ref()),
            ));
            ok = false;
        }
        let groups = raw_t.all_of.get_ref();
        if groups.is_empty() {
            errors.push(at(
                raw_t.all_of.span(),
                item.clone(),
                "all_of is empty: a template needs at least one keyword group".into(),
            ));
            ok = false;
        }
        if groups.len() > MAX_GROUPS {
            errors.push(at(
                raw_t.all_of.span(),
                item.clone(),
                format!("all_of has {} groups; at most {MAX_GROUPS}", groups.len()),
            ));
            ok = false;
        }
        for (g, group) in groups.iter().enumerate() {
            if group.is_empty() {
                errors.push(at(
                    raw_t.all_of.span(),
                    item.clone(),
                    format!("all_of group {} is empty", g + 1),
                ));
                ok = false;
            }
            if group.iter().any(|k| k.is_empty()) {
                errors.push(at(
                    raw_t.all_of.span(),
                    item.clone(),
                    format!("all_of group {} has an empty keyword", g + 1),
                ));
                ok = false;
            }
        }
        let none_of = raw_t
            .none_of
            .as_ref()
            .map(|n| n.get_ref().clone())
            .unwrap_or_default();
        if none_of.iter().any(|k| k.is_empty()) {
            let span = raw_t.none_of.as_ref().map(|n| n.span()).unwrap_or(t.span());
            errors.push(at(
                span,
                item.clone(),
                "none_of has an empty keyword".into(),
            ));
            ok = false;
        }
        let _ = &raw_t.description;
        let mut texts = |list: &Option<Spanned<Vec<Spanned<String>>>>, key: &str| -> Vec<Example> {
            let Some(list) = list else {
                return Vec::new();
            };
            let mut out = Vec::with_capacity(list.get_ref().len());
            for (i, ex) in list.get_ref().iter().enumerate() {
                if ex.get_ref().trim().is_empty() {
                    errors.push(at(
                        ex.span(),
                        item.clone(),
                        format!("{key} text {} is empty", i + 1),
                    ));
                    ok = false;
                }
                out.push(Example {
                    text: ex.get_ref().clone(),
                    line: lines.line_of(ex.span().start),
                });
            }
            out
        };
        let examples = texts(&raw_t.examples, "examples");
        let counter_examples = texts(&raw_t.counter_examples, "counter_examples");
        if ok {
            templates.push(Template {
                id: id.clone(),
                business: business.unwrap_or(0),
                phenomenon: raw_t.phenomenon.clone().unwrap_or_default(),
                all_of: groups
                    .iter()
                    .map(|g| g.iter().map(|k| normalize(k)).collect())
                    .collect(),
                none_of: none_of.iter().map(|k| normalize(k)).collect(),
                line: line_of(text, raw_t.id.span().start),
                examples,
                counter_examples,
            });
        }
    }

    // A library without a business or a template parses, but detects
    // nothing: loaded at start it silently turns detection off, loaded by a
    // reload it resolves every open alert. Named at the file's last line
    // (where the missing entries would go), after any other problem.
    let last_line = lines.line_of(text.trim_end().len()).max(1);
    let missing = |item: &str, message: &str| RulesError {
        file: file.to_owned(),
        line: last_line,
        item: item.to_owned(),
        message: message.to_owned(),
    };
    if raw.department.is_empty() && raw.business.is_empty() && raw.template.is_empty() {
        errors.push(missing(
            "file",
            "no [[department]], [[business]] or [[template]]: rules without them detect nothing",
        ));
    } else {
        if raw.business.is_empty() {
            errors.push(missing(
                "[[business]]",
                "none defined: rules without a business detect nothing",
            ));
        }
        if raw.template.is_empty() {
            errors.push(missing(
                "[[template]]",
                "none defined: rules without a template detect nothing",
            ));
        }
    }

    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }

    templates.sort_by(|a, b| (a.business, &a.id).cmp(&(b.business, &b.id)));
    let mut ranges = vec![0..0; businesses.len()];
    let mut i = 0;
    while i < templates.len() {
        let b = templates[i].business;
        let start = i;
        while i < templates.len() && templates[i].business == b {
            i += 1;
        }
        ranges[b] = start..i;
    }
    let businesses = businesses
        .into_iter()
        .zip(ranges)
        .map(|(b, templates)| Business {
            id: b.id,
            name: b.name,
            department: b.department,
            threshold: b.threshold,
            templates,
            region_thresholds: b.region_thresholds,
            province_threshold: b.province_threshold,
            surge: b.surge,
        })
        .collect();
    Ok(Rules {
        source: file.to_owned(),
        version: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes())),
        window,
        departments,
        businesses,
        templates,
        regions,
        provinces,
        region_lookup,
        discovery,
        extended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[window]
size  = "30m"
slide = "1m"
allowed_lateness = "10m"

[[department]]
id   = "vas"
name = "数据业务部"

[[business]]
id         = "crbt"
name       = "彩铃"
department = "vas"
threshold  = 8

[[template]]
id         = "crbt.copy_fail"
business   = "crbt"
phenomenon = "彩铃复制失败"
all_of     = [["彩铃", "炫铃"], ["复制", "同步"]]
none_of    = ["咨询如何"]

[[template]]
id         = "crbt.a_first"
business   = "crbt"
all_of     = [["ＧＰＲＳ"]]
"#;

    #[test]
    fn loads_the_contract_example() {
        let r = load_str(GOOD, "good.toml").unwrap();
        assert_eq!(
            r.window,
            WindowSpec {
                size_ms: 1_800_000,
                slide_ms: 60_000,
                allowed_lateness_ms: 600_000
            }
        );
        assert_eq!(r.departments[0].name, "数据业务部");
        assert_eq!(r.businesses[0].threshold, 8);
        assert_eq!(r.businesses[0].templates, 0..2);
        // Sorted by id within the business; keywords normalised.
        assert_eq!(r.templates[0].id, "crbt.a_first");
        assert_eq!(r.templates[0].all_of, vec![vec!["gprs".to_string()]]);
        assert_eq!(r.templates[1].none_of, vec!["咨询如何".to_string()]);
        assert_eq!(r.templates[1].line, 18);
        assert_eq!(r.keyword_count(), 6);
    }

    fn errors(text: &str) -> Vec<String> {
        load_str(text, "r.toml")
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn every_error_names_file_line_and_item() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "all_of     = [[\"彩铃\", \"炫铃\"], [\"复制\", \"同步\"]]",
                "all_of     = []",
                "r.toml:21: template 'crbt.copy_fail': all_of is empty",
            ),
            (
                "[\"复制\", \"同步\"]]",
                "[]]",
                "r.toml:21: template 'crbt.copy_fail': all_of group 2 is empty",
            ),
            (
                "\"复制\", \"同步\"",
                "\"\", \"同步\"",
                "r.toml:21: template 'crbt.copy_fail': all_of group 2 has an empty keyword",
            ),
            (
                "none_of    = [\"咨询如何\"]",
                "none_of    = [\"\"]",
                "r.toml:22: template 'crbt.copy_fail': none_of has an empty keyword",
            ),
            (
                "business   = \"crbt\"\nphenomenon",
                "business   = \"crbtt\"\nphenomenon",
                "r.toml:19: template 'crbt.copy_fail': unknown business 'crbtt'",
            ),
            (
                "department = \"vas\"",
                "department = \"vass\"",
                "r.toml:14: business 'crbt': unknown department 'vass'",
            ),
            (
                "threshold  = 8",
                "threshold  = 0",
                "r.toml:15: business 'crbt': threshold must be at least 1 (got 0)",
            ),
            (
                "id         = \"crbt.a_first\"",
                "id         = \"crbt.copy_fail\"",
                "r.toml:25: template 'crbt.copy_fail': duplicate template id",
            ),
            (
                "size  = \"30m\"",
                "size  = \"30 minutes\"",
                "r.toml:3: [window]: size: invalid duration",
            ),
            (
                "slide = \"1m\"",
                "slide = \"0s\"",
                "r.toml:4: [window]: slide must be at least 1ms",
            ),
            (
                "threshold  = 8",
                "threshold  = 8\ncolour = \"red\"",
                "r.toml:16: business 'crbt': unknown field `colour`",
            ),
            (
                "allowed_lateness = \"10m\"",
                "allowed_lateness = \"10m\"\njitter = \"1s\"",
                "r.toml:6: [window]: unknown field `jitter`",
            ),
            (
                "[[template]]\nid         = \"crbt.a_first\"",
                "[[templates]]\nid         = \"crbt.a_first\"",
                "r.toml:24: templates 'crbt.a_first': unknown field `templates`",
            ),
            (
                "threshold  = 8",
                "threshold  = \"8\"",
                "r.toml:15: business 'crbt': invalid type",
            ),
            (
                "threshold  = 8",
                "threshold  = 8 8",
                "r.toml:15: business 'crbt':",
            ),
        ];
        for (from, to, want) in cases {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let got = errors(&text);
            assert!(
                got.iter().any(|e| e.starts_with(want)),
                "want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn duplicates_and_all_errors_at_once() {
        let text = format!(
            "{GOOD}\n[[business]]\nid = \"crbt\"\ndepartment = \"x\"\nthreshold = -1\n\n[[department]]\nid = \"vas\"\n"
        );
        let got = errors(&text);
        assert!(
            got.iter()
                .any(|e| e.contains("business 'crbt': duplicate business id")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|e| e.contains("unknown department 'x'")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|e| e.contains("threshold must be at least 1")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|e| e.contains("department 'vas': duplicate department id")),
            "{got:?}"
        );
    }

    #[test]
    fn dispatch_deadlines_and_escalations() {
        // GOOD's vas department, with section 9 keys, and more departments.
        let with = |extra: &str| {
            GOOD.replace(
                "name = \"数据业务部\"\n",
                &format!("name = \"数据业务部\"\n{extra}"),
            )
        };
        let text = with("ack_within = \"15m\"\nescalate_to = \"duty\"\n")
            + "\n[[department]]\nid = \"duty\"\nack_within = \"1h\"\n";
        let r = load_str(&text, "r.toml").unwrap();
        assert_eq!(r.departments[0].ack_within_ms, Some(900_000));
        assert_eq!(r.departments[0].escalate_to, Some(1));
        assert_eq!(
            (r.departments[1].ack_within_ms, r.departments[1].escalate_to),
            (Some(3_600_000), None)
        );
        // Without the keys: nothing changes.
        let plain = load_str(GOOD, "r.toml").unwrap();
        assert_eq!(
            (
                plain.departments[0].ack_within_ms,
                plain.departments[0].escalate_to
            ),
            (None, None)
        );

        let bad = |extra: &str, more: &str| errors(&(with(extra) + more));
        let got = bad("ack_within = \"15m\"\nescalate_to = \"dutty\"\n", "");
        assert_eq!(
            got,
            ["r.toml:11: department 'vas': escalate_to names unknown department 'dutty'"]
        );
        let got = bad("ack_within = \"fifteen\"\n", "");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with(
                "r.toml:10: department 'vas': ack_within: invalid duration \"fifteen\""
            ),
            "{got:?}"
        );
        let got = bad("ack_within = \"0s\"\n", "");
        assert_eq!(
            got,
            ["r.toml:10: department 'vas': ack_within must be at least 1s"]
        );
        let got = bad("escalate_to = \"vas\"\n", "");
        assert!(
            got[0].contains("escalate_to is set but ack_within is not"),
            "{got:?}"
        );
        // a → b → a, and a department escalating to itself.
        let got = bad(
            "ack_within = \"15m\"\nescalate_to = \"duty\"\n",
            "\n[[department]]\nid = \"duty\"\nack_within = \"1h\"\nescalate_to = \"vas\"\n",
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("escalation cycle: vas → duty → vas")
                && got[0].starts_with("r.toml:11: department 'vas'"),
            "{got:?}"
        );
        let got = bad("ack_within = \"15m\"\nescalate_to = \"vas\"\n", "");
        assert_eq!(
            got,
            ["r.toml:11: department 'vas': escalation cycle: vas → vas"]
        );
    }

    #[test]
    fn missing_file_is_an_error() {
        let e = load(Some(Path::new("/nonexistent/rules.toml"))).unwrap_err();
        assert!(
            e.0[0]
                .to_string()
                .starts_with("/nonexistent/rules.toml:0: file: cannot read")
        );
        assert!(
            e.to_string()
                .starts_with("unusable rules: /nonexistent/rules.toml:0: file: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn the_embedded_library_loads_with_its_text() {
        let (rules, text) = load(None).unwrap();
        assert_eq!(text, crate::rules::EMBEDDED_RULES);
        assert_eq!(rules.source, EMBEDDED_NAME);
        assert!(!rules.businesses.is_empty() && !rules.templates.is_empty());
    }

    #[test]
    fn rules_that_detect_nothing_are_an_error() {
        let dept = "[[department]]\nid = \"vas\"\n";
        let business = "[[business]]\nid = \"crbt\"\ndepartment = \"vas\"\nthreshold = 8\n";
        let cases: &[(String, &[&str])] = &[
            (
                String::new(),
                &["r.toml:1: file: no [[department]], [[business]] or [[template]]"],
            ),
            (
                "# comments only\n\n".into(),
                &["r.toml:1: file: no [[department]], [[business]] or [[template]]"],
            ),
            (
                "[window]\nsize = \"30m\"\n".into(),
                &["r.toml:2: file: no [[department]], [[business]] or [[template]]"],
            ),
            (
                dept.into(),
                &[
                    "r.toml:2: [[business]]: none defined",
                    "r.toml:2: [[template]]: none defined",
                ],
            ),
            (
                format!("{dept}\n{business}"),
                &["r.toml:7: [[template]]: none defined"],
            ),
            (
                format!(
                    "{dept}\n[[template]]\nid = \"t\"\nbusiness = \"crbt\"\nall_of = [[\"x\"]]\n"
                ),
                &[
                    "r.toml:6: template 't': unknown business 'crbt'",
                    "r.toml:7: [[business]]: none defined",
                ],
            ),
        ];
        for (text, want) in cases {
            let got = errors(text);
            assert_eq!(got.len(), want.len(), "{text:?}: {got:?}");
            for (g, w) in got.iter().zip(*want) {
                assert!(g.starts_with(w), "{text:?}: want {w:?}, got {got:?}");
            }
        }
        // Other problems come first: a one-line summary names them.
        let e = RulesErrors(load_str("[window]\nsize = \"30 minutes\"\n", "r.toml").unwrap_err());
        assert!(
            e.to_string()
                .starts_with("unusable rules: r.toml:2: [window]: size: invalid duration"),
            "{e}"
        );
        assert!(
            e.to_string()
                .ends_with("(and 1 more; see hotspot check-rules)"),
            "{e}"
        );
    }

    #[test]
    fn window_defaults_when_absent() {
        let text = GOOD.replace(
            "[window]\nsize  = \"30m\"\nslide = \"1m\"\nallowed_lateness = \"10m\"\n",
            "",
        );
        assert_eq!(
            load_str(&text, "r.toml").unwrap().window,
            WindowSpec::default()
        );
    }
}
