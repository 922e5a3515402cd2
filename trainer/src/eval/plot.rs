//! Readable pictures drawn with `plotters`: line charts with titles, named
//! axes, tick values and legends ([`lines`], [`panels`]), and the text
//! helpers the labelled sample grids and the confusion picture use
//! ([`super::pictures`]).
//!
//! Text is drawn with DejaVu Sans embedded in the binary (`trainer/assets/
//! fonts`, Bitstream Vera licence beside it), so the pictures come out the
//! same on a machine with no fonts installed. PNGs are written atomically.
//!
//! For other code (the kVAE experiment's per-round purity and FID, for
//! instance) one call draws a chart:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use trainer::eval::plot;
//! let purity = vec![(0.0, 0.61), (1.0, 0.74), (2.0, 0.80)];
//! let fid = vec![(0.0, 41.0), (1.0, 33.5), (2.0, 30.2)];
//! plot::lines(
//!     std::path::Path::new("out/purity.png"),
//!     "kVAE: purity per round",
//!     "round",
//!     "purity",
//!     &[("test purity", purity)],
//! )?;
//! // Quantities on different scales: one panel each, sharing the x axis.
//! plot::panels(
//!     std::path::Path::new("out/rounds.png"),
//!     "kVAE rounds",
//!     "round",
//!     &[
//!         plot::Panel::new("purity", vec![plot::Curve::new("test purity", vec![(0.0, 0.61)])]),
//!         plot::Panel::new("FID", vec![plot::Curve::new("FID", vec![(0.0, 41.0)])]),
//!     ],
//! )?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
pub(crate) use plotters::style::text_anchor::HPos;
use plotters::style::text_anchor::{Pos, VPos};

/// The embedded font (DejaVu Sans 2.37, from Debian's `fonts-dejavu-core`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name every picture asks for.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the embedded font with plotters (once per process).
pub(crate) fn font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType file, checked by the tests.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Distinct colours for up to 16 groups (Tableau 10, then darker variants).
pub const PALETTE: [[u8; 3]; 16] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [16, 60, 90],
    [128, 64, 7],
    [22, 80, 22],
    [107, 20, 20],
    [74, 52, 95],
    [12, 95, 104],
];

/// Distinct line colours: the first ten of [`PALETTE`], red second so
/// that a chart's first two lines contrast.
pub const COLOURS: [[u8; 3]; 10] = [
    PALETTE[0], PALETTE[3], PALETTE[2], PALETTE[1], PALETTE[4], PALETTE[5], PALETTE[6], PALETTE[7],
    PALETTE[8], PALETTE[9],
];

/// One named line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Its name in the legend.
    pub name: String,
    /// Points `(x, y)`; a non-finite `y` breaks the line (the runs on
    /// either side are drawn apart), a non-finite `x` is skipped.
    pub points: Vec<(f64, f64)>,
    /// Its colour; `None` takes the next of [`COLOURS`].
    pub colour: Option<[u8; 3]>,
    /// Drawn thin and pale (a noisy trace behind its means).
    pub faint: bool,
    /// Line width in pixels (2; 1 when faint).
    pub width: u32,
    /// Dots at the points, for curves with few of them.
    pub marks: bool,
}

impl Curve {
    /// A plain line in the next colour, with dots when it has few points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        let marks = points.len() <= 30;
        Curve {
            name: name.into(),
            points,
            colour: None,
            faint: false,
            width: 2,
            marks,
        }
    }

    /// The same curve drawn thin and pale, without dots.
    pub fn faint(mut self) -> Self {
        self.faint = true;
        self.width = 1;
        self.marks = false;
        self
    }
}

/// One chart of a picture: its y axis name and its curves.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Name of the y axis.
    pub y_label: String,
    /// The curves, drawn in order, all in the legend.
    pub curves: Vec<Curve>,
    /// Fixed y range; `None` fits the curves.
    pub y_range: Option<(f64, f64)>,
}

impl Panel {
    /// A panel whose y range fits its curves.
    pub fn new(y_label: impl Into<String>, curves: Vec<Curve>) -> Self {
        Panel {
            y_label: y_label.into(),
            curves,
            y_range: None,
        }
    }
}

