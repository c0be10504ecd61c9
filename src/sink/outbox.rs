//! The outbox: every alert line the engine produces, in order, waiting
//! until each sink has delivered it. It decouples the engine from its
//! receivers — a sink that is slow or down only grows its own backlog — and,
//! with `--state-dir`, it is on disk, so a restart or `kill -9` loses no
//! alert and delivers none twice.
//!
//! * Every line gets a sequence number (from 1, never reused). The file
//!   `outbox.log` holds `seq<TAB>json` lines (appended, fsynced in groups
//!   with the journal), after an optional `#first N` header once compacted.
//!   A line with a [`Notice`] (a dispatch step, a silenced or folded alert
//!   line: see `sink::notice`) has it as a third column,
//!   `seq<TAB>json<TAB>notice`.
//! * Each sink has a cursor — the next sequence number it must deliver —
//!   saved atomically in `cursor-<sink>.json` after every delivery. A sink
//!   delivers in order, so the cursor is all it needs. The alerts-file sink
//!   also saves the file's length, and on restart cuts the file back to it,
//!   so a line half-written or written-but-not-recorded is written once.
//! * After a crash the engine re-runs the journal from its last checkpoint
//!   and produces the same lines in the same order; the checkpoint stores
//!   the outbox's next sequence number, so the k-th re-produced line *is*
//!   line `checkpoint + k`, and lines already in the outbox are skipped by
//!   position ([`Outbox::push_replayed`]).
//! * Lines every cursor has passed are dropped from memory, and from disk by
//!   rewriting the log once enough have accumulated.
//! * A line reaches the sinks only once it is on disk ([`Outbox::sync`]):
//!   a sink must never deliver a line that a restart could number
//!   differently. When the log cannot be written (a full disk), pushed
//!   lines wait in memory, `sync` reports the error, and the next `sync`
//!   that succeeds writes them all; the pipeline stops intake meanwhile.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::notice::Notice;
use crate::alert::Alert;
use crate::checkpoint::{create_private_dir, private_options, read, write_atomic};

/// One alert line waiting for delivery.
#[derive(Debug, Clone)]
pub struct Item {
    pub seq: u64,
    pub alert: Arc<Alert>,
    /// The line as written to every sink (no trailing newline).
    pub json: Arc<str>,
    /// When the record that caused it was received (this process only).
    pub received: Option<Instant>,
    /// What it asks of the notifying sinks, if anything (CONTRACT 9).
    pub notice: Option<Arc<Notice>>,
}

/// A sink's saved position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The next sequence number to deliver.
    pub next: u64,
    /// Sink-specific: the alerts file's length after `next - 1`.
    #[serde(default)]
    pub bytes: u64,
}

struct SinkState {
    name: String,
    cursor: Cursor,
    /// Whether the cursor was read from disk (not new).
    saved: bool,
}

struct Inner {
    items: VecDeque<Item>,
    /// Sequence number of `items[0]`.
    first: u64,
    /// The next sequence number to assign.
    next: u64,
    sinks: Vec<SinkState>,
    log: Option<File>,
    /// Bytes of the log that hold whole lines.
    log_len: u64,
    /// Lines before this number are written to the log (maybe not synced).
    written: u64,
    /// Lines before this number are durable, and visible to the sinks.
    durable: u64,
    dirty: bool,
    /// Lines dropped from memory since the log was last rewritten.
    dropped_since_rewrite: u64,
}

/// The outbox shared by the engine (which pushes) and the sinks (which
/// read and acknowledge).
pub struct Outbox {
    inner: Mutex<Inner>,
    dir: Option<PathBuf>,
    tx: watch::Sender<u64>,
}

/// Rewrite the log after this many lines were dropped from its front.
const REWRITE_AFTER: u64 = 1000;

fn cursor_file(dir: &Path, sink: &str) -> PathBuf {
    let safe: String = sink
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = xxhash_rust::xxh3::xxh3_64(sink.as_bytes());
    dir.join(format!(
        "cursor-{}-{hash:08x}.json",
        &safe[..safe.len().min(40)]
    ))
}

