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
    /// List every business with its templates, and the section 8 settings
    /// (region table by province, overrides, province thresholds, surge,
    /// discovery).
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
        // Section 9: the dispatch deadline and where it escalates.
        if let Some(ms) = dept.ack_within_ms {
            match dept.escalate_to {
                Some(t) => println!(
                    "    ack within {}, then escalated to {}",
                    format_duration(ms),
                    rules.departments[t].id
                ),
                None => println!(
                    "    ack within {} (reminded, not escalated)",
                    format_duration(ms)
                ),
            }
        }
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
    if rules.discovery.is_some() {
        println!(
            "  warning: [discovery] is accepted but new-topic detection is not implemented in this version: no new_topic alert will be raised"
        );
    }
    if rules.extended {
        let overrides = rules
            .businesses
            .iter()
            .filter(|b| b.region_thresholds.iter().any(|&t| t > 0))
            .count();
        let province = rules
            .businesses
            .iter()
            .filter(|b| b.province_threshold.is_some())
            .count();
        let surge = rules
            .businesses
            .iter()
            .filter(|b| b.surge.is_some())
            .count();
        println!(
            "  section 8    {} regions in {} provinces; businesses with region overrides {}, province threshold {}, surge {}; discovery {}",
            rules.regions.len(),
            rules.provinces.len(),
            overrides,
            province,
            surge,
            if rules.discovery.is_some() {
                "set"
            } else {
                "off"
            }
        );
    }
    if args.verbose {
        print_section8(&rules);
        for b in &rules.businesses {
            println!(
                "  {} {} (department {}, threshold {})",
                b.id, b.name, rules.departments[b.department].id, b.threshold
            );
            for line in business_section8(&rules, b) {
                println!("    {line}");
            }
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

/// The region table by province (with subscribers) and `[discovery]`.
fn print_section8(rules: &rules::Rules) {
    if !rules.provinces.is_empty() {
        println!("  regions by province:");
        for p in &rules.provinces {
            let cities: Vec<String> = p
                .regions
                .iter()
                .map(|&r| {
                    let def = &rules.regions[r];
                    match def.subscribers {
                        Some(n) => format!("{} ({} subscribers)", def.id, n),
                        None => def.id.clone(),
                    }
                })
                .collect();
            println!(
                "    {} ({} regions): {}",
                p.name,
                p.regions.len(),
                cities.join(", ")
            );
        }
    }
    if let Some(d) = &rules.discovery {
        println!(
            "  discovery: department {}, min_callers {} (not implemented yet: no new_topic alerts)",
            rules.departments[d.department].id, d.min_callers
        );
    }
}

/// A business's section 8 settings, one line each (none for a plain
/// business).
fn business_section8(rules: &rules::Rules, b: &rules::Business) -> Vec<String> {
    let mut out = Vec::new();
    let overrides: Vec<String> = b
        .region_thresholds
        .iter()
        .enumerate()
        .filter(|(_, t)| **t > 0)
        .map(|(r, t)| format!("{}={}", rules.regions[r].id, t))
        .collect();
    if !overrides.is_empty() {
        out.push(format!("region thresholds: {}", overrides.join(", ")));
    }
    if let Some(t) = b.province_threshold {
        out.push(format!("province threshold: {t}"));
    }
    if let Some(s) = &b.surge {
        out.push(format!(
            "surge: ratio {}, min {}, p_value {:e}",
            s.ratio, s.min, s.p_value
        ));
    }
    out
}
