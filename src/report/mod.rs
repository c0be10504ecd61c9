//! `hotspot report`: the analysts' report of an alerts file, one
//! self-contained HTML page with charts (or one PNG of the charts).
//!
//! The stages, one module each, in the order the data flows:
//!
//! ```text
//! alerts    the alerts file, streamed: firing lines of the period → incidents (+ resolutions)
//! onset     --input, streamed on N threads: each incident's onset (time to detect) and templates
//! figures   the sums every chart and table shows
//! charts    the charts, drawn with plotters on any backend
//! html      the page: inline SVG charts, key figures, the incident table
//! png       --format png: the charts on one bitmap, with a CJK font
//! ```
//!
//! The same alerts, input and rules give the same bytes (no time of
//! generation is written, threads only sum).

pub(crate) mod alerts;
pub(crate) mod charts;
pub(crate) mod figures;
pub(crate) mod html;
pub(crate) mod onset;
pub(crate) mod png;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::rules::Rules;

pub use alerts::Period;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Png,
}

/// What to report on and where to write it.
#[derive(Debug, Clone)]
pub struct Options {
    pub alerts: PathBuf,
    pub input: Option<PathBuf>,
    pub rules: Arc<Rules>,
    pub period: Period,
    pub out: PathBuf,
    pub format: Format,
    /// Threads for the input pass (at least 1).
    pub threads: usize,
    /// `--format png`: the font file.
    pub font: Option<PathBuf>,
}

/// What the page needs besides the figures.
pub(crate) struct Context {
    pub alerts_name: String,
    pub input_name: Option<String>,
    pub input: Option<onset::InputFacts>,
    pub window_ms: i64,
}

/// What a report run did, for the command's summary line.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub incidents: usize,
    pub malformed: u64,
    pub input_records: Option<u64>,
    /// Alerts whose business the rules do not know (with `--input`).
    pub unknown_business: u64,
    pub ttd_median_min: Option<f64>,
    pub bytes: u64,
}

fn file_name(p: &Path) -> String {
    if p.as_os_str() == "-" {
        return "标准输入".to_owned();
    }
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Reads, measures, draws and writes the report.
pub fn run(opts: &Options) -> anyhow::Result<Outcome> {
    let read = alerts::read(&opts.alerts, opts.period)?;
    let input = match &opts.input {
        Some(p) => Some(onset::scan(p, &opts.rules, &read.incidents, opts.threads)?),
        None => None,
    };
    let f = figures::compute(
        &read.incidents,
        input.as_ref(),
        &opts.rules,
        (opts.period.from, opts.period.to),
    )?;
    let cx = Context {
        alerts_name: file_name(&opts.alerts),
        input_name: opts.input.as_deref().map(file_name),
        input,
        window_ms: opts.rules.window.size_ms,
    };
    match opts.format {
        Format::Html => {
            let page = html::page(&cx, &f)?;
            std::fs::write(&opts.out, page)
                .with_context(|| format!("cannot write {}", opts.out.display()))?;
        }
        Format::Png => png::write(&opts.out, &cx, &f, opts.font.as_deref())?,
    }
    let bytes = std::fs::metadata(&opts.out).map(|m| m.len()).unwrap_or(0);
    Ok(Outcome {
        incidents: read.incidents.len(),
        malformed: read.malformed,
        input_records: cx.input.as_ref().map(|i| i.records),
        unknown_business: cx.input.as_ref().map_or(0, |i| i.unknown_business),
        ttd_median_min: figures::median_p90(&f.ttd).map(|m| m.0),
        bytes,
    })
}
