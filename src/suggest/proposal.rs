//! `hotspot suggest`, step 4: a template per topic (groups, business guess,
//! vetoes, masked examples), as TOML checked against the rules and the
//! file.

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use anyhow::Context as _;

use super::bursts::PlaceKind;
use super::scan::{Scan, read_full, text_of};
use super::topic::Topic;
use super::{Busiest, BusinessGuess, Check, EXAMPLES, PlaceCount, Proposal};
use crate::mask::mask_and_cut;
use crate::matcher::Matcher;
use crate::record::{Decoded, Decoder};
use crate::rules::{self, Rules};
use crate::time::format_cst;

/// Characters of an example.
const EXAMPLE_CHARS: usize = 120;

/// Template keywords and which businesses use them.
struct Vocabulary {
    keywords: Vec<String>,
    /// Per keyword: the businesses (indices) whose `all_of` holds it.
    owners: Vec<Vec<usize>>,
    automaton: aho_corasick::AhoCorasick,
}

impl Vocabulary {
    fn new(rules: &Rules) -> anyhow::Result<Vocabulary> {
        let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for t in &rules.templates {
            for k in t.all_of.iter().flatten() {
                let v = by.entry(k.clone()).or_default();
                if !v.contains(&t.business) {
                    v.push(t.business);
                }
            }
        }
        let (keywords, owners): (Vec<String>, Vec<Vec<usize>>) = by.into_iter().unzip();
        let automaton = aho_corasick::AhoCorasick::new(&keywords)?;
        Ok(Vocabulary {
            keywords,
            owners,
            automaton,
        })
    }
}

