//! `hotspot eval`: detection quality of an alerts file against a field
//! scenario's ground truth (see [`crate::eval`] for the definitions).
//!
//! ```text
//! hotspot eval --truth field-truth.json --alerts plain-alerts.jsonl [--alerts s8-alerts.jsonl] [--json]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::eval;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ground truth of `hotspot gen --scenario field --truth`.
    #[arg(long, value_name = "FILE")]
    pub truth: PathBuf,
    /// Alerts (JSON Lines) a detector wrote for that traffic; repeat to
    /// compare several side by side.
    #[arg(long, value_name = "FILE", required = true)]
    pub alerts: Vec<PathBuf>,
    /// Print one JSON object (with several `--alerts`: `{"runs": [...]}`).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.truth)
        .with_context(|| format!("cannot read {}", args.truth.display()))?;
    let truth = eval::parse_truth(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| args.truth.display().to_string())?;
    let mut reports = Vec::new();
    for path in &args.alerts {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let alerts = eval::parse_alerts(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| path.display().to_string())?;
        let name = path.display().to_string();
        reports.push(eval::evaluate(&truth, &alerts, &name).map_err(anyhow::Error::msg)?);
    }
    if args.json {
        let json = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(&serde_json::json!({ "runs": reports }))?
        };
        println!("{json}");
    } else {
        print!("{}", eval::table(&reports));
    }
    Ok(ExitCode::SUCCESS)
}