impl Outbox {
    /// An outbox for the named sinks; on disk in `dir` if given, loading
    /// what a previous run left.
    pub fn open(dir: Option<&Path>, sinks: &[String]) -> io::Result<Outbox> {
        let mut items = VecDeque::new();
        let mut first = 1;
        let mut log = None;
        let mut log_len = 0;
        if let Some(dir) = dir {
            create_private_dir(dir)?;
            let path = dir.join("outbox.log");
            let mut good_len = 0u64;
            if let Ok(f) = File::open(&path) {
                let mut r = BufReader::new(f);
                let mut line = String::new();
                let mut expected: Option<u64> = None;
                loop {
                    line.clear();
                    let n = r.read_line(&mut line)?;
                    if n == 0 || !line.ends_with('\n') {
                        break; // end, or a torn last line
                    }
                    let body = &line[..line.len() - 1];
                    if let Some(f) = body.strip_prefix("#first ") {
                        first = f.trim().parse().unwrap_or(1);
                        expected = Some(first);
                        good_len += n as u64;
                        continue;
                    }
                    let Some((seq, json)) = body.split_once('\t') else {
                        break;
                    };
                    // A JSON line holds no raw tab: a second one starts
                    // the notice.
                    let (json, notice) = match json.split_once('\t') {
                        Some((j, n)) => match serde_json::from_str::<Notice>(n) {
                            Ok(n) => (j, Some(Arc::new(n))),
                            Err(_) => break,
                        },
                        None => (json, None),
                    };
                    let Ok(seq) = seq.parse::<u64>() else { break };
                    let Ok(alert) = serde_json::from_str::<Alert>(json) else {
                        break;
                    };
                    if expected.is_some_and(|e| e != seq) {
                        break;
                    }
                    if items.is_empty() {
                        first = seq;
                    }
                    expected = Some(seq + 1);
                    items.push_back(Item {
                        seq,
                        alert: Arc::new(alert),
                        json: json.into(),
                        received: None,
                        notice,
                    });
                    good_len += n as u64;
                }
            }
            let f = private_options().create(true).append(true).open(&path)?;
            f.set_len(good_len)?;
            log = Some(f);
            log_len = good_len;
        }
        let next = first + items.len() as u64;
        let mut states = Vec::new();
        for name in sinks {
            let saved = match dir {
                Some(d) => read::<Cursor>(&cursor_file(d, name))?,
                None => None,
            };
            // A sink new to this state directory starts with new lines.
            let was_saved = saved.is_some();
            let cursor = saved.unwrap_or(Cursor { next, bytes: 0 });
            if let (Some(d), false) = (dir, was_saved) {
                // Record the new sink's start at once: a sink that has not
                // delivered anything yet when the process dies must resume
                // at its start, not skip to the newest line.
                write_atomic(&cursor_file(d, name), &cursor)?;
            }
            states.push(SinkState {
                name: name.clone(),
                cursor,
                saved: was_saved,
            });
        }
        let (tx, _) = watch::channel(next);
        let outbox = Outbox {
            inner: Mutex::new(Inner {
                items,
                first,
                next,
                sinks: states,
                log,
                log_len,
                written: next,
                durable: next,
                dirty: false,
                dropped_since_rewrite: 0,
            }),
            dir: dir.map(Path::to_owned),
            tx,
        };
        outbox.compact(&mut outbox.lock())?;
        Ok(outbox)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence number the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next
    }

    /// Appends a line; returns its number (tests: the service always says
    /// whether the line has a notice, [`Outbox::push_with`]).
    #[cfg(test)]
    pub fn push(&self, alert: Alert, received: Option<Instant>) -> u64 {
        self.push_with(alert, None, received)
    }

    /// Appends a line with its notice for the notifying sinks, if any;
    /// returns its number. It is kept in memory and reaches the sinks once
    /// [`Outbox::sync`] has put it on disk (at once without a state
    /// directory).
    pub fn push_with(
        &self,
        alert: Alert,
        notice: Option<Notice>,
        received: Option<Instant>,
    ) -> u64 {
        let json: Arc<str> = alert.to_json().into();
        let mut g = self.lock();
        let seq = g.next;
        g.items.push_back(Item {
            seq,
            alert: Arc::new(alert),
            json,
            received,
            notice: notice.map(Arc::new),
        });
        g.next += 1;
        if g.log.is_none() {
            g.written = g.next;
            g.durable = g.next;
            let durable = g.durable;
            drop(g);
            self.tx.send_replace(durable);
        }
        seq
    }

