//! Following a growing file (`hotspot run --follow FILE`), like `tail -F`:
//! new complete lines are sent as they are written; a rotated file (the path
//! now names another inode) is read to its end before the new one is
//! opened from its start; a truncated file is read again from its start; a
//! missing file is waited for. Each batch carries the position after it
//! (inode and byte offset), which the journal and checkpoints keep, so a
//! restarted service resumes exactly after the last line it processed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::SourceContext;
use crate::service::pipeline::{Batch, MAIN};

/// Where a followed file is read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowPos {
    pub inode: u64,
    pub offset: u64,
}

/// The source name of a followed path.
pub fn source_name(path: &std::path::Path) -> String {
    format!("follow:{}", path.display())
}

pub struct Follow {
    pub path: PathBuf,
    pub start: Option<FollowPos>,
    pub poll: Duration,
}

const MAX_BATCH: usize = 1 << 20;

impl Follow {
    /// Follows until shutdown.
    pub fn run(self, ctx: SourceContext) {
        let name = source_name(&self.path);
        let up = ctx.metrics.source_up.with_label_values(&[&name]);
        let mut pos = self.start;
        let mut buf: Vec<u8> = Vec::with_capacity(MAX_BATCH);
        let mut chunk = vec![0u8; 256 << 10];
        'reopen: loop {
            if ctx.shutdown.requested() {
                break;
            }
            let mut file = match File::open(&self.path) {
                Ok(f) => f,
                Err(_) => {
                    up.set(0);
                    std::thread::sleep(self.poll);
                    continue;
                }
            };
            up.set(1);
            let inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
            let mut offset = match pos {
                Some(p) if p.inode == inode => p.offset,
                Some(p) => {
                    tracing::warn!(path = %self.path.display(), old_inode = p.inode, new_inode = inode, "the followed file was replaced while we were not reading; starting the new one from its beginning");
                    0
                }
                None => 0,
            };
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                tracing::warn!(path = %self.path.display(), "the followed file was truncated; reading it from the start");
                offset = 0;
            }
            if file.seek(SeekFrom::Start(offset)).is_err() {
                std::thread::sleep(self.poll);
                continue;
            }
            buf.clear();
            loop {
                if ctx.shutdown.requested() {
                    break 'reopen;
                }
                let n = match file.read(&mut chunk) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "read failed; reopening");
                        continue 'reopen;
                    }
                };
                if n > 0 {
                    buf.extend_from_slice(&chunk[..n]);
                    // Send every complete line; keep the unfinished tail.
                    if let Some(last_nl) = memchr::memrchr(b'\n', &buf) {
                        let data: Vec<u8> = buf.drain(..=last_nl).collect();
                        offset += data.len() as u64;
                        let p = FollowPos { inode, offset };
                        pos = Some(p);
                        let b = Batch {
                            stream: MAIN.into(),
                            source: name.clone(),
                            position: serde_json::to_value(p).ok(),
                            data: Bytes::from(data),
                            received: Instant::now(),
                            key: None,
                            reply: None,
                        };
                        if ctx.submit.send(b).is_err() {
                            break 'reopen;
                        }
                    }
                    continue;
                }
                // At the end: wait, then look for truncation or rotation.
                std::thread::sleep(self.poll);
                let cur_len = file.metadata().map(|m| m.len()).unwrap_or(0);
                if cur_len < offset + buf.len() as u64 {
                    tracing::warn!(path = %self.path.display(), "the followed file was truncated; reading it from the start");
                    pos = Some(FollowPos { inode, offset: 0 });
                    continue 'reopen;
                }
                let path_inode = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
                if path_inode != Some(inode) {
                    // Rotated: the old file is read to its end (the loop
                    // above just did), its unfinished last line included.
                    if !buf.is_empty() {
                        let mut data = std::mem::take(&mut buf);
                        data.push(b'\n');
                        let b = Batch {
                            stream: MAIN.into(),
                            source: name.clone(),
                            position: None,
                            data: Bytes::from(data),
                            received: Instant::now(),
                            key: None,
                            reply: None,
                        };
                        let _ = ctx.submit.send(b);
                    }
                    tracing::info!(path = %self.path.display(), "the followed file was rotated; opening the new one");
                    pos = None;
                    continue 'reopen;
                }
            }
        }
        up.set(0);
    }
}
