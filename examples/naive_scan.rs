//! The issue's reference point: the minimal Rust program that only parses
//! each line with serde_json, normalises the text and runs one aho-corasick
//! scan over it: no validation beyond serde's, no windows, no alerts, no
//! output but a count. hotspot has to do the whole contract faster than
//! this, so the replay bench runs it on the same file as a reference row.
//!
//! ```text
//! cargo run --release --example naive_scan -- target/bench-data/gen-1000000-3d.jsonl
//! ```
//!
//! It is written as such a program would reasonably be written, not as a
//! straw man: borrowed fields (`Cow`, so only escaped strings allocate), a
//! buffered reader reusing one line buffer, hotspot's own normaliser (its
//! fast path is allocation-free) and the crate's DFA with overlapping
//! matches over every keyword of the embedded rules, as the project notes
//! recommend.
//!
//! Prints one line: `events N  matched M  hits H  secs S  events/s R`.
//! `cargo bench --bench replay` runs the same function in its own process
//! beside hotspot and prints it as the table's reference row.

use std::borrow::Cow;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Line<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    ts: serde_json::Value,
    #[serde(borrow)]
    region: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(borrow, default)]
    caller: Option<Cow<'a, str>>,
}

/// What one run of the minimal program found and how long it took.
#[allow(dead_code)]
pub struct NaiveRun {
    pub events: u64,
    pub matched: u64,
    pub hits: u64,
    pub secs: f64,
}

/// Runs the minimal program over the JSON Lines file at `path` (the clock
/// starts after the automaton is built, as hotspot's summary clock starts
/// after its rules are compiled).
pub fn naive_scan(path: &std::path::Path) -> Result<NaiveRun, Box<dyn std::error::Error>> {
    let rules = hotspot::rules::embedded().map_err(|e| format!("{e:?}"))?;
    let keywords = rules.keywords();
    let ac = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .match_kind(MatchKind::Standard)
        .build(&keywords)?;

    let start = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut line = Vec::with_capacity(4096);
    let mut norm = hotspot::normalize::Normalizer::new();
    let (mut events, mut matched, mut hits) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let Ok(rec) = serde_json::from_slice::<Line<'_>>(&line) else {
            continue;
        };
        events += 1;
        let text = norm.normalize(&rec.text);
        let n = ac.find_overlapping_iter(text).count() as u64;
        hits += n;
        matched += (n > 0) as u64;
    }
    Ok(NaiveRun {
        events,
        matched,
        hits,
        secs: start.elapsed().as_secs_f64(),
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: naive_scan FILE.jsonl")?;
    let r = naive_scan(path.as_ref())?;
    println!(
        "events {}  matched {}  hits {}  secs {:.3}  events/s {:.0}",
        r.events,
        r.matched,
        r.hits,
        r.secs,
        r.events as f64 / r.secs
    );
    Ok(())
}
