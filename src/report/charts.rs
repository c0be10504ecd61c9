//! The report's charts, drawn with `plotters` on any of its backends: the
//! HTML page draws each on an SVG backend (inline `<svg>`, text left to the
//! browser's fonts), `--format png` all of them on one bitmap (text drawn
//! with a registered CJK font, see `png`).
//!
//! Every chart has colours no other chart uses (the screenshot test looks
//! for them), Chinese labels, and its title drawn only when asked (the
//! HTML page gives each chart an `<h2>` instead).

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figures::{Figures, TtdMethod, kind_label, median_p90};

/// The font family of every text; the PNG registers its CJK font under
/// this name, the browser resolves it for the page's `lang="zh-CN"`.
pub(crate) const FONT: &str = "sans-serif";

/// The charts: id (the HTML `<svg id="chart-…">`) and title.
pub(crate) const CHARTS: [(&str, &str); 5] = [
    ("daily", "各部门每日告警"),
    ("heatmap", "业务 × 地市 告警热力图"),
    ("ttd", "发现时长分布"),
    ("hours", "告警时段分布（按小时）"),
    ("templates", "高频投诉模板 Top 15"),
];

/// Width of every chart in pixels.
pub(crate) const WIDTH: u32 = 1100;

/// Department colours (Tableau 10 without its grey).
pub(crate) const DEPARTMENT_COLOURS: [RGBColor; 9] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0x9C, 0x75, 0x5F),
];
/// Heat map: no alert, one alert, the most alerts.
pub(crate) const HEAT_NONE: RGBColor = RGBColor(0xF4, 0xF4, 0xF4);
pub(crate) const HEAT_LOW: RGBColor = RGBColor(0xFE, 0xE0, 0xD2);
pub(crate) const HEAT_HIGH: RGBColor = RGBColor(0xA5, 0x0F, 0x15);
pub(crate) const TTD_COLOUR: RGBColor = RGBColor(0x2F, 0x4B, 0x7C);
/// Hours of the day, per kind: threshold, surge, new topic.
pub(crate) const KIND_COLOURS: [RGBColor; 3] = [
    RGBColor(0x66, 0x51, 0x91),
    RGBColor(0xD4, 0x50, 0x87),
    RGBColor(0xFF, 0xA6, 0x00),
];
pub(crate) const TEMPLATE_COLOUR: RGBColor = RGBColor(0x00, 0x87, 0x6C);
const TEXT: RGBColor = RGBColor(0x33, 0x33, 0x33);
const GRID: RGBColor = RGBColor(0xE6, 0xE6, 0xE6);

type Res<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&TEXT)
}

/// A text's width in pixels, roughly: CJK and other wide characters one
/// em, the rest 0.6 em. Used to place legends and size label areas, so
/// that the page does not depend on the fonts of the machine that made it.
pub(crate) fn text_width(s: &str, size: f64) -> u32 {
    let em: f64 = s
        .chars()
        .map(|c| if (c as u32) >= 0x2E80 { 1.0 } else { 0.6 })
        .sum();
    (em * size).ceil() as u32
}

/// The height of each chart for these figures.
pub(crate) fn height(id: &str, f: &Figures) -> u32 {
    match id {
        "heatmap" => 90 + 24 * f.heat_rows.len().max(1) as u32,
        "templates" => 50 + 26 * f.templates.len().max(1) as u32,
        _ => 330,
    }
}

/// Draws chart `id` on `area`; with `title`, the title first.
pub(crate) fn draw<DB: DrawingBackend>(
    id: &str,
    area: &DrawingArea<DB, Shift>,
    f: &Figures,
    title: Option<&str>,
) -> Res<DB> {
    let area = match title {
        Some(t) => {
            area.draw(&Text::new(
                t.to_owned(),
                (12, 8),
                font(20.0).pos(Pos::new(HPos::Left, VPos::Top)),
            ))?;
            area.split_vertically(36).1
        }
        None => area.clone(),
    };
    match id {
        "daily" => daily(&area, f),
        "heatmap" => heatmap(&area, f),
        "ttd" => ttd(&area, f),
        "hours" => hours(&area, f),
        "templates" => templates(&area, f),
        _ => Ok(()),
    }
}

