//! Prometheus metrics of the live service: one typed struct holding every
//! metric, registered in its own registry and rendered at `GET /metrics`.
//! Names and labels are documented in the README; label sets are bounded
//! (regions beyond the first [`MAX_REGION_LABELS`] share the label `other`,
//! digits in a region label are masked, and the per-key gauges hold only the
//! hottest [`HOT_KEYS`] keys) so a flood of odd regions cannot blow up
//! Prometheus nor carry a phone number into it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Region label values besides `other`: the first this many distinct
/// (masked) regions get their own, later ones are `other`. The rules have
/// no list of known regions yet (CONTRACT 8's `[[region]]`); a province has
/// a dozen or so cities, so 64 leaves room for districts and still bounds
/// what a client sending made-up regions can add.
pub const MAX_REGION_LABELS: usize = 64;

/// Characters of a region shown in a label at most.
pub const REGION_LABEL_CHARS: usize = 32;

/// The region label values handed out so far. A value, once set, never
/// changes or moves, so [`Metrics::region_label`] lends it out for as long
/// as the metrics live.
struct RegionLabels {
    /// Masked region → index into `values`.
    index: Mutex<HashMap<String, usize>>,
    values: [OnceLock<Box<str>>; MAX_REGION_LABELS],
}

/// A region as a label shows it: every digit (of any script) masked with
/// `*`, so that no phone or ID-card number sent as a region reaches
/// Prometheus, and at most [`REGION_LABEL_CHARS`] characters.
pub fn region_label_text(region: &str) -> std::borrow::Cow<'_, str> {
    let short = region.chars().count() <= REGION_LABEL_CHARS;
    if short && !region.chars().any(char::is_numeric) {
        return std::borrow::Cow::Borrowed(region);
    }
    std::borrow::Cow::Owned(
        region
            .chars()
            .take(REGION_LABEL_CHARS)
            .map(|c| if c.is_numeric() { '*' } else { c })
            .collect(),
    )
}

/// Keys exported in the per-key gauges.
pub const HOT_KEYS: usize = 200;

