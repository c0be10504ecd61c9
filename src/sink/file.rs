//! The alerts-file sink: every alert line appended to a JSON Lines file
//! (CONTRACT 7, `--alerts`).
//!
//! With `--state-dir` each line is fsynced before the sink's cursor (which
//! records the file's length) is saved, and at start the file is cut back to
//! that length: a line written but not yet recorded when the process died is
//! removed and written again, so every line appears exactly once.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::outbox::{Cursor, Item};

pub struct FileTarget {
    path: PathBuf,
    file: File,
    durable: bool,
}

impl FileTarget {
    /// Opens `path` for appending. With `durable`, a file longer than the
    /// saved `cursor` is cut back to it (see the module docs); `saved` says
    /// whether the cursor came from disk.
    pub fn open(path: &Path, durable: bool, cursor: &mut Cursor, saved: bool) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        if durable && saved && len > cursor.bytes {
            tracing::info!(path = %path.display(), from = len, to = cursor.bytes, "cutting the alerts file back to its last recorded line");
            file.set_len(cursor.bytes)?;
        } else {
            cursor.bytes = len;
        }
        Ok(FileTarget {
            path: path.to_owned(),
            file,
            durable,
        })
    }

    pub fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }

    pub fn send(&mut self, item: &Item, cursor: &mut Cursor) -> Result<(), String> {
        let mut line = Vec::with_capacity(item.json.len() + 1);
        line.extend_from_slice(item.json.as_bytes());
        line.push(b'\n');
        let len = self.file.metadata().map_err(|e| e.to_string())?.len();
        if let Err(e) = self.file.write_all(&line) {
            // Leave no half line behind.
            let _ = self.file.set_len(len);
            return Err(format!("{}: {e}", self.path.display()));
        }
        if self.durable {
            self.file
                .sync_data()
                .map_err(|e| format!("{}: {e}", self.path.display()))?;
        }
        cursor.bytes = len + line.len() as u64;
        Ok(())
    }
}