/// A row of coloured squares with labels at the top right of `area`;
/// returns the height used.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, RGBColor)],
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let size = 13.0;
    let widths: Vec<i32> = items
        .iter()
        .map(|(l, _)| 14 + 6 + text_width(l, size) as i32 + 16)
        .collect();
    let total: i32 = widths.iter().sum();
    let (w, _) = area.dim_in_pixel();
    let mut x = (w as i32 - total - 10).max(60);
    let y = 4;
    for ((label, colour), width) in items.iter().zip(widths) {
        area.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], colour.filled()))?;
        area.draw(&Text::new(
            label.clone(),
            (x + 20, y + 7),
            font(size).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x += width;
    }
    Ok(24)
}

/// An axis of `n` categories, each a segment of the axis. A lone category
/// sits between two empty ones (plotters cannot map a one-value range).
#[derive(Clone, Copy)]
struct Categories {
    n: usize,
    pad: i32,
}

impl Categories {
    fn new(n: usize) -> Self {
        let n = n.max(1);
        Categories {
            n,
            pad: i32::from(n == 1),
        }
    }

    /// The coordinate: a discrete range includes its end, so 0..k−1 has k
    /// segments.
    fn coord(self) -> SegmentedCoord<RangedCoordi32> {
        (0..self.n as i32 + 2 * self.pad - 1).into_segmented()
    }

    /// Where category `i` starts, and where it ends.
    fn start(self, i: usize) -> SegmentValue<i32> {
        SegmentValue::Exact(i as i32 + self.pad)
    }

    fn end(self, i: usize) -> SegmentValue<i32> {
        SegmentValue::Exact(i as i32 + self.pad + 1)
    }

    /// How many labels to ask plotters for: every category, up to `max`.
    fn labels(self, max: usize) -> usize {
        self.n.min(max) + 2 * self.pad as usize
    }

    fn centre(self, i: usize) -> SegmentValue<i32> {
        SegmentValue::CenterOf(i as i32 + self.pad)
    }

    /// The category an axis label stands for.
    fn index(self, v: &SegmentValue<i32>) -> Option<usize> {
        match v {
            SegmentValue::CenterOf(x) => {
                let i = usize::try_from(x - self.pad).ok()?;
                (i < self.n).then_some(i)
            }
            _ => None,
        }
    }
}

/// A round upper bound for an axis of counts.
fn axis_max(max: u64) -> u64 {
    let max = max.max(1);
    let head = max + (max / 10).max(1);
    let step = 10u64.pow((head as f64).log10().floor().max(0.0) as u32);
    let step = if step >= 10 { step / 2 } else { step };
    head.div_ceil(step) * step
}

