//! `hotspot gen`: writes generated traffic and its ground truth (see
//! [`crate::generator`]).
//!
//! ```text
//! hotspot gen --seed 7 --events 60000 --days 3 --start 2026-03-14 \
//!     --surge-day 2026-03-15 --dirty 0.05 --out traffic.jsonl --truth truth.json
//! ```

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::generator::{Config, format_date, generate, parse_date};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Seed of every random choice: the same arguments give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Valid complaint records to write, incidents and traps included (at
    /// least what the incidents and traps need: a few hundred a day).
    #[arg(long, default_value_t = 60_000)]
    pub events: u64,
    /// Days of traffic.
    #[arg(long, default_value_t = 1)]
    pub days: u32,
    /// The first day (local date).
    #[arg(long, default_value = "2026-03-14", value_name = "YYYY-MM-DD")]
    pub start: String,
    /// The 3.15-style surge day (three times the traffic, no fault), or
    /// `none`. Default: March 15 when the run covers it.
    #[arg(long, value_name = "YYYY-MM-DD|none")]
    pub surge_day: Option<String>,
    /// Add this fraction of `--events` as extra bad lines (invalid UTF-8 or
    /// JSON, missing fields, bad timestamps) and, rarely, 1 MB records.
    #[arg(long, default_value_t = 0.0, value_name = "RATE")]
    pub dirty: f64,
    /// Rules file whose thresholds and templates the traffic follows.
    /// Default: the embedded fixture library.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Where to write the JSON Lines; `-` writes to standard output.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where to write the ground truth (JSON).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// No progress bar and no summary line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = super::replay::load_rules(args.rules.as_deref())?;
    let start_day = parse_date(&args.start)
        .with_context(|| format!("--start {:?} is not a date like 2026-03-14", args.start))?;
    anyhow::ensure!(args.days >= 1, "--days must be at least 1");
    anyhow::ensure!(
        (0.0..=10.0).contains(&args.dirty),
        "--dirty must be between 0 and 10 (a fraction of --events)"
    );
    let surge_day = match args.surge_day.as_deref() {
        Some("none") => None,
        Some(s) => Some(parse_date(s).with_context(|| {
            format!("--surge-day {s:?} is not a date like 2026-03-15 (or none)")
        })?),
        None => {
            // March 15 of a year the run covers.
            let (y0, _, _) = crate::time::civil_from_days(start_day);
            [y0, y0 + 1]
                .into_iter()
                .filter_map(|y| parse_date(&format!("{y:04}-03-15")))
                .find(|d| (start_day..start_day + args.days as i64).contains(d))
        }
    };
    let cfg = Config {
        seed: args.seed,
        events: args.events,
        days: args.days,
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
        let bar = indicatif::ProgressBar::new(args.days as u64 * 1440);
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
            format_date(start_day + args.days as i64 - 1),
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
