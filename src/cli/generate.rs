//! `hotspot gen`: writes generated traffic and its ground truth (see
//! [`crate::generator`]).
//!
//! ```text
//! hotspot gen --seed 7 --events 60000 --days 3 --start 2026-03-14 \
//!     --surge-day 2026-03-15 --dirty 0.05 --out traffic.jsonl --truth truth.json
//! hotspot gen --scenario field --seed 7 --out field.jsonl --truth field-truth.json \
//!     --rules-out field-rules.toml --plain-rules-out field-plain.toml
//! ```
//!
//! The field scenario ([`crate::generator::field`]) writes its own rules,
//! calibrated on its background: `--rules-out` with the contract's section 8
//! keys, `--plain-rules-out` without them.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::generator::{Config, field, format_date, generate, parse_date};

/// What `hotspot gen` generates.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Traffic following a rules file, with incidents sized to its
    /// thresholds (the default).
    Classic,
    /// Days of background, a learning period, incidents that a fixed
    /// threshold catches or misses, traps, and rules calibrated on the
    /// biggest city.
    Field,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `field`: several days with incidents by kind (big city, small city,
    /// province-wide, slow rise, night) and its own calibrated rules.
    #[arg(long, value_enum, default_value_t = Scenario::Classic)]
    pub scenario: Scenario,
    /// Seed of every random choice: the same arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Valid complaint records to write, incidents and traps included (at
    /// least what the incidents and traps need: a few hundred a day).
    /// Default: 60000; field: 50000 an ordinary day, 2.5 times that on
    /// the surge day.
    #[arg(long)]
    pub events: Option<u64>,
    /// Days of traffic. Default: 1; field: 12.
    #[arg(long)]
    pub days: Option<u32>,
    /// The first day (local date). Default: 2026-03-14; field: 2026-03-07.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start: Option<String>,
    /// The 3.15-style surge day (three times the traffic, no fault), or
    /// `none`. Default: March 15 when the run covers it (field: after the
    /// learning days, else day 8).
    #[arg(long, value_name = "YYYY-MM-DD|none")]
    pub surge_day: Option<String>,
    /// Add this fraction of `--events` as extra bad lines (invalid UTF-8 or
    /// JSON, missing fields, bad timestamps) and, rarely, 1 MB records.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub dirty: f64,
    /// Rules file whose thresholds and templates the traffic follows.
    /// Default: the embedded fixture library. Not with `--scenario field`.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Where to write the JSON Lines; `-` writes to standard output.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where to write the ground truth (JSON).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Field: where to write its rules with section 8 keys (regions,
    /// province thresholds, surge).
    #[arg(long, value_name = "FILE")]
    pub rules_out: Option<PathBuf>,
    /// Field: where to write the same rules without any section 8 key.
    #[arg(long, value_name = "FILE")]
    pub plain_rules_out: Option<PathBuf>,
    /// No progress bar and no summary line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let is_field = args.scenario == Scenario::Field;
    anyhow::ensure!(
        !(is_field && args.rules.is_some()),
        "--rules is not used with --scenario field (it writes its own: --rules-out, --plain-rules-out)"
    );
    anyhow::ensure!(
        is_field || (args.rules_out.is_none() && args.plain_rules_out.is_none()),
        "--rules-out and --plain-rules-out need --scenario field"
    );
    let start = args.start.clone().unwrap_or_else(|| {
        if is_field {
            field::DEFAULT_START.into()
        } else {
            "2026-03-14".into()
        }
    });
    let days = args
        .days
        .unwrap_or(if is_field { field::DEFAULT_DAYS } else { 1 });
    let start_day = parse_date(&start)
        .with_context(|| format!("--start {start:?} is not a date like 2026-03-14"))?;
    anyhow::ensure!(days >= 1, "--days must be at least 1");
    anyhow::ensure!(
        !is_field || days >= 2,
        "--scenario field needs at least 2 days (learning, then incidents)"
    );
    anyhow::ensure!(
        (0.0..=10.0).contains(&args.dirty),
        "--dirty must be between 0 and 10 (a fraction of --events)"
    );
    let surge_day = match args.surge_day.as_deref() {
        Some("none") => None,
        Some(s) => Some(parse_date(s).with_context(|| {
            format!("--surge-day {s:?} is not a date like 2026-03-15 (or none)")
        })?),
        None if is_field => field::default_surge_day(start_day, days),
        None => {
            // March 15 of a year the run covers.
            let (y0, _, _) = crate::time::civil_from_days(start_day);
            [y0, y0 + 1]
                .into_iter()
                .filter_map(|y| parse_date(&format!("{y:04}-03-15")))
                .find(|d| (start_day..start_day + days as i64).contains(d))
        }
    };
    let events = args.events.unwrap_or(if is_field {
        field::default_events(days, surge_day.is_some())
    } else {
        60_000
    });
    if is_field {
        return run_field(&args, events, days, start_day, surge_day);
    }
    let rules = super::replay::load_rules(args.rules.as_deref())?;
    let cfg = Config {
        seed: args.seed,
        events,
        days,
        start_day,
        surge_day,
        dirty: args.dirty,
        rules_name: args
            .rules
            .as_ref()
            .map_or_else(|| "embedded".to_owned(), |p| p.display().to_string()),
    };
    let show = !args.quiet && std::io::stderr().is_terminal() && args.out.as_os_str() != "-";
    let bar = show.then(|| {
        let bar = indicatif::ProgressBar::new(days as u64 * 1440);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} gen [{elapsed_precise}] {wide_bar} {percent}% of simulated time",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut on_progress = |done: u64, _total: u64| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    };
    let started = Instant::now();
    let truth = if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        generate(&cfg, &rules, stdout.lock(), Some(&mut on_progress))
            .context("cannot write to standard output")?
    } else {
        let f = File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        generate(&cfg, &rules, f, Some(&mut on_progress))
            .with_context(|| format!("cannot write {}", args.out.display()))?
    };
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(p) = &args.truth {
        let mut json = serde_json::to_string_pretty(&truth)?;
        json.push('\n');
        let mut f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
        f.write_all(json.as_bytes())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if !args.quiet {
        let c = &truth.counts;
        let bad: u64 = c.rejected.values().sum();
        eprintln!(
            "hotspot gen: {} lines ({} records, {} bad, {} late) from {} to {}{}, {} incidents, {} traps; {:.1} MB in {:.2} s — {:.0} events/s{}",
            c.lines,
            c.records,
            bad,
            c.late_dropped,
            format_date(start_day),
            format_date(start_day + days as i64 - 1),
            truth
                .args
                .surge_day
                .as_ref()
                .map(|d| format!(" (surge {d})"))
                .unwrap_or_default(),
            truth.incidents.len(),
            truth.traps.len(),
            c.bytes as f64 / 1e6,
            elapsed,
            c.records as f64 / elapsed.max(1e-9),
            if truth.background_may_alert {
                "; background may alert at this volume"
            } else {
                ""
            },
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path`.
fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let mut f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `hotspot gen --scenario field`.
fn run_field(
    args: &Args,
    events: u64,
    days: u32,
    start_day: i64,
    surge_day: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let cfg = Config {
        seed: args.seed,
        events,
        days,
        start_day,
        surge_day,
        dirty: args.dirty,
        rules_name: "field".into(),
    };
    let started = Instant::now();
    let output = if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        field::generate_field(&cfg, stdout.lock(), None)
            .context("cannot write to standard output")?
    } else {
        let f = File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        field::generate_field(&cfg, f, None)
            .with_context(|| format!("cannot write {}", args.out.display()))?
    };
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(p) = &args.truth {
        let mut json = serde_json::to_string_pretty(&output.truth)?;
        json.push('\n');
        write_file(p, &json)?;
    }
    if let Some(p) = &args.rules_out {
        write_file(p, &output.rules)?;
    }
    if let Some(p) = &args.plain_rules_out {
        write_file(p, &output.plain_rules)?;
    }
    if !args.quiet {
        let t = &output.truth;
        eprintln!(
            "hotspot gen: field scenario, {} lines ({} records) from {} to {}{}, learning until {}, {} incidents, {} traps{}; {:.1} MB in {:.2} s",
            t.counts.lines,
            t.counts.records,
            t.days.first().map_or("", String::as_str),
            t.days.last().map_or("", String::as_str),
            t.args
                .surge_day
                .as_ref()
                .map(|d| format!(" (surge {d})"))
                .unwrap_or_default(),
            &t.learning_end[..10],
            t.incidents.len(),
            t.traps.len(),
            if t.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} skipped", t.skipped.len())
            },
            t.counts.bytes as f64 / 1e6,
            elapsed,
        );
    }
    Ok(ExitCode::SUCCESS)
}
