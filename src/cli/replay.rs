//! `hotspot replay`: a recorded file (or stdin) through the engine as fast
//! as possible (CONTRACT 4), with a progress bar on a terminal and a final
//! summary line (lines, accepted, rejected, late, alerts, events/s, MB/s).

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use crate::engine::{EngineConfig, Stats};
use crate::record::Reject;
use crate::replay::{ReplayCheckpoint, ReplayOutputs, replay, replay_from};
use crate::rules::{self, Rules};
use crate::sink::JsonlWriter;
use crate::source::LineReader;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rules file (TOML). Default: the embedded fixture library.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Complaint records, JSON Lines; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write alert lines (created or truncated). Default: stdout.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// Write rejected lines here, one JSON object each.
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,
    /// Write the run's counts here as one JSON object.
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,
    /// The most (business, region) keys held at once.
    #[arg(long, default_value_t = EngineConfig::default().max_keys)]
    pub max_keys: usize,
    /// Threads: 1 runs the sequential engine; N > 1 decodes and matches on
    /// N threads with keys sharded across threads; 0 uses every core. The
    /// alerts are byte-identical for every value.
    #[arg(long, short = 'j', default_value_t = 0)]
    pub threads: usize,
    /// Checkpoint here, and resume from here after a crash or kill: the
    /// alerts file comes out byte-identical to an uninterrupted run. Needs a
    /// file input and an --alerts file.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Lines between checkpoints with --state-dir.
    #[arg(long, default_value_t = 200_000, value_name = "LINES")]
    pub checkpoint_every: u64,
    /// No progress bar and no summary line on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The `--summary` object: the contract's counts first, then measurements.
#[derive(Serialize)]
pub struct Summary {
    pub lines: u64,
    pub accepted: u64,
    pub late_dropped: u64,
    pub rejected: std::collections::BTreeMap<&'static str, u64>,
    pub alerts_firing: u64,
    pub alerts_resolved: u64,
    pub matched_total: u64,
    pub matched_records: u64,
    pub blank: u64,
    pub bytes: u64,
    pub keys_overflow: u64,
    pub rules_version: String,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub mb_per_s: f64,
    pub peak_rss_mb: Option<f64>,
    /// The new-topic detector's counts and state size (with `[discovery]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_topics: Option<crate::topics::TopicStats>,
}

impl Summary {
    pub fn new(stats: &Stats, rules: &Rules, elapsed_s: f64) -> Self {
        let rejected = Reject::ALL
            .iter()
            .filter(|r| stats.rejected[r.index()] > 0)
            .map(|r| (r.name(), stats.rejected[r.index()]))
            .collect();
        let secs = elapsed_s.max(1e-9);
        Summary {
            lines: stats.lines,
            accepted: stats.accepted,
            late_dropped: stats.late_dropped,
            rejected,
            alerts_firing: stats.alerts_firing,
            alerts_resolved: stats.alerts_resolved,
            matched_total: stats.matched,
            matched_records: stats.matched_records,
            blank: stats.blank,
            bytes: stats.bytes,
            keys_overflow: stats.keys_overflow,
            rules_version: rules.version.clone(),
            elapsed_s,
            events_per_s: stats.lines as f64 / secs,
            mb_per_s: stats.bytes as f64 / 1e6 / secs,
            peak_rss_mb: super::peak_rss_bytes().map(|b| b as f64 / 1e6),
            new_topics: stats.new_topics.clone(),
        }
    }

    /// The one-line human summary printed at the end of a replay.
    pub fn line(&self) -> String {
        let rejected: u64 = self.rejected.values().sum();
        format!(
            "{} lines: {} accepted, {} rejected, {} late; {} alerts ({} firing, {} resolved) in {:.2} s — {:.0} events/s, {:.1} MB/s{}",
            self.lines,
            self.accepted,
            rejected,
            self.late_dropped,
            self.alerts_firing + self.alerts_resolved,
            self.alerts_firing,
            self.alerts_resolved,
            self.elapsed_s,
            self.events_per_s,
            self.mb_per_s,
            self.peak_rss_mb
                .map(|m| format!(", peak RSS {m:.0} MB"))
                .unwrap_or_default()
        ) + &if self.keys_overflow > 0 {
            format!(
                "; {} complaints not windowed: more (business, region) keys than --max-keys",
                self.keys_overflow
            )
        } else {
            String::new()
        }
    }
}

