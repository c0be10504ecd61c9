//! Fluvio topics as sinks: alert lines (`--fluvio-alerts-topic`) and dead
//! letters (`--fluvio-dead-letter-topic`).
//!
//! **Alerts** go through the outbox like every other sink ([`FluvioTarget`]
//! is a [`super::deliver::Target`]): each line is produced with key
//! `alert_id` (so a key's firing and resolved lines share a partition and
//! stay in order) and counts as delivered only once the SPU has
//! acknowledged it — only then does the outbox cursor move. The one line
//! that can be in doubt is the one in flight when the process died (or when
//! an attempt timed out): produced, perhaps acknowledged, cursor not yet
//! saved. Before sending such a line again the sink reads the last
//! [`TAIL`] records of every partition of the topic and skips lines already
//! there (by `alert_id` and `state`, which identify an alert line), so a
//! restart neither loses nor repeats a line. Other writers to the same
//! topic (other instances) are fine as long as fewer than [`TAIL`] of their
//! lines landed in a partition after ours.
//!
//! **Dead letters** are informational and must never stall the engine:
//! the engine thread queues them ([`DeadLetterQueue`], bounded, `try_send`)
//! and a thread produces them, keyed by source, retrying with backoff while
//! the cluster is unreachable (at least once; a full queue drops and counts
//! in `hotspot_dead_letters_dropped_total`).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::Duration;

use fluvio::{Fluvio, Offset, TopicProducerConfigBuilder, TopicProducerPool};
use futures_util::StreamExt;
use serde::Deserialize;

use super::DeadLetterQueue;
use super::outbox::Item;
use crate::fluvio_client::{self, FluvioCluster};
use crate::retry::RetryPolicy;
use crate::service::state::Shared;

/// Records per partition read back to find lines already delivered.
pub const TAIL: u32 = 1000;

/// The alerts-topic sink.
pub struct FluvioTarget {
    cluster: FluvioCluster,
    topic: String,
    conn: Option<(Fluvio, TopicProducerPool)>,
    /// Read the topic's tail before the next send: set at a restart with a
    /// saved cursor, and while an attempt is unfinished.
    verify: bool,
    /// (alert_id, state) of the lines found in the tail, while the lines
    /// being sent are still among them.
    found: Option<HashSet<(String, String)>>,
}

#[derive(Deserialize)]
struct AlertKey {
    alert_id: String,
    state: String,
}

impl FluvioTarget {
    /// `resumed`: the outbox cursor of this sink was read from disk, so the
    /// first line may already be in the topic.
    pub fn new(cluster: &FluvioCluster, topic: &str, resumed: bool) -> Self {
        FluvioTarget {
            cluster: cluster.clone(),
            topic: topic.to_owned(),
            conn: None,
            verify: resumed,
            found: None,
        }
    }

    pub fn name(&self) -> String {
        format!("fluvio:{}", self.topic)
    }

    async fn producer(&mut self) -> Result<&TopicProducerPool, String> {
        if self.conn.is_none() {
            let f = fluvio_client::connect(&self.cluster)
                .await
                .map_err(|e| format!("{e:#}"))?;
            // One line at a time, acknowledged: no linger.
            let cfg = TopicProducerConfigBuilder::default()
                .linger(Duration::ZERO)
                .build()
                .map_err(|e| e.to_string())?;
            let p = f
                .topic_producer_with_config(self.topic.clone(), cfg)
                .await
                .map_err(|e| format!("topic {}: {e:#}", self.topic))?;
            self.conn = Some((f, p));
        }
        match &self.conn {
            Some((_, p)) => Ok(p),
            None => Err("not connected".into()),
        }
    }