    /// Pushes a line re-produced while re-running the journal after a
    /// restart, as line number `expected`: skipped (returns false) when the
    /// outbox already has that line.
    pub fn push_replayed(
        &self,
        expected: u64,
        alert: Alert,
        notice: Option<Notice>,
        received: Option<Instant>,
    ) -> io::Result<bool> {
        let next = self.next_seq();
        if expected < next {
            return Ok(false);
        }
        if expected > next {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "outbox is at line {next} but the journal re-produced line {expected}: state directory is inconsistent"
                ),
            ));
        }
        self.push_with(alert, notice, received);
        Ok(true)
    }

    /// Writes the lines pushed since the last call to the log and makes them
    /// durable; then the sinks see them. On an error the log is cut back to
    /// its last whole line and the lines stay in memory for the next call.
    pub fn sync(&self) -> io::Result<()> {
        let mut g = self.lock();
        let g = &mut *g;
        let Some(log) = &mut g.log else {
            return Ok(());
        };
        if g.written < g.next {
            let mut buf = Vec::new();
            let start = (g.written - g.first) as usize;
            for it in g.items.range(start..) {
                write_line(&mut buf, it);
            }
            if let Err(e) = log.write_all(&buf) {
                let _ = log.set_len(g.log_len);
                return Err(e);
            }
            g.log_len += buf.len() as u64;
            g.written = g.next;
            g.dirty = true;
        }
        if g.dirty {
            log.sync_data()?;
            g.dirty = false;
        }
        if g.durable < g.written {
            g.durable = g.written;
            self.tx.send_replace(g.durable);
        }
        Ok(())
    }

    /// Lines pushed but not yet on disk.
    pub fn pending(&self) -> u64 {
        let g = self.lock();
        g.next - g.durable
    }

    /// Notified whenever lines become deliverable (the value is the first
    /// number not yet deliverable).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Whether a sink's cursor was read from disk at start.
    pub fn cursor_saved(&self, sink: usize) -> bool {
        self.lock().sinks[sink].saved
    }

    /// Sets a sink's cursor without saving it (a sink adjusting its start,
    /// e.g. the alerts file recording its current length).
    pub fn set_cursor(&self, sink: usize, cursor: Cursor) {
        self.lock().sinks[sink].cursor = cursor;
    }

    /// A sink's saved cursor.
    pub fn cursor(&self, sink: usize) -> Cursor {
        self.lock().sinks[sink].cursor
    }

    /// The oldest line still held (everything before it was delivered by
    /// every sink).
    pub fn first_seq(&self) -> u64 {
        self.lock().first
    }

    /// Line `seq`, if it is held and deliverable (on disk).
    pub fn get(&self, seq: u64) -> Option<Item> {
        let g = self.lock();
        if seq < g.first || seq >= g.durable {
            return None;
        }
        g.items.get((seq - g.first) as usize).cloned()
    }

    /// Lines waiting for `sink`.
    pub fn depth(&self, sink: usize) -> u64 {
        let g = self.lock();
        g.next.saturating_sub(g.sinks[sink].cursor.next)
    }

    /// Records that `sink` delivered everything before `cursor.next`, on disk
    /// first when durable.
    pub fn ack(&self, sink: usize, cursor: Cursor) -> io::Result<()> {
        let mut g = self.lock();
        if let Some(dir) = &self.dir {
            write_atomic(&cursor_file(dir, &g.sinks[sink].name), &cursor)?;
        }
        g.sinks[sink].cursor = cursor;
        self.compact(&mut g)
    }

    /// Drops lines every sink has delivered; rewrites the log now and then.
    fn compact(&self, g: &mut Inner) -> io::Result<()> {
        let min = g
            .sinks
            .iter()
            .map(|s| s.cursor.next)
            .min()
            .unwrap_or(g.next)
            .min(g.next);
        let min = min.min(g.durable);
        while g.first < min && !g.items.is_empty() {
            g.items.pop_front();
            g.first += 1;
            g.dropped_since_rewrite += 1;
        }
        if g.items.is_empty() {
            g.first = g.next;
        }
        if let (Some(dir), true) = (&self.dir, g.dropped_since_rewrite >= REWRITE_AFTER) {
            let path = dir.join("outbox.log");
            let tmp = dir.join(".outbox.log.tmp");
            let mut buf = format!("#first {}\n", g.first).into_bytes();
            for it in g.items.iter().take_while(|it| it.seq < g.written) {
                write_line(&mut buf, it);
            }
            let rewritten = (|| {
                let mut f = private_options()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)?;
                f.write_all(&buf)?;
                f.sync_all()?;
                fs::rename(&tmp, &path)?;
                File::open(dir)?.sync_all()
            })();
            if let Err(e) = rewritten {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            g.log = Some(OpenOptions::new().append(true).open(&path)?);
            g.log_len = buf.len() as u64;
            g.dirty = false;
            g.dropped_since_rewrite = 0;
        }
        Ok(())
    }
}