fn daily<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &Figures) -> Res<DB> {
    let items: Vec<(String, RGBColor)> = f
        .departments
        .iter()
        .enumerate()
        .map(|(i, d)| (d.clone(), DEPARTMENT_COLOURS[i % DEPARTMENT_COLOURS.len()]))
        .collect();
    let top = legend(area, &items)?;
    let days = (f.last_day - f.first_day + 1) as usize;
    let totals: Vec<u64> = (0..days)
        .map(|d| f.daily.iter().map(|v| u64::from(v[d])).sum())
        .collect();
    let ymax = axis_max(totals.iter().copied().max().unwrap_or(0));
    let (first, dated) = (f.first_day, f.dated);
    let x = Categories::new(days);
    let label = move |v: &SegmentValue<i32>| match x.index(v) {
        Some(d) if dated => super::figures::date(first + d as i64)[5..].to_owned(),
        _ => String::new(),
    };
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_top(top + 10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x.coord(), 0u64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .x_labels(x.labels(16))
        .y_labels(6)
        .x_label_formatter(&label)
        .y_label_formatter(&|v| format!("{v}"))
        .y_desc("告警数")
        .label_style(font(13.0))
        .axis_desc_style(font(13.0))
        .draw()?;
    // Bars at most 48 pixels wide, with a gap between days.
    let seg = chart.plotting_area().dim_in_pixel().0 / (days as u32 + 2 * x.pad as u32);
    let margin = if seg < 6 {
        0
    } else {
        (seg.saturating_sub(48) / 2).max(3)
    };
    for d in 0..days {
        let mut base = 0u64;
        for (i, v) in f.daily.iter().enumerate() {
            let n = u64::from(v[d]);
            if n == 0 {
                continue;
            }
            let mut r = Rectangle::new(
                [(x.start(d), base), (x.end(d), base + n)],
                items[i].1.filled(),
            );
            r.set_margin(0, 0, margin, margin);
            chart.plotting_area().draw(&r)?;
            base += n;
        }
        if base > 0 && days <= 31 {
            chart.plotting_area().draw(&Text::new(
                base.to_string(),
                (x.centre(d), base),
                font(12.0).pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))?;
        }
    }
    Ok(())
}

/// Where `n` of `max` alerts lies on the heat map's scale, 0 to 1.
fn heat_level(n: u32, max: u32) -> f64 {
    f64::from(n) / f64::from(max.max(1))
}

/// The heat map's colour for `n` of `max` alerts: none is grey, then from
/// light to dark red.
pub(crate) fn heat_colour(n: u32, max: u32) -> RGBColor {
    if n == 0 {
        return HEAT_NONE;
    }
    let t = heat_level(n, max);
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(
        mix(HEAT_LOW.0, HEAT_HIGH.0),
        mix(HEAT_LOW.1, HEAT_HIGH.1),
        mix(HEAT_LOW.2, HEAT_HIGH.2),
    )
}

fn heatmap<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &Figures) -> Res<DB> {
    let rows = f.heat_rows.len().max(1);
    let cols = f.heat_cols.len().max(1);
    let max = f.heat.iter().flatten().copied().max().unwrap_or(0);
    let label_w = f
        .heat_rows
        .iter()
        .map(|l| text_width(l, 13.0))
        .max()
        .unwrap_or(40)
        .clamp(40, 220)
        + 12;
    let col_w = (WIDTH - label_w - 30) / cols as u32;
    let col_font = if f.heat_cols.iter().all(|c| text_width(c, 13.0) + 4 <= col_w) {
        13.0
    } else {
        10.0
    };
    let row_names = f.heat_rows.clone();
    let col_names = f.heat_cols.clone();
    let (x, y) = (Categories::new(cols), Categories::new(rows));
    // Busiest row at the top: row i is category rows − 1 − i.
    let row_label = move |v: &SegmentValue<i32>| match y.index(v) {
        Some(r) => row_names.get(rows - 1 - r).cloned().unwrap_or_default(),
        None => String::new(),
    };
    let col_label = move |v: &SegmentValue<i32>| match x.index(v) {
        Some(c) => col_names.get(c).cloned().unwrap_or_default(),
        None => String::new(),
    };
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(label_w)
        .build_cartesian_2d(x.coord(), y.coord())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(x.labels(cols))
        .y_labels(y.labels(rows))
        .x_label_formatter(&col_label)
        .y_label_formatter(&row_label)
        .x_label_style(font(col_font))
        .y_label_style(font(13.0))
        .draw()?;
    for (i, row) in f.heat.iter().enumerate() {
        let r = rows - 1 - i;
        for (c, &n) in row.iter().enumerate() {
            let mut cell = Rectangle::new(
                [(x.start(c), y.start(r)), (x.end(c), y.end(r))],
                heat_colour(n, max).filled(),
            );
            cell.set_margin(1, 1, 1, 1);
            chart.plotting_area().draw(&cell)?;
            if n > 0 {
                let colour = if heat_level(n, max) > 0.45 {
                    WHITE
                } else {
                    TEXT
                };
                chart.plotting_area().draw(&Text::new(
                    n.to_string(),
                    (x.centre(c), y.centre(r)),
                    font(12.0)
                        .color(&colour)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))?;
            }
        }
    }
    Ok(())
}

/// Bin width (minutes) for a histogram of values up to `max`: a round
/// width giving at most 30 bins.
pub(crate) fn bin_width(max: f64) -> f64 {
    for w in [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 1440.0,
    ] {
        if max / w < 30.0 {
            return w;
        }
    }
    (max / 30.0).ceil()
}

fn ttd<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &Figures) -> Res<DB> {
    let max = f.ttd.iter().copied().fold(0.0, f64::max);
    let w = bin_width(max);
    let bins = ((max / w).floor() as usize + 1).max(1);
    let mut counts = vec![0u64; bins];
    for &v in &f.ttd {
        counts[((v / w).floor() as usize).min(bins - 1)] += 1;
    }
    let ymax = axis_max(counts.iter().copied().max().unwrap_or(0));
    let xmax = bins as f64 * w;
    let what = match f.ttd_method {
        TtdMethod::Onset => "分钟（异常开始 → 告警）",
        TtdMethod::WindowStart => "分钟（告警窗口起点 → 告警）",
    };
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_top(24)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..xmax, 0u64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .x_labels(bins.min(16) + 1)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v}"))
        .x_desc(what)
        .y_desc("告警数")
        .label_style(font(13.0))
        .axis_desc_style(font(13.0))
        .draw()?;
    for (i, &n) in counts.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let x0 = i as f64 * w;
        let mut r = Rectangle::new([(x0, 0), (x0 + w, n)], TTD_COLOUR.filled());
        r.set_margin(0, 0, 2, 2);
        chart.plotting_area().draw(&r)?;
    }
    if let Some((median, p90)) = median_p90(&f.ttd) {
        for (v, label, y) in [(median, "中位数", ymax), (p90, "P90", ymax - ymax / 10)] {
            chart.plotting_area().draw(&PathElement::new(
                vec![(v, 0), (v, ymax)],
                ShapeStyle::from(&TEXT).stroke_width(1),
            ))?;
            // Right of the line, or left of it near the right edge.
            let (text, h) = if v > 0.7 * xmax {
                (format!("{label} {v:.1} 分钟 "), HPos::Right)
            } else {
                (format!(" {label} {v:.1} 分钟"), HPos::Left)
            };
            chart.plotting_area().draw(&Text::new(
                text,
                (v, y),
                font(12.0).pos(Pos::new(h, VPos::Top)),
            ))?;
        }
    }
    Ok(())
}

