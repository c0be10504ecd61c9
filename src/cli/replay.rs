//! `hotspot replay`: a recorded file (or stdin) through the engine as fast
//! as possible (CONTRACT 4), with a progress bar on a terminal and a final
//! summary line (lines, accepted, rejected, late, alerts, events/s, MB/s).

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use crate::engine::{EngineConfig, Stats};
use crate::record::Reject;
use crate::replay::{ReplayOutputs, replay};
use crate::rules::{self, Rules};
use crate::sink::JsonlWriter;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rules file (TOML). Default: the embedded fixture library.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Complaint records, JSON Lines; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write alert lines (created or truncated). Default: stdout.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// Write rejected lines here, one JSON object each.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Write the run's counts here as one JSON object.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// The most (business, region) keys held at once.
    #[arg(long, default_value_t = EngineConfig::default().max_keys)]
    pub max_keys: usize,
    /// No progress bar and no summary line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The `--summary` object: the contract's counts first, then measurements.
#[derive(Serialize)]
pub struct Summary {
    pub lines: u64,
    pub accepted: u64,
    pub late_dropped: u64,
    pub rejected: std::collections::BTreeMap<&'static str, u64>,
    pub alerts_firing: u64,
    pub alerts_resolved: u64,
    pub matched_total: u64,
    pub matched_records: u64,
    pub blank: u64,
    pub bytes: u64,
    pub keys_overflow: u64,
    pub rules_version: String,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub mb_per_s: f64,
    pub peak_rss_mb: Option<f64>,
}

impl Summary {
    pub fn new(stats: &Stats, rules: &Rules, elapsed_s: f64) -> Self {
        let rejected = Reject::ALL
            .iter()
            .filter(|r| stats.rejected[r.index()] > 0)
            .map(|r| (r.name(), stats.rejected[r.index()]))
            .collect();
        let secs = elapsed_s.max(1e-9);
        Summary {
            lines: stats.lines,
            accepted: stats.accepted,
            late_dropped: stats.late_dropped,
            rejected,
            alerts_firing: stats.alerts_firing,
            alerts_resolved: stats.alerts_resolved,
            matched_total: stats.matched,
            matched_records: stats.matched_records,
            blank: stats.blank,
            bytes: stats.bytes,
            keys_overflow: stats.keys_overflow,
            rules_version: rules.version.clone(),
            elapsed_s,
            events_per_s: stats.lines as f64 / secs,
            mb_per_s: stats.bytes as f64 / 1e6 / secs,
            peak_rss_mb: super::peak_rss_bytes().map(|b| b as f64 / 1e6),
        }
    }

    /// The one-line human summary printed at the end of a replay.
    pub fn line(&self) -> String {
        let rejected: u64 = self.rejected.values().sum();
        format!(
            "{} lines: {} accepted, {} rejected, {} late; {} alerts ({} firing, {} resolved) in {:.2} s — {:.0} events/s, {:.1} MB/s{}",
            self.lines,
            self.accepted,
            rejected,
            self.late_dropped,
            self.alerts_firing + self.alerts_resolved,
            self.alerts_firing,
            self.alerts_resolved,
            self.elapsed_s,
            self.events_per_s,
            self.mb_per_s,
            self.peak_rss_mb
                .map(|m| format!(", peak RSS {m:.0} MB"))
                .unwrap_or_default()
        )
    }
}

/// Loads `path`, or the embedded library; errors become one line naming the
/// file, line and item.
pub fn load_rules(path: Option<&Path>) -> anyhow::Result<Arc<Rules>> {
    let loaded = match path {
        Some(p) => rules::load_file(p),
        None => rules::embedded(),
    };
    loaded.map(Arc::new).map_err(|errors| {
        let more = if errors.len() > 1 {
            format!(" (and {} more; see hotspot check-rules)", errors.len() - 1)
        } else {
            String::new()
        };
        anyhow::anyhow!(
            "unusable rules: {}{more}",
            errors.first().map(|e| e.to_string()).unwrap_or_default()
        )
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = load_rules(args.rules.as_deref())?;
    let (input, size): (Box<dyn Read>, Option<u64>) = if args.input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(&args.input)
            .with_context(|| format!("cannot open input {}", args.input.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut alerts = match &args.alerts {
        Some(p) => JsonlWriter::create(p)
            .with_context(|| format!("cannot create alerts file {}", p.display()))?,
        None => JsonlWriter::stdout(),
    };
    let mut dead = match &args.dead_letter {
        Some(p) => Some(
            JsonlWriter::create(p)
                .with_context(|| format!("cannot create dead-letter file {}", p.display()))?,
        ),
        None => None,
    };
    let show = !args.quiet && std::io::stderr().is_terminal();
    let bar = show.then(|| {
        let bar = match size {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} replay [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut on_progress = |bytes: u64| {
        if let Some(b) = &bar {
            b.set_position(bytes);
        }
    };
    let started = Instant::now();
    let input_name = args.input.display().to_string();
    let stats = replay(
        rules.clone(),
        input,
        &mut ReplayOutputs {
            alerts: &mut alerts,
            dead_letters: dead.as_mut(),
        },
        EngineConfig {
            max_keys: args.max_keys,
        },
        Some(&mut on_progress),
    )
    .with_context(|| format!("replay of {input_name} failed"))?;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = Summary::new(&stats, &rules, elapsed);
    if let Some(p) = &args.summary {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(p, json + "\n")
            .with_context(|| format!("cannot write summary {}", p.display()))?;
    }
    if !args.quiet {
        eprintln!("hotspot replay: {}", summary.line());
    }
    Ok(ExitCode::SUCCESS)
}

/// The embedded sample traffic (see `fixtures/`).
pub const EMBEDDED_TRAFFIC: &[u8] = include_bytes!("../../fixtures/traffic.jsonl");

/// No subcommand: replay the embedded sample traffic with the embedded rules
/// and print the alerts.
pub fn demo() -> anyhow::Result<ExitCode> {
    let rules = load_rules(None)?;
    eprintln!(
        "hotspot: replaying the embedded sample traffic ({} lines) with the embedded rule library \
         ({} businesses, {} templates); alerts follow. `hotspot --help` lists the commands.",
        EMBEDDED_TRAFFIC.iter().filter(|&&b| b == b'\n').count(),
        rules.businesses.len(),
        rules.templates.len()
    );
    let started = Instant::now();
    let mut alerts = JsonlWriter::stdout();
    let stats = replay(
        rules.clone(),
        EMBEDDED_TRAFFIC,
        &mut ReplayOutputs {
            alerts: &mut alerts,
            dead_letters: None,
        },
        EngineConfig::default(),
        None,
    )?;
    eprintln!(
        "hotspot replay: {}",
        Summary::new(&stats, &rules, started.elapsed().as_secs_f64()).line()
    );
    Ok(ExitCode::SUCCESS)
}
