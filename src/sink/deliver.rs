//! Delivery: one task per sink, reading the outbox in order from the sink's
//! cursor and sending each line until the receiver takes it.
//!
//! A failed attempt is retried with exponential backoff and full jitter
//! (so that many hotspot instances do not hammer a recovering receiver in
//! step), forever: a receiver that is down delays delivery, it never loses
//! it (CONTRACT 7). Each sink has its own task and its own cursor, so a slow
//! or dead receiver holds back only its own queue — never the engine, never
//! another sink. At shutdown a sink keeps delivering until it has caught up
//! or the drain deadline passes; what is left stays in the outbox (on disk
//! with `--state-dir`) for the next start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::outbox::{Cursor, Item, Outbox};
use super::{
    alertmanager::AlertmanagerTarget, email::EmailTarget, file::FileTarget, webhook::WebhookTarget,
};
use crate::mask::mask;
use crate::metrics::{LatencyBook, Metrics};
use crate::retry::RetryPolicy;

/// Where a sink sends.
pub enum Target {
    File(FileTarget),
    Webhook(WebhookTarget),
    Alertmanager(AlertmanagerTarget),
    /// A department's e-mail (boxed: the SMTP transport is large).
    Email(Box<EmailTarget>),
    /// An alerts topic (see [`super::fluvio`]).
    #[cfg(feature = "fluvio")]
    Fluvio(Box<super::fluvio::FluvioTarget>),
}

impl Target {
    /// The sink's name in metrics, logs and cursor files.
    pub fn name(&self) -> String {
        match self {
            Target::File(f) => f.name(),
            Target::Webhook(w) => w.name(),
            Target::Alertmanager(a) => a.name(),
            Target::Email(e) => e.name(),
            #[cfg(feature = "fluvio")]
            Target::Fluvio(f) => f.name(),
        }
    }

    /// Whether this sink delivers `item` at all: a webhook only gets its
    /// department's alerts and dispatch steps, minus silenced and folded
    /// ones; Alertmanager no steps and no silenced lines; the alerts file
    /// and Fluvio every alert line and no step (see `sink::notice`).
    pub fn wants(&self, item: &Item) -> bool {
        match self {
            Target::Webhook(w) => w.wants(item),
            Target::Email(e) => e.wants(item),
            Target::Alertmanager(_) => super::notice::alertmanager_wants(item),
            _ => super::notice::is_alert_line(item),
        }
    }

    /// Time until this sink has periodic work (Alertmanager re-sends).
    fn periodic_in(&self) -> Option<Duration> {
        match self {
            Target::Alertmanager(a) => a.resend_in(),
            _ => None,
        }
    }

    async fn periodic(&mut self) {
        if let Target::Alertmanager(a) = self {
            a.resend_now().await;
        }
    }

    fn delivered(&mut self, item: &Item) {
        if let Target::Alertmanager(a) = self {
            a.delivered(&item.alert);
        }
    }

    async fn send(&mut self, item: &Item, cursor: &mut Cursor) -> Result<(), String> {
        match self {
            Target::File(f) => f.send(item, cursor),
            Target::Webhook(w) => w.send(item).await,
            Target::Alertmanager(a) => a.send(item).await,
            Target::Email(e) => e.send(item).await,
            #[cfg(feature = "fluvio")]
            Target::Fluvio(f) => f.send(item).await,
        }
    }
}

/// The delivery task of one sink.
pub struct Runner {
    pub index: usize,
    pub target: Target,
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
    pub latency: Arc<LatencyBook>,
    pub policy: RetryPolicy,
    /// Told of every line this sink delivered, before the sink's position
    /// moves past it (the dispatch book starts an alert's deadline from
    /// its first delivery, and must not miss it in a crash).
    pub on_delivered: Option<DeliveredHook>,
}

/// See [`Runner::on_delivered`]: for a line it wants to record, a future
/// that says whether the record was made. `false` (the engine has
/// stopped) stops the sink before the line, which is then delivered
/// again after the restart, under the same idempotency key, and recorded
/// then.
pub type DeliveredHook =
    Arc<dyn Fn(&Item) -> Option<futures_util::future::BoxFuture<'static, bool>> + Send + Sync>;

