//! Sources: where complaint lines come from. Every source turns bytes into
//! complete lines (and a position to resume from); none of them knows
//! anything about records, windows or alerts.
//!
//! * [`lines`] — a chunked line splitter over any `Read` (files, stdin),
//!   used by replay and by the live sources below.
//! * [`http`] — `POST /v1/complaints`.
//! * [`stdin`] — standard input of `hotspot run --stdin`.
//! * [`follow`] — a growing file, like `tail -F`.
//! * `fluvio` — partitions of a Fluvio topic (with the `fluvio` feature),
//!   with [`offsets`] checking that every offset arrives exactly once.
//!
//! A live source gets a [`SourceContext`], not the service's whole shared
//! state: a [`Submit`] handle that hands batches to the engine thread, the
//! metrics, and a [`Shutdown`] view of the lifecycle. The HTTP intake
//! reads a little more of the lifecycle ([`http::IntakeGate`]); the Fluvio
//! source also reports its connection's health.

#[cfg(feature = "fluvio")]
pub(crate) mod fluvio;
pub(crate) mod follow;
pub mod http;
pub(crate) mod lines;
#[cfg(feature = "fluvio")]
pub(crate) mod offsets;
pub(crate) mod stdin;

pub use lines::LineReader;

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};

use crate::metrics::Metrics;
use crate::service::pipeline::{Batch, Command};
use crate::service::state::{Lifecycle, Shared};

/// What a live source works with.
#[derive(Clone)]
pub(crate) struct SourceContext {
    /// Hands batches to the engine thread.
    pub submit: Submit,
    pub metrics: Arc<Metrics>,
    /// Whether the service is shutting down.
    pub shutdown: Shutdown,
}

impl SourceContext {
    /// The context of a source of the service that `shared` belongs to,
    /// sending to the engine's queue `tx`.
    pub fn new(tx: SyncSender<Command>, shared: &Shared) -> SourceContext {
        SourceContext {
            submit: Submit::new(tx),
            metrics: shared.metrics.clone(),
            shutdown: Shutdown::new(shared.lifecycle().clone()),
        }
    }
}

/// Why the engine did not take a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTaken {
    /// Its queue is full (only from [`Submit::try_send`]).
    Full,
    /// It has stopped.
    Stopped,
}

/// A handle that hands batches to the engine thread's bounded queue, and
/// nothing else (reloads and the shutdown are `service::run`'s).
#[derive(Clone)]
pub struct Submit(SyncSender<Command>);

impl Submit {
    pub fn new(tx: SyncSender<Command>) -> Submit {
        Submit(tx)
    }

    /// Queues `b`, waiting while the queue is full (backpressure).
    pub fn send(&self, b: Batch) -> Result<(), NotTaken> {
        self.0
            .send(Command::Batch(b))
            .map_err(|_| NotTaken::Stopped)
    }

    /// Queues `b` if there is room now.
    pub(crate) fn try_send(&self, b: Batch) -> Result<(), NotTaken> {
        self.0.try_send(Command::Batch(b)).map_err(|e| match e {
            TrySendError::Full(_) => NotTaken::Full,
            TrySendError::Disconnected(_) => NotTaken::Stopped,
        })
    }
}

/// A read-only view of whether the service is shutting down.
#[derive(Clone)]
pub(crate) struct Shutdown(Arc<Lifecycle>);

impl Shutdown {
    pub fn new(lifecycle: Arc<Lifecycle>) -> Shutdown {
        Shutdown(lifecycle)
    }

    /// Whether shutdown has begun: a source stops reading.
    pub(crate) fn requested(&self) -> bool {
        self.0.shutting_down()
    }
}
