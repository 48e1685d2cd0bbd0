//! Line charts: loss and accuracy per epoch, and later accuracy against training-set size
//! (log-scale x).

use super::canvas::Canvas;
use super::{fonts_ready, FONT};
use anyhow::anyhow;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::path::Path;

/// Chart size in pixels.
const SIZE: (u32, u32) = (800, 500);

/// One named line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points, drawn in the given order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// Titles and axes of a line chart.
#[derive(Clone, Debug, Default)]
pub struct CurveChart {
    /// Caption above the chart.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label beside the y axis (may be empty).
    pub y_label: String,
    /// Logarithmic x axis (points with x <= 0 are then skipped).
    pub log_x: bool,
    /// Fixed y range; `None` fits the data with a margin.
    pub y_range: Option<(f64, f64)>,
}

/// The metrics of one epoch, as `neurite train` records them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Training accuracy in `[0, 1]`.
    pub train_accuracy: f64,
    /// Test loss, when a test set was evaluated.
    pub test_loss: Option<f64>,
    /// Test accuracy in `[0, 1]`, when a test set was evaluated.
    pub test_accuracy: Option<f64>,
}

/// Draws a line chart with axes, ticks and a legend to the PNG `path` (linear axes).
pub fn plot_curves(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    let chart = CurveChart {
        title: title.to_string(),
        x_label: x_label.to_string(),
        ..CurveChart::default()
    };
    plot_curves_with(path, &chart, series)
}

/// Draws a line chart as `chart` describes (log-scale x, y label, fixed y range) to `path`.
pub fn plot_curves_with(path: &Path, chart: &CurveChart, series: &[Series]) -> anyhow::Result<()> {
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            points: s
                .points
                .iter()
                .copied()
                .filter(|&(x, y)| x.is_finite() && y.is_finite() && (!chart.log_x || x > 0.0))
                .collect(),
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x_lo, x_hi) =
        span(all().map(|p| p.0)).unwrap_or(if chart.log_x { (1.0, 10.0) } else { (0.0, 1.0) });
    let (y_lo, y_hi) = chart
        .y_range
        .or_else(|| span(all().map(|p| p.1)).map(|(lo, hi)| pad(lo, hi)))
        .unwrap_or((0.0, 1.0));
    let mut canvas = Canvas::new(SIZE.0, SIZE.1, [255, 255, 255]);
    let legend = legend_corner(&series, (y_lo, y_hi));
    // The x range is widened a little so the first and last markers are not cut in half.
    if chart.log_x {
        let (lo, hi) = if x_hi > x_lo {
            (x_lo, x_hi)
        } else {
            (x_lo / 2.0, x_hi * 2.0)
        };
        let f = (hi / lo).powf(0.02);
        let x = (lo / f..hi * f).log_scale();
        draw(&mut canvas, chart, &series, x, y_lo..y_hi, legend)?;
    } else {
        let (lo, hi) = if x_hi > x_lo {
            (x_lo, x_hi)
        } else {
            (x_lo - 0.5, x_hi + 0.5)
        };
        let m = 0.02 * (hi - lo);
        draw(
            &mut canvas,
            chart,
            &series,
            lo - m..hi + m,
            y_lo..y_hi,
            legend,
        )?;
    }
    canvas.save(path)
}

