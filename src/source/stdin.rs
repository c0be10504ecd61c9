//! Standard input as a live source (`hotspot run --stdin`): lines are sent
//! to the engine in batches as they arrive. A full engine queue blocks the
//! reader — backpressure reaches whoever writes into the pipe — and nothing
//! is dropped. At end of input the service keeps running (HTTP, other
//! sources); the idle watermark resolves what is left open.

use std::io::Read;
use std::time::Instant;

use bytes::Bytes;

use super::{LineReader, SourceContext};
use crate::service::pipeline::{Batch, MAIN};

/// Reads `input` to its end, sending batches of complete lines.
pub fn run(input: impl Read, ctx: SourceContext) {
    let up = ctx.metrics.source_up.with_label_values(&["stdin"]);
    up.set(1);
    let mut reader = LineReader::with_capacity(input, 64 << 10);
    let mut batch: Vec<u8> = Vec::with_capacity(64 << 10);
    loop {
        let more = match reader.next_chunk(|_, line| {
            batch.extend_from_slice(line);
            batch.push(b'\n');
        }) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot read standard input");
                false
            }
        };
        if !batch.is_empty() {
            let b = Batch {
                stream: MAIN.into(),
                source: "stdin".into(),
                position: None,
                data: Bytes::from(std::mem::take(&mut batch)),
                received: Instant::now(),
                key: None,
                reply: None,
            };
            if ctx.submit.send(b).is_err() || ctx.shutdown.requested() {
                break;
            }
        }
        if !more {
            break;
        }
    }
    up.set(0);
    tracing::info!(lines = reader.line_no(), "standard input ended");
}