/// Character pairs of `s` (no pair across a space).
fn bigrams(s: &str) -> Vec<(char, char)> {
    let c: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut v: Vec<(char, char)> = c.windows(2).map(|w| (w[0], w[1])).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The business a topic most likely belongs to.
fn guess_business(
    rules: &Rules,
    vocab: &Vocabulary,
    texts: &[&str],
    phrases: &[String],
) -> Option<(usize, String)> {
    let nb = rules.businesses.len() as f64;
    let mut hits = vec![0u32; vocab.keywords.len()];
    let mut seen: Vec<usize> = Vec::new();
    for t in texts {
        seen.clear();
        for m in vocab.automaton.find_overlapping_iter(*t) {
            seen.push(m.pattern().as_usize());
        }
        seen.sort_unstable();
        seen.dedup();
        for &k in &seen {
            hits[k] += 1;
        }
    }
    let n = texts.len().max(1) as f64;
    let mut score = vec![0.0f64; rules.businesses.len()];
    for (k, &h) in hits.iter().enumerate() {
        // A keyword counts when at least 30 % of the complaints hold it.
        if h == 0 || f64::from(h) < 0.3 * n {
            continue;
        }
        let idf = (1.0 + nb / vocab.owners[k].len() as f64).ln() / (1.0 + nb).ln();
        for &b in &vocab.owners[k] {
            score[b] += f64::from(h) / n * idf;
        }
    }
    let best = (0..score.len()).max_by(|&a, &b| score[a].total_cmp(&score[b]).then(b.cmp(&a)));
    if let Some(b) = best.filter(|&b| score[b] >= 0.1) {
        let mut used: Vec<(u32, &str)> = hits
            .iter()
            .enumerate()
            .filter(|(k, h)| f64::from(**h) >= 0.3 * n && vocab.owners[*k].contains(&b))
            .map(|(k, h)| (*h, vocab.keywords[k].as_str()))
            .collect();
        used.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(y.1)));
        let list: Vec<String> = used
            .iter()
            .take(4)
            .map(|(h, k)| format!("{k} in {h} of {}", texts.len()))
            .collect();
        return Some((
            b,
            format!("its template keywords occur beside it: {}", list.join(", ")),
        ));
    }
    // Else: the business whose templates share the most specific character
    // pairs with the topic's phrases (a pair counts ln(1 + businesses /
    // businesses using it); pairs of more than an eighth of the businesses,
    // `不到` or `失败`, do not count).
    let want: Vec<(char, char)> = {
        let mut v: Vec<(char, char)> = phrases.iter().flat_map(|p| bigrams(p)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let vocab_of: Vec<Vec<(char, char)>> = rules
        .businesses
        .iter()
        .map(|bus| {
            let mut words = String::new();
            words.push_str(&bus.name);
            words.push(' ');
            for t in &rules.templates[bus.templates.clone()] {
                words.push_str(&t.phenomenon);
                words.push(' ');
                for k in t.all_of.iter().flatten() {
                    words.push_str(k);
                    words.push(' ');
                }
            }
            let mut v: Vec<(char, char)> = words.split(' ').flat_map(bigrams).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let users = |p: &(char, char)| {
        vocab_of
            .iter()
            .filter(|v| v.binary_search(p).is_ok())
            .count()
    };
    let mut best: Option<(usize, f64, Vec<String>)> = None;
    for (b, have) in vocab_of.iter().enumerate() {
        let mut score = 0.0;
        let mut shared = Vec::new();
        for p in want.iter().filter(|p| have.binary_search(p).is_ok()) {
            let u = users(p);
            if u * 8 > vocab_of.len() {
                continue;
            }
            score += (1.0 + nb / u as f64).ln();
            shared.push(format!("{}{}", p.0, p.1));
        }
        if score > 0.0 && best.as_ref().is_none_or(|x| score > x.1) {
            best = Some((b, score, shared));
        }
    }
    best.map(|(b, _, shared)| {
        (
            b,
            format!("its templates share the words {}", shared.join(", ")),
        )
    })
}

/// Quotes a TOML string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
    )
}

/// A comment line (no line breaks inside).
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Reads the text of the line at `offset`, masked and cut.
fn example(file: &mut std::fs::File, offset: u64) -> Option<String> {
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = vec![0u8; 64 << 10];
    let n = read_full(file, &mut buf).ok()?;
    let line = &buf[..n];
    let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
    let mut d = Decoder::new();
    match d.decode(line) {
        Decoded::Record(r) => Some(mask_and_cut(r.text, EXAMPLE_CHARS).replace('\n', " / ")),
        _ => None,
    }
}

/// Step 4: a proposal per topic, checked.
#[allow(clippy::too_many_arguments)]
pub(super) fn proposals(
    input: &Path,
    rules: &Rules,
    rules_text: &str,
    scan: &Scan,
    topics: &[Topic],
    min: u32,
    window: i64,
) -> anyhow::Result<Vec<Proposal>> {
    let vocab = Vocabulary::new(rules)?;
    // The library's conventions: vetoes on a quarter of its templates.
    let mut veto_use: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &rules.templates {
        for v in &t.none_of {
            *veto_use.entry(v.as_str()).or_default() += 1;
        }
    }
    let mut conventions: Vec<(&str, usize)> = veto_use
        .iter()
        .filter(|(_, n)| **n * 4 >= rules.templates.len())
        .map(|(v, n)| (*v, *n))
        .collect();
    conventions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let mut out: Vec<Proposal> = Vec::new();
    let mut taken_ids: Vec<String> = rules.templates.iter().map(|t| t.id.clone()).collect();
    let mut taken_businesses: Vec<String> = rules.businesses.iter().map(|b| b.id.clone()).collect();
    let mut added = String::new();
    for topic in topics {
        let texts: Vec<&str> = topic.docs.iter().map(|&d| text_of(scan, d)).collect();
        // Group 1: the phrase and its other spellings.
        let mut first = vec![topic.phrase.clone()];
        first.extend(topic.alternatives.iter().cloned());
        // Group 2: what follows the phrase, when it covers every complaint.
        let mut follow: Vec<(String, u32)> = Vec::new();
        for s in &topic.shared {
            if let Some((_, rest)) = s.text.split_once(topic.phrase.as_str()) {
                if rest.chars().count() >= 2
                    && !follow.iter().any(|(f, _)| rest.contains(f.as_str()))
                {
                    follow.retain(|(f, _)| !f.contains(rest));
                    follow.push((rest.to_owned(), s.docs));
                }
            }
        }
        follow.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let covered = !follow.is_empty()
            && texts
                .iter()
                .all(|t| follow.iter().any(|(f, _)| t.contains(f.as_str())));
        let mut all_of = vec![first.clone()];
        if covered && topic.alternatives.is_empty() {
            all_of.push(follow.iter().map(|(f, _)| f.clone()).collect());
        }
        let words: Vec<String> = all_of.iter().flatten().cloned().collect();
        // none_of: conventions, and the library's vetoes a minority holds.
        let n = texts.len().max(1);
        let mut none_of: Vec<String> = Vec::new();
        let mut why_none: Vec<String> = Vec::new();
        for (v, _) in &conventions {
            let held = texts.iter().filter(|t| t.contains(v)).count();
            if held * 5 <= n && !words.iter().any(|w| w.contains(v)) {
                none_of.push((*v).to_owned());
            }
        }
        for v in veto_use.keys() {
            if none_of.iter().any(|x| x == v) || words.iter().any(|w| w.contains(v)) {
                continue;
            }
            let held = texts.iter().filter(|t| t.contains(v)).count();
            if held > 0 && held * 5 <= n {
                none_of.push((*v).to_owned());
                why_none.push(format!("{v} in {held}"));
            }
        }
        // The business.
        let mut phrases = words.clone();
        phrases.extend(topic.shared.iter().take(8).map(|p| p.text.clone()));
        let guess = guess_business(rules, &vocab, &texts, &phrases);
        let rank = out.len() + 1;
        let mut business_block = String::new();
        let business = match guess {
            Some((b, reason)) => BusinessGuess {
                id: rules.businesses[b].id.clone(),
                name: rules.businesses[b].name.clone(),
                new: false,
                reason,
            },
            None => {
                let mut id = format!("new_topic_{rank}");
                while taken_businesses.contains(&id) {
                    id.push('_');
                }
                taken_businesses.push(id.clone());
                let dept = rules.discovery.as_ref().map_or(0, |d| d.department);
                business_block = format!(
                    "[[business]]\nid = {}\nname = {}\ndepartment = {}\nthreshold = {min}\n\n",
                    quote(&id),
                    quote(&topic.phrase),
                    quote(&rules.departments[dept].id)
                );
                BusinessGuess {
                    id,
                    name: topic.phrase.clone(),
                    new: true,
                    reason: "no template keyword or word of the library fits: a new business"
                        .into(),
                }
            }
        };
        let mut template_id = format!("{}.new_{rank}", business.id);
        while taken_ids.contains(&template_id) {
            template_id.push('_');
        }
        taken_ids.push(template_id.clone());
        // Where and when.
        let docs = &topic.docs;
        let mut callers: Vec<u64> = docs.iter().map(|&d| scan.docs[d as usize].caller).collect();
        callers.sort_unstable();
        callers.dedup();
        let first_ts = docs
            .iter()
            .map(|&d| scan.docs[d as usize].ts)
            .min()
            .unwrap_or(0);
        let last_ts = docs
            .iter()
            .map(|&d| scan.docs[d as usize].ts)
            .max()
            .unwrap_or(0);
        let mut days: Vec<i64> = docs
            .iter()
            .map(|&d| {
                (scan.docs[d as usize].ts + crate::time::CST_OFFSET_MS).div_euclid(86_400_000)
            })
            .collect();
        days.sort_unstable();
        days.dedup();
        let mut per_city: BTreeMap<u32, u64> = BTreeMap::new();
        for &d in docs {
            *per_city.entry(scan.docs[d as usize].city).or_default() += 1;
        }
        let mut regions: Vec<PlaceCount> = per_city
            .into_iter()
            .map(|(c, n)| PlaceCount {
                place: scan.places[c as usize].clone(),
                complaints: n,
            })
            .collect();
        regions.sort_by(|a, b| b.complaints.cmp(&a.complaints).then(a.place.cmp(&b.place)));
        let b = &topic.burst;
        let place = match b.kind {
            PlaceKind::Region => scan.places[b.place as usize].clone(),
            PlaceKind::Province => rules.provinces[b.place as usize].name.clone(),
            PlaceKind::All => "all".into(),
        };
        let busiest = Busiest {
            place,
            scope: b.kind.name().into(),
            window_start: format_cst(b.start),
            window_end: format_cst(b.start + window),
            callers: b.callers,
            expected: (b.lambda * 1000.0).round() / 1000.0,
        };
        // Examples: evenly over the topic, masked.
        let picks: Vec<u32> = if docs.len() <= EXAMPLES {
            docs.clone()
        } else {
            (0..EXAMPLES)
                .map(|i| docs[i * (docs.len() - 1) / (EXAMPLES - 1)])
                .collect()
        };
        let examples: Vec<String> = picks
            .iter()
            .filter_map(|&d| example(&mut file, scan.docs[d as usize].offset))
            .collect();
        // The TOML.
        let mut toml = String::new();
        toml.push_str(&format!(
            "# [{rank}] {} — {} complaints from {} callers in {} ({} day{}), {} to {}\n",
            topic.phrase,
            docs.len(),
            callers.len(),
            regions
                .iter()
                .take(4)
                .map(|r| format!("{} {}", r.place, r.complaints))
                .collect::<Vec<_>>()
                .join(", ")
                + if regions.len() > 4 { " …" } else { "" },
            days.len(),
            if days.len() == 1 { "" } else { "s" },
            format_cst(first_ts),
            format_cst(last_ts)
        ));
        toml.push_str(&format!(
            "#     busiest: {} ({}) {} + {}, {} callers where {:.3} were expected (10^-{:.1})\n",
            busiest.place,
            busiest.scope,
            busiest.window_start,
            crate::time::format_duration(window),
            busiest.callers,
            busiest.expected,
            b.surprise.min(999.0)
        ));
        toml.push_str(&format!(
            "#     business: {} ({}): {}\n",
            business.id,
            business.name,
            comment(&business.reason)
        ));
        if !covered && !follow.is_empty() {
            toml.push_str(&format!(
                "#     what follows it (a second all_of group would miss some complaints): {}\n",
                follow
                    .iter()
                    .take(6)
                    .map(|(f, n)| format!("{f} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !why_none.is_empty() {
            toml.push_str(&format!(
                "#     none_of beyond the library's conventions: {} of {} complaints\n",
                why_none.join(", "),
                docs.len()
            ));
        }
        for e in &examples {
            toml.push_str(&format!("#     e.g. {}\n", comment(e)));
        }
        toml.push_str(&business_block);
        toml.push_str(&format!(
            "[[template]]\nid = {}\nbusiness = {}\nphenomenon = {}\nall_of = [{}]\nnone_of = {}\n",
            quote(&template_id),
            quote(&business.id),
            quote(&topic.phrase),
            all_of
                .iter()
                .map(|g| list(g))
                .collect::<Vec<_>>()
                .join(", "),
            list(&none_of)
        ));
        // Check: the rules with it (and the proposals before it) load, and
        // its template matches the topic's complaints.
        let with = format!("{rules_text}\n\n{added}{toml}");
        let (loads, matched, vetoed, other) = match rules::load_str(&with, "suggested.toml") {
            Ok(r) => {
                let t = r
                    .templates
                    .iter()
                    .position(|t| t.id == template_id)
                    .unwrap_or(usize::MAX);
                let m = Matcher::new(&r)?;
                let mut scratch = m.scratch();
                let hits = |text: &str, scratch: &mut crate::matcher::Matches| {
                    m.find(text, scratch);
                    scratch.templates().contains(&(t as u32))
                };
                let matched = texts.iter().filter(|x| hits(x, &mut scratch)).count() as u64;
                let vetoed = texts
                    .iter()
                    .filter(|x| none_of.iter().any(|v| x.contains(v.as_str())))
                    .count() as u64;
                let other = (0..scan.docs.len() as u32)
                    .filter(|d| docs.binary_search(d).is_err())
                    .filter(|&d| {
                        let x = text_of(scan, d);
                        words.iter().any(|w| x.contains(w.as_str())) && hits(x, &mut scratch)
                    })
                    .count() as u64;
                (true, matched, vetoed, other)
            }
            Err(_) => (false, 0, 0, 0),
        };
        if loads {
            added.push_str(&toml);
            added.push('\n');
        }
        toml.push_str(&format!(
            "# checked: the rules with this load; it matches {matched} of these {} complaints{}{}\n",
            docs.len(),
            if vetoed > 0 {
                format!(" ({vetoed} hold a none_of word)")
            } else {
                String::new()
            },
            if other > 0 {
                format!(", and {other} other unmatched complaints")
            } else {
                String::new()
            }
        ));
        out.push(Proposal {
            rank,
            phrase: topic.phrase.clone(),
            surprise: (b.surprise.min(999.0) * 10.0).round() / 10.0,
            complaints: docs.len() as u64,
            callers: callers.len() as u64,
            first: format_cst(first_ts),
            last: format_cst(last_ts),
            days: days.len() as u64,
            regions,
            busiest,
            business,
            template_id,
            all_of,
            none_of,
            examples,
            toml,
            check: Check {
                loads,
                topic_complaints: docs.len() as u64,
                matched,
                vetoed,
                other_unmatched: other,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_quoted() {
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c \"");
        assert_eq!(list(&["x".into(), "y".into()]), "[\"x\", \"y\"]");
    }
}