fn hours<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &Figures) -> Res<DB> {
    let colour = |k: crate::alert::Kind| match k {
        crate::alert::Kind::Threshold => KIND_COLOURS[0],
        crate::alert::Kind::Surge => KIND_COLOURS[1],
        crate::alert::Kind::NewTopic => KIND_COLOURS[2],
    };
    let items: Vec<(String, RGBColor)> = f
        .kinds
        .iter()
        .map(|&k| (kind_label(k).to_owned(), colour(k)))
        .collect();
    let top = legend(area, &items)?;
    let x = Categories::new(24);
    let totals: Vec<u64> = (0..24)
        .map(|h| f.hours.iter().map(|v| u64::from(v[h])).sum())
        .collect();
    let ymax = axis_max(totals.iter().copied().max().unwrap_or(0));
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_top(top + 10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x.coord(), 0u64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .x_labels(x.labels(24))
        .y_labels(6)
        .x_label_formatter(&|v| x.index(v).map(|h| h.to_string()).unwrap_or_default())
        .y_label_formatter(&|v| format!("{v}"))
        .x_desc("时（北京时间，按告警时间）")
        .y_desc("告警数")
        .label_style(font(13.0))
        .axis_desc_style(font(13.0))
        .draw()?;
    for h in 0..24 {
        let mut base = 0u64;
        for (i, v) in f.hours.iter().enumerate() {
            let n = u64::from(v[h]);
            if n == 0 {
                continue;
            }
            let mut r = Rectangle::new(
                [(x.start(h), base), (x.end(h), base + n)],
                items[i].1.filled(),
            );
            r.set_margin(0, 0, 3, 3);
            chart.plotting_area().draw(&r)?;
            base += n;
        }
    }
    Ok(())
}

fn templates<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, f: &Figures) -> Res<DB> {
    let n = f.templates.len().max(1);
    let max = f.templates.iter().map(|t| t.2).max().unwrap_or(0);
    let xmax = axis_max(max);
    let label_w = f
        .templates
        .iter()
        .map(|t| text_width(&t.0, 13.0))
        .max()
        .unwrap_or(60)
        .clamp(60, 320)
        + 12;
    let names: Vec<String> = f.templates.iter().map(|t| t.0.clone()).collect();
    let y = Categories::new(n);
    // The most frequent at the top: template i is category n − 1 − i.
    let label = move |v: &SegmentValue<i32>| match y.index(v) {
        Some(r) => names.get(n - 1 - r).cloned().unwrap_or_default(),
        None => String::new(),
    };
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .margin_right(40)
        .x_label_area_size(36)
        .y_label_area_size(label_w)
        .build_cartesian_2d(0u64..xmax, y.coord())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .x_labels(6)
        .y_labels(y.labels(n))
        .x_label_formatter(&|v| format!("{v}"))
        .y_label_formatter(&label)
        .x_desc(if f.templates_from_input {
            "告警期间匹配的投诉数"
        } else {
            "告警窗口内的投诉数"
        })
        .label_style(font(13.0))
        .axis_desc_style(font(13.0))
        .draw()?;
    for (i, t) in f.templates.iter().enumerate() {
        let r = n - 1 - i;
        let mut bar = Rectangle::new([(0, y.start(r)), (t.2, y.end(r))], TEMPLATE_COLOUR.filled());
        bar.set_margin(3, 3, 0, 0);
        chart.plotting_area().draw(&bar)?;
        chart.plotting_area().draw(&Text::new(
            format!(" {}", t.2),
            (t.2, y.centre(r)),
            font(12.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}
