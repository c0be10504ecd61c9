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
}

impl JsonlWriter {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self::new(Box::new(io::stdout()))
    }

    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self::new(Box::new(File::create(path)?)))
    }

    /// Appends to `path`, creating it if needed.
    pub fn append(path: &Path) -> io::Result<Self> {
        Ok(Self::new(Box::new(
            OpenOptions::new().create(true).append(true).open(path)?,
        )))
    }

    pub fn new(w: Box<dyn Write + Send>) -> Self {
        JsonlWriter {
            out: BufWriter::with_capacity(1 << 16, w),
            line: Vec::with_capacity(1024),
            written: 0,
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
