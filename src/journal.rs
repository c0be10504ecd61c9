//! The input journal (write-ahead log) of the live service, kept in
//! `--state-dir`: every batch of lines the engine processes, every idle
//! watermark step, every rules reload and every dispatch event (acks,
//! silences, deliveries, timer ticks), in the order the engine saw them.
//!
//! Why journal input instead of only checkpointing state: an HTTP client
//! that got `200` must not lose its complaints to a `kill -9`, and the
//! engine's output depends on the exact interleaving of all sources, idle
//! steps and reloads. After a crash, the service restores the last
//! checkpoint and re-runs the journal from the position stored in it; the
//! engine is deterministic, so it produces exactly the alerts it produced
//! before, and the outbox recognises them by position (see
//! `sink::outbox`). Sources that can be re-read (a followed file, Fluvio)
//! also record their position in each entry, so they resume right after the
//! last journaled batch.
//!
//! Format: segment files `journal-<n>.wal`, each a sequence of frames
//! `[magic u32][payload length u32][xxh3-64 of payload u64][payload]`, all
//! little-endian. The payload is a JSON header line, `\n`, then raw line
//! bytes for batches. A torn frame at the end (a crash mid-write) is
//! detected by its length or checksum and cut off when the journal opens.
//! Segments wholly before the last checkpoint are deleted.
//!
//! A write that fails (a full disk) leaves no partial frame behind:
//! [`Journal::append`] and [`Journal::rollback`] cut the segment back to the
//! last whole frame, so that later appends are not hidden behind garbage
//! once space returns. Segments are created `0600` in a `0700` directory:
//! they hold complaint texts as they arrived (see the README, "State on
//! disk").

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::checkpoint::{create_private_dir, private_options};

use serde::{Deserialize, Serialize};

const MAGIC: u32 = 0x4853_4a31; // "HSJ1"
/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// A position in the journal: the frame that starts at `offset` in segment
/// `segment` is the next one to read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JournalPos {
    pub segment: u64,
    pub offset: u64,
}

/// What a journal entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryHeader {
    /// Lines for engine `stream` from `source`; `position` is the source's
    /// resume position after these lines (a followed file's offset, a
    /// Fluvio offset), if it has one.
    Batch {
        stream: String,
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<serde_json::Value>,
        /// The client's idempotency key, and when it was first seen (epoch
        /// ms): re-running the journal remembers the key as the live run
        /// did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<i64>,
    },
    /// The idle watermark of `stream` moved to `watermark`.
    Idle { stream: String, watermark: i64 },
    /// Rules were reloaded; `rules` is the TOML text, `source` its name.
    Reload { source: String, rules: String },
    /// A dispatch event (an ack, a silence, a delivery, a timer tick: see
    /// `service::dispatch::Event`), applied to the dispatch book.
    Dispatch { event: serde_json::Value },
}

/// One entry: header and, for batches, the raw lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub header: EntryHeader,
    pub data: Vec<u8>,
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("journal-{n:08}.wal"))
}

fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_prefix("journal-")
            .and_then(|r| r.strip_suffix(".wal"))
        {
            if let Ok(n) = n.parse() {
                v.push(n);
            }
        }
    }
    v.sort_unstable();
    Ok(v)
}

/// Reads frames from one segment; stops at the first torn or corrupt frame
/// and reports where the good data ends.
fn read_frames(
    path: &Path,
    from: u64,
    mut f: impl FnMut(u64, Entry) -> io::Result<()>,
) -> io::Result<u64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    r.seek(SeekFrom::Start(from))?;
    let mut pos = from;
    let mut head = [0u8; 16];
    loop {
        if pos + 16 > len {
            return Ok(pos);
        }
        r.read_exact(&mut head)?;
        let magic = u32::from_le_bytes(head[0..4].try_into().unwrap_or_default());
        let n = u32::from_le_bytes(head[4..8].try_into().unwrap_or_default()) as u64;
        let sum = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        if magic != MAGIC || pos + 16 + n > len {
            return Ok(pos);
        }
        let mut payload = vec![0u8; n as usize];
        r.read_exact(&mut payload)?;
        if xxhash_rust::xxh3::xxh3_64(&payload) != sum {
            return Ok(pos);
        }
        let nl = memchr::memchr(b'\n', &payload).unwrap_or(payload.len());
        let Ok(header) = serde_json::from_slice::<EntryHeader>(&payload[..nl]) else {
            return Ok(pos);
        };
        let data = payload
            .get(nl + 1..)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        pos += 16 + n;
        f(pos, Entry { header, data })?;
    }
}

/// An open journal, appending to its last segment.
pub struct Journal {
    dir: PathBuf,
    file: File,
    pos: JournalPos,
    dirty: bool,
}

