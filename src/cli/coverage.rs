//! `hotspot coverage --input F [--rules R] [--json]`: what a rule library
//! matches of a recorded file (see [`crate::coverage`]): shares per
//! business, template and region, complaints counted for several
//! businesses, templates that never match, and the top phrases of the
//! complaints nothing matches.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::coverage::{Options, measure};
use crate::rules;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Complaint records (JSON Lines); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Rules file; default: the embedded `fixtures/rules.toml`.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// One JSON object (every business, template and region) instead of
    /// tables.
    #[arg(long)]
    pub json: bool,
    /// Unmatched phrases to list, and rows of the longer tables.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// Worker threads; 0 uses every core. The result is the same for every
    /// value.
    #[arg(short = 'j', long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (rules, _) = rules::load(args.rules.as_deref())?;
    let rules = Arc::new(rules);
    let opts = Options {
        threads: if args.threads == 0 {
            crate::parallel::default_threads()
        } else {
            args.threads
        },
        top: args.top,
    };
    let name = args.input.display().to_string();
    let coverage = if name == "-" {
        measure(rules.clone(), std::io::stdin(), &name, opts)?
    } else {
        let file =
            std::fs::File::open(&args.input).with_context(|| format!("cannot open {name}"))?;
        measure(rules.clone(), file, &name, opts)?
    };
    if args.json {
        println!("{}", serde_json::to_string(&coverage)?);
    } else {
        print!("{}", coverage.render(&rules, args.top));
    }
    Ok(ExitCode::SUCCESS)
}
