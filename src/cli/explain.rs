//! `hotspot explain [--rules R] TEXT` (or `--input F --id ID`): why a
//! complaint text matches what it matches — the normalised text, every
//! template that one of its `all_of` groups hit, with each group's hit
//! keyword or miss and each veto, and the businesses it counts for. `--json`
//! prints the stable object that `GET /v1/explain` answers too (README,
//! "Rule authors"). Phone and ID numbers are masked in everything printed.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::explain::Explainer;
use crate::mask::mask;
use crate::matcher::Matcher;
use crate::record::{Decoded, Decoder};
use crate::rules;
use crate::source::lines::LineReader;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The complaint text to explain.
    #[arg(required_unless_present = "input", conflicts_with = "input")]
    pub text: Option<String>,
    /// Rules file; default: the embedded `fixtures/rules.toml`.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// A JSON Lines file of complaints to take the text from (with --id).
    #[arg(long, value_name = "FILE", requires = "id")]
    pub input: Option<PathBuf>,
    /// The work-order id of the complaint in --input (the first record
    /// with it).
    #[arg(long, value_name = "ID", requires = "input")]
    pub id: Option<String>,
    /// One JSON object instead of text for people.
    #[arg(long)]
    pub json: bool,
}

/// A complaint found in `--input`.
struct Found {
    line: u64,
    region: String,
    ts: i64,
    text: String,
}

fn find_record(path: &std::path::Path, id: &str) -> anyhow::Result<Option<Found>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = LineReader::new(file);
    let mut decoder = Decoder::new();
    let mut found = None;
    let needle = id.as_bytes();
    while found.is_none()
        && reader
            .next_chunk(|line_no, line| {
                // The id as written appears in the line, unless the JSON
                // escapes it (then the decoder below decides).
                if found.is_some()
                    || (!line.contains(&b'\\') && memchr::memmem::find(line, needle).is_none())
                {
                    return;
                }
                if let Decoded::Record(r) = decoder.decode(line) {
                    if r.id == id {
                        found = Some(Found {
                            line: line_no,
                            region: r.region.to_owned(),
                            ts: r.ts,
                            text: r.text.to_owned(),
                        });
                    }
                }
            })
            .with_context(|| format!("cannot read {}", path.display()))?
    {}
    Ok(found)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (rules, _) = rules::load(args.rules.as_deref())?;
    let rules = Arc::new(rules);
    let matcher = Arc::new(Matcher::new(&rules)?);
    let explainer = Explainer::new(rules.clone(), matcher);
    let (text, record) = match (&args.text, &args.input, &args.id) {
        (Some(t), _, _) => (t.clone(), None),
        (None, Some(input), Some(id)) => match find_record(input, id)? {
            Some(f) => (f.text.clone(), Some(f)),
            None => anyhow::bail!(
                "{}: no valid complaint record with id {:?}",
                input.display(),
                mask(id)
            ),
        },
        _ => anyhow::bail!("give a TEXT, or --input FILE --id ID"),
    };
    let x = explainer.explain(&text);
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut v = x.to_json(&rules);
        if let (Some(f), Some(id)) = (&record, &args.id) {
            v["record"] = serde_json::json!({
                "id": mask(id),
                "line": f.line,
                "region": f.region,
                "ts": crate::time::format_cst(f.ts),
            });
        }
        writeln!(out, "{v}")?;
    } else {
        if let (Some(f), Some(id)) = (&record, &args.id) {
            writeln!(
                out,
                "record:     {} (line {}), {} {}",
                mask(id),
                f.line,
                f.region,
                crate::time::format_cst(f.ts)
            )?;
        }
        writeln!(out, "text:       {}", mask(&x.text))?;
        write!(out, "{}", x.render())?;
    }
    Ok(ExitCode::SUCCESS)
}
