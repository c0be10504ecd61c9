//! `--format png`: the report's charts on one image for chat and e-mail,
//! drawn by `plotters`' bitmap backend. A bitmap needs the glyphs
//! themselves, so a CJK font is read from the machine (pure Rust through
//! `ab_glyph`, no system library): `--font FILE`, else the first of
//! [`FONT_PATHS`] that exists (Debian's `fonts-noto-cjk` first). In a font
//! collection (`.ttc`) the Simplified Chinese face is used.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Context;
use super::charts::{self, CHARTS, FONT, WIDTH};
use super::figures::{Figures, median_p90};

/// Where CJK fonts live on common systems.
pub(crate) const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
];

/// The font file to use: `explicit`, else the first known path present.
pub(crate) fn find_font(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    FONT_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--format png needs a font with Chinese characters and none was found \
                 (install fonts-noto-cjk, or name a .ttf/.otf/.ttc file with --font); \
                 --format html needs no font"
            )
        })
}

/// The face of `data` to draw with: in a collection the first face whose
/// family names Simplified Chinese (` SC`), else the first face with CJK
/// glyphs. `None` when no face can draw 投诉.
fn pick_face(data: &[u8]) -> Option<u32> {
    let n = owned_ttf_parser::fonts_in_collection(data).unwrap_or(1);
    let mut first_cjk = None;
    for i in 0..n {
        let Ok(face) = owned_ttf_parser::Face::parse(data, i) else {
            continue;
        };
        if face.glyph_index('投').is_none() || face.glyph_index('诉').is_none() {
            continue;
        }
        first_cjk.get_or_insert(i);
        let sc = face.names().into_iter().any(|name| {
            name.name_id == owned_ttf_parser::name_id::FAMILY
                && name
                    .to_string()
                    .is_some_and(|s| s.ends_with(" SC") || s.contains("SC "))
        });
        if sc {
            return Some(i);
        }
    }
    first_cjk
}

/// Registers the font at `path` as [`FONT`] for the bitmap backend.
fn register(path: &Path) -> anyhow::Result<()> {
    let mut data =
        std::fs::read(path).with_context(|| format!("cannot read font {}", path.display()))?;
    let face = pick_face(&data).ok_or_else(|| {
        anyhow::anyhow!(
            "font {} has no Chinese characters (or is no font); name another with --font",
            path.display()
        )
    })?;
    if face > 0 {
        // `plotters` opens face 0 of a collection: point the header's first
        // entry at the chosen face (its tables are addressed from the start
        // of the file, so nothing else moves).
        let at = 12 + 4 * face as usize;
        let offset: [u8; 4] = data[at..at + 4].try_into().expect("four bytes");
        data[12..16].copy_from_slice(&offset);
    }
    // The font lives as long as the process (one report per run).
    let data: &'static [u8] = Box::leak(data.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, data)
        .map_err(|_| anyhow::anyhow!("cannot use font {}", path.display()))?;
    Ok(())
}

/// Height of the header above the charts.
const HEADER: u32 = 96;
const GAP: u32 = 16;

/// Draws every chart (with its title) under a header and writes the PNG.
pub(crate) fn write(
    out: &Path,
    cx: &Context,
    f: &Figures,
    font: Option<&Path>,
) -> anyhow::Result<()> {
    let font = find_font(font)?;
    register(&font)?;
    let heights: Vec<u32> = CHARTS
        .iter()
        .map(|(id, _)| charts::height(id, f) + 36)
        .collect();
    let total = HEADER + heights.iter().map(|h| h + GAP).sum::<u32>();
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", out.display());
    {
        let root = BitMapBackend::new(out, (WIDTH, total)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let style = |size: f64| {
            (FONT, size)
                .into_font()
                .color(&RGBColor(0x33, 0x33, 0x33))
                .pos(Pos::new(HPos::Left, VPos::Top))
        };
        root.draw(&Text::new("批量投诉分析报告", (16, 14), style(28.0)))
            .map_err(|e| fail(&e))?;
        let resolved = f
            .rows
            .iter()
            .filter(|r| r.inc.resolved_end.is_some())
            .count();
        let mut line = format!(
            "{}（北京时间） · 告警 {} 条，已恢复 {}",
            f.period_text(),
            f.rows.len(),
            resolved
        );
        if let Some((m, p)) = median_p90(&f.ttd) {
            line.push_str(&format!(" · 发现时长中位数 {m:.1} 分钟，P90 {p:.1} 分钟"));
        }
        if let Some(name) = &cx.input_name {
            line.push_str(&format!(" · 投诉文件 {name}"));
        }
        root.draw(&Text::new(line, (16, 58), style(16.0)))
            .map_err(|e| fail(&e))?;
        let mut y = HEADER as i32;
        for ((id, title), h) in CHARTS.iter().zip(&heights) {
            let area = root.clone().shrink((0, y), (WIDTH, *h));
            charts::draw(id, &area, f, Some(title)).map_err(|e| fail(&e))?;
            y += (*h + GAP) as i32;
        }
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(())
}
