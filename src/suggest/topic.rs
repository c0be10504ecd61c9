//! `hotspot suggest`, step 3: topics from the bursting n-grams, their
//! phrase merged from overlapping n-grams.

use super::bursts::{Burst, PlaceKind};
use super::scan::{Dense, Scan, text_of};
use super::{MIN_BATCH_SHARE, MIN_LIFT};
use crate::topics::phrase;

/// A topic found in step 3.
#[derive(Debug, Clone)]
pub(super) struct Topic {
    pub(super) phrase: String,
    pub(super) burst: Burst,
    /// Its complaints (indices into `Scan::docs`), in file order.
    pub(super) docs: Vec<u32>,
    /// Other spellings that burst in the same window without the phrase.
    pub(super) alternatives: Vec<String>,
    /// Shared phrases of its complaints (for the symptoms), with counts.
    pub(super) shared: Vec<phrase::Phrase>,
}

/// Whether an n-gram that `k` of `n` complaints hold is [`MIN_LIFT`]
/// times more frequent there than in the whole file.
fn lifted(scan: &Scan, g: u64, k: u32, n: usize) -> bool {
    let total = scan.docs.len().max(1) as f64;
    let global = f64::from(scan.df.get(&g).copied().unwrap_or(k).max(k).max(1));
    (f64::from(k) / n.max(1) as f64) / (global / total) >= MIN_LIFT
}

/// The complaints of the window of `b`, in file order; `by_ts` is every
/// complaint sorted by time.
fn window_docs(
    scan: &Scan,
    by_ts: &[u32],
    b: &Burst,
    province_of_city: &[Option<u32>],
    window: i64,
) -> Vec<u32> {
    let ts = |i: &u32| scan.docs[*i as usize].ts;
    let from = by_ts.partition_point(|i| ts(i) < b.start);
    let to = by_ts.partition_point(|i| ts(i) < b.start + window);
    let mut v: Vec<u32> = by_ts[from..to]
        .iter()
        .copied()
        .filter(|&i| {
            let d = &scan.docs[i as usize];
            match b.kind {
                PlaceKind::Region => d.city == b.place,
                PlaceKind::Province => province_of_city[d.city as usize] == Some(b.place),
                PlaceKind::All => true,
            }
        })
        .collect();
    v.sort_unstable();
    v
}