/// Every metric of the service.
pub struct Metrics {
    pub registry: Registry,
    /// hotspot_records_total{source, outcome}: lines by where they came
    /// from and what happened (accepted, rejected, late, blank).
    pub records: IntCounterVec,
    /// hotspot_rejects_total{reason}.
    pub rejects: IntCounterVec,
    /// hotspot_late_dropped_total.
    pub late_dropped: IntCounter,
    /// hotspot_matches_total{business, region}.
    pub matches: IntCounterVec,
    /// hotspot_key_distinct_callers{business, region}: the hottest keys.
    pub key_callers: IntGaugeVec,
    /// hotspot_key_threshold{business, region}.
    pub key_threshold: IntGaugeVec,
    /// hotspot_key_ratio{business, region}: distinct callers / threshold.
    pub key_ratio: GaugeVec,
    /// hotspot_alerts_firing{department, kind, scope}: open alerts. `kind`
    /// is `threshold`, `surge` or `new_topic`, `scope` `region` or
    /// `province` (CONTRACT 8); rules without section 8 keys have only
    /// `threshold`/`region`, so `sum by (department)` reads as before.
    pub alerts_firing: IntGaugeVec,
    /// hotspot_alerts_total{department, state, kind, scope}.
    pub alerts_total: IntCounterVec,
    /// hotspot_delivery_latency_seconds{sink}: from receipt of the record
    /// that caused an alert to its delivery by a sink.
    pub delivery_latency: HistogramVec,
    /// hotspot_record_processing_seconds: one batch's engine time divided by
    /// its records.
    pub batch_processing: Histogram,
    /// hotspot_watermark_seconds: the watermark, Unix seconds.
    pub watermark: prometheus::Gauge,
    /// hotspot_watermark_lag_seconds: wall clock minus the watermark.
    pub watermark_lag: prometheus::Gauge,
    /// hotspot_sink_queue_depth{sink}.
    pub sink_queue: IntGaugeVec,
    /// hotspot_sink_delivered_total{sink}.
    pub sink_delivered: IntCounterVec,
    /// hotspot_sink_retries_total{sink}.
    pub sink_retries: IntCounterVec,
    /// hotspot_sink_failures_total{sink}: failed attempts (each is retried).
    pub sink_failures: IntCounterVec,
    /// hotspot_sink_up{sink}: 1 if the last attempt succeeded.
    pub sink_up: IntGaugeVec,
    /// hotspot_sink_refusals_total{sink}: attempts a group robot answered
    /// with an error code in its body (each is also a failure, retried).
    pub sink_refusals: IntCounterVec,
    /// hotspot_intake_queue_depth: batches waiting for the engine.
    pub intake_queue: IntGauge,
    /// hotspot_intake_refused_total{code}: requests refused (400, 401, 408, 413, 422, 429, 503).
    pub intake_refused: IntCounterVec,
    /// hotspot_keys: live (business, region) keys.
    pub keys: IntGauge,
    /// hotspot_keys_overflow_total: complaints not counted, key limit reached.
    pub keys_overflow: IntCounter,
    /// hotspot_rules_info{version, source}: 1 for the loaded rules.
    pub rules_info: IntGaugeVec,
    /// hotspot_rules_reloads_total{result}.
    pub rules_reloads: IntCounterVec,
    /// hotspot_build_info{version}.
    pub build_info: IntGaugeVec,
    /// hotspot_checkpoints_total{result}.
    pub checkpoints: IntCounterVec,
    /// hotspot_storage_fault{store}: 1 while intake is stopped because the
    /// journal or the outbox in `--state-dir` cannot be written.
    pub storage_fault: IntGaugeVec,
    /// hotspot_storage_errors_total{store}: failed writes to the journal,
    /// the outbox or a checkpoint (each is retried).
    pub storage_errors: IntCounterVec,
    /// hotspot_source_up{source}: 1 while a source is connected.
    pub source_up: IntGaugeVec,
    /// hotspot_source_gaps_total{source}: offset gaps a source found in
    /// what its client handed it (each one is re-read from the first
    /// missing offset, so none reaches the engine).
    pub source_gaps: IntCounterVec,
    /// hotspot_source_reread_records_total{source}: records read again to
    /// fill those gaps.
    pub source_reread: IntCounterVec,
    /// hotspot_source_duplicates_total{source}: records delivered twice by
    /// the client and dropped (an offset already read).
    pub source_duplicates: IntCounterVec,
    /// hotspot_source_reconnects_total{source}: connections lost and
    /// re-established.
    pub source_reconnects: IntCounterVec,
    /// hotspot_dead_letters_dropped_total{sink}: dead letters an
    /// asynchronous dead-letter sink could not take (its queue was full).
    pub dead_letters_dropped: IntCounterVec,
    /// hotspot_topics_complaints_total: complaints no template covers that
    /// the new-topic detector looked at (`[discovery]`).
    pub topics_complaints: IntCounter,
    /// hotspot_topics_checks_total: exact checks of phrases through its
    /// screen.
    pub topics_checks: IntCounter,
    /// hotspot_topics_state_bytes: bytes of its state (sketches, recent
    /// complaints, open topics), bounded by the README's figure.
    pub topics_state_bytes: IntGauge,
    /// hotspot_topics_recent_complaints: recent complaints it holds.
    pub topics_recent: IntGauge,
    regions: RegionLabels,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help)
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        macro_rules! reg {
            ($m:expr) => {{
                let m = $m.expect("metric definitions are static and valid");
                registry
                    .register(Box::new(m.clone()))
                    .expect("metric names are unique");
                m
            }};
        }
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0, 300.0, 900.0,
        ];
        let m = Metrics {
            records: reg!(IntCounterVec::new(
                opts("hotspot_records_total", "Input lines by source and outcome"),
                &["source", "outcome"]
            )),
            rejects: reg!(IntCounterVec::new(
                opts("hotspot_rejects_total", "Rejected lines by reason"),
                &["reason"]
            )),
            late_dropped: reg!(IntCounter::with_opts(opts(
                "hotspot_late_dropped_total",
                "Records older than watermark minus allowed lateness"
            ))),
            matches: reg!(IntCounterVec::new(
                opts(
                    "hotspot_matches_total",
                    "Accepted records matching a business, by region"
                ),
                &["business", "region"]
            )),
            key_callers: reg!(IntGaugeVec::new(
                opts(
                    "hotspot_key_distinct_callers",
                    "Most distinct callers in one live window, hottest keys"
                ),
                &["business", "region"]
            )),
            key_threshold: reg!(IntGaugeVec::new(
                opts("hotspot_key_threshold", "Threshold of the hottest keys"),
                &["business", "region"]
            )),
            key_ratio: reg!(GaugeVec::new(
                opts(
                    "hotspot_key_ratio",
                    "Distinct callers divided by threshold, hottest keys"
                ),
                &["business", "region"]
            )),
            alerts_firing: reg!(IntGaugeVec::new(
                opts(
                    "hotspot_alerts_firing",
                    "Open batch-complaint alerts by department, kind and scope"
                ),
                &["department", "kind", "scope"]
            )),
            alerts_total: reg!(IntCounterVec::new(
                opts(
                    "hotspot_alerts_total",
                    "Alert lines by department, state, kind and scope"
                ),
                &["department", "state", "kind", "scope"]
            )),
            delivery_latency: reg!(HistogramVec::new(
                HistogramOpts::new(
                    "hotspot_delivery_latency_seconds",
                    "Receipt of the causing record to delivery, by sink"
                )
                .buckets(latency_buckets),
                &["sink"]
            )),
            batch_processing: reg!(Histogram::with_opts(
                HistogramOpts::new(
                    "hotspot_record_processing_seconds",
                    "Engine time per record (batch time / records)"
                )
                .buckets(vec![
                    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 1e-3
                ])
            )),
            watermark: reg!(prometheus::Gauge::with_opts(opts(
                "hotspot_watermark_seconds",
                "Event-time watermark, Unix seconds"
            ))),
            watermark_lag: reg!(prometheus::Gauge::with_opts(opts(
                "hotspot_watermark_lag_seconds",
                "Wall clock minus watermark"
            ))),
            sink_queue: reg!(IntGaugeVec::new(
                opts("hotspot_sink_queue_depth", "Alert lines waiting for a sink"),
                &["sink"]
            )),
            sink_delivered: reg!(IntCounterVec::new(
                opts(
                    "hotspot_sink_delivered_total",
                    "Alert lines delivered by a sink"
                ),
                &["sink"]
            )),
            sink_retries: reg!(IntCounterVec::new(
                opts("hotspot_sink_retries_total", "Delivery retries by sink"),
                &["sink"]
            )),
            sink_failures: reg!(IntCounterVec::new(
                opts(
                    "hotspot_sink_failures_total",
                    "Failed delivery attempts by sink"
                ),
                &["sink"]
            )),
            sink_up: reg!(IntGaugeVec::new(
                opts(
                    "hotspot_sink_up",
                    "1 if the sink's last delivery attempt succeeded"
                ),
                &["sink"]
            )),
            sink_refusals: reg!(IntCounterVec::new(
                opts(
                    "hotspot_sink_refusals_total",
                    "Delivery attempts a group robot refused in its answer body (errcode or code not 0)"
                ),
                &["sink"]
            )),
            intake_queue: reg!(IntGauge::with_opts(opts(
                "hotspot_intake_queue_depth",
                "Batches waiting for the engine"
            ))),
            intake_refused: reg!(IntCounterVec::new(
                opts(
                    "hotspot_intake_refused_total",
                    "Intake requests refused, by HTTP status"
                ),
                &["code"]
            )),
            keys: reg!(IntGauge::with_opts(opts(
                "hotspot_keys",
                "Live (business, region) keys"
            ))),
            keys_overflow: reg!(IntCounter::with_opts(opts(
                "hotspot_keys_overflow_total",
                "Complaints not counted because the key limit was reached"
            ))),
            rules_info: reg!(IntGaugeVec::new(
                opts("hotspot_rules_info", "The loaded rules (value 1)"),
                &["version", "source"]
            )),
            rules_reloads: reg!(IntCounterVec::new(
                opts("hotspot_rules_reloads_total", "Rule reloads by result"),
                &["result"]
            )),
            build_info: reg!(IntGaugeVec::new(
                opts("hotspot_build_info", "Build information (value 1)"),
                &["version"]
            )),
            checkpoints: reg!(IntCounterVec::new(
                opts(
                    "hotspot_checkpoints_total",
                    "Checkpoints written, by result"
                ),
                &["result"]
            )),
            storage_fault: reg!(IntGaugeVec::new(
                opts(
                    "hotspot_storage_fault",
                    "1 while intake is stopped because the state directory cannot be written"
                ),
                &["store"]
            )),
            storage_errors: reg!(IntCounterVec::new(
                opts(
                    "hotspot_storage_errors_total",
                    "Failed writes to the state directory, by store (each is retried)"
                ),
                &["store"]
            )),
            source_up: reg!(IntGaugeVec::new(
                opts(
                    "hotspot_source_up",
                    "1 while a source is connected and reading"
                ),
                &["source"]
            )),
            source_gaps: reg!(IntCounterVec::new(
                opts(
                    "hotspot_source_gaps_total",
                    "Offset gaps found in a source's input and re-read"
                ),
                &["source"]
            )),
            source_reread: reg!(IntCounterVec::new(
                opts(
                    "hotspot_source_reread_records_total",
                    "Records read again to fill offset gaps"
                ),
                &["source"]
            )),
            source_duplicates: reg!(IntCounterVec::new(
                opts(
                    "hotspot_source_duplicates_total",
                    "Records a source's client delivered twice, dropped"
                ),
                &["source"]
            )),
            source_reconnects: reg!(IntCounterVec::new(
                opts(
                    "hotspot_source_reconnects_total",
                    "Source connections lost and re-established"
                ),
                &["source"]
            )),
            dead_letters_dropped: reg!(IntCounterVec::new(
                opts(
                    "hotspot_dead_letters_dropped_total",
                    "Dead letters an asynchronous dead-letter sink could not queue"
                ),
                &["sink"]
            )),
            topics_complaints: reg!(IntCounter::with_opts(opts(
                "hotspot_topics_complaints_total",
                "Complaints no template covers, looked at by the new-topic detector"
            ))),
            topics_checks: reg!(IntCounter::with_opts(opts(
                "hotspot_topics_checks_total",
                "Exact checks of phrases that passed the new-topic screen"
            ))),
            topics_state_bytes: reg!(IntGauge::with_opts(opts(
                "hotspot_topics_state_bytes",
                "Bytes of the new-topic detector's state"
            ))),
            topics_recent: reg!(IntGauge::with_opts(opts(
                "hotspot_topics_recent_complaints",
                "Recent complaints the new-topic detector holds"
            ))),
            regions: RegionLabels {
                index: Mutex::new(HashMap::new()),
                values: std::array::from_fn(|_| OnceLock::new()),
            },
            registry,
        };
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        let _ = m.registry.register(Box::new(pc));
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for r in crate::record::Reject::ALL {
            m.rejects.with_label_values(&[r.name()]);
        }
        // Series that otherwise appear only after their first event: a
        // dashboard shows 0, not "no data", on a fresh process.
        for code in ["400", "401", "408", "413", "422", "429", "503"] {
            m.intake_refused.with_label_values(&[code]);
        }
        for store in ["journal", "outbox", "checkpoint"] {
            m.storage_errors.with_label_values(&[store]);
        }
        for store in ["journal", "outbox"] {
            m.storage_fault.with_label_values(&[store]);
        }
        for result in ["ok", "error"] {
            m.rules_reloads.with_label_values(&[result]);
            m.checkpoints.with_label_values(&[result]);
        }
        m
    }

    /// The label value for `region`: the region as [`region_label_text`]
    /// shows it (digits masked) if it is one of the first
    /// [`MAX_REGION_LABELS`] such values seen, else `other`.
    pub fn region_label(&self, region: &str) -> &str {
        let shown = region_label_text(region);
        let r = &self.regions;
        let mut index = r.index.lock().unwrap_or_else(|e| e.into_inner());
        let i = match index.get(shown.as_ref()) {
            Some(&i) => i,
            None if index.len() < MAX_REGION_LABELS => {
                let i = index.len();
                let _ = r.values[i].set(shown.as_ref().into());
                index.insert(shown.into_owned(), i);
                i
            }
            None => return "other",
        };
        r.values[i].get().map_or("other", |v| v)
    }

    /// The `kind` and `scope` label values of an alert: `threshold` and
    /// `region` for alerts of rules without section 8 keys (whose lines
    /// carry neither).
    pub fn alert_labels(a: &crate::alert::Alert) -> (&'static str, &'static str) {
        (
            a.kind.unwrap_or(crate::alert::Kind::Threshold).as_str(),
            a.scope.unwrap_or(crate::alert::Scope::Region).as_str(),
        )
    }

    /// The (kind, scope) pairs the rules can open alerts of: the series
    /// that start at 0 on a fresh process (at most 5 per department).
    pub fn alert_classes(rules: &crate::rules::Rules) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![("threshold", "region")];
        if rules
            .businesses
            .iter()
            .any(|b| b.province_threshold.is_some())
        {
            v.push(("threshold", "province"));
        }
        if rules.has_surge() {
            v.push(("surge", "region"));
            if !rules.provinces.is_empty() {
                v.push(("surge", "province"));
            }
        }
        if rules.discovery.is_some() {
            v.push(("new_topic", "region"));
            if !rules.provinces.is_empty() {
                v.push(("new_topic", "province"));
            }
        }
        v
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// High-resolution latency percentiles (hdrhistogram), kept beside the
/// Prometheus histograms for `/v1/stats` and the shutdown log line:
/// per-sink delivery latency in microseconds and per-record engine time in
/// nanoseconds.
pub struct LatencyBook {
    delivery: Mutex<std::collections::BTreeMap<String, hdrhistogram::Histogram<u64>>>,
    processing: Mutex<hdrhistogram::Histogram<u64>>,
}