/// [`rules::load`] for the commands that share the rules read-only: errors
/// as one line naming the file, line and item.
pub fn load_rules(path: Option<&Path>) -> anyhow::Result<Arc<Rules>> {
    Ok(Arc::new(rules::load(path)?.0))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = load_rules(args.rules.as_deref())?;
    let config = EngineConfig {
        max_keys: args.max_keys,
    };
    let stdin = args.input.as_os_str() == "-";
    // Resuming from a checkpoint?
    let ck_path = args.state_dir.as_ref().map(|d| d.join("replay.json"));
    if args.state_dir.is_some() && (stdin || args.alerts.is_none()) {
        anyhow::bail!("--state-dir needs a file --input (not stdin) and an --alerts file");
    }
    if let Some(d) = &args.state_dir {
        crate::checkpoint::create_private_dir(d)
            .with_context(|| format!("cannot create state directory {}", d.display()))?;
    }
    let saved: Option<ReplayCheckpoint> = match &ck_path {
        Some(p) => crate::checkpoint::read(p)
            .with_context(|| format!("cannot read checkpoint {}", p.display()))?,
        None => None,
    };
    let input_name = args.input.display().to_string();
    if let Some(ck) = &saved {
        if ck.input != input_name || ck.rules_version != rules.version {
            anyhow::bail!(
                "the state directory holds a replay of {} with rules {}, not of {input_name} with rules {}; remove it to start over",
                ck.input,
                ck.rules_version,
                rules.version
            );
        }
    }
    let (mut input, size): (Box<dyn Read + Send>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = File::open(&args.input)
            .with_context(|| format!("cannot open input {}", args.input.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let open_out = |p: &Path, len: Option<u64>, what: &str| -> anyhow::Result<JsonlWriter> {
        match len {
            Some(l) => JsonlWriter::resume(p, l),
            None => JsonlWriter::create(p),
        }
        .with_context(|| format!("cannot create {what} {}", p.display()))
    };
    let mut alerts = match &args.alerts {
        Some(p) => open_out(p, saved.as_ref().map(|c| c.alerts_len), "alerts file")?,
        None => JsonlWriter::stdout(),
    };
    let mut dead = match &args.dead_letter {
        Some(p) => Some(open_out(
            p,
            saved.as_ref().map(|c| c.dead_letters_len),
            "dead-letter file",
        )?),
        None => None,
    };
    let (engine, reader) = match saved {
        Some(ck) => {
            if size.is_some_and(|s| s < ck.offset) {
                anyhow::bail!(
                    "{input_name} is shorter than the checkpoint's position {}; remove the state directory to start over",
                    ck.offset
                );
            }
            let mut f = File::open(&args.input)?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(ck.offset))?;
            input = Box::new(f);
            let matcher = Arc::new(crate::matcher::Matcher::new(&rules)?);
            let mut ignored = crate::engine::Collect::default();
            let engine = crate::engine::Engine::restore(
                rules.clone(),
                matcher,
                config,
                ck.engine,
                ck.line_no,
                &mut ignored,
            );
            if !args.quiet {
                eprintln!(
                    "hotspot replay: resuming {input_name} at line {} (byte {})",
                    ck.line_no, ck.offset
                );
            }
            (
                engine,
                LineReader::new(input).starting_at(ck.line_no, ck.offset),
            )
        }
        None => (
            crate::engine::Engine::new(rules.clone(), config)?,
            LineReader::new(input),
        ),
    };
    let show = !args.quiet && std::io::stderr().is_terminal();
    let bar = show.then(|| {
        let bar = match size {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} replay [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut on_progress = |bytes: u64| {
        if let Some(b) = &bar {
            b.set_position(bytes);
        }
    };
    let mut last_ck = reader.line_no();
    let every = args.checkpoint_every.max(1);
    let rules_version = rules.version.clone();
    // A checkpoint that cannot be written (a full disk) does not stop the
    // replay: the last good checkpoint stays, a resumed run starts from it
    // and cuts the outputs back to it, so nothing is lost or doubled; the
    // next chunk tries again. Failing outputs still end the replay.
    let mut ck_failures = 0u64;
    let mut ck_error: Option<String> = None;
    let mut save = |engine: &crate::engine::Engine,
                    line_no: u64,
                    offset: u64,
                    outs: &mut ReplayOutputs<'_>|
     -> std::io::Result<()> {
        let Some(p) = &ck_path else { return Ok(()) };
        if line_no - last_ck < every {
            return Ok(());
        }
        last_ck = line_no;
        let alerts_len = outs.alerts.sync()?;
        let dead_letters_len = match outs.dead_letters.as_deref_mut() {
            Some(d) => d.sync()?,
            None => 0,
        };
        let ck = ReplayCheckpoint {
            version: 1,
            input: input_name.clone(),
            rules_version: rules_version.clone(),
            line_no,
            offset,
            alerts_len,
            dead_letters_len,
            engine: engine.export(),
        };
        match crate::checkpoint::write_atomic(p, &ck) {
            Ok(()) => {
                if ck_error.take().is_some() {
                    eprintln!(
                        "hotspot replay: checkpoints are written again ({})",
                        p.display()
                    );
                }
            }
            Err(e) => {
                ck_failures += 1;
                if ck_error.is_none() {
                    eprintln!(
                        "hotspot replay: cannot write checkpoint {}: {e}; the replay goes on and tries again at the next chunk",
                        p.display()
                    );
                }
                ck_error = Some(e.to_string());
                last_ck = line_no - every; // due again at the next chunk
            }
        }
        Ok(())
    };
    let started = Instant::now();
    let threads = if args.threads == 0 {
        crate::parallel::default_threads()
    } else {
        args.threads
    };
    let stats = if threads > 1 && ck_path.is_none() {
        drop(engine);
        let input = reader.into_inner();
        crate::parallel::replay_parallel(
            rules.clone(),
            input,
            &mut ReplayOutputs {
                alerts: &mut alerts,
                dead_letters: dead.as_mut(),
            },
            config,
            crate::parallel::Layout::for_threads(threads),
            Some(&mut on_progress),
        )
    } else {
        replay_from(
            engine,
            reader,
            &mut ReplayOutputs {
                alerts: &mut alerts,
                dead_letters: dead.as_mut(),
            },
            Some(&mut on_progress),
            Some(&mut save),
        )
    }
    .with_context(|| format!("replay of {input_name} failed"))?;
    if let Some(p) = &ck_path {
        alerts.sync()?;
        if let Some(d) = dead.as_mut() {
            d.sync()?;
        }
        // Done: the next run of the same command starts over.
        let _ = std::fs::remove_file(p);
        if ck_failures > 0 {
            eprintln!(
                "hotspot replay: {ck_failures} checkpoint(s) could not be written{}; the output is complete",
                ck_error
                    .map(|e| format!(" (last: {e})"))
                    .unwrap_or_default()
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = Summary::new(&stats, &rules, elapsed);
    if let Some(p) = &args.summary {
        let json = serde_json::to_string_pretty(&summary)?;
        std::fs::write(p, json + "\n")
            .with_context(|| format!("cannot write summary {}", p.display()))?;
    }
    if !args.quiet {
        eprintln!("hotspot replay: {}", summary.line());
    }
    Ok(ExitCode::SUCCESS)
}

/// The embedded sample traffic (see `fixtures/`).
pub const EMBEDDED_TRAFFIC: &[u8] = include_bytes!("../../fixtures/traffic.jsonl");

/// No subcommand: replay the embedded sample traffic with the embedded rules
/// and print the alerts.
pub fn demo() -> anyhow::Result<ExitCode> {
    let rules = load_rules(None)?;
    eprintln!(
        "hotspot: replaying the embedded sample traffic ({} lines) with the embedded rule library \
         ({} businesses, {} templates); alerts follow. `hotspot --help` lists the commands.",
        EMBEDDED_TRAFFIC.iter().filter(|&&b| b == b'\n').count(),
        rules.businesses.len(),
        rules.templates.len()
    );
    let started = Instant::now();
    let mut alerts = JsonlWriter::stdout();
    let stats = replay(
        rules.clone(),
        EMBEDDED_TRAFFIC,
        &mut ReplayOutputs {
            alerts: &mut alerts,
            dead_letters: None,
        },
        EngineConfig::default(),
        None,
    )?;
    eprintln!(
        "hotspot replay: {}",
        Summary::new(&stats, &rules, started.elapsed().as_secs_f64()).line()
    );
    Ok(ExitCode::SUCCESS)
}