/// One line of `outbox.log`: `seq<TAB>json[<TAB>notice]<LF>`.
fn write_line(buf: &mut Vec<u8>, it: &Item) {
    buf.extend_from_slice(it.seq.to_string().as_bytes());
    buf.push(b'\t');
    buf.extend_from_slice(it.json.as_bytes());
    if let Some(n) = &it.notice {
        buf.push(b'\t');
        let _ = serde_json::to_writer(&mut *buf, &**n);
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(n: u32) -> Alert {
        serde_json::from_str(&format!(
            r#"{{"alert_id":"crbt:杭州:{n}:WO{n}","state":"firing","business":"crbt","region":"杭州","department":"vas","count":{n},"threshold":1,"window_start":"2026-03-15T09:00:00+08:00","window_end":"2026-03-15T09:30:00+08:00","triggered_by":"WO{n}","event_ts":"2026-03-15T09:01:00+08:00"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn survives_restart_and_skips_replayed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let sinks = vec!["file".to_string(), "webhook:vas".to_string()];
        {
            let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
            for n in 1..=5 {
                assert_eq!(o.push(alert(n), None), n as u64);
            }
            o.sync().unwrap();
            o.ack(
                0,
                Cursor {
                    next: 4,
                    bytes: 300,
                },
            )
            .unwrap();
            o.ack(1, Cursor { next: 2, bytes: 0 }).unwrap();
        }
        let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
        assert_eq!(o.next_seq(), 6);
        assert_eq!(
            o.cursor(0),
            Cursor {
                next: 4,
                bytes: 300
            }
        );
        assert_eq!(o.depth(1), 4);
        assert!(o.get(1).is_none(), "delivered by every sink: dropped");
        assert_eq!(o.get(2).unwrap().alert.count, 2);
        assert!(
            !o.push_replayed(5, alert(5), None, None).unwrap(),
            "already there"
        );
        assert!(o.push_replayed(6, alert(6), None, None).unwrap());
        assert!(o.push_replayed(8, alert(8), None, None).is_err());
    }

    #[test]
    fn compaction_keeps_numbering() {
        let dir = tempfile::tempdir().unwrap();
        let sinks = vec!["a".to_string()];
        {
            let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
            for n in 0..1500 {
                o.push(alert(n), None);
            }
            o.sync().unwrap();
            o.ack(
                0,
                Cursor {
                    next: 1400,
                    bytes: 0,
                },
            )
            .unwrap();
            o.push(alert(9999), None);
            o.sync().unwrap();
        }
        let log = fs::read_to_string(dir.path().join("outbox.log")).unwrap();
        assert!(log.starts_with("#first 1400\n"), "{}", &log[..40]);
        let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
        assert_eq!(o.next_seq(), 1502);
        assert_eq!(o.get(1501).unwrap().alert.count, 9999);
        assert_eq!(o.depth(0), 102);
    }

    #[test]
    fn a_torn_last_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let sinks = vec!["a".to_string()];
        {
            let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
            o.push(alert(1), None);
            o.sync().unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("outbox.log"))
            .unwrap();
        f.write_all(b"2\t{\"alert_id\":").unwrap();
        drop(f);
        let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
        assert_eq!(o.next_seq(), 2);
        o.push(alert(2), None);
        o.sync().unwrap();
        drop(o);
        let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
        assert_eq!(o.next_seq(), 3);
    }

    /// Swaps the log file (a test's failing writer: `/dev/full`).
    fn set_log(o: &Outbox, f: File) {
        o.lock().log = Some(f);
    }

    #[test]
    fn lines_wait_in_memory_while_the_disk_is_full_and_reach_the_sinks_once_written() {
        let dir = tempfile::tempdir().unwrap();
        let sinks = vec!["a".to_string()];
        let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
        o.push(alert(1), None);
        o.sync().unwrap();
        let rx = o.subscribe();
        assert_eq!(*rx.borrow(), 2);
        let real = OpenOptions::new()
            .append(true)
            .open(dir.path().join("outbox.log"))
            .unwrap();
        set_log(
            &o,
            OpenOptions::new().write(true).open("/dev/full").unwrap(),
        );
        o.push(alert(2), None);
        o.push(alert(3), None);
        let e = o.sync().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
        assert_eq!(o.pending(), 2);
        assert!(o.get(2).is_none(), "not on disk: not deliverable");
        assert_eq!(*rx.borrow(), 2, "sinks are not told of lines not on disk");
        assert!(o.sync().is_err(), "still full");
        o.push(alert(4), None);
        // Space returns.
        set_log(&o, real);
        o.sync().unwrap();
        assert_eq!(o.pending(), 0);
        assert_eq!(*rx.borrow(), 5);
        assert_eq!(o.get(3).unwrap().alert.count, 3);
        drop(o);
        let log = fs::read_to_string(dir.path().join("outbox.log")).unwrap();
        let seqs: Vec<&str> = log.lines().map(|l| l.split('\t').next().unwrap()).collect();
        assert_eq!(seqs, ["1", "2", "3", "4"], "each line once, in order");
        let o = Outbox::open(Some(dir.path()), &sinks).unwrap();
        assert_eq!(o.next_seq(), 5);
    }

    #[cfg(unix)]
    #[test]
    fn state_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("outbox");
        let o = Outbox::open(Some(&sub), &["a".to_string()]).unwrap();
        o.push(alert(1), None);
        o.sync().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&sub.join("outbox.log")), 0o600);
        for e in fs::read_dir(&sub).unwrap() {
            assert_eq!(mode(&e.unwrap().path()), 0o600);
        }
    }
}
