//! The PNG plots of a study's report, drawn with `plotters` into a pixel buffer and saved
//! with `image`: the metric of each run with its interval, the Pareto plot of metric
//! against latency, the before-training score against the final metric, and the
//! data-mismatch figure per layer.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use super::StudyError;

/// Width and height of every plot, in pixels.
const SIZE: (u32, u32) = (900, 560);

/// One labelled point.
#[derive(Clone, Debug)]
pub struct Point {
    /// Its label.
    pub label: String,
    /// x.
    pub x: f64,
    /// y.
    pub y: f64,
}

/// One run's metric and interval.
#[derive(Clone, Debug)]
pub struct Bar {
    /// The run.
    pub label: String,
    /// The metric.
    pub estimate: f64,
    /// Its interval (`None`: no interval).
    pub interval: Option<(f64, f64)>,
}

fn font() -> &'static str {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .is_ok()
    });
    "sans-serif"
}

fn plot_error(path: &Path) -> impl Fn(String) -> StudyError + '_ {
    move |reason| StudyError::File {
        path: path.to_owned(),
        reason: format!("could not draw the plot: {reason}"),
    }
}

/// Draws with `draw` on a white canvas and writes it to `path` as PNG.
fn render(
    path: &Path,
    draw: impl FnOnce(&Area<'_>) -> Result<(), String>,
) -> Result<(), StudyError> {
    let (w, h) = SIZE;
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
        draw(&root).map_err(plot_error(path))?;
        root.present()
            .map_err(|e| plot_error(path)(e.to_string()))?;
    }
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| plot_error(path)("the pixel buffer has the wrong size".into()))?;
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| plot_error(path)(e.to_string()))?;
    crate::atomic_file::write(path, &bytes).map_err(StudyError::io("write", path))
}

/// A range around `values` with a margin, never empty.
fn span(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !low.is_finite() {
        return 0.0..1.0;
    }
    let margin = ((high - low) * 0.1).max(1e-3 * high.abs().max(1.0));
    (low - margin)..(high + margin)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type XyChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A white canvas with a titled chart of `x` × `y` and its described axes.
fn xy_chart<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
    (x_desc, y_desc): (&str, &str),
) -> Result<XyChart<'a, 'b>, String> {
    let family = font();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (family, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((family, 14))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Each run's metric as a dot with its interval as a bar, best at the top.
pub fn intervals_plot(path: &Path, metric: &str, bars: &[Bar]) -> Result<(), StudyError> {
    let family = font();
    let n = bars.len().max(1);
    let x = span(
        bars.iter()
            .flat_map(|b| {
                [
                    Some(b.estimate),
                    b.interval.map(|i| i.0),
                    b.interval.map(|i| i.1),
                ]
            })
            .flatten(),
    );
    render(path, |root| {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let names: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{metric}, 95% bootstrap intervals"), (family, 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(260)
            .build_cartesian_2d(x, -0.5..(n as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| {
                let index = y.round();
                if (y - index).abs() > 1e-6 || index < 0.0 {
                    return String::new();
                }
                names
                    .get(n - 1 - index as usize)
                    .cloned()
                    .unwrap_or_default()
            })
            .x_desc(metric)
            .label_style((family, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        let row = |i: usize| (n - 1 - i) as f64;
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
                let (low, high) = b.interval?;
                Some(PathElement::new(
                    vec![(low, row(i)), (high, row(i))],
                    BLUE.stroke_width(3),
                ))
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .map(|(i, b)| Circle::new((b.estimate, row(i)), 6, BLUE.filled())),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Labelled points of `x` against `y`; with `front`, the Pareto front (lower x, higher y)
/// joined by a line.
pub fn scatter_plot(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    points: &[Point],
    front: Option<&[usize]>,
) -> Result<(), StudyError> {
    let family = font();
    // Room on the right for the labels of the rightmost points.
    let x = span(points.iter().map(|p| p.x));
    let x = x.start..(x.end + (x.end - x.start) * 0.3);
    let y = span(points.iter().map(|p| p.y));
    render(path, |root| {
        let mut chart = xy_chart(root, title, (x, y), (x_desc, y_desc))?;
        if let Some(front) = front {
            let mut line: Vec<(f64, f64)> = front
                .iter()
                .filter_map(|&i| points.get(i).map(|p| (p.x, p.y)))
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(line, RED.stroke_width(2)))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.x, p.y), 6, BLUE.filled())),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(points.iter().map(|p| {
                EmptyElement::at((p.x, p.y))
                    + Text::new(p.label.clone(), (8, -16), (family, 14).into_font())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// One line per backbone of its per-layer values, from the input end (layer 0).
pub fn layers_plot(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<f64>)],
) -> Result<(), StudyError> {
    let family = font();
    let layers = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let y = span(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .chain([0.0]),
    );
    render(path, |root| {
        let x = 0.0..(layers - 1) as f64;
        let mut chart = xy_chart(
            root,
            title,
            (x, y),
            ("batch-norm layer (input end = 0)", y_desc),
        )?;
        for (i, (name, values)) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(l, v)| (l as f64, *v)),
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((family, 14))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_png_files_with_ink_on_them() {
        let dir = tempfile::tempdir().unwrap();
        let points = vec![
            Point {
                label: "a".into(),
                x: 2.0,
                y: 0.8,
            },
            Point {
                label: "b".into(),
                x: 5.0,
                y: 0.9,
            },
        ];
        let scatter = dir.path().join("pareto.png");
        scatter_plot(&scatter, "t", ("ms", "accuracy"), &points, Some(&[0, 1])).unwrap();
        let bars = vec![Bar {
            label: "a".into(),
            estimate: 0.8,
            interval: Some((0.7, 0.9)),
        }];
        let intervals = dir.path().join("intervals.png");
        intervals_plot(&intervals, "accuracy", &bars).unwrap();
        let layers = dir.path().join("layers.png");
        layers_plot(&layers, "t", "d", &[("a".into(), vec![0.1, 0.5, 0.2])]).unwrap();
        for path in [scatter, intervals, layers] {
            let image = image::open(&path).unwrap().to_rgb8();
            assert_eq!(image.dimensions(), SIZE);
            let dark = image
                .pixels()
                .filter(|p| p.0.iter().all(|&c| c < 100))
                .count();
            assert!(dark > 500, "{}: {dark} dark pixels", path.display());
        }
    }
}
