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
//! That check only sees what is in the topic, so nothing else may resend
//! behind its back (defect 9 of issue 16: one line 11 times in the topic
//! after an SPU died mid-delivery):
//! - The producer is at-most-once (`DeliverySemantic::AtMostOnce`): the
//!   fluvio 0.50.1 default, at-least-once, keeps a failed request and sends
//!   it again later, together with every copy queued meanwhile.
//! - An attempt that did not finish (the delivery task's timeout dropped
//!   it mid-await) leaves the connection marked dirty, and the next attempt
//!   drops that producer instead of queueing another copy behind it.
//! - The acknowledgement of the line last produced is kept across attempts:
//!   while it is outstanding the line is not produced again. It arrives
//!   (delivered), fails (then the topic's tail decides), or stays away
//!   while the topic is readable for [`ABANDON_AFTER`] — longer than a
//!   dropped producer's reconnect backoff (30 s at most) — and the tail
//!   decides then.
//!
//! **Dead letters** are informational and must never stall the engine:
//! the engine thread queues them ([`DeadLetterQueue`], bounded, `try_send`)
//! and a thread produces them, keyed by source, retrying with backoff while
//! the cluster is unreachable (at least once; a full queue drops and counts
//! in `hotspot_dead_letters_dropped_total`).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use fluvio::{DeliverySemantic, Fluvio, Offset, TopicProducerConfigBuilder, TopicProducerPool};
use futures_util::StreamExt;
use serde::Deserialize;

use super::DeadLetterQueue;
use super::outbox::Item;
use crate::fluvio_client::{self, FluvioCluster};
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;

/// Records per partition read back to find lines already delivered.
pub const TAIL: u32 = 1000;

/// How long the topic must have been readable, with the acknowledgement of
/// the line in flight still outstanding, before that line is given up on
/// and the topic's tail decides whether to send it again. A dropped
/// producer whose flush waits for the SPU retries its connection with a
/// backoff of at most 30 s (fluvio 0.50.1), so by then it has either sent
/// the line or never will.
pub const ABANDON_AFTER: Duration = Duration::from_secs(45);

/// An SPU's acknowledgement of one record.
type Ack = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What the alerts sink needs from a topic; a trait so that the attempt
/// logic ([`LineSender`]) is tested without a cluster.
trait AlertTopic {
    /// `(alert_id, state)` of the alert lines in the last [`TAIL`] records
    /// of every partition (connecting first if need be).
    async fn tail(&mut self) -> Result<HashSet<(String, String)>, String>;
    /// Queues one record (connecting first if need be); the answer
    /// resolves with the SPU's acknowledgement.
    async fn produce(&mut self, key: &str, value: &[u8]) -> Result<Ack, String>;
    /// Drops the connection and its producer.
    fn disconnect(&mut self);
}

/// The alerts-topic sink.
pub struct FluvioTarget {
    lines: LineSender<FluvioTopic>,
}

impl FluvioTarget {
    /// `resumed`: the outbox cursor of this sink was read from disk, so the
    /// first line may already be in the topic.
    pub fn new(cluster: &FluvioCluster, topic: &str, resumed: bool) -> Self {
        let topic = FluvioTopic {
            cluster: cluster.clone(),
            topic: topic.to_owned(),
            conn: None,
        };
        FluvioTarget {
            lines: LineSender::new(topic.name(), topic, resumed),
        }
    }

    pub fn name(&self) -> String {
        self.lines.name.clone()
    }

    /// Produces one alert line and waits for the acknowledgement.
    pub async fn send(&mut self, item: &Item) -> Result<(), String> {
        self.lines
            .send(&item.alert.alert_id, item.alert.state.as_str(), &item.json)
            .await
    }
}

/// The line that was produced last, while its acknowledgement is
/// outstanding.
struct InFlight {
    /// `(alert_id, state)`.
    line: (String, String),
    ack: Ack,
    /// Since when the topic has been readable while the acknowledgement
    /// stayed away.
    readable_since: Option<Instant>,
}

