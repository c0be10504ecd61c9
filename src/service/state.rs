//! State shared between the engine thread and the async side: the latest
//! [`Snapshot`] of what the engine knows (for the HTTP API, the status page
//! and the metrics), the metrics themselves, latency percentiles, and the
//! readiness and shutdown flags.
//!
//! The engine thread publishes a new snapshot a few times a second and
//! whenever alerts change; readers take an `Arc` to the current one and
//! never block the engine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;

use crate::alert::Alert;
use crate::engine::Stats;
use crate::metrics::{LatencyBook, Metrics};
use crate::rules::Rules;
use crate::window::store::Hotspot;

/// An open alert as `/v1/alerts` shows it: the firing line, plus how far it
/// has grown since.
#[derive(Debug, Clone, Serialize)]
pub struct OpenAlertView {
    #[serde(flatten)]
    pub alert: Alert,
    /// The most distinct callers of one window since it fired.
    pub max_count: u32,
    /// End of the latest window at or above the threshold.
    pub hot_window_end: String,
    /// The event-time stream (`main`, or a Fluvio partition).
    pub stream: String,
}

impl OpenAlertView {
    pub fn new(firing: &Alert, max_count: u32, hot_end: i64, stream: &str) -> Self {
        OpenAlertView {
            alert: firing.clone(),
            max_count,
            hot_window_end: crate::time::format_cst(hot_end),
            stream: stream.to_owned(),
        }
    }
}

/// What the engine knows, as of `updated`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The highest watermark of any stream.
    pub watermark: Option<i64>,
    pub watermarks: BTreeMap<String, i64>,
    pub stats: Stats,
    pub open_alerts: Vec<OpenAlertView>,
    pub hotspots: Vec<Hotspot>,
    pub rules: Arc<Rules>,
    pub keys: usize,
    pub updated: SystemTime,
}

/// Shared by everything in the service.
pub struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    pub metrics: Arc<Metrics>,
    pub latency: Arc<LatencyBook>,
    ready: AtomicBool,
    shutting_down: AtomicBool,
    pub started: SystemTime,
}

impl Shared {
    pub fn new(rules: Arc<Rules>, metrics: Arc<Metrics>, latency: Arc<LatencyBook>) -> Self {
        metrics
            .rules_info
            .with_label_values(&[&rules.version, &rules.source])
            .set(1);
        Shared {
            snapshot: RwLock::new(Arc::new(Snapshot {
                watermark: None,
                watermarks: BTreeMap::new(),
                stats: Stats::default(),
                open_alerts: Vec::new(),
                hotspots: Vec::new(),
                rules,
                keys: 0,
                updated: SystemTime::now(),
            })),
            metrics,
            latency,
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            started: SystemTime::now(),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn publish(&self, s: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(s);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, r: bool) {
        self.ready.store(r, Ordering::SeqCst);
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}
