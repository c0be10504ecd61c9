//! hotspot: a stream-processing batch-complaint detector.
//!
//! The data flows one way, and the modules follow it:
//!
//! ```text
//! source/   lines from files, stdin, HTTP, Fluvio          (edges)
//!   │
//! record    decode + validate one JSON line, or a reject reason
//! normalize NFKC + ASCII lower-case, with a fast path
//! matcher   one Aho-Corasick DFA → templates → businesses
//! window    per (business, region): hopping windows of distinct callers
//! alert     firing / resolved lines, ids, samples (mask masks them)
//! engine    drives a line through all of the above, in input order
//!   │
//! sink/     alert lines and dead letters out
//! ```
//!
//! `replay` wires a source, an engine and sinks for recorded traffic;
//! `generator` makes realistic traffic with ground truth; `cli` is the command
//! line. `rules` loads and validates the rule library; `time` parses and
//! writes timestamps and durations and reads the wall clock; `retry` is the
//! backoff that sinks and sources share. `fluvio_settings` is where and how
//! to reach a Fluvio cluster (plain data, in every build); `fluvio_client`
//! (feature `fluvio`) holds what the Fluvio source, sinks and `hotspot
//! publish` share.

pub mod alert;
pub(crate) mod checkpoint;
pub mod cli;
pub mod engine;
pub mod eval;
#[cfg(feature = "fluvio")]
pub mod fluvio_client;
pub(crate) mod fluvio_settings;
pub(crate) mod journal;
pub mod mask;
pub mod metrics;
pub mod parallel;
pub mod replay;
pub(crate) mod retry;
pub mod service;
pub mod sink;
pub mod source;
pub mod window;

// The core (decode, normalise, rules, match) and the generator are crates of
// their own (crates/): the generator uses the core, and the detector uses
// both. Re-exported here, so that `hotspot::rules` and `crate::rules` read as
// before.
pub use hotspot_core::{matcher, normalize, record, rules, time};
pub use hotspot_gen as generator;