impl Journal {
    /// Opens (creating) the journal in `dir`, cutting off a torn tail.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        create_private_dir(dir)?;
        let segs = segments(dir)?;
        let last = segs.last().copied().unwrap_or(1);
        let path = segment_path(dir, last);
        let end = if path.exists() {
            read_frames(&path, 0, |_, _| Ok(()))?
        } else {
            0
        };
        let file = private_options()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(end)?;
        let mut file = file;
        file.seek(SeekFrom::Start(end))?;
        Ok(Journal {
            dir: dir.to_owned(),
            file,
            pos: JournalPos {
                segment: last,
                offset: end,
            },
            dirty: false,
        })
    }

    /// Where the next entry will be written.
    pub fn position(&self) -> JournalPos {
        self.pos
    }

    /// Appends an entry (not yet durable: see [`Journal::sync`]); returns
    /// the position after it. On an error nothing of the entry stays in the
    /// journal, and the journal can be appended to again.
    pub fn append(&mut self, header: &EntryHeader, data: &[u8]) -> io::Result<JournalPos> {
        if self.pos.offset >= SEGMENT_BYTES {
            self.sync()?;
            let next = self.pos.segment + 1;
            // The old segment stays the current one until the new one exists.
            self.file = private_options()
                .create(true)
                .read(true)
                .write(true)
                .truncate(true)
                .open(segment_path(&self.dir, next))?;
            self.pos = JournalPos {
                segment: next,
                offset: 0,
            };
        }
        let mut payload = serde_json::to_vec(header).map_err(io::Error::other)?;
        payload.push(b'\n');
        payload.extend_from_slice(data);
        let mut frame = Vec::with_capacity(16 + payload.len());
        frame.extend_from_slice(&MAGIC.to_le_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        if let Err(e) = self.file.write_all(&frame) {
            // Part of the frame may be on disk: cut it off (best effort; a
            // torn frame that survives is cut when the journal opens).
            let _ = self.cut(self.pos.offset);
            return Err(e);
        }
        self.pos.offset += frame.len() as u64;
        self.dirty = true;
        Ok(self.pos)
    }

    /// Takes back every entry appended after `pos` (in the current segment):
    /// after a failed [`Journal::sync`], the entries of the group are not
    /// durable and will not be processed, so they must not be re-run after
    /// a restart either.
    pub fn rollback(&mut self, pos: JournalPos) -> io::Result<()> {
        if pos.segment == self.pos.segment && pos.offset < self.pos.offset {
            self.cut(pos.offset)?;
            self.pos.offset = pos.offset;
        }
        Ok(())
    }

    fn cut(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        Ok(())
    }

    /// Makes everything appended so far durable (one fsync for a group).
    pub fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Calls `f(position after entry, entry)` for every entry from `from`.
    pub fn read_from(
        &self,
        from: JournalPos,
        mut f: impl FnMut(JournalPos, Entry) -> io::Result<()>,
    ) -> io::Result<()> {
        for seg in segments(&self.dir)? {
            if seg < from.segment {
                continue;
            }
            let start = if seg == from.segment { from.offset } else { 0 };
            read_frames(&segment_path(&self.dir, seg), start, |off, e| {
                f(
                    JournalPos {
                        segment: seg,
                        offset: off,
                    },
                    e,
                )
            })?;
        }
        Ok(())
    }

    /// Deletes segments that end before `pos` (covered by a checkpoint).
    pub fn truncate_before(&mut self, pos: JournalPos) -> io::Result<()> {
        for seg in segments(&self.dir)? {
            if seg < pos.segment && seg != self.pos.segment {
                fs::remove_file(segment_path(&self.dir, seg))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn batch(n: usize) -> EntryHeader {
        EntryHeader::Batch {
            stream: "main".into(),
            source: "http".into(),
            position: Some(serde_json::json!(n)),
            key: None,
            at: None,
        }
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let p0 = j.position();
        j.append(&batch(1), b"line one\nline two\n").unwrap();
        let mid = j
            .append(
                &EntryHeader::Idle {
                    stream: "main".into(),
                    watermark: 42,
                },
                b"",
            )
            .unwrap();
        j.append(
            &EntryHeader::Reload {
                source: "r.toml".into(),
                rules: "[window]".into(),
            },
            b"",
        )
        .unwrap();
        j.sync().unwrap();
        let mut got = Vec::new();
        j.read_from(p0, |_, e| {
            got.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, b"line one\nline two\n");
        assert_eq!(
            got[1].header,
            EntryHeader::Idle {
                stream: "main".into(),
                watermark: 42
            }
        );
        let mut after_mid = 0;
        j.read_from(mid, |_, _| {
            after_mid += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(after_mid, 1);
        drop(j);
        // A crash in the middle of a frame: the torn frame disappears.
        let path = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&MAGIC.to_le_bytes()).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        let mut j = Journal::open(dir.path()).unwrap();
        let mut n = 0;
        j.read_from(p0, |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 3);
        j.append(&batch(2), b"x\n").unwrap();
        let mut n = 0;
        j.read_from(p0, |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 4, "appends continue after the cut");
    }

    #[test]
    fn a_rolled_back_group_is_gone_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let p0 = j.position();
        j.append(&batch(1), b"kept\n").unwrap();
        j.sync().unwrap();
        let group = j.position();
        j.append(&batch(2), b"not durable\n").unwrap();
        j.append(&batch(3), b"not durable either\n").unwrap();
        j.rollback(group).unwrap();
        assert_eq!(j.position(), group);
        j.append(&batch(4), b"after\n").unwrap();
        j.sync().unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        let mut got = Vec::new();
        j.read_from(p0, |_, e| {
            got.push(e.data);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![b"kept\n".to_vec(), b"after\n".to_vec()]);
    }

    #[cfg(unix)]
    #[test]
    fn segments_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let jdir = dir.path().join("journal");
        let mut j = Journal::open(&jdir).unwrap();
        j.append(&batch(1), b"138 0013 8000\n").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&segment_path(&jdir, 1)), 0o600);
        assert_eq!(mode(&jdir), 0o700);
    }

    #[test]
    fn a_corrupt_frame_ends_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&batch(1), b"a\n").unwrap();
        j.append(&batch(2), b"b\n").unwrap();
        j.sync().unwrap();
        drop(j);
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let mut n = 0;
        j.read_from(
            JournalPos {
                segment: 1,
                offset: 0,
            },
            |_, _| {
                n += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 1);
    }
}
