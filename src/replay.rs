//! Replay: a recorded stream of complaint lines through the engine as fast
//! as the machine allows, in event time (CONTRACT 4).
//!
//! This is the batch driver shared by `hotspot replay`, the benchmarks and
//! the tests: a [`LineReader`] feeds an [`Engine`], alerts go to a
//! [`JsonlWriter`], rejects to an optional dead-letter writer. The output
//! depends only on the bytes read, never on how they were chunked.

use std::io::{self, Read};
use std::sync::Arc;

use crate::alert::Alert;
use crate::engine::{Engine, EngineConfig, Output, Stats};
use crate::record::RejectInfo;
use crate::rules::Rules;
use crate::sink::{JsonlWriter, dead_letter_json};
use crate::source::LineReader;

/// Where a replay writes.
pub struct ReplayOutputs<'a> {
    pub alerts: &'a mut JsonlWriter,
    pub dead_letters: Option<&'a mut JsonlWriter>,
}

struct Writers<'w, 'a> {
    outs: &'w mut ReplayOutputs<'a>,
    error: Option<io::Error>,
}

impl Output for Writers<'_, '_> {
    fn alert(&mut self, alert: &Alert) {
        if let Err(e) = self.outs.alerts.write(alert) {
            self.error.get_or_insert(e);
        }
    }

    fn reject(&mut self, line: u64, raw: &[u8], info: &RejectInfo) {
        if let Some(dl) = self.outs.dead_letters.as_deref_mut() {
            if let Err(e) = dl.write_raw(&dead_letter_json(line, raw, info, None)) {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// Progress callbacks: bytes consumed so far.
pub(crate) type Progress<'p> = &'p mut dyn FnMut(u64);

/// Replays `input` with `rules`; returns the run's counts. I/O errors on
/// the input or an output end the replay with that error.
pub fn replay(
    rules: Arc<Rules>,
    input: impl Read,
    outs: &mut ReplayOutputs<'_>,
    config: EngineConfig,
    progress: Option<Progress<'_>>,
) -> io::Result<Stats> {
    let engine = Engine::new(rules, config).map_err(io::Error::other)?;
    replay_from(engine, LineReader::new(input), outs, progress, None)
}

/// Called between chunks with the engine, the lines done, the input offset
/// after them and the outputs; returns an error to stop.
pub(crate) type Checkpointer<'c> =
    &'c mut dyn FnMut(&Engine, u64, u64, &mut ReplayOutputs<'_>) -> io::Result<()>;

/// Replays from wherever `engine` and `reader` stand (a fresh start or a
/// checkpoint), calling `checkpoint` between chunks.
pub(crate) fn replay_from<R: Read>(
    mut engine: Engine,
    mut reader: LineReader<R>,
    outs: &mut ReplayOutputs<'_>,
    progress: Option<Progress<'_>>,
    mut checkpoint: Option<Checkpointer<'_>>,
) -> io::Result<Stats> {
    let mut w = Writers { outs, error: None };
    let mut progress = progress;
    loop {
        let more = reader.next_chunk(|n, line| {
            engine.process_line(n, line, &mut w);
        })?;
        if let Some(e) = w.error.take() {
            return Err(e);
        }
        if let Some(p) = progress.as_deref_mut() {
            p(reader.offset());
        }
        if !more {
            break;
        }
        if let Some(c) = checkpoint.as_deref_mut() {
            c(&engine, reader.line_no(), reader.offset(), w.outs)?;
        }
    }
    engine.finish(&mut w);
    if let Some(e) = w.error.take() {
        return Err(e);
    }
    w.outs.alerts.flush()?;
    if let Some(dl) = w.outs.dead_letters.as_deref_mut() {
        dl.flush()?;
    }
    Ok(engine.stats())
}

/// What `hotspot replay --state-dir` saves between chunks: everything needed
/// to continue after a crash as if it had never happened (5.8: the same
/// alert ids, the same bytes).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct ReplayCheckpoint {
    pub version: u32,
    /// The input file, as given.
    pub input: String,
    /// The rules' version (a resumed run must use the same rules).
    pub rules_version: String,
    /// Lines and bytes of input done.
    pub line_no: u64,
    pub offset: u64,
    /// Lengths of the alerts and dead-letter files at that point.
    pub alerts_len: u64,
    pub dead_letters_len: u64,
    pub engine: crate::engine::EngineState,
}
