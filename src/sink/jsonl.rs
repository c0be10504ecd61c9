//! Alert lines to a file (appended) or standard output, buffered. The
//! replay writes through this; the live service's alerts-file sink uses it
//! behind its delivery queue.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::alert::Alert;

/// A buffered JSON Lines writer for alerts.
pub struct JsonlWriter {
    out: BufWriter<Box<dyn Write + Send>>,
    line: Vec<u8>,
    written: u64,
    /// The file behind `out`, when it is one (for fsync and its length).
    file: Option<File>,
}

impl JsonlWriter {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()))
    }

    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::from_file(File::create(path)?)
    }

    /// Appends to `path` after cutting it back to `len` bytes (resuming a
    /// checkpointed replay: lines after the checkpoint are written again).
    pub fn resume(path: &Path, len: u64) -> io::Result<Self> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        if f.metadata()?.len() > len {
            f.set_len(len)?;
        }
        Self::from_file(f)
    }

    fn from_file(f: File) -> io::Result<Self> {
        let keep = f.try_clone()?;
        let mut w = Self::new(Box::new(f));
        w.file = Some(keep);
        Ok(w)
    }

    /// Flushes, fsyncs (files only) and returns the file's length.
    pub fn sync(&mut self) -> io::Result<u64> {
        self.out.flush()?;
        match &self.file {
            Some(f) => {
                f.sync_data()?;
                Ok(f.metadata()?.len())
            }
            None => Ok(0),
        }
    }

    /// Appends to `path`, creating it if needed.
    pub fn append(path: &Path) -> io::Result<Self> {
        Self::from_file(OpenOptions::new().create(true).append(true).open(path)?)
    }

    pub fn new(w: Box<dyn Write + Send>) -> Self {
        JsonlWriter {
            out: BufWriter::with_capacity(1 << 16, w),
            line: Vec::with_capacity(1024),
            written: 0,
            file: None,
        }
    }

    pub fn write(&mut self, alert: &Alert) -> io::Result<()> {
        self.line.clear();
        alert.write_line(&mut self.line);
        self.out.write_all(&self.line)?;
        self.written += 1;
        Ok(())
    }

    /// Writes a ready JSON line (a newline is added).
    pub fn write_raw(&mut self, json: &str) -> io::Result<()> {
        self.out.write_all(json.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
