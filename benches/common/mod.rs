//! What the macro-benchmarks share: making their input with `hotspot gen`
//! once and reusing it while neither the binary nor the arguments change.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_hotspot");

/// `dir/name.jsonl`, made by `hotspot gen ARGS --out dir/name.jsonl` unless
/// the file is there already from this binary (by its modification time)
/// and the same arguments (kept in `dir/name.stamp`).
pub fn generated(dir: &Path, name: &str, args: &[String]) -> PathBuf {
    let path = dir.join(format!("{name}.jsonl"));
    let stamp = dir.join(format!("{name}.stamp"));
    let bin_mtime = std::fs::metadata(BIN)
        .and_then(|m| m.modified())
        .map(|t| format!("{t:?}"))
        .unwrap_or_default();
    let want = format!("{BIN} {bin_mtime} {}", args.join(" "));
    if path.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return path;
    }
    let t = std::time::Instant::now();
    let st = Command::new(BIN)
        .arg("gen")
        .args(args)
        .arg("--out")
        .arg(&path)
        .status()
        .expect("run hotspot gen");
    assert!(st.success(), "hotspot gen failed: {st}");
    eprintln!(
        "generated {} in {:.1} s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    std::fs::write(&stamp, want).unwrap();
    path
}
