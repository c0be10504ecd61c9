//! `hotspot check-rules FILE`: validates a rules file and prints a short
//! inventory (departments, businesses, templates, keywords, window), or
//! every error with its file, line and item and exit status 1.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::matcher::Matcher;
use crate::rules;
use crate::time::format_duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The rules file (TOML).
    pub file: PathBuf,
    /// List every business with its templates.
    #[arg(long, short)]
    pub verbose: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let rules = match rules::load(Some(&args.file)) {
        Ok((r, _)) => r,
        Err(rules::RulesErrors(errors)) => {
            for e in &errors {
                println!("{e}");
            }
            eprintln!(
                "{}: {} error{}",
                args.file.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            return Ok(ExitCode::from(1));
        }
    };
    let matcher = Matcher::new(&rules)?;
    let elapsed = started.elapsed();
    let w = rules.window;
    println!("{}: ok (version {})", args.file.display(), rules.version);
    println!(
        "  window       size {}, slide {}, allowed lateness {} ({} windows per complaint)",
        format_duration(w.size_ms),
        format_duration(w.slide_ms),
        format_duration(w.allowed_lateness_ms),
        (w.size_ms + w.slide_ms - 1) / w.slide_ms
    );
    println!("  departments  {}", rules.departments.len());
    println!("  businesses   {}", rules.businesses.len());
    println!("  templates    {}", rules.templates.len());
    println!(
        "  keywords     {} distinct ({}, {} KiB), loaded in {:.1} ms",
        matcher.pattern_count(),
        matcher.describe(),
        matcher.memory_usage() / 1024,
        elapsed.as_secs_f64() * 1000.0
    );
    for (d, dept) in rules.departments.iter().enumerate() {
        let names: Vec<String> = rules
            .businesses
            .iter()
            .filter(|b| b.department == d)
            .map(|b| format!("{}({}, ≥{})", b.id, b.templates.len(), b.threshold))
            .collect();
        println!(
            "  {} {}: {}",
            dept.id,
            dept.name,
            if names.is_empty() {
                "-".into()
            } else {
                names.join(" ")
            }
        );
    }
    let idle: Vec<&str> = rules
        .businesses
        .iter()
        .filter(|b| b.templates.is_empty())
        .map(|b| b.id.as_str())
        .collect();
    if !idle.is_empty() {
        println!(
            "  warning: businesses without templates never alert: {}",
            idle.join(", ")
        );
    }
    if w.slide_ms > w.size_ms {
        println!(
            "  warning: slide is longer than size: complaints between windows are not counted"
        );
    }
    if w.size_ms / w.slide_ms > 1000 {
        println!(
            "  warning: {} windows per complaint make counting slow",
            w.size_ms / w.slide_ms
        );
    }
    if args.verbose {
        for b in &rules.businesses {
            println!(
                "  {} {} (department {}, threshold {})",
                b.id, b.name, rules.departments[b.department].id, b.threshold
            );
            for t in &rules.templates[b.templates.clone()] {
                println!(
                    "    {} {}: all_of {:?} none_of {:?}",
                    t.id, t.phenomenon, t.all_of, t.none_of
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