/// Step 3: topics from the bursty n-grams, most surprising first.
pub(super) fn topics(
    scan: &Scan,
    dense: &Dense,
    best: &[Option<Burst>],
    province_of_city: &[Option<u32>],
    window: i64,
    min: u32,
    top: usize,
) -> Vec<Topic> {
    let mut bursty: Vec<(u32, Burst)> = best
        .iter()
        .enumerate()
        .filter_map(|(g, b)| b.map(|b| (g as u32, b)))
        .collect();
    bursty.sort_by(|a, b| {
        b.1.surprise
            .total_cmp(&a.1.surprise)
            .then(dense.ids[a.0 as usize].cmp(&dense.ids[b.0 as usize]))
    });
    // The complaints of each bursty n-gram.
    let mut slot = vec![u32::MAX; dense.ids.len()];
    for (i, (g, _)) in bursty.iter().enumerate() {
        slot[*g as usize] = i as u32;
    }
    let mut postings: Vec<Vec<u32>> = vec![Vec::new(); bursty.len()];
    for d in 0..scan.docs.len() {
        for &g in &dense.grams[dense.start[d] as usize..dense.start[d + 1] as usize] {
            let s = slot[g as usize];
            if s != u32::MAX {
                postings[s as usize].push(d as u32);
            }
        }
    }
    let mut by_ts: Vec<u32> = (0..scan.docs.len() as u32).collect();
    by_ts.sort_by_key(|&i| (scan.docs[i as usize].ts, i));
    let mut used = vec![false; bursty.len()];
    let mut claimed = vec![false; scan.docs.len()];
    let mut out: Vec<Topic> = Vec::new();
    for i in 0..bursty.len() {
        if used[i] || out.len() >= top {
            continue;
        }
        used[i] = true;
        let (g, b) = bursty[i];
        let gram = phrase::gram_text(dense.ids[g as usize]);
        let in_window = window_docs(scan, &by_ts, &b, province_of_city, window);
        // A burst that a topic already found explains (its complaints
        // there are mostly that topic's: `17点` of `从17点左右开始数字人民币…`).
        let with_gram: Vec<u32> = in_window
            .iter()
            .copied()
            .filter(|d| postings[i].binary_search(d).is_ok())
            .collect();
        let explained = with_gram.iter().filter(|&&d| claimed[d as usize]).count();
        if explained * 2 >= with_gram.len() {
            continue;
        }
        // The phrase: in the busiest window, the shared phrase holding the
        // n-gram that most complaints there hold.
        let texts: Vec<&str> = in_window.iter().map(|&d| text_of(scan, d)).collect();
        let found = phrase::shared_phrases(
            &texts,
            min as usize,
            |g, k| lifted(scan, g, k, texts.len()),
            64,
        );
        // The shared phrases holding the n-gram; the complaints of the
        // window, and those of the file with the n-gram, holding any
        // n-gram of theirs; and of the phrases' parts, the longest that 95 %
        // of those complaints hold (`fttr全屋组网`, not `的fttr全屋组网` of
        // the leads ending in 的, nor `fttr全`).
        let chosen: Vec<Vec<char>> = found
            .iter()
            .filter(|p| p.text.contains(gram.as_str()))
            .map(|p| p.text.chars().collect())
            .collect();
        let mut their: Vec<String> = chosen
            .iter()
            .flat_map(|c| {
                c.windows(phrase::GRAM)
                    .map(|w| w.iter().collect::<String>())
            })
            .collect();
        their.sort_unstable();
        their.dedup();
        let mut around: Vec<u32> = in_window.iter().chain(&postings[i]).copied().collect();
        around.sort_unstable();
        around.dedup();
        let holding: Vec<&str> = around
            .iter()
            .map(|&d| text_of(scan, d))
            .filter(|t| their.iter().any(|g| t.contains(g.as_str())))
            .collect();
        let mut parts: Vec<String> = Vec::new();
        for c in &chosen {
            for a in 0..c.len() {
                for b in a + phrase::GRAM..=c.len() {
                    parts.push(c[a..b].iter().collect());
                }
            }
        }
        parts.sort_unstable();
        parts.dedup();
        let need = (holding.len() * 95).div_ceil(100);
        let phrase_text = parts
            .into_iter()
            .map(|p| {
                let n = holding.iter().filter(|t| t.contains(p.as_str())).count();
                (p, n)
            })
            .filter(|(_, n)| *n >= need)
            .max_by(|a, b| {
                a.0.chars()
                    .count()
                    .cmp(&b.0.chars().count())
                    .then(a.1.cmp(&b.1))
                    .then(b.0.cmp(&a.0))
            })
            .map_or_else(|| gram.clone(), |(p, _)| p);
        let docs: Vec<u32> = postings[i]
            .iter()
            .copied()
            .filter(|&d| text_of(scan, d).contains(phrase_text.as_str()))
            .collect();
        let callers = {
            let mut c: Vec<u64> = docs.iter().map(|&d| scan.docs[d as usize].caller).collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        // A topic comes in batches: its busiest window holds a share of it
        // (a filler such as `已做好解释` that happens to cluster once does
        // not).
        if callers < min as usize || (b.callers as f64) < MIN_BATCH_SHARE * callers as f64 {
            continue;
        }
        // Other spellings: phrases shared in the window by complaints
        // without this one, with few complaints of their own holding it.
        let alternatives: Vec<String> = found
            .iter()
            .filter(|q| {
                !q.text.contains(phrase_text.as_str())
                    && !phrase_text.contains(q.text.as_str())
                    && texts
                        .iter()
                        .filter(|t| t.contains(q.text.as_str()))
                        .all(|t| !t.contains(phrase_text.as_str()))
            })
            .map(|q| q.text.clone())
            .collect();
        let mut all_docs = docs.clone();
        for alt in &alternatives {
            for &d in &in_window {
                if text_of(scan, d).contains(alt.as_str()) {
                    all_docs.push(d);
                }
            }
        }
        all_docs.sort_unstable();
        all_docs.dedup();
        // Mostly the complaints of a topic already found: the same topic.
        let again = all_docs.iter().filter(|&&d| claimed[d as usize]).count();
        if again * 2 >= all_docs.len() {
            continue;
        }
        for &d in &all_docs {
            claimed[d as usize] = true;
        }
        // Bursty n-grams mostly inside these complaints belong to it.
        let inside = |d: &u32| all_docs.binary_search(d).is_ok();
        for (j, (_, _)) in bursty.iter().enumerate().skip(i + 1) {
            if used[j] {
                continue;
            }
            let post = &postings[j];
            let hit = post.iter().filter(|d| inside(d)).count();
            if hit * 2 >= post.len() {
                used[j] = true;
            }
        }
        let topic_texts: Vec<&str> = all_docs.iter().map(|&d| text_of(scan, d)).collect();
        let shared = phrase::shared_phrases(
            &topic_texts,
            2,
            |g, k| lifted(scan, g, k, topic_texts.len()),
            64,
        );
        out.push(Topic {
            phrase: phrase_text,
            burst: b,
            docs: all_docs,
            alternatives,
            shared,
        });
    }
    out
}