/// p50 / p99 / p99.9 / max of one histogram.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub unit: &'static str,
}

fn hist() -> hdrhistogram::Histogram<u64> {
    // 1 unit .. 1 hour in microseconds (or ~1 h in ns for processing is not
    // needed: values saturate at the top), three significant digits.
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .expect("static histogram bounds are valid")
}

fn percentiles(h: &hdrhistogram::Histogram<u64>, unit: &'static str) -> Percentiles {
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
        unit,
    }
}

impl LatencyBook {
    pub fn new() -> Self {
        LatencyBook {
            delivery: Mutex::new(Default::default()),
            processing: Mutex::new(hist()),
        }
    }

    /// Records one delivery by `sink` that took `micros` since receipt.
    pub fn delivered(&self, sink: &str, micros: u64) {
        let mut g = self.delivery.lock().unwrap_or_else(|e| e.into_inner());
        let h = g.entry(sink.to_owned()).or_insert_with(hist);
        let _ = h.record(micros.max(1));
    }

    /// Merges per-record processing times (nanoseconds).
    pub fn add_processing(&self, other: &hdrhistogram::Histogram<u64>) {
        let mut g = self.processing.lock().unwrap_or_else(|e| e.into_inner());
        let _ = g.add(other);
    }

    /// A fresh histogram for per-record processing times.
    pub fn processing_histogram() -> hdrhistogram::Histogram<u64> {
        hist()
    }

