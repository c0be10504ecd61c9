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
pub type Progress<'p> = &'p mut dyn FnMut(u64);

/// Replays `input` with `rules`; returns the run's counts. I/O errors on
/// the input or an output end the replay with that error.
pub fn replay(
    rules: Arc<Rules>,
    input: impl Read,
    outs: &mut ReplayOutputs<'_>,
    config: EngineConfig,
    progress: Option<Progress<'_>>,
) -> io::Result<Stats> {
    let mut engine = Engine::new(rules, config).map_err(io::Error::other)?;
    let mut reader = LineReader::new(input);
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