    /// The alert lines in the last [`TAIL`] records of every partition.
    async fn tail(&mut self) -> Result<HashSet<(String, String)>, String> {
        self.producer().await?;
        let Some((f, _)) = &self.conn else {
            return Err("not connected".into());
        };
        let n = fluvio_client::partition_count(f, &self.topic)
            .await
            .map_err(|e| format!("{e:#}"))?
            .unwrap_or(0);
        let mut seen = HashSet::new();
        for p in 0..n {
            let mut s = fluvio_client::open(f, &self.topic, p, Offset::from_end(TAIL), None, false)
                .await
                .map_err(|e| format!("{e:#}"))?;
            loop {
                match tokio::time::timeout(fluvio_client::CONNECT_TIMEOUT, s.next()).await {
                    Err(_) => {
                        return Err(format!("reading the tail of {}/{p} timed out", self.topic));
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(format!("reading {}/{p}: {e}", self.topic)),
                    Ok(Some(Ok(r))) => {
                        if let Ok(k) = serde_json::from_slice::<AlertKey>(r.value()) {
                            seen.insert((k.alert_id, k.state));
                        }
                    }
                }
            }
        }
        Ok(seen)
    }

    /// Produces one alert line and waits for the acknowledgement.
    pub async fn send(&mut self, item: &Item) -> Result<(), String> {
        if self.verify {
            let seen = self.tail().await.inspect_err(|_| self.conn = None)?;
            self.found = Some(seen);
            self.verify = false;
        }
        if let Some(found) = &self.found {
            let key = (
                item.alert.alert_id.clone(),
                item.alert.state.as_str().to_owned(),
            );
            if found.contains(&key) {
                tracing::info!(sink = %self.name(), alert_id = %item.alert.alert_id, state = %key.1, "line already in the topic (sent before a restart or a timeout); not sending it again");
                return Ok(());
            }
            self.found = None;
        }
        // Until the acknowledgement arrives this line is in doubt.
        self.verify = true;
        let key = item.alert.alert_id.clone();
        let value = item.json.as_bytes().to_vec();
        let result = async {
            let p = self.producer().await?;
            let out = p.send(key, value).await.map_err(|e| format!("{e:#}"))?;
            out.wait().await.map_err(|e| format!("{e:#}"))
        }
        .await;
        match result {
            Ok(_) => {
                self.verify = false;
                Ok(())
            }
            Err(e) => {
                // A producer with an error stays failed: start afresh.
                self.conn = None;
                Err(format!("{}: {e}", self.name()))
            }
        }
    }
}

/// Dead letters waiting for the topic, at most.
const DEAD_LETTER_QUEUE: usize = 100_000;

/// Starts the dead-letter producer for `topic`; returns the queue the
/// engine sends to, with the sink's name.
pub fn spawn_dead_letters(
    cluster: &FluvioCluster,
    topic: &str,
    shared: Arc<Shared>,
) -> std::io::Result<(String, DeadLetterQueue)> {
    let (tx, rx) = sync_channel(DEAD_LETTER_QUEUE);
    let name = format!("fluvio:{topic}");
    let (cluster, topic2, name2) = (cluster.clone(), topic.to_owned(), name.clone());
    std::thread::Builder::new()
        .name("fluvio-dead-letters".into())
        .spawn(move || dead_letters(&cluster, &topic2, &name2, rx, &shared))?;
    Ok((name, tx))
}

fn dead_letters(
    cluster: &FluvioCluster,
    topic: &str,
    name: &str,
    rx: Receiver<(String, String)>,
    shared: &Shared,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(sink = %name, error = %e, "cannot start the dead-letter producer");
            return;
        }
    };
    let m = &shared.metrics;
    let up = m.sink_up.with_label_values(&[name]);
    let delivered = m.sink_delivered.with_label_values(&[name]);
    let failures = m.sink_failures.with_label_values(&[name]);
    let policy = RetryPolicy {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(10),
        timeout: Duration::from_secs(10),
    };
    let mut producer: Option<(Fluvio, TopicProducerPool)> = None;
    let mut batch: Vec<(String, String)> = Vec::new();
    let mut attempt = 0u32;
    loop {
        if batch.is_empty() {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(x) => batch.push(x),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < 1000 {
                match rx.try_recv() {
                    Ok(x) => batch.push(x),
                    Err(_) => break,
                }
            }
        }
        let result = rt.block_on(async {
            if producer.is_none() {
                let f = fluvio_client::connect(cluster)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let cfg = TopicProducerConfigBuilder::default()
                    .linger(Duration::from_millis(5))
                    .build()
                    .map_err(|e| e.to_string())?;
                let p = f
                    .topic_producer_with_config(topic.to_owned(), cfg)
                    .await
                    .map_err(|e| format!("topic {topic}: {e:#}"))?;
                producer = Some((f, p));
            }
            let Some((_, p)) = &producer else {
                return Err("not connected".to_string());
            };
            let mut outs = Vec::with_capacity(batch.len());
            for (k, v) in &batch {
                outs.push(
                    p.send(k.clone(), v.clone())
                        .await
                        .map_err(|e| format!("{e:#}"))?,
                );
            }
            p.flush().await.map_err(|e| format!("{e:#}"))?;
            for o in outs {
                o.wait().await.map_err(|e| format!("{e:#}"))?;
            }
            Ok::<_, String>(())
        });
        match result {
            Ok(()) => {
                delivered.inc_by(batch.len() as u64);
                batch.clear();
                up.set(1);
                attempt = 0;
            }
            Err(e) => {
                producer = None;
                failures.inc();
                up.set(0);
                if attempt == 0 || attempt % 20 == 0 {
                    tracing::warn!(sink = %name, error = %e, pending = batch.len(), "cannot produce dead letters; retrying");
                }
                std::thread::sleep(policy.backoff(attempt));
                attempt += 1;
            }
        }
    }
}
