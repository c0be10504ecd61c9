//! Sinks: where alert lines and dead letters go.
//!
//! * [`jsonl`] — alert lines to a file or standard output (replay).
//! * [`dead_letter`] — rejected input lines with their reason, masked.
//! * [`outbox`] — the live service's ordered, optionally durable queue of
//!   alert lines, with one cursor per sink.
//! * [`deliver`] — one delivery task per sink: retries with backoff.
//! * [`file`], [`webhook`], [`alertmanager`], [`email`] — the live
//!   service's sinks; [`notify`] writes the messages for people (group
//!   robots' markdown and cards, e-mail), [`robot`] signs them and reads
//!   the robots' answers.
//! * [`notice`] — what an outbox line asks of the notifying sinks:
//!   dispatch steps (reminders, escalations), silenced and folded lines.
//! * `fluvio` — alert lines and dead letters to Fluvio topics (with the
//!   `fluvio` feature).

pub mod alertmanager;
pub(crate) mod dead_letter;
pub(crate) mod deliver;
pub(crate) mod email;
pub(crate) mod file;
#[cfg(feature = "fluvio")]
pub(crate) mod fluvio;
pub(crate) mod jsonl;
pub(crate) mod notice;
pub(crate) mod notify;
pub(crate) mod outbox;
pub(crate) mod robot;
pub(crate) mod webhook;

pub use dead_letter::{DeadLetter, dead_letter_json};

/// Dead letters handed to an asynchronous sink (a Fluvio topic) by the
/// engine thread: (key, JSON line). Bounded, and sent to with `try_send`,
/// so a sink that is down never stalls the engine.
pub type DeadLetterQueue = std::sync::mpsc::SyncSender<(String, String)>;
pub use jsonl::JsonlWriter;
