//! The generator's picture of the complaint centre for one rule library:
//! which phenomena customers complain about, how often, and in which words.
//!
//! A *topic* is either a template of the loaded rules, with phrases that
//! match exactly that template's business, or a plain request that matches
//! nothing. Phrases come from [`super::bank`] when it knows the template id,
//! otherwise they are composed from the template's own keywords, so
//! `--rules` with any library still yields traffic that exercises it.
//! Every phrase is checked with the real [`Matcher`] when the world is
//! built; phrases that would match the wrong business (or, for plain
//! requests, anything) are dropped, and the fixture library's tests insist
//! nothing is dropped there.
//!
//! Background topic weights follow each business's share of traffic
//! ([`super::bank::BUSINESSES`]; businesses the bank does not know split
//! what is left of 45 %, at most 1.5 % each).

use rand::Rng;

use super::bank;
use hotspot_core::matcher::{Matcher, Matches};
use hotspot_core::normalize::Normalizer;
use hotspot_core::rules::Rules;

/// What a topic is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// A template (index into `Rules::templates`) and its business.
    Template { template: usize, business: usize },
    /// Matches no template.
    Plain,
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub kind: TopicKind,
    /// Verified phrases.
    pub phrases: Vec<String>,
    /// Texts usually name a place.
    pub place: bool,
    /// A billing dispute.
    pub fee: bool,
}

/// What was dropped while building a world (empty for the fixture library).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dropped {
    /// (template id, phrase) pairs that did not match as intended.
    pub phrases: Vec<(String, String)>,
    /// Plain requests that matched a template.
    pub plain: Vec<String>,
    /// Templates left without any phrase (never used).
    pub templates: Vec<String>,
}

/// Topics and their background weights for one rule library.
#[derive(Debug)]
pub struct World {
    pub topics: Vec<Topic>,
    /// Cumulative background probabilities, one per topic.
    cumulative: Vec<f64>,
    /// Per template: its topic, if it has phrases.
    pub topic_of_template: Vec<Option<usize>>,
    /// Per business: the share of all background complaints intended for
    /// it.
    pub business_share: Vec<f64>,
    pub dropped: Dropped,
}

/// The matched-business set of a text, checked against expectations.
pub struct Checker<'m> {
    pub matcher: &'m Matcher,
    norm: Normalizer,
    matches: Matches,
}

impl<'m> Checker<'m> {
    pub fn new(matcher: &'m Matcher) -> Self {
        Checker {
            matcher,
            norm: Normalizer::new(),
            matches: matcher.scratch(),
        }
    }

    fn run(&mut self, text: &str) -> &Matches {
        self.matcher
            .find_text(text, &mut self.norm, &mut self.matches);
        &self.matches
    }

    /// True when `text` matches template `t` and no business but `b`.
    pub fn matches_only(&mut self, text: &str, t: usize, b: usize) -> bool {
        let m = self.run(text);
        m.businesses().len() == 1
            && m.businesses().all(|(mb, _)| mb == b)
            && m.templates().contains(&(t as u32))
    }

    /// True when `text` matches nothing.
    pub fn matches_nothing(&mut self, text: &str) -> bool {
        self.run(text).is_empty()
    }

    /// True when `text` counts for business `b`.
    pub fn hits_business(&mut self, text: &str, b: usize) -> bool {
        self.run(text).businesses().any(|(mb, _)| mb == b)
    }

    /// The businesses `text` counts for, in rules order.
    pub fn businesses(&mut self, text: &str) -> Vec<usize> {
        self.run(text).businesses().map(|(b, _)| b).collect()
    }
}

/// Phrases composed from a template's keywords: one keyword per group, in
/// order (subject, phenomenon, cause reads naturally: 彩铃 + 复制 + 失败),
/// varied across the groups' alternatives.
fn composed_phrases(rules: &Rules, t: usize) -> Vec<String> {
    let tpl = &rules.templates[t];
    let widest = tpl.all_of.iter().map(Vec::len).max().unwrap_or(0).min(6);
    (0..widest.max(1))
        .map(|i| {
            let mut s = String::new();
            for (g, group) in tpl.all_of.iter().enumerate() {
                s.push_str(&group[(i + g) % group.len()]);
            }
            s
        })
        .collect()
}