/// Writes `loss.png` (train and test loss per epoch) and `accuracy.png` (train and test
/// accuracy in percent) into `out_dir`.
pub fn training_curves(out_dir: &Path, epochs: &[EpochMetrics]) -> anyhow::Result<()> {
    let line = |name: &str, f: &dyn Fn(&EpochMetrics) -> Option<f64>| {
        Series::new(
            name,
            epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, f(e)?)))
                .collect(),
        )
    };
    let keep = |v: Vec<Series>| -> Vec<Series> {
        v.into_iter().filter(|s| !s.points.is_empty()).collect()
    };
    let loss = keep(vec![
        line("train", &|e| Some(e.train_loss)),
        line("test", &|e| e.test_loss),
    ]);
    let accuracy = keep(vec![
        line("train", &|e| Some(100.0 * e.train_accuracy)),
        line("test", &|e| e.test_accuracy.map(|a| 100.0 * a)),
    ]);
    let chart = |title: &str, y: &str| CurveChart {
        title: title.to_string(),
        x_label: "epoch".to_string(),
        y_label: y.to_string(),
        ..CurveChart::default()
    };
    plot_curves_with(&out_dir.join("loss.png"), &chart("Loss", "loss"), &loss)?;
    plot_curves_with(
        &out_dir.join("accuracy.png"),
        &chart("Accuracy", "accuracy (%)"),
        &accuracy,
    )
}