/// Sends alert lines to a topic, one at a time, each at most once as far
/// as the topic shows (see the module documentation).
struct LineSender<T> {
    name: String,
    topic: T,
    /// An attempt began and has not returned. Still set when the next one
    /// begins, the previous one was dropped mid-await (the delivery task's
    /// timeout): its producer may be stuck, and is dropped.
    dirty: bool,
    /// Read the topic's tail before the next send: set at a restart with a
    /// saved cursor, and while a line is in doubt.
    verify: bool,
    /// (alert_id, state) of the lines found in the tail, while the lines
    /// being sent are still among them.
    found: Option<HashSet<(String, String)>>,
    in_flight: Option<InFlight>,
    abandon_after: Duration,
}

#[derive(Deserialize)]
struct AlertKey {
    alert_id: String,
    state: String,
}

impl<T: AlertTopic> LineSender<T> {
    fn new(name: String, topic: T, resumed: bool) -> Self {
        LineSender {
            name,
            topic,
            dirty: false,
            verify: resumed,
            found: None,
            in_flight: None,
            abandon_after: ABANDON_AFTER,
        }
    }

    /// One attempt at delivering the line `(alert_id, state)`, `json`.
    /// The caller may drop it at any await (a timeout): the next call
    /// picks up from what it left.
    async fn send(&mut self, alert_id: &str, state: &str, json: &str) -> Result<(), String> {
        if self.dirty {
            // The last attempt was cut off: do not queue behind it.
            self.topic.disconnect();
        }
        self.dirty = true;
        let result = self.attempt(alert_id, state, json).await;
        if result.is_err() {
            // A producer with an error stays failed: start afresh.
            self.topic.disconnect();
        }
        self.dirty = false;
        result.map_err(|e| format!("{}: {e}", self.name))
    }

    async fn attempt(&mut self, alert_id: &str, state: &str, json: &str) -> Result<(), String> {
        let line = (alert_id.to_owned(), state.to_owned());
        if self.in_flight.as_ref().is_some_and(|f| f.line != line) {
            // Not the line this sink is retrying (cannot happen: the
            // delivery task retries a line until it is delivered).
            self.in_flight = None;
            self.verify = true;
        }
        if let Some(f) = &mut self.in_flight {
            // The line is out already: its acknowledgement decides, not
            // another copy.
            match tokio::time::timeout(Duration::from_millis(100), &mut f.ack).await {
                Ok(Ok(())) => {
                    self.in_flight = None;
                    self.verify = false;
                    return Ok(());
                }
                Ok(Err(e)) => {
                    // Not written, or written and the answer lost: the
                    // tail decides.
                    tracing::info!(sink = %self.name, alert_id = %alert_id, error = %e, "the line in flight failed; checking the topic before sending it again");
                    self.in_flight = None;
                }
                Err(_) => {
                    let seen = self.topic.tail().await.inspect_err(|_| {
                        if let Some(f) = &mut self.in_flight {
                            f.readable_since = None;
                        }
                    })?;
                    if seen.contains(&line) {
                        tracing::info!(sink = %self.name, alert_id = %alert_id, state = %state, "the line in flight is in the topic; not sending it again");
                        self.in_flight = None;
                        self.verify = false;
                        return Ok(());
                    }
                    let Some(f) = &mut self.in_flight else {
                        return Err("no line in flight".into());
                    };
                    let since = *f.readable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() < self.abandon_after {
                        return Err(
                            "waiting for the acknowledgement of the line sent before".into()
                        );
                    }
                    tracing::warn!(sink = %self.name, alert_id = %alert_id, state = %state, waited_s = since.elapsed().as_secs(), "no acknowledgement for the line in flight, and it is not in the topic; sending it again");
                    self.in_flight = None;
                    self.found = Some(seen);
                    self.verify = false;
                }
            }
        }
        if self.verify {
            self.found = Some(self.topic.tail().await?);
            self.verify = false;
        }
        if let Some(found) = &self.found {
            if found.contains(&line) {
                tracing::info!(sink = %self.name, alert_id = %alert_id, state = %state, "line already in the topic (sent before a restart or a timeout); not sending it again");
                return Ok(());
            }
            self.found = None;
        }
        // Until the acknowledgement arrives this line is in doubt.
        self.verify = true;
        let ack = self.topic.produce(alert_id, json.as_bytes()).await?;
        let f = self.in_flight.insert(InFlight {
            line,
            ack,
            readable_since: None,
        });
        let acked = (&mut f.ack).await;
        self.in_flight = None;
        acked?;
        self.verify = false;
        Ok(())
    }
}