/// Width of a chart picture.
pub const CHART_WIDTH: u32 = 900;
/// Height of one panel (the title adds [`TITLE_HEIGHT`]).
pub const PANEL_HEIGHT: u32 = 340;
/// Height of the title band.
pub const TITLE_HEIGHT: u32 = 44;

/// Writes a line chart: `title` above, `x_label` and `y_label` naming the
/// axes, tick values on both, and a legend naming each of `series`
/// (`(name, points)`, drawn in the colours of [`COLOURS`] in order). The
/// picture is [`CHART_WIDTH`] × ([`TITLE_HEIGHT`] + [`PANEL_HEIGHT`]).
pub fn lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    let curves = series
        .iter()
        .map(|(name, points)| Curve::new(*name, points.clone()))
        .collect();
    panels(path, title, x_label, &[Panel::new(y_label, curves)])
}

/// Writes `panels` stacked one above the other under `title`, sharing one x
/// range and `x_label`, each with its own y axis and legend: for quantities
/// on different scales. The picture is [`CHART_WIDTH`] × ([`TITLE_HEIGHT`] +
/// [`PANEL_HEIGHT`] × panels).
pub fn panels(path: &Path, title: &str, x_label: &str, panels: &[Panel]) -> anyhow::Result<()> {
    let (w, h) = (
        CHART_WIDTH,
        TITLE_HEIGHT + PANEL_HEIGHT * panels.len().max(1) as u32,
    );
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = area(&mut buf, (w, h))?;
        let body = title_band(&root, title)?;
        let x_range = fit(panels
            .iter()
            .flat_map(|p| &p.curves)
            .flat_map(|c| c.points.iter().map(|p| p.0)));
        for (panel, area) in panels
            .iter()
            .zip(body.split_evenly((panels.len().max(1), 1)))
        {
            draw_panel(&area, panel, x_range, x_label)?;
        }
        root.present()?;
    }
    super::pictures::write_rgb(path, w, h, buf)
}

/// A drawing area over an RGB buffer, white, with the font registered.
pub(crate) fn area(
    buf: &mut [u8],
    size: (u32, u32),
) -> anyhow::Result<DrawingArea<BitMapBackend<'_>, Shift>> {
    let root = area_keep(buf, size);
    root.fill(&WHITE)?;
    Ok(root)
}

/// A drawing area over an RGB buffer as it is (drawn pixels kept), with
/// the font registered.
pub(crate) fn area_keep(buf: &mut [u8], size: (u32, u32)) -> DrawingArea<BitMapBackend<'_>, Shift> {
    font();
    BitMapBackend::with_buffer(buf, size).into_drawing_area()
}

/// Writes `title` centred in a band of [`TITLE_HEIGHT`] at the top of
/// `root` and returns the rest.
pub(crate) fn title_band<'a>(
    root: &DrawingArea<BitMapBackend<'a>, Shift>,
    title: &str,
) -> anyhow::Result<DrawingArea<BitMapBackend<'a>, Shift>> {
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    let (w, h) = top.dim_in_pixel();
    // About 0.6 em a character: smaller type for a long title.
    let fits = (w.saturating_sub(24) as f64 / (0.6 * title.chars().count().max(1) as f64)) as u32;
    text(
        &top,
        title,
        fits.clamp(11, 20),
        (w as i32 / 2, h as i32 / 2),
        BLACK,
    )?;
    Ok(body)
}

/// Draws `s` centred on `at` in the embedded font.
pub(crate) fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    size: u32,
    at: (i32, i32),
    colour: RGBColor,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    text_at(area, s, size, at, colour, HPos::Center)
}

/// Draws `s` in the embedded font, vertically centred on `at`, placed
/// horizontally by `h` (`Left`: starting at `at`).
pub(crate) fn text_at<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    size: u32,
    at: (i32, i32),
    colour: RGBColor,
    h: HPos,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let style = (FAMILY, size)
        .into_font()
        .color(&colour)
        .pos(Pos::new(h, VPos::Center));
    area.draw_text(s, &style, at)
        .map_err(|e| anyhow::anyhow!("drawing text: {e}"))
}