/// `(min, max)` of the values, `None` when empty.
fn span(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// `[lo, hi]` widened by 5% on each side (by 0.5 when flat).
fn pad(lo: f64, hi: f64) -> (f64, f64) {
    let m = if hi > lo { 0.05 * (hi - lo) } else { 0.5 };
    (lo - m, hi + m)
}

/// The upper-right corner for the legend, unless the right third of the data lies mostly in
/// the upper half of the y range (rising curves such as accuracy): then the lower right.
fn legend_corner(series: &[Series], (y_lo, y_hi): (f64, f64)) -> SeriesLabelPosition {
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(f64::NEG_INFINITY, f64::max);
    let x_min = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let cut = x_max - (x_max - x_min) / 3.0;
    let mid = 0.5 * (y_lo + y_hi);
    let (high, all) = series
        .iter()
        .flat_map(|s| s.points.iter().filter(|p| p.0 >= cut))
        .fold((0, 0), |(h, a), p| (h + usize::from(p.1 > mid), a + 1));
    if 2 * high > all {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// A tick label without needless digits: `2` rather than `2.0`, `0.35` rather than `0.350`.
pub fn tick_label(v: f64) -> String {
    if (v - v.round()).abs() <= 1e-9 * v.abs().max(1.0) {
        return format!("{}", v.round());
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Line colours, one per series in turn (colour-blind-safe Okabe-Ito palette).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// Draws the chart onto `canvas` over the coordinate ranges `x` and `y`.
fn draw<X>(
    canvas: &mut Canvas,
    chart: &CurveChart,
    series: &[Series],
    x: X,
    y: std::ops::Range<f64>,
    legend: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let fmt = |v: &f64| tick_label(*v);
    let text = fonts_ready();
    let (w, h) = (canvas.width, canvas.height);
    let root = BitMapBackend::with_buffer(&mut canvas.pixels, (w, h)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("plotting {:?}: {e}", chart.title);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if text {
        builder
            .caption(&chart.title, (FONT, 26))
            .x_label_area_size(45)
            .y_label_area_size(65);
    }
    let mut ctx = builder.build_cartesian_2d(x, y).map_err(|e| err(&e))?;
    let mut mesh = ctx.configure_mesh();
    if text {
        mesh.x_desc(&chart.x_label)
            .y_desc(&chart.y_label)
            .label_style((FONT, 16))
            .x_label_formatter(&fmt)
            .y_label_formatter(&fmt)
            .axis_desc_style((FONT, 18));
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let drawn = ctx
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        if text {
            drawn.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        }
        ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| err(&e))?;
    }
    if text && !series.is_empty() {
        ctx.configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 16))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::canvas::test_util::{read_png, temp_dir};

    /// Pixels of exactly colour `c`, as `(x, y)`.
    fn pixels_of(rgb: &[u8], w: u32, c: RGBColor) -> Vec<(u32, u32)> {
        rgb.chunks(3)
            .enumerate()
            .filter(|(_, p)| p == &[c.0, c.1, c.2])
            .map(|(i, _)| (i as u32 % w, i as u32 / w))
            .collect()
    }

    #[test]
    fn plot_curves_draws_each_series_in_its_colour() {
        let dir = temp_dir("curves");
        let path = dir.join("curves.png");
        let rising = Series::new("rising", (0..10).map(|i| (i as f64, i as f64)).collect());
        let falling = Series::new(
            "falling",
            (0..10).map(|i| (i as f64, 9.0 - i as f64)).collect(),
        );
        plot_curves(&path, "Two lines", "step", &[rising, falling]).unwrap();
        let (w, h, rgb) = read_png(&path);
        assert_eq!((w, h), SIZE);
        // The rising line's leftmost pixels lie below (larger y) its rightmost ones, and the
        // falling line the other way round.
        for (colour, rises) in [(PALETTE[0], true), (PALETTE[1], false)] {
            let px = pixels_of(&rgb, w, colour);
            assert!(px.len() > 200, "{colour:?}: {} pixels", px.len());
            let left = px.iter().min_by_key(|p| p.0).unwrap();
            let right = px
                .iter()
                .filter(|p| p.0 < w * 3 / 4)
                .max_by_key(|p| p.0)
                .unwrap();
            assert_eq!(left.1 > right.1, rises, "{colour:?}: {left:?} {right:?}");
        }
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn tick_labels_and_legend_corner() {
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(60000.0), "60000");
        assert_eq!(tick_label(0.35), "0.35");
        assert_eq!(tick_label(-1.5), "-1.5");
        let rising = Series::new("a", (0..9).map(|i| (i as f64, i as f64)).collect());
        let falling = Series::new("b", (0..9).map(|i| (i as f64, 8.0 - i as f64)).collect());
        assert_eq!(
            legend_corner(&[rising], (0.0, 8.0)),
            SeriesLabelPosition::LowerRight
        );
        assert_eq!(
            legend_corner(&[falling], (0.0, 8.0)),
            SeriesLabelPosition::UpperRight
        );
    }

    #[test]
    fn log_x_and_training_curves() {
        let dir = temp_dir("curves-log");
        let chart = CurveChart {
            title: "Accuracy vs training-set size".into(),
            x_label: "examples".into(),
            y_label: "accuracy (%)".into(),
            log_x: true,
            y_range: Some((0.0, 100.0)),
        };
        // x = 0 and NaN are skipped on a log axis rather than failing.
        let s = Series::new(
            "test",
            vec![
                (0.0, 5.0),
                (100.0, 60.0),
                (1000.0, 80.0),
                (f64::NAN, 1.0),
                (60000.0, 90.0),
            ],
        );
        plot_curves_with(&dir.join("size.png"), &chart, &[s]).unwrap();
        // On a log axis 100 -> 1000 spans as much as 1000 -> 10000: the circles at x = 100
        // and 1000 are closer than 1000 and 60000.
        let (w, _, rgb) = read_png(&dir.join("size.png"));
        assert!(pixels_of(&rgb, w, PALETTE[0]).len() > 100);
        let epochs: Vec<EpochMetrics> = (1..=5)
            .map(|e| EpochMetrics {
                epoch: e,
                train_loss: 1.0 / e as f64,
                train_accuracy: 0.5 + 0.08 * e as f64,
                test_loss: (e != 3).then_some(1.2 / e as f64),
                test_accuracy: Some(0.5 + 0.07 * e as f64),
            })
            .collect();
        training_curves(&dir, &epochs).unwrap();
        for name in ["loss.png", "accuracy.png"] {
            let (w, h, rgb) = read_png(&dir.join(name));
            assert_eq!((w, h), SIZE);
            assert!(
                pixels_of(&rgb, w, PALETTE[0]).len() > 100,
                "{name}: train line"
            );
            assert!(
                pixels_of(&rgb, w, PALETTE[1]).len() > 100,
                "{name}: test line"
            );
        }
        // Nothing to draw is still a picture (empty axes), not an error.
        training_curves(&dir, &[]).unwrap();
    }
}