impl World {
    pub fn new(rules: &Rules, matcher: &Matcher) -> World {
        let mut check = Checker::new(matcher);
        let mut dropped = Dropped::default();
        let mut topics = Vec::new();
        let mut topic_of_template = vec![None; rules.templates.len()];
        // Shares: the bank's, or an even split of what is left of 45 %, at
        // most 1.5 % each (a typical business of the fixture library).
        let known: f64 = rules
            .businesses
            .iter()
            .filter_map(|b| bank::business(&b.id))
            .map(|b| b.share)
            .sum();
        let unknown = rules
            .businesses
            .iter()
            .filter(|b| bank::business(&b.id).is_none())
            .count();
        let default_share = if unknown > 0 {
            ((45.0 - known) / unknown as f64).clamp(0.2, 1.5)
        } else {
            0.0
        };
        let mut raw_share: Vec<f64> = rules
            .businesses
            .iter()
            .map(|b| bank::business(&b.id).map_or(default_share, |x| x.share))
            .collect();
        let total: f64 = raw_share.iter().sum();
        if total > 70.0 {
            raw_share.iter_mut().for_each(|s| *s *= 70.0 / total);
        }
        let mut topics_per_business = vec![0usize; rules.businesses.len()];
        for (t, tpl) in rules.templates.iter().enumerate() {
            let b = tpl.business;
            let entry = bank::business(&rules.businesses[b].id);
            let dept = &rules.departments[rules.businesses[b].department].id;
            let mut phrases: Vec<String> = Vec::new();
            if let Some(bank_phrases) = bank::phrases(&tpl.id) {
                for p in bank_phrases {
                    if check.matches_only(p, t, b) {
                        phrases.push((*p).to_owned());
                    } else {
                        dropped.phrases.push((tpl.id.clone(), (*p).to_owned()));
                    }
                }
            }
            if phrases.is_empty() {
                phrases = composed_phrases(rules, t)
                    .into_iter()
                    .filter(|p| check.matches_only(p, t, b))
                    .collect();
            }
            if phrases.is_empty() {
                dropped.templates.push(tpl.id.clone());
                continue;
            }
            topic_of_template[t] = Some(topics.len());
            topics_per_business[b] += 1;
            topics.push(Topic {
                kind: TopicKind::Template {
                    template: t,
                    business: b,
                },
                phrases,
                place: entry.map_or(dept == "net", |e| e.place),
                fee: entry.is_some_and(|e| e.fee),
            });
        }
        let plain: Vec<String> = bank::UNMATCHED
            .iter()
            .filter(|p| {
                let ok = check.matches_nothing(p);
                if !ok {
                    dropped.plain.push((**p).to_owned());
                }
                ok
            })
            .map(|p| (*p).to_owned())
            .collect();
        let plain_topic = topics.len();
        topics.push(Topic {
            kind: TopicKind::Plain,
            phrases: plain,
            place: false,
            fee: false,
        });

        // Background weights: a business's share split evenly over its
        // topics; the rest to plain requests.
        let mut business_share = vec![0.0; rules.businesses.len()];
        let mut weights = Vec::with_capacity(topics.len());
        for topic in &topics {
            weights.push(match topic.kind {
                TopicKind::Template { business, .. } => {
                    business_share[business] = raw_share[business] / 100.0;
                    raw_share[business] / 100.0 / topics_per_business[business] as f64
                }
                TopicKind::Plain => 0.0,
            });
        }
        let matched: f64 = weights.iter().sum();
        weights[plain_topic] = if topics[plain_topic].phrases.is_empty() {
            0.0
        } else {
            (1.0 - matched).max(0.0)
        };
        let total: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        let mut acc = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        World {
            topics,
            cumulative,
            topic_of_template,
            business_share,
            dropped,
        }
    }

    /// A background topic.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.topics.len() - 1)
    }

    /// The topic of plain requests.
    pub fn plain(&self) -> usize {
        self.topics.len() - 1
    }

    /// A phrase of `topic`.
    pub fn phrase(&self, rng: &mut impl Rng, topic: usize) -> &str {
        let p = &self.topics[topic].phrases;
        if p.is_empty() {
            "咨询业务"
        } else {
            &p[rng.random_range(0..p.len())]
        }
    }

    /// The topics of business `b`.
    pub fn topics_of(&self, b: usize) -> impl Iterator<Item = usize> + '_ {
        self.topics
            .iter()
            .enumerate()
            .filter_map(move |(i, t)| match t.kind {
                TopicKind::Template { business, .. } if business == b => Some(i),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotspot_core::rules;

    #[test]
    fn the_fixture_library_keeps_every_phrase() {
        let rules = rules::embedded().unwrap();
        let m = Matcher::new(&rules).unwrap();
        let w = World::new(&rules, &m);
        assert_eq!(w.dropped, Dropped::default());
        assert!(w.topic_of_template.iter().all(Option::is_some));
        // Every template of the fixture library has bank phrases.
        for t in &rules.templates {
            assert!(bank::phrases(&t.id).is_some(), "no phrases for {}", t.id);
        }
        for b in &rules.businesses {
            assert!(
                bank::business(&b.id).is_some(),
                "no bank entry for {}",
                b.id
            );
        }
    }

    #[test]
    fn another_library_gets_composed_phrases() {
        let text = r#"
[[department]]
id = "d"
[[business]]
id = "x"
department = "d"
threshold = 3
[[template]]
id = "x.one"
business = "x"
all_of = [["ＧＰＲＳ", "数据"], ["故障"], ["严重", "全面"]]
none_of = ["咨询"]
"#;
        let rules = rules::load_str(text, "t.toml").unwrap();
        let m = Matcher::new(&rules).unwrap();
        let w = World::new(&rules, &m);
        let t = w.topic_of_template[0].unwrap();
        assert!(!w.topics[t].phrases.is_empty());
        let mut c = Checker::new(&m);
        for p in &w.topics[t].phrases {
            assert!(c.matches_only(p, 0, 0), "{p}");
        }
        // Plain requests with 咨询 match nothing here either.
        assert!(w.dropped.plain.is_empty());
    }
}