/// The range of `v` (finite values) with 4% of room on each side; `0..1`
/// when there is none.
fn fit(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for x in v.filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if lo > hi {
        return (0.0, 1.0);
    }
    let room = if hi - lo < 1e-12 {
        lo.abs().max(1.0) * 0.05
    } else {
        (hi - lo) * 0.04
    };
    (lo - room, hi + room)
}

/// A tick value written short: the decimals a tenth of the axis' span
/// needs, and no trailing zeros (`1`, `0.8`, `0.25`).
fn tick(v: f64, span: f64) -> String {
    let decimals = (1.0 - (span / 10.0).log10().floor()).clamp(0.0, 6.0) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// The runs of `points` between non-finite `y` (a gap in the line), each
/// without the points whose `x` is not finite.
fn runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    points
        .split(|p| !p.1.is_finite())
        .map(|r| {
            r.iter()
                .copied()
                .filter(|p| p.0.is_finite())
                .collect::<Vec<_>>()
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// The corner of the plot where the legend covers the least of the lines:
/// the legend's box is estimated from its entries (19 pixels a line, 7.5 a
/// character, of a plot area about 780 × 270 pixels), each line is sampled
/// at 16 places a segment, and the corner whose box holds the fewest
/// samples wins, upper right on a tie. When every corner covers some line,
/// the y range grows at the top to make room above the lines, and the
/// legend goes there: returns the corner and the top of the y range.
fn legend_corner(
    panel: &Panel,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> (SeriesLabelPosition, f64) {
    let chars = panel
        .curves
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let bw = ((40.0 + 7.5 * chars as f64) / 780.0).min(1.0);
    let bh = ((8.0 + 19.0 * panel.curves.len() as f64) / 270.0).min(1.0);
    let mut counts = [0usize; 4];
    let mut count = |x: f64, y: f64| {
        let (fx, fy) = ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
        let (right, left, top, bottom) = (fx > 1.0 - bw, fx < bw, fy > 1.0 - bh, fy < bh);
        counts[0] += usize::from(right && top);
        counts[1] += usize::from(right && bottom);
        counts[2] += usize::from(left && top);
        counts[3] += usize::from(left && bottom);
    };
    for run in panel.curves.iter().flat_map(|c| runs(&c.points)) {
        if let [(x, y)] = run[..] {
            count(x, y);
        }
        for w in run.windows(2) {
            for i in 0..=16 {
                let t = f64::from(i) / 16.0;
                count(
                    w[0].0 + t * (w[1].0 - w[0].0),
                    w[0].1 + t * (w[1].1 - w[0].1),
                );
            }
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    if counts[best] > 0 && bh < 0.6 {
        let top = y0 + (y1 - y0) / (1.0 - bh - 0.03);
        return (SeriesLabelPosition::UpperRight, top);
    }
    let corner = match best {
        1 => SeriesLabelPosition::LowerRight,
        2 => SeriesLabelPosition::UpperLeft,
        3 => SeriesLabelPosition::LowerLeft,
        _ => SeriesLabelPosition::UpperRight,
    };
    (corner, y1)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    panel: &Panel,
    (x0, x1): (f64, f64),
    x_label: &str,
) -> anyhow::Result<()> {
    let (y0, y1) = panel.y_range.unwrap_or_else(|| {
        fit(panel
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1)))
    });
    let (corner, y1) = legend_corner(panel, (x0, x1), (y0, y1));
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let (xs, ys) = (x1 - x0, y1 - y0);
    let x_fmt = |v: &f64| tick(*v, xs);
    let y_fmt = |v: &f64| tick(*v, ys);
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(panel.y_label.as_str())
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    let mut next = 0;
    for curve in &panel.curves {
        let c = curve.colour.unwrap_or_else(|| {
            next += 1;
            COLOURS[(next - 1) % COLOURS.len()]
        });
        let colour = if curve.faint {
            RGBColor(
                255 - (255 - c[0]) / 3,
                255 - (255 - c[1]) / 3,
                255 - (255 - c[2]) / 3,
            )
        } else {
            RGBColor(c[0], c[1], c[2])
        };
        let style = colour.stroke_width(curve.width);
        let runs = runs(&curve.points);
        for run in &runs {
            chart.draw_series(LineSeries::new(run.iter().copied(), style))?;
            if curve.marks {
                chart.draw_series(run.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
            }
        }
        // The legend entry, on an empty series (a curve may have no run).
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?
            .label(curve.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(3)));
    }
    if !panel.curves.is_empty() {
        chart
            .configure_series_labels()
            .position(corner)
            .label_font((FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads a PNG back as RGB.
    pub(crate) fn read(path: &Path) -> image::RgbImage {
        image::open(path).unwrap().to_rgb8()
    }

    /// Whether rows `y0..y1` of `img` hold at least `n` dark pixels (text).
    pub(crate) fn dark_in_rows(img: &image::RgbImage, y0: u32, y1: u32, n: usize) -> bool {
        (y0..y1.min(img.height()))
            .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&v| v < 100))
            .count()
            >= n
    }

    /// Whether `img` has more than one colour.
    pub(crate) fn varied(img: &image::RgbImage) -> bool {
        let first = img.get_pixel(0, 0);
        img.pixels().any(|p| p != first)
    }

    #[test]
    fn the_font_parses() {
        assert!(plotters::style::register_font("check", FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn lines_writes_a_titled_chart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.png");
        let a: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, (i as f64).sqrt())).collect();
        let b: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 4.0 - 0.1 * i as f64)).collect();
        lines(&path, "A title", "round", "value", &[("a", a), ("b", b)]).unwrap();
        let img = read(&path);
        assert_eq!(img.dimensions(), (CHART_WIDTH, TITLE_HEIGHT + PANEL_HEIGHT));
        assert!(varied(&img));
        assert!(dark_in_rows(&img, 0, TITLE_HEIGHT, 30), "no title text");
    }

    #[test]
    fn panels_stack_and_survive_empty_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("panels.png");
        let p = vec![
            Panel::new("one", vec![Curve::new("x", vec![(1.0, 5.0), (2.0, 5.0)])]),
            Panel::new("two", vec![Curve::new("none", vec![]).faint()]),
        ];
        panels(&path, "Two panels", "epoch", &p).unwrap();
        let img = read(&path);
        assert_eq!(
            img.dimensions(),
            (CHART_WIDTH, TITLE_HEIGHT + 2 * PANEL_HEIGHT)
        );
        assert!(dark_in_rows(&img, 0, TITLE_HEIGHT, 30));
    }

    #[test]
    fn gaps_split_lines() {
        let r = runs(&[
            (0.0, 1.0),
            (1.0, f64::NAN),
            (2.0, 3.0),
            (3.0, 4.0),
            (f64::NAN, 1.0),
        ]);
        assert_eq!(r, vec![vec![(0.0, 1.0)], vec![(2.0, 3.0), (3.0, 4.0)]]);
    }

    #[test]
    fn the_legend_goes_where_the_lines_are_not() {
        // A line along the top: the legend goes below.
        let top = Panel::new("y", vec![Curve::new("a", vec![(0.0, 1.0), (1.0, 1.0)])]);
        let (pos, y1) = legend_corner(&top, (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(pos, SeriesLabelPosition::LowerRight), "{pos:?}");
        assert_eq!(y1, 1.0);
        // A line rising to the upper right: lower right is free.
        let rising = Panel::new("y", vec![Curve::new("a", vec![(0.0, 0.0), (1.0, 1.0)])]);
        let (pos, _) = legend_corner(&rising, (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(pos, SeriesLabelPosition::LowerRight), "{pos:?}");
        // Lines in every corner: room is made above them.
        let x = Curve::new("a", vec![(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]);
        let v = Curve::new("b", vec![(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)]);
        let (pos, y1) = legend_corner(&Panel::new("y", vec![x, v]), (0.0, 1.0), (0.0, 1.0));
        assert!(matches!(pos, SeriesLabelPosition::UpperRight), "{pos:?}");
        assert!(y1 > 1.1, "{y1}");
    }

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(123.456, 400.0), "123");
        assert_eq!(tick(0.123456, 0.5), "0.123");
        assert_eq!(tick(2.5, 5.0), "2.5");
        assert_eq!(tick(3.0, 8.4), "3");
        assert_eq!(tick(0.8, 1.02), "0.8");
    }
}
