//! `hotspot check-rules FILE`: validates a rules file, runs its templates'
//! examples and counter-examples, and prints a short inventory
//! (departments, businesses, templates, keywords, window), or every error
//! with its file, line and item and exit status 1.
//!
//! `hotspot check-rules --diff OLD NEW` says what a reload from OLD to NEW
//! would change (see [`crate::rules::diff`]); exit status 1 when NEW would
//! be refused.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::explain::examples;
use crate::matcher::Matcher;
use crate::rules;
use crate::time::format_duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The rules file (TOML).
    #[arg(required_unless_present = "diff")]
    pub file: Option<PathBuf>,
    /// What a reload from OLD to NEW would change: businesses and
    /// templates added, removed or changed, thresholds, and which
    /// businesses keep or lose their window state and open alerts.
    #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "file")]
    pub diff: Option<Vec<PathBuf>>,
    /// With --diff: one JSON object (the same as `POST
    /// /-/reload?dry_run=true` answers, less the live keys).
    #[arg(long, requires = "diff")]
    pub json: bool,
    /// List every business with its templates, and the section 8 settings
    /// (region table by province, overrides, province thresholds, surge,
    /// discovery).
    #[arg(long, short)]
    pub verbose: bool,
}

/// Prints every error of a file that cannot be used (stdout) and the count
/// (stderr).
fn print_errors(file: &std::path::Path, errors: &[rules::RulesError]) {
    for e in errors {
        println!("{e}");
    }
    eprintln!(
        "{}: {} error{}",
        file.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
}

/// Loads a file and runs its examples: what a reload does before it
/// accepts new rules.
fn load_checked(file: &std::path::Path) -> Result<Arc<rules::Rules>, Vec<rules::RulesError>> {
    let rules = Arc::new(rules::load(Some(file)).map_err(|e| e.0)?.0);
    examples::check_rules(&rules).map_err(|e| e.0)?;
    Ok(rules)
}

fn run_diff(old: &std::path::Path, new: &std::path::Path, json: bool) -> ExitCode {
    let old_rules = match rules::load(Some(old)) {
        Ok((r, _)) => r,
        Err(e) => {
            print_errors(old, &e.0);
            return ExitCode::from(1);
        }
    };
    let new_rules = match load_checked(new) {
        Ok(r) => r,
        Err(errors) => {
            print_errors(new, &errors);
            eprintln!("a reload to {} would be refused", new.display());
            return ExitCode::from(1);
        }
    };
    let d = rules::diff::diff(&old_rules, &new_rules);
    if json {
        println!("{}", serde_json::to_string(&d).unwrap_or_default());
    } else {
        print!("{}", d.render());
    }
    ExitCode::SUCCESS
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(files) = &args.diff {
        return Ok(run_diff(&files[0], &files[1], args.json));
    }
    let file = args
        .file
        .clone()
        .ok_or_else(|| anyhow::anyhow!("give a rules file (or --diff OLD NEW)"))?;
    let started = Instant::now();
    let rules = match rules::load(Some(&file)) {
        Ok((r, _)) => Arc::new(r),
        Err(rules::RulesErrors(errors)) => {
            print_errors(&file, &errors);
            return Ok(ExitCode::from(1));
        }
    };
    let matcher = Arc::new(Matcher::new(&rules)?);
    let elapsed = started.elapsed();
    let tested = examples::check(&rules, &matcher);
    if !tested.failures.is_empty() {
        print_errors(&file, &tested.failures);
        return Ok(ExitCode::from(1));
    }
    let w = rules.window;
    println!("{}: ok (version {})", file.display(), rules.version);
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
    let untested = rules.templates.len() - tested.templates;
    println!(
        "  examples     {} examples and {} counter-examples of {} templates pass{}",
        tested.examples,
        tested.counter_examples,
        tested.templates,
        if untested == 0 {
            String::new()
        } else {
            format!("; {untested} templates have none")
        }
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
    if rules.discovery.is_some() && rules.regions.is_empty() {
        println!(
            "  note: [discovery] without a [[region]] table looks for new topics per region only (no province topics)"
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
            "  discovery: department {}, min_callers {} (new topics per region and province)",
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
        let mut line = format!(
            "surge: ratio {}, min {}, p_value {:e}",
            s.ratio, s.min, s.p_value
        );
        if let Some(k) = s.place {
            line.push_str(&format!(", place {k} callers"));
        }
        out.push(line);
    }
    out
}
