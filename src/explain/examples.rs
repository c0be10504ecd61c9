//! Tested templates: a template's `examples` must match it and its
//! `counter_examples` must not. `check-rules` runs them, and so do `hotspot
//! run` at start and every reload (a failing example refuses the rules; a
//! reload then keeps the rules in force). A failure is a rules error like
//! any other, located at the text's own line:
//!
//! ```text
//! rules.toml:812: template 'crbt.copy_fail': example 2 does not match: "客户反映彩铃无法设置": group 1 hit "彩铃", no keyword of group 2 (复制), no veto fired
//! ```
//!
//! Whether a text matches is the engine's own answer (the matcher); the
//! groups and vetoes in the message are the [`Explainer`]'s. A library
//! without examples is not touched: not even a matcher is built for it.

use std::sync::Arc;

use super::Explainer;
use crate::mask::mask_and_cut;
use crate::matcher::Matcher;
use crate::normalize::Normalizer;
use crate::rules::{Rules, RulesError, RulesErrors};

/// The most characters of a text quoted in a message.
const QUOTE_CHARS: usize = 80;

/// What a check found: how many texts were run, and the failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Templates with at least one example or counter-example.
    pub templates: usize,
    pub examples: usize,
    pub counter_examples: usize,
    /// Each failing text, in file order.
    pub failures: Vec<RulesError>,
}

impl Outcome {
    /// The failures as the one error type a rules file fails with.
    pub fn into_result(self) -> Result<Outcome, RulesErrors> {
        if self.failures.is_empty() {
            Ok(self)
        } else {
            Err(RulesErrors(self.failures))
        }
    }
}

/// Whether any template of `rules` has an example or a counter-example.
pub fn any(rules: &Rules) -> bool {
    rules
        .templates
        .iter()
        .any(|t| !t.examples.is_empty() || !t.counter_examples.is_empty())
}

/// Runs every example and counter-example of `rules` through `matcher`
/// (compiled from the same rules).
pub fn check(rules: &Arc<Rules>, matcher: &Arc<Matcher>) -> Outcome {
    let mut out = Outcome::default();
    let mut scratch = matcher.scratch();
    let mut normalizer = Normalizer::new();
    let mut explainer: Option<Explainer> = None;
    for (t, tpl) in rules.templates.iter().enumerate() {
        if tpl.examples.is_empty() && tpl.counter_examples.is_empty() {
            continue;
        }
        out.templates += 1;
        let cases = tpl
            .examples
            .iter()
            .enumerate()
            .map(|(i, e)| (true, i, e))
            .chain(
                tpl.counter_examples
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (false, i, e)),
            );
        for (must_match, i, example) in cases {
            if must_match {
                out.examples += 1;
            } else {
                out.counter_examples += 1;
            }
            matcher.find_text(&example.text, &mut normalizer, &mut scratch);
            let matched = scratch.templates().binary_search(&(t as u32)).is_ok();
            if matched == must_match {
                continue;
            }
            let why = explainer
                .get_or_insert_with(|| Explainer::new(rules.clone(), matcher.clone()))
                .template(t, &example.text)
                .summary();
            let quoted = mask_and_cut(&example.text, QUOTE_CHARS);
            let cut = if quoted.chars().count() < example.text.chars().count() {
                "…"
            } else {
                ""
            };
            let message = if must_match {
                format!("example {} does not match: \"{quoted}{cut}\": {why}", i + 1)
            } else {
                format!(
                    "counter-example {} matches: \"{quoted}{cut}\": {why}",
                    i + 1
                )
            };
            out.failures.push(RulesError {
                file: rules.source.clone(),
                line: example.line,
                item: format!("template '{}'", tpl.id),
                message,
            });
        }
    }
    out.failures.sort_by_key(|e| e.line);
    out
}

/// [`check`] for rules without a compiled matcher: compiles one only when
/// some template has a text to run.
pub fn check_rules(rules: &Arc<Rules>) -> Result<Outcome, RulesErrors> {
    if !any(rules) {
        return Ok(Outcome::default());
    }
    let matcher = Matcher::new(rules).map_err(|e| {
        RulesErrors(vec![RulesError {
            file: rules.source.clone(),
            line: 0,
            item: "keywords".into(),
            message: e.to_string(),
        }])
    })?;
    check(rules, &Arc::new(matcher)).into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::load_str;

    const RULES: &str = r#"[[department]]
id = "vas"
[[business]]
id = "crbt"
department = "vas"
threshold = 2
[[template]]
id = "crbt.copy"
business = "crbt"
all_of = [["彩铃", "炫铃"], ["复制", "同步"]]
none_of = ["咨询如何"]
examples = [
    "客户反映彩铃复制失败，回访13812345678",
    "用户称炫铃无法同步到新手机",
]
counter_examples = [
    "客户咨询如何复制彩铃",
    "客户反映彩铃无法设置",
]
"#;

    fn run(text: &str) -> Outcome {
        let rules = Arc::new(load_str(text, "r.toml").unwrap());
        let matcher = Arc::new(Matcher::new(&rules).unwrap());
        check(&rules, &matcher)
    }

    #[test]
    fn passing_examples() {
        let o = run(RULES);
        assert_eq!((o.templates, o.examples, o.counter_examples), (1, 2, 2));
        assert!(o.failures.is_empty(), "{:?}", o.failures);
    }

    #[test]
    fn each_failure_is_located_and_explained() {
        // An example that misses a group.
        let o = run(&RULES.replace("用户称炫铃无法同步到新手机", "用户称炫铃无法设置"));
        assert_eq!(
            o.failures[0].to_string(),
            "r.toml:14: template 'crbt.copy': example 2 does not match: \"用户称炫铃无法设置\": \
             group 1 hit \"炫铃\", no keyword of group 2 (复制|同步), no veto fired"
        );
        // An example that a veto stops; the phone number is masked.
        let o = run(&RULES.replace("客户反映彩铃复制失败", "客户咨询如何处理彩铃复制失败"));
        assert_eq!(
            o.failures[0].to_string(),
            "r.toml:13: template 'crbt.copy': example 1 does not match: \
             \"客户咨询如何处理彩铃复制失败，回访138****5678\": \
             group 1 hit \"彩铃\", group 2 hit \"复制\", veto \"咨询如何\" fired"
        );
        // A counter-example that matches.
        let o = run(&RULES.replace("客户反映彩铃无法设置", "客户反映彩铃复制不了"));
        assert_eq!(o.failures.len(), 1);
        assert_eq!(
            o.failures[0].to_string(),
            "r.toml:18: template 'crbt.copy': counter-example 2 matches: \"客户反映彩铃复制不了\": \
             group 1 hit \"彩铃\", group 2 hit \"复制\", no veto fired"
        );
        assert!(
            check_rules(&Arc::new(
                load_str(&RULES.replace("客户反映彩铃无法设置", "彩铃复制"), "r.toml").unwrap()
            ))
            .is_err()
        );
    }

    #[test]
    fn an_empty_text_is_a_rules_error() {
        let e = load_str(&RULES.replace("用户称炫铃无法同步到新手机", " "), "r.toml").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "r.toml:14: template 'crbt.copy': examples text 2 is empty"
        );
    }

    #[test]
    fn rules_without_examples_build_nothing() {
        let text = RULES.split("examples").next().unwrap();
        let rules = Arc::new(load_str(text, "r.toml").unwrap());
        assert!(!any(&rules));
        assert_eq!(check_rules(&rules).unwrap(), Outcome::default());
    }
}
