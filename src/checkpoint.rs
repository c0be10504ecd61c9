//! Checkpoints: the engine state, the input positions and the outbox
//! position, written together and atomically so that a restart — or a
//! `kill -9` at any moment — resumes exactly where a consistent state was
//! saved.
//!
//! Atomic means: write a temporary file in the same directory, fsync it,
//! rename it over the old checkpoint, fsync the directory. A reader sees
//! either the old checkpoint or the new one, never a mix, and a crash
//! between two checkpoints loses nothing because the input since the last
//! one is re-read (the journal, a file offset, a Fluvio offset) and the
//! engine is deterministic.
//!
//! State files hold personal data (sample texts, even masked, and in the
//! journal whole complaints): every file here is created `0600` and every
//! directory `0700`, whatever the umask. A write that fails (a full disk)
//! removes its temporary file, so the old checkpoint stays and the space
//! is given back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Writes `value` as JSON to `path` atomically.
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_bytes_atomic(path, &bytes)
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename,
/// fsync of the directory).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut f = private_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Options that create a file readable by its owner alone.
pub fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o
}

/// Creates `dir` (and its parents) for state; a directory it creates is
/// `0700`.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Reads a checkpoint; `Ok(None)` when there is none yet.
pub fn read<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("checkpoint.json");
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), None);
        write_atomic(&p, &vec![1u32, 2, 3]).unwrap();
        write_atomic(&p, &vec![4u32]).unwrap();
        assert_eq!(read::<Vec<u32>>(&p).unwrap(), Some(vec![4]));
        assert!(!dir.path().join(".checkpoint.json.tmp").exists());
        fs::write(&p, b"{torn").unwrap();
        assert!(read::<Vec<u32>>(&p).is_err());
    }
}