/// An alerts topic of a Fluvio cluster.
struct FluvioTopic {
    cluster: FluvioCluster,
    topic: String,
    conn: Option<(Fluvio, TopicProducerPool)>,
}

impl FluvioTopic {
    fn name(&self) -> String {
        format!("fluvio:{}", self.topic)
    }

    async fn connection(&mut self) -> Result<&(Fluvio, TopicProducerPool), String> {
        if self.conn.is_none() {
            let f = fluvio_client::connect(&self.cluster)
                .await
                .map_err(|e| format!("{e:#}"))?;
            // One line at a time, acknowledged: no linger. At most once:
            // a failed request is not sent again by the client, so that
            // only the sink's own check of the topic decides what is.
            let cfg = TopicProducerConfigBuilder::default()
                .linger(Duration::ZERO)
                .delivery_semantic(DeliverySemantic::AtMostOnce)
                .build()
                .map_err(|e| e.to_string())?;
            let p = f
                .topic_producer_with_config(self.topic.clone(), cfg)
                .await
                .map_err(|e| format!("topic {}: {e:#}", self.topic))?;
            self.conn = Some((f, p));
        }
        self.conn.as_ref().ok_or_else(|| "not connected".into())
    }
}

impl AlertTopic for FluvioTopic {
    async fn tail(&mut self) -> Result<HashSet<(String, String)>, String> {
        let topic = self.topic.clone();
        let (f, _) = self.connection().await?;
        let n = fluvio_client::partition_count(f, &topic)
            .await
            .map_err(|e| format!("{e:#}"))?
            .unwrap_or(0);
        let mut seen = HashSet::new();
        for p in 0..n {
            let mut s = fluvio_client::open(f, &topic, p, Offset::from_end(TAIL), None, false)
                .await
                .map_err(|e| format!("{e:#}"))?;
            loop {
                match tokio::time::timeout(fluvio_client::CONNECT_TIMEOUT, s.next()).await {
                    Err(_) => return Err(format!("reading the tail of {topic}/{p} timed out")),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(format!("reading {topic}/{p}: {e}")),
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

    async fn produce(&mut self, key: &str, value: &[u8]) -> Result<Ack, String> {
        let (_, p) = self.connection().await?;
        let out = p
            .send(key.to_owned(), value.to_vec())
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok(Box::pin(async move {
            out.wait().await.map(|_| ()).map_err(|e| format!("{e:#}"))
        }))
    }

    fn disconnect(&mut self) {
        self.conn = None;
    }
}

/// Dead letters waiting for the topic, at most.
const DEAD_LETTER_QUEUE: usize = 100_000;

/// Starts the dead-letter producer for `topic`; returns the queue the
/// engine sends to, with the sink's name.
pub fn spawn_dead_letters(
    cluster: &FluvioCluster,
    topic: &str,
    metrics: Arc<Metrics>,
) -> std::io::Result<(String, DeadLetterQueue)> {
    let (tx, rx) = sync_channel(DEAD_LETTER_QUEUE);
    let name = format!("fluvio:{topic}");
    let (cluster, topic2, name2) = (cluster.clone(), topic.to_owned(), name.clone());
    std::thread::Builder::new()
        .name("fluvio-dead-letters".into())
        .spawn(move || dead_letters(&cluster, &topic2, &name2, rx, &metrics))?;
    Ok((name, tx))
}

fn dead_letters(
    cluster: &FluvioCluster,
    topic: &str,
    name: &str,
    rx: Receiver<(String, String)>,
    m: &Metrics,
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::oneshot;

    use super::*;

    /// What a fake SPU does with the next record it is given.
    enum Plan {
        /// Writes it and acknowledges it.
        Write,
        /// Writes it; the acknowledgement is lost.
        WriteLoseAck,
        /// Holds it: the test decides later (`Cluster::release`) whether
        /// it is written, as a stuck producer would.
        Hold,
    }

    type AckSender = oneshot::Sender<Result<(), String>>;

    #[derive(Default)]
    struct Cluster {
        /// `(alert_id, state)` of the records in the topic, in order.
        topic: Vec<(String, String)>,
        /// Records produced, whatever became of them.
        produced: u32,
        disconnects: u32,
        /// The SPU is down: no tail, no produce.
        down: bool,
        plans: Vec<Plan>,
        held: Vec<((String, String), AckSender)>,
    }

    impl Cluster {
        /// The held records: written (and acknowledged) or failed.
        fn release(&mut self, write: bool) {
            for (line, tx) in self.held.drain(..) {
                if write {
                    self.topic.push(line);
                    let _ = tx.send(Ok(()));
                } else {
                    let _ = tx.send(Err("connection reset".into()));
                }
            }
        }

        fn copies(&self, id: &str) -> usize {
            self.topic.iter().filter(|(a, _)| a == id).count()
        }
    }

    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<Cluster>>);

    impl AlertTopic for Fake {
        async fn tail(&mut self) -> Result<HashSet<(String, String)>, String> {
            let c = self.0.lock().unwrap();
            if c.down {
                return Err("SPU down".into());
            }
            Ok(c.topic.iter().cloned().collect())
        }

        async fn produce(&mut self, key: &str, value: &[u8]) -> Result<Ack, String> {
            let mut c = self.0.lock().unwrap();
            if c.down {
                return Err("SPU down".into());
            }
            c.produced += 1;
            let k: AlertKey = serde_json::from_slice(value).unwrap();
            assert_eq!(k.alert_id, key);
            let line = (k.alert_id, k.state);
            let plan = if c.plans.is_empty() {
                Plan::Write
            } else {
                c.plans.remove(0)
            };
            match plan {
                Plan::Write => {
                    c.topic.push(line);
                    Ok(Box::pin(async { Ok(()) }))
                }
                Plan::WriteLoseAck => {
                    c.topic.push(line);
                    Ok(Box::pin(async { Err("connection reset".into()) }))
                }
                Plan::Hold => {
                    let (tx, rx) = oneshot::channel();
                    c.held.push((line, tx));
                    Ok(Box::pin(async move {
                        rx.await.unwrap_or_else(|_| Err("producer dropped".into()))
                    }))
                }
            }
        }

        fn disconnect(&mut self) {
            self.0.lock().unwrap().disconnects += 1;
        }
    }

    const A: (&str, &str, &str) = ("a1", "firing", r#"{"alert_id":"a1","state":"firing"}"#);
    const B: (&str, &str, &str) = ("b2", "firing", r#"{"alert_id":"b2","state":"firing"}"#);

    fn sender(resumed: bool) -> (LineSender<Fake>, Fake) {
        let fake = Fake::default();
        let s = LineSender::new("fluvio:alerts".into(), fake.clone(), resumed);
        (s, fake)
    }

    /// One attempt under the delivery task's timeout (short here).
    async fn attempt(s: &mut LineSender<Fake>, l: (&str, &str, &str)) -> Option<bool> {
        tokio::time::timeout(Duration::from_millis(400), s.send(l.0, l.1, l.2))
            .await
            .ok()
            .map(|r| r.is_ok())
    }

    #[tokio::test]
    async fn lines_are_produced_once_each() {
        let (mut s, fake) = sender(false);
        assert_eq!(attempt(&mut s, A).await, Some(true));
        assert_eq!(attempt(&mut s, B).await, Some(true));
        let c = fake.0.lock().unwrap();
        assert_eq!((c.produced, c.copies("a1"), c.copies("b2")), (2, 1, 1));
        assert_eq!(c.disconnects, 0);
    }

    /// Defect 9 of issue 16: each retry after a timed-out attempt queued
    /// another copy behind the stuck one, and all of them landed once the
    /// SPU was back.
    #[tokio::test]
    async fn retries_after_a_cut_off_attempt_send_no_second_copy() {
        let (mut s, fake) = sender(false);
        fake.0.lock().unwrap().plans.push(Plan::Hold);
        assert_eq!(attempt(&mut s, A).await, None, "cut off by the timeout");
        for _ in 0..5 {
            assert_eq!(attempt(&mut s, A).await, Some(false), "still waiting");
        }
        {
            let c = fake.0.lock().unwrap();
            assert_eq!(c.produced, 1, "no copy queued behind the stuck one");
            assert!(
                c.disconnects >= 1,
                "the cut-off attempt's producer is dropped"
            );
        }
        // The stuck producer gets through after all: delivered, once.
        fake.0.lock().unwrap().release(true);
        assert_eq!(attempt(&mut s, A).await, Some(true));
        assert_eq!(attempt(&mut s, B).await, Some(true));
        let c = fake.0.lock().unwrap();
        assert_eq!((c.copies("a1"), c.copies("b2"), c.produced), (1, 1, 2));
    }

    #[tokio::test]
    async fn a_line_in_flight_that_failed_is_sent_again_once() {
        let (mut s, fake) = sender(false);
        fake.0.lock().unwrap().plans.push(Plan::Hold);
        assert_eq!(attempt(&mut s, A).await, None);
        fake.0.lock().unwrap().release(false);
        assert_eq!(attempt(&mut s, A).await, Some(true));
        let c = fake.0.lock().unwrap();
        assert_eq!((c.copies("a1"), c.produced), (1, 2));
    }

    #[tokio::test]
    async fn a_lost_acknowledgement_is_settled_by_the_topic() {
        let (mut s, fake) = sender(false);
        fake.0.lock().unwrap().plans.push(Plan::WriteLoseAck);
        assert_eq!(attempt(&mut s, A).await, Some(false));
        assert_eq!(attempt(&mut s, A).await, Some(true));
        let c = fake.0.lock().unwrap();
        assert_eq!((c.copies("a1"), c.produced), (1, 1), "found in the tail");
    }

    #[tokio::test]
    async fn an_acknowledgement_that_never_comes_is_given_up_while_the_topic_is_readable() {
        let (mut s, fake) = sender(false);
        s.abandon_after = Duration::from_millis(300);
        fake.0.lock().unwrap().plans.push(Plan::Hold);
        assert_eq!(attempt(&mut s, A).await, None);
        // While the SPU is down, nothing is decided.
        fake.0.lock().unwrap().down = true;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(500) {
            assert_eq!(attempt(&mut s, A).await, Some(false));
        }
        assert_eq!(fake.0.lock().unwrap().produced, 1);
        // Readable again, the line still not there: after `abandon_after`
        // it is sent again.
        fake.0.lock().unwrap().down = false;
        let mut ok = false;
        let t0 = Instant::now();
        while !ok && t0.elapsed() < Duration::from_secs(5) {
            ok = attempt(&mut s, A).await == Some(true);
        }
        assert!(ok);
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t0.elapsed()
        );
        let c = fake.0.lock().unwrap();
        assert_eq!((c.copies("a1"), c.produced), (1, 2));
    }

    #[tokio::test]
    async fn a_resumed_sink_skips_the_line_already_in_the_topic() {
        let (mut s, fake) = sender(true);
        fake.0
            .lock()
            .unwrap()
            .topic
            .push(("a1".into(), "firing".into()));
        assert_eq!(attempt(&mut s, A).await, Some(true));
        assert_eq!(attempt(&mut s, B).await, Some(true));
        let c = fake.0.lock().unwrap();
        assert_eq!((c.copies("a1"), c.copies("b2"), c.produced), (1, 1, 1));
    }
}
