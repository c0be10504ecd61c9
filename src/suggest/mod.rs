//! `hotspot suggest`: for a recorded file, template proposals for the
//! topics that many callers complain about in the same words while no
//! template names them (CONTRACT 8, "New topics"; issue 18), ranked, as
//! TOML that `check-rules` accepts once appended to the rules.
//!
//! How it goes:
//!
//! 1. **Scan** (in parallel, in file order): every valid record is
//!    normalised and matched against the rules *without their vetoes*; a
//!    text that covers some template's `all_of` groups is known (a text
//!    stopped only by a `none_of` is known too, not new). The others are
//!    the *unmatched* complaints; for each, the distinct character n-grams
//!    of [`crate::topics::phrase`] (numbers and punctuation taken out
//!    first) are counted: the document frequency `df` of each n-gram.
//! 2. **Bursts.** Each unmatched complaint counts in its city, its province
//!    (with a `[[region]]` table) and in `all` (the whole file as one
//!    place), in windows of the rules' size aligned to the epoch and
//!    shifted by half a window. For every n-gram that reaches `min_callers`
//!    distinct callers in one (place, window), with `n` unmatched
//!    complaints there, the expected count is `λ = df_h × n / N_h`, where
//!    `N_h` is the file's unmatched complaints at that hour of the day (on
//!    every day) and `df_h` how many of them hold the n-gram; its surprise
//!    is `−log10 P(Poisson(λ) ≥ callers)`. An n-gram is *bursty* when its
//!    most surprising window reaches [`MIN_SURPRISE`]. Load curve, city
//!    size, surge days and the hour scale `λ`, so a phrase that is
//!    everywhere every day (`营业厅排队`, `客户来电反映`), or every evening
//!    (`20点`, `今晚`), is never bursty however often it is written.
//! 3. **Topics**, most surprising n-gram first: the complaints of its
//!    busiest window give the shared phrases
//!    ([`crate::topics::phrase::shared_phrases`]: overlapping n-grams
//!    merged into the longest shared phrase, trimmed to n-grams far more
//!    frequent there than in the file, lift ≥ [`MIN_LIFT`]); of those
//!    holding the n-gram and their parts, the topic's phrase is the
//!    longest that 95 % of the complaints holding any of their n-grams (in
//!    the window, or anywhere with the n-gram) hold, and the topic every
//!    unmatched complaint of the file holding the phrase.
//!    A burst whose complaints are mostly an earlier topic's is that
//!    topic's (`17点` of `从17点左右开始数字人民币…`), and so are bursty
//!    n-grams mostly inside its complaints. A topic comes in batches: its
//!    busiest window holds at least [`MIN_BATCH_SHARE`] of its callers, or
//!    it is no topic (a filler that clusters once by chance).
//! 4. **Proposals.** `all_of`: the phrase (and other spellings that burst
//!    in the same window without it); a second group of the phrases that
//!    follow it (its symptoms) when they cover every complaint of the
//!    topic. The business: the one whose template keywords occur most in
//!    the topic's complaints (weighted by how specific a keyword is), else
//!    the one whose templates share most two-character words with the
//!    phrases, else a new business of the `[discovery]` department.
//!    `none_of`: the library's conventions (vetoes on a quarter of its
//!    templates or more, `测试工单`) and the library's veto words that a
//!    minority (at most a fifth) of the topic's complaints hold
//!    (`咨询如何`), never a word inside the phrase. Examples are masked.
//!    Every proposal is checked: the rules with it load, and its template
//!    matches the topic's complaints (the counts are printed).
//!
//! Deterministic: the same file and rules give the same proposals, byte
//! for byte, whatever the thread count (results are merged in file order,
//! ties broken by place, window and n-gram).

mod bursts;
mod proposal;
mod scan;
mod topic;

use std::path::Path;

use serde::Serialize;

use crate::rules::Rules;

pub use bursts::{OTHER_DAYS, surprise};

use bursts::bursts;
use proposal::proposals;
use scan::{dense, scan, threads, without_vetoes};
use topic::topics;

/// A window is a burst only this surprising: P(Poisson(λ) ≥ callers) at
/// most 10^-8 (a file has some hundred thousand (n-gram, window) pairs
/// with `min_callers` callers).
pub const MIN_SURPRISE: f64 = 8.0;
/// An n-gram belongs to a topic's phrase when it is this many times more
/// frequent among the topic's complaints than in the whole file.
pub const MIN_LIFT: f64 = 10.0;
/// A topic's busiest window holds at least this share of its callers.
pub const MIN_BATCH_SHARE: f64 = 0.05;
/// `min_callers` when the rules have no `[discovery]`.
pub const DEFAULT_MIN_CALLERS: u32 = 8;
/// Example complaints per proposal.
pub const EXAMPLES: usize = 3;