impl Runner {
    /// Delivers until `drain` holds a deadline and either everything is
    /// delivered or the deadline has passed.
    pub async fn run(mut self, mut drain: watch::Receiver<Option<Instant>>) {
        let name = self.target.name();
        let mut pushed = self.outbox.subscribe();
        let mut cursor = self.outbox.cursor(self.index);
        let queue = self.metrics.sink_queue.with_label_values(&[&name]);
        let up = self.metrics.sink_up.with_label_values(&[&name]);
        let delivered = self.metrics.sink_delivered.with_label_values(&[&name]);
        let failures = self.metrics.sink_failures.with_label_values(&[&name]);
        let retries = self.metrics.sink_retries.with_label_values(&[&name]);
        let latency = self.metrics.delivery_latency.with_label_values(&[&name]);
        up.set(1);
        let mut unsaved = false;
        loop {
            queue.set(self.outbox.depth(self.index) as i64);
            let deadline = *drain.borrow();
            if cursor.next < self.outbox.first_seq() {
                cursor.next = self.outbox.first_seq();
            }
            let Some(item) = self.outbox.get(cursor.next) else {
                // Caught up.
                if unsaved {
                    if let Err(e) = self.outbox.ack(self.index, cursor) {
                        tracing::error!(sink = %name, error = %e, "cannot save the sink's position");
                    }
                    unsaved = false;
                }
                if deadline.is_some() {
                    return;
                }
                let periodic = self.target.periodic_in();
                tokio::select! {
                    _ = pushed.changed() => {}
                    _ = drain.changed() => {}
                    _ = tokio::time::sleep(periodic.unwrap_or(Duration::from_secs(3600))), if periodic.is_some() => {
                        self.target.periodic().await;
                    }
                }
                continue;
            };
            if !self.target.wants(&item) {
                cursor.next += 1;
                unsaved = true;
                continue;
            }
            let mut attempt = 0u32;
            loop {
                let result =
                    tokio::time::timeout(self.policy.timeout, self.target.send(&item, &mut cursor))
                        .await;
                let err = match result {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => e,
                    Err(_) => format!("no answer within {:?}", self.policy.timeout),
                };
                failures.inc();
                up.set(0);
                let wait = self.policy.backoff(attempt);
                if attempt == 0 || attempt % 10 == 0 {
                    tracing::warn!(sink = %name, alert_id = %mask(&item.alert.alert_id), attempt = attempt + 1, error = %mask(&err), retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                }
                attempt += 1;
                let until = Instant::now() + wait;
                if let Some(d) = *drain.borrow() {
                    if until >= d {
                        tracing::warn!(sink = %name, pending = self.outbox.depth(self.index), "shutting down with alerts not yet delivered; they stay in the outbox");
                        if unsaved {
                            let _ = self.outbox.ack(self.index, cursor);
                        }
                        return;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = drain.changed() => {}
                }
                retries.inc();
            }
            self.target.delivered(&item);
            if let Some(recorded) = self.on_delivered.as_ref().and_then(|h| h(&item)) {
                if !recorded.await {
                    tracing::warn!(sink = %name, alert_id = %mask(&item.alert.alert_id), "stopping before a delivered line whose delivery could not be recorded; it is delivered again at the next start");
                    if unsaved {
                        let _ = self.outbox.ack(self.index, cursor);
                    }
                    return;
                }
            }
            cursor.next += 1;
            if let Err(e) = self.outbox.ack(self.index, cursor) {
                tracing::error!(sink = %name, error = %e, "cannot save the sink's position");
            }
            unsaved = false;
            up.set(1);
            delivered.inc();
            if let Some(r) = item.received {
                let el = r.elapsed();
                latency.observe(el.as_secs_f64());
                self.latency.delivered(&name, el.as_micros() as u64);
            }
        }
    }
}