    /// Percentiles per sink (µs) and of processing (ns).
    pub fn report(&self) -> (std::collections::BTreeMap<String, Percentiles>, Percentiles) {
        let d = self.delivery.lock().unwrap_or_else(|e| e.into_inner());
        let p = self.processing.lock().unwrap_or_else(|e| e.into_inner());
        (
            d.iter()
                .map(|(k, h)| (k.clone(), percentiles(h, "us")))
                .collect(),
            percentiles(&p, "ns"),
        )
    }
}

impl Default for LatencyBook {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_labels_are_bounded_and_hold_no_digits() {
        let m = Metrics::new();
        assert_eq!(m.region_label("杭州"), "杭州");
        assert_eq!(m.region_label("138001380001"), "************");
        // Regions that differ only in their digits share a label.
        assert_eq!(m.region_label("13912345678"), "***********");
        assert_eq!(m.region_label("区１２３"), "区***");
        let long = "长".repeat(100);
        assert_eq!(m.region_label(&long), "长".repeat(REGION_LABEL_CHARS));
        // 5 labels so far; 59 more distinct ones fit, then `other`.
        let name = |i: usize| {
            let c = |d: usize| char::from_u32(0x4E00 + d as u32).unwrap();
            format!("{}{}", c(i / 100), c(i % 100))
        };
        for i in 0..200 {
            let got = m.region_label(&name(i)).to_owned();
            if i < MAX_REGION_LABELS - 5 {
                assert_eq!(got, name(i));
            } else {
                assert_eq!(got, "other", "region {i}");
            }
        }
        // A region seen before keeps its label; the first ones still have theirs.
        assert_eq!(m.region_label(&name(0)), name(0));
        assert_eq!(m.region_label("杭州"), "杭州");
        assert_eq!(m.region_label("17000000000"), "***********");
        for i in 0..500 {
            m.matches
                .with_label_values(&["b", m.region_label(&format!("{i}号{}", name(i)))])
                .inc();
        }
        let text = m.render();
        let regions: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("hotspot_matches_total{"))
            .filter_map(|l| l.split("region=\"").nth(1)?.split('"').next())
            .collect();
        assert!(regions.len() <= MAX_REGION_LABELS + 1, "{regions:?}");
        assert!(
            regions
                .iter()
                .all(|r| !r.chars().any(|c| c.is_ascii_digit())),
            "{regions:?}"
        );
    }
}
