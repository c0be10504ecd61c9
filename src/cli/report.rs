//! `hotspot report`: the analysts' report of an alerts file (see
//! [`crate::report`]).
//!
//! ```text
//! hotspot report --alerts alerts.jsonl [--input traffic.jsonl] [--rules R] \
//!     [--from 2026-03-09] [--to 2026-03-15] [--out report.html] [--format html|png]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::report::{self, Format, Options, Period};
use crate::time::{civil_from_days, days_from_civil};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Alert lines (JSON Lines) that `hotspot replay` or `hotspot run` wrote.
    #[arg(long, value_name = "FILE")]
    pub alerts: PathBuf,
    /// The complaints behind the alerts (JSON Lines; `-` reads standard
    /// input): the time to detect is then measured from each incident's
    /// onset in them, and the top templates are the incidents' matched
    /// complaints.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Rules file (TOML) for matching `--input` and naming templates.
    /// Default: the embedded fixture library.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// First day of the report (YYYY-MM-DD, Beijing time), by firing time.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub from: Option<i64>,
    /// Last day of the report (YYYY-MM-DD), included.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub to: Option<i64>,
    /// Where to write the report. Default: report.html (report.png with
    /// --format png).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// html: one self-contained page; png: the charts as one image. Default:
    /// png when --out ends in .png, else html.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// --format png: a font file with Chinese characters (.ttf, .otf, .ttc).
    /// Default: the first CJK font found in the usual places.
    #[arg(long, value_name = "FILE")]
    pub font: Option<PathBuf>,
    /// Threads reading --input; 0 uses every core. The report is the same
    /// for every value.
    #[arg(long, short = 'j', default_value_t = 0)]
    pub threads: usize,
    /// No summary line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `YYYY-MM-DD` → a day number.
fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid date {s:?}: write it like 2026-03-14");
    let mut parts = s.trim().splitn(3, '-');
    let mut num = |len: usize| -> Result<i64, String> {
        let p = parts.next().ok_or_else(bad)?;
        if p.len() != len || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    let day = days_from_civil(y, m, d);
    // Rejects 2026-02-30 and the like: the date must come back unchanged.
    if !(1..=12).contains(&m) || civil_from_days(day) != (y, m as u32, d as u32) {
        return Err(bad());
    }
    Ok(day)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    if let (Some(f), Some(t)) = (args.from, args.to) {
        if f > t {
            anyhow::bail!("--from is after --to");
        }
    }
    let format = args.format.unwrap_or_else(|| match &args.out {
        Some(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) => Format::Png,
        _ => Format::Html,
    });
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(match format {
            Format::Html => "report.html",
            Format::Png => "report.png",
        })
    });
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let rules = super::replay::load_rules(args.rules.as_deref())?;
    let opts = Options {
        alerts: args.alerts,
        input: args.input,
        rules,
        period: Period {
            from: args.from,
            to: args.to,
        },
        out,
        format,
        threads,
        font: args.font,
    };
    let o = report::run(&opts)?;
    if o.unknown_business > 0 {
        eprintln!(
            "hotspot report: warning: {} alerts name a business that {} does not have; \
             their time to detect is counted from the window start (pass the rules the alerts were made with: --rules)",
            o.unknown_business, opts.rules.source
        );
    }
    if !args.quiet {
        let mut line = format!("hotspot report: {} alerts", o.incidents);
        if o.malformed > 0 {
            line.push_str(&format!(" ({} lines skipped)", o.malformed));
        }
        if let Some(n) = o.input_records {
            line.push_str(&format!(", {n} complaints read"));
        }
        if let Some(m) = o.ttd_median_min {
            line.push_str(&format!(", median time to detect {m:.1} min"));
        }
        line.push_str(&format!(
            " -> {} ({:.0} KB) in {:.2} s",
            opts.out.display(),
            o.bytes as f64 / 1024.0,
            t0.elapsed().as_secs_f64()
        ));
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-02"), Ok(1));
        assert_eq!(parse_date("2026-03-14"), Ok(days_from_civil(2026, 3, 14)));
        for bad in [
            "2026-3-14",
            "2026-02-30",
            "2026-13-01",
            "14/03/2026",
            "",
            "2026-03-14T00",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