/// What to propose.
#[derive(Debug, Clone)]
pub struct Options {
    /// Distinct callers of one place and window that make a burst
    /// (default: the rules' `[discovery] min_callers`, else
    /// [`DEFAULT_MIN_CALLERS`]).
    pub min_callers: Option<u32>,
    /// Proposals at most.
    pub top: usize,
    /// Threads (0: every core).
    pub threads: usize,
}

/// The report: what was read and the proposals, best first.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input: String,
    pub rules: String,
    pub lines: u64,
    pub records: u64,
    /// Records whose text covers a template's `all_of` (vetoed ones
    /// included).
    pub known: u64,
    pub unmatched: u64,
    pub min_callers: u32,
    /// Bursty n-grams found (before they are grouped into topics).
    pub bursty_grams: u64,
    pub proposals: Vec<Proposal>,
}

/// One proposed template.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub rank: usize,
    /// The topic's phrase (normalised).
    pub phrase: String,
    /// −log10 of the Poisson tail of its busiest window.
    pub surprise: f64,
    /// Unmatched complaints holding the phrase, and their distinct callers.
    pub complaints: u64,
    pub callers: u64,
    pub first: String,
    pub last: String,
    /// Local days with at least one of its complaints.
    pub days: u64,
    /// Cities by complaints (most first).
    pub regions: Vec<PlaceCount>,
    pub busiest: Busiest,
    pub business: BusinessGuess,
    pub template_id: String,
    pub all_of: Vec<Vec<String>>,
    pub none_of: Vec<String>,
    /// Masked, cut to 120 characters.
    pub examples: Vec<String>,
    /// The proposal, as TOML to append to the rules.
    pub toml: String,
    pub check: Check,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaceCount {
    pub place: String,
    pub complaints: u64,
}

/// The window where the topic stood out most.
#[derive(Debug, Clone, Serialize)]
pub struct Busiest {
    pub place: String,
    /// `region`, `province` or `all`.
    pub scope: String,
    pub window_start: String,
    pub window_end: String,
    pub callers: u32,
    /// Complaints holding the n-gram expected there from its rate in the
    /// file.
    pub expected: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BusinessGuess {
    pub id: String,
    pub name: String,
    /// A business the proposal adds (no existing one fits).
    pub new: bool,
    /// Why: the keywords seen, or the shared words.
    pub reason: String,
}

/// The proposal checked against the rules and the file.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The rules with the proposal load (what `check-rules` says).
    pub loads: bool,
    /// The topic's complaints, and how many the proposed template matches
    /// once added.
    pub topic_complaints: u64,
    pub matched: u64,
    /// Of the rest, those holding a proposed `none_of` word.
    pub vetoed: u64,
    /// Other unmatched complaints of the file it would match too.
    pub other_unmatched: u64,
}

/// Runs `hotspot suggest` on `input` with `rules` (whose file text is
/// `rules_text`).
pub fn suggest(
    input: &Path,
    rules: &Rules,
    rules_text: &str,
    opts: &Options,
) -> anyhow::Result<Report> {
    let workers = threads(opts.threads);
    let min = opts
        .min_callers
        .or(rules.discovery.as_ref().map(|d| d.min_callers))
        .unwrap_or(DEFAULT_MIN_CALLERS)
        .max(2);
    let window = rules.window.size_ms.max(1);
    let strict = without_vetoes(rules)?;
    let scan = scan(input, &strict, workers)?;
    let province_of_city: Vec<Option<u32>> = scan
        .places
        .iter()
        .map(|p| rules.province_of(rules.region_of(p)).map(|x| x as u32))
        .collect();
    let cap = ((scan.docs.len() as f64 * 0.02) as u32).max(1000).max(min);
    let dense = dense(&scan, min, cap, workers);
    let best = bursts(&scan, &dense, &province_of_city, window, min, workers);
    let bursty = best.iter().filter(|b| b.is_some()).count() as u64;
    let topics = topics(
        &scan,
        &dense,
        &best,
        &province_of_city,
        window,
        min,
        opts.top,
    );
    let proposals = proposals(input, rules, rules_text, &scan, &topics, min, window)?;
    Ok(Report {
        input: input.display().to_string(),
        rules: rules.source.clone(),
        lines: scan.lines,
        records: scan.records,
        known: scan.known,
        unmatched: scan.docs.len() as u64,
        min_callers: min,
        bursty_grams: bursty,
        proposals,
    })
}

/// The report as TOML: a header, then every proposal.
pub fn render(report: &Report) -> String {
    let mut s = format!(
        "# hotspot suggest: {} — {} records, {} matching no template (min_callers {}), rules {}\n\
         # {} proposal{}, most surprising first. Review, then append to the rules.\n\n",
        report.input,
        report.records,
        report.unmatched,
        report.min_callers,
        report.rules,
        report.proposals.len(),
        if report.proposals.len() == 1 { "" } else { "s" }
    );
    for p in &report.proposals {
        s.push_str(&p.toml);
        s.push('\n');
    }
    s
}
