//! The command line: one file per subcommand. `main.rs` only calls
//! [`main`]. With no subcommand, hotspot replays its embedded sample traffic
//! with its embedded rule library and prints the alerts — the quickest way
//! to see what it does.

pub mod check_rules;
pub mod coverage;
pub mod eval;
pub mod explain;
pub mod generate;
#[cfg(feature = "fluvio")]
pub mod publish;
pub mod replay;
pub mod report;
pub mod run;
pub mod suggest;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "hotspot",
    version,
    about = "Batch-complaint (批量投诉) hotspot detector for a mobile operator's complaint centre",
    long_about = "Reads complaint work orders, matches them against keyword templates, counts distinct \
                  callers per (business, region) in event-time sliding windows and raises batch-complaint \
                  alerts for the responsible department.\n\nWith no subcommand, replays the embedded sample \
                  traffic with the embedded rule library and prints the alerts."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay a recorded JSON Lines file (or stdin) and write the alerts.
    Replay(replay::Args),
    /// Run the live service: HTTP intake, delivery to departments, metrics.
    Run(Box<run::Args>),
    /// Check a rules file and its template examples: print an inventory,
    /// or every error (exit 1); --diff OLD NEW: what a reload would change.
    CheckRules(check_rules::Args),
    /// Why a complaint text matches what it matches: groups, vetoes,
    /// businesses.
    Explain(explain::Args),
    /// What a rules file matches of a recorded file: shares per business,
    /// template and region; templates that never match; unmatched phrases.
    Coverage(coverage::Args),
    /// Generate realistic complaint traffic with ground truth.
    Gen(generate::Args),
    /// Measure detection quality: alerts against a field scenario's truth.
    Eval(eval::Args),
    /// Propose templates for recurring topics that no template names.
    Suggest(suggest::Args),
    /// Send a JSON Lines file (or stdin) to a Fluvio topic, keyed by region.
    #[cfg(feature = "fluvio")]
    Publish(publish::Args),
    /// The analysts' report of an alerts file: one HTML page with charts.
    Report(report::Args),
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        None => replay::demo(),
        Some(Command::Replay(args)) => replay::run(args),
        Some(Command::Run(args)) => run::run(*args),
        Some(Command::CheckRules(args)) => check_rules::run(args),
        Some(Command::Explain(args)) => explain::run(args),
        Some(Command::Coverage(args)) => coverage::run(args),
        Some(Command::Gen(args)) => generate::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Suggest(args)) => suggest::run(args),
        #[cfg(feature = "fluvio")]
        Some(Command::Publish(args)) => publish::run(args),
        Some(Command::Report(args)) => report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hotspot: error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

/// A command line clap refused. A value that its parser rejected (a
/// duration, a size, an address …) is an error like any other, exit status
/// 1 and one line naming the flag; help, version and usage errors are
/// clap's own.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::ValueValidation {
        e.exit();
    }
    let flag = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(a)) => a.split(' ').next().unwrap_or(a).to_owned(),
        _ => String::new(),
    };
    let why = std::error::Error::source(&e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    eprintln!("hotspot: error: {flag}: {}", one_line(&why));
    ExitCode::from(1)
}

/// Folds a message onto one line.
pub fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Peak resident set size of this process in bytes (Linux), if known.
/// CPU seconds this process has used, (user, system), all threads, from
/// `/proc/self/stat` (Linux; clock ticks of 1/100 s).
pub fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from the
    // third: utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(11);
    let user: f64 = f.next()?.parse().ok()?;
    let sys: f64 = f.next()?.parse().ok()?;
    Some((user / 100.0, sys / 100.0))
}

pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
