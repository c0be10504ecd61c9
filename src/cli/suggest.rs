//! `hotspot suggest`: template proposals for the recurring topics of a
//! recorded file that no template names (see [`crate::suggest`]).
//!
//! ```text
//! hotspot suggest --input traffic.jsonl [--rules rules.toml] [--top 10] [--min-callers 8] [--json]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::rules;
use crate::suggest::{self, Options};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Recorded complaints (JSON Lines file; read twice, so not stdin).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Rules file; default: the embedded rules.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Proposals at most, best first.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Distinct callers of one place and window that make a burst
    /// (default: `[discovery] min_callers`, else 8).
    #[arg(long, value_name = "N")]
    pub min_callers: Option<u32>,
    /// Threads (0: every core). The proposals are the same for every value.
    #[arg(short = 'j', long, default_value_t = 0)]
    pub threads: usize,
    /// Print one JSON object instead of TOML.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (rules, text) = match &args.rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let (rules, _) =
                rules::load(Some(path)).map_err(|e| anyhow::anyhow!("unusable rules: {e}"))?;
            (rules, text)
        }
        None => (
            rules::embedded().map_err(|e| anyhow::anyhow!("unusable rules: {e}"))?,
            rules::EMBEDDED_RULES.to_owned(),
        ),
    };
    let opts = Options {
        min_callers: args.min_callers,
        top: args.top,
        threads: args.threads,
    };
    let report = suggest::suggest(&args.input, &rules, &text, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", suggest::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
