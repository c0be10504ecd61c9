//! Headless Chromium for the tests that look at a page as a browser draws
//! it (the report, the status page), and reading the PNG screenshots it
//! takes. `HOTSPOT_CHROMIUM` names another binary than `chromium` on PATH.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("HOTSPOT_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Headless, no sandbox (containers), and nothing that reaches out: no
/// background networking, component updates, sync or QUIC.
pub const ISOLATION: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// `target/test-artefacts`, created.
pub fn artefacts() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let d = tmp
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(tmp)
        .join("test-artefacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs headless Chromium on `url` with the usual isolation flags plus
/// `extra`, and `env` set; returns stdout. Killed after 90 s.
pub fn run_chromium(bin: &Path, extra: &[String], env: &[(&str, &Path)], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(ISOLATION)
        .args(["--hide-scrollbars", "--force-device-scale-factor=1"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish in 90 s: {}",
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium failed ({status}): {}",
        std::fs::read_to_string(err.path()).unwrap_or_default()
    );
    std::fs::read_to_string(out.path()).unwrap()
}

/// An RGB image read from a PNG file.
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// Row-major RGB triples.
    pub rgb: Vec<[u8; 3]>,
}

impl Image {
    pub fn read(path: &Path) -> Image {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let bytes = &buf[..info.buffer_size()];
        let channels = info.color_type.samples();
        let rgb = bytes
            .chunks_exact(channels)
            .map(|p| match channels {
                1 | 2 => [p[0], p[0], p[0]],
                _ => [p[0], p[1], p[2]],
            })
            .collect();
        Image {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    /// Pixels of exactly this colour.
    pub fn count(&self, c: [u8; 3]) -> usize {
        self.rgb.iter().filter(|p| **p == c).count()
    }

    /// Pixels that differ from `c` by more than `tol` in some channel.
    pub fn count_not(&self, c: [u8; 3], tol: u8) -> usize {
        self.rgb
            .iter()
            .filter(|p| (0..3).any(|i| p[i].abs_diff(c[i]) > tol))
            .count()
    }

    /// Dark pixels (every channel below 110) in the rectangle.
    pub fn dark_in(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        let mut n = 0;
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                let p = self.rgb[(y * self.width + x) as usize];
                if p.iter().all(|&v| v < 110) {
                    n += 1;
                }
            }
        }
        n
    }
}
