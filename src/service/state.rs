//! State shared between the engine thread and the async side: the latest
//! [`Snapshot`] of what the engine knows (for the HTTP API, the status page
//! and the metrics), the metrics themselves, latency percentiles, and the
//! readiness and shutdown flags.
//!
//! The engine thread publishes a new snapshot a few times a second and
//! whenever alerts change; readers take an `Arc` to the current one and
//! never block the engine.
//!
//! Sources that hold a connection (Fluvio) register their health here: a
//! source that is down makes `/readyz` answer 503 with the reason, so a
//! load balancer or an orchestrator sees an instance that is up but not
//! consuming.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
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
    /// Its dispatch (CONTRACT 9): `ack_state`, `ack`, `assigned`,
    /// `closed`, `notified_at`, `deadline`, `escalations`, `suppressed`,
    /// `grouped` (see `service::dispatch`), each only when it has one.
    #[serde(flatten)]
    pub dispatch: serde_json::Map<String, serde_json::Value>,
}

impl OpenAlertView {
    pub fn new(firing: &Alert, max_count: u32, hot_end: i64, stream: &str) -> Self {
        OpenAlertView {
            alert: firing.clone(),
            max_count,
            hot_window_end: crate::time::format_cst(hot_end),
            stream: stream.to_owned(),
            dispatch: serde_json::Map::new(),
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
    /// Resolved alerts, silences and the open alerts' dispatch (CONTRACT 9).
    pub dispatch: Arc<super::dispatch::Board>,
}

/// The health of one connected source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    pub up: bool,
    /// Why it is down (empty while up).
    pub reason: String,
    /// Since when it is in this state (RFC 3339, +08:00).
    pub since: String,
}

/// The service's lifecycle: whether it is ready (recovered), shutting down,
/// or has stopped intake because the state directory cannot be written.
/// The engine thread and `service::run` change it; sources read it through
/// narrow views (`crate::source::Shutdown`, `crate::source::http::IntakeGate`).
#[derive(Default)]
pub struct Lifecycle {
    ready: AtomicBool,
    shutting_down: AtomicBool,
    /// Why intake is stopped: the state directory cannot be written.
    storage_fault: Mutex<Option<String>>,
}

impl Lifecycle {
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, r: bool) {
        self.ready.store(r, Ordering::SeqCst);
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Why the state directory cannot be written, while it cannot: intake
    /// answers 503 and `/readyz` names the cause.
    pub(crate) fn storage_fault(&self) -> Option<String> {
        self.storage_fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_storage_fault(&self, fault: Option<String>) {
        *self.storage_fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }
}

/// The health of the connected sources (Fluvio partitions), for `/readyz`,
/// the status page and the `hotspot_source_up` gauges.
pub(crate) struct SourceHealthBook {
    #[cfg_attr(not(feature = "fluvio"), allow(dead_code))] // only the Fluvio source reports
    metrics: Arc<Metrics>,
    sources: Mutex<BTreeMap<String, SourceHealth>>,
}

impl SourceHealthBook {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        SourceHealthBook {
            metrics,
            sources: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records a connected source's state (and its `hotspot_source_up`
    /// gauge). A change is logged once, not on every retry.
    #[cfg_attr(not(feature = "fluvio"), allow(dead_code))] // only the Fluvio source reports
    pub(crate) fn set_source(&self, name: &str, up: bool, reason: &str) {
        self.metrics
            .source_up
            .with_label_values(&[name])
            .set(up as i64);
        let mut g = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let changed = g
            .get(name)
            .is_none_or(|h| h.up != up || (!up && h.reason != reason));
        if changed {
            g.insert(
                name.to_owned(),
                SourceHealth {
                    up,
                    reason: if up { String::new() } else { reason.to_owned() },
                    since: crate::time::format_cst(crate::time::now_ms()),
                },
            );
        }
    }

    /// Forgets a source (one that was replaced by finer-grained ones).
    #[cfg_attr(not(feature = "fluvio"), allow(dead_code))] // only the Fluvio source reports
    pub(crate) fn remove_source(&self, name: &str) {
        let mut g = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        g.remove(name);
        let _ = self.metrics.source_up.remove_label_values(&[name]);
    }

    /// Every registered source and its health.
    pub fn sources(&self) -> BTreeMap<String, SourceHealth> {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The sources that are down, with their reasons.
    pub(crate) fn sources_down(&self) -> Vec<(String, String)> {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, h)| !h.up)
            .map(|(n, h)| (n.clone(), h.reason.clone()))
            .collect()
    }
}

/// Shared by the engine thread, the HTTP API and the status page. Sources
/// get narrow handles instead ([`crate::source::SourceContext`]).
pub struct Shared {
    snapshot: RwLock<Arc<Snapshot>>,
    pub metrics: Arc<Metrics>,
    pub latency: Arc<LatencyBook>,
    lifecycle: Arc<Lifecycle>,
    health: Arc<SourceHealthBook>,
    pub started: SystemTime,
    /// When the dispatch book next has work (epoch ms): the engine thread
    /// sets it, the dispatch timer waits for it.
    pub(crate) dispatch_due: tokio::sync::watch::Sender<Option<i64>>,
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
                dispatch: Arc::default(),
            })),
            dispatch_due: tokio::sync::watch::channel(None).0,
            health: Arc::new(SourceHealthBook::new(metrics.clone())),
            metrics,
            latency,
            lifecycle: Arc::new(Lifecycle::default()),
            started: SystemTime::now(),
        }
    }

    /// The lifecycle flags, for the sources' views of them.
    pub fn lifecycle(&self) -> &Arc<Lifecycle> {
        &self.lifecycle
    }

    /// The connected sources' health book, for the sources that report to it.
    #[cfg_attr(not(feature = "fluvio"), allow(dead_code))] // only the Fluvio source reports
    pub(crate) fn source_health(&self) -> &Arc<SourceHealthBook> {
        &self.health
    }

    /// Why the state directory cannot be written, while it cannot: intake
    /// answers 503 and `/readyz` names the cause.
    pub(crate) fn storage_fault(&self) -> Option<String> {
        self.lifecycle.storage_fault()
    }

    pub(crate) fn set_storage_fault(&self, fault: Option<String>) {
        self.lifecycle.set_storage_fault(fault);
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
        self.lifecycle.ready()
    }

    pub fn set_ready(&self, r: bool) {
        self.lifecycle.set_ready(r);
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.lifecycle.shutting_down()
    }

    pub fn begin_shutdown(&self) {
        self.lifecycle.begin_shutdown();
    }

    /// Every registered source and its health.
    pub fn sources(&self) -> BTreeMap<String, SourceHealth> {
        self.health.sources()
    }

    /// The sources that are down, with their reasons.
    pub(crate) fn sources_down(&self) -> Vec<(String, String)> {
        self.health.sources_down()
    }
}
