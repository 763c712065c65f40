//! Drawing a figure: [`draw`] renders its lines (seed bands, means, points), the dashed
//! reference lines with labels stacked clear of them ([`label_baselines`]) and the legend in the
//! corner that covers the fewest marks ([`legend_corner`]), to SVG and PNG in the embedded font.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use super::axis::{tick, LnAxis};
use super::{Figure, Line};
use crate::error::{Error, Result};
use crate::fit::on_log_axes;
use crate::io::Partial;

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Figure size in pixels.
const SIZE: (u32, u32) = (860, 600);

/// The embedded font, registered once as plotters' `sans-serif`.
fn font() -> Result<()> {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Plot("the embedded font does not load".into()))
    }
}

/// Draws `lines` as an SVG at `svg` and a PNG at `png`. Both are rendered in memory first and
/// then written through temporary files ([`Partial`]), so a figure that fails to draw or to
/// be written leaves no file behind, half-written or stale-named.
pub fn draw(svg: &Path, png: &Path, figure: &Figure, lines: &[Line]) -> Result<()> {
    font()?;
    let mut text = String::new();
    draw_on(
        SVGBackend::with_string(&mut text, SIZE).into_drawing_area(),
        figure,
        lines,
    )?;
    let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    draw_on(
        BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area(),
        figure,
        lines,
    )?;
    let mut encoded = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut encoded, SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(plot_err)?;
        writer.write_image_data(&pixels).map_err(plot_err)?;
        writer.finish().map_err(plot_err)?;
    }
    // Both written in full before either takes its name; the SVG named first, and taken
    // back if the PNG cannot be, so a failure leaves neither.
    let png_file = Partial::holding(png, &encoded)?;
    let svg_file = Partial::holding(svg, text.as_bytes())?;
    svg_file.keep()?;
    png_file.keep().inspect_err(|_| {
        let _ = std::fs::remove_file(svg);
    })
}

/// The corner of a plotting area of `area` pixels (width, height) where a legend box of `size`
/// pixels, placed 5 pixels in from the frame as plotters places it, covers the fewest `marks`
/// (points and labels, in pixels from the area's upper left corner), then the fewest `path`
/// samples (points along the lines). Ties go to the first of upper left, upper right, lower
/// left, lower right.
fn legend_corner(
    area: (i32, i32),
    size: (i32, i32),
    marks: &[(i32, i32)],
    path: &[(i32, i32)],
) -> SeriesLabelPosition {
    let (left, top) = (5, 5);
    let (right, bottom) = (area.0 - size.0 - 5, area.1 - size.1 - 5);
    let corners = [
        (SeriesLabelPosition::UpperLeft, (left, top)),
        (SeriesLabelPosition::UpperRight, (right, top)),
        (SeriesLabelPosition::LowerLeft, (left, bottom)),
        (SeriesLabelPosition::LowerRight, (right, bottom)),
    ];
    let covered = |(x, y): (i32, i32), points: &[(i32, i32)]| {
        points
            .iter()
            .filter(|p| (x..=x + size.0).contains(&p.0) && (y..=y + size.1).contains(&p.1))
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|(_, at)| (covered(*at, marks), covered(*at, path)))
        .map(|(corner, _)| corner)
        .expect("four corners")
}

/// Draws `lines` on `root`.
fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &Figure,
    lines: &[Line],
) -> Result<()> {
    let positive: Vec<(f64, f64)> = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .filter(on_log_axes)
        .collect();
    let names: Vec<(String, String)> = figure.y.iter().map(|y| figure.axis_names(y)).collect();
    let y_name = names
        .iter()
        .map(|n| n.0.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let x_name = names.first().map_or(String::new(), |n| n.1.clone());
    if positive.is_empty() {
        let rows: usize = lines.iter().map(|l| l.points.len()).sum();
        let what = if figure.excess {
            format!("of the {rows} rows past each line's smallest {}", figure.x)
        } else {
            format!("of the {rows} rows kept")
        };
        return Err(Error::invalid(
            figure.y.join(", "),
            format!(
                "none {what} has {x_name} > 0 and {y_name} > 0: nothing to draw on log–log axes"
            ),
        ));
    }
    let range = |v: Vec<f64>| {
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        (lo / 1.25, hi * 1.25)
    };
    let (x0, x1) = range(positive.iter().map(|p| p.0).collect());
    let references = lines
        .iter()
        .flat_map(|l| l.references.iter().filter(|r| r.drawn).map(|r| r.value));
    let (y0, y1) = range(positive.iter().map(|p| p.1).chain(references).collect());
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{y_name} against {x_name}"), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        // Logarithmic axes as linear axes over ln x and ln y, marked and labelled at round values
        // of x and y: every range, however narrow, gets at least two labelled ticks.
        .build_cartesian_2d(LnAxis::new(x0, x1), LnAxis::new(y0, y1))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(x_name.as_str())
        .y_desc(y_name.as_str())
        .x_label_formatter(&|v| tick(v.exp()))
        .y_label_formatter(&|v| tick(v.exp()))
        .draw()
        .map_err(plot_err)?;
    // What the legend should not cover, in pixels of the plotting area: the points drawn and
    // the reference labels (`marks`), and samples along the lines between them (`path`).
    let origin = chart.plotting_area().get_base_pixel();
    let coords = chart.as_coord_spec().clone();
    let pixel = |p: (f64, f64)| {
        let (x, y) = coords.translate(&p);
        (x - origin.0, y - origin.1)
    };
    let (mut marks, mut path, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        // Per x: mean, min and max over the rows (the seeds) at that x.
        let mut by_x: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for &(x, y) in line.points.iter().filter(|p| on_log_axes(p)) {
            by_x.entry(x.to_bits()).or_default().push(y);
        }
        let stats: Vec<(f64, f64, f64, f64)> = by_x
            .iter()
            .map(|(&x, ys)| {
                let mean = ys.iter().sum::<f64>() / ys.len() as f64;
                let (lo, hi) = ys
                    .iter()
                    .fold((f64::INFINITY, 0.0f64), |(a, b), &y| (a.min(y), b.max(y)));
                (f64::from_bits(x).ln(), mean.ln(), lo.ln(), hi.ln())
            })
            .collect();
        let mut band: Vec<(f64, f64)> = stats.iter().map(|s| (s.0, s.3)).collect();
        band.extend(stats.iter().rev().map(|s| (s.0, s.2)));
        chart
            .draw_series(std::iter::once(Polygon::new(band, color.mix(0.18))))
            .map_err(plot_err)?;
        let label = match line.fit {
            Some(f) if f.lo.is_finite() => format!(
                "{}: slope {:.2} [{:.2}, {:.2}]",
                line.label, f.slope, f.lo, f.hi
            ),
            Some(f) => format!("{}: slope {:.2}", line.label, f.slope),
            None => format!("{}: no fit", line.label),
        };
        labels.push(label.clone());
        let means: Vec<(i32, i32)> = stats.iter().map(|s| pixel((s.0, s.1))).collect();
        marks.extend(&means);
        for pair in means.windows(2) {
            let ((ax, ay), (bx, by)) = (pair[0], pair[1]);
            path.extend((1..8).map(|k| (ax + (bx - ax) * k / 8, ay + (by - ay) * k / 8)));
        }
        chart
            .draw_series(LineSeries::new(
                stats.iter().map(|s| (s.0, s.1)),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                stats
                    .iter()
                    .map(|s| Circle::new((s.0, s.1), 3, color.filled())),
            )
            .map_err(plot_err)?;
    }
    // Reference lines, dashed, each labelled at its right end with its column and value: grey
    // where several lines share the value, else in its line's colour, placed by
    // `label_baselines`.
    let mut dashes: Vec<(&str, f64, RGBColor)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for r in line.references.iter().filter(|r| r.drawn) {
            match dashes
                .iter_mut()
                .find(|d| d.0 == r.column && d.1 == r.value)
            {
                Some(shared) => shared.2 = RGBColor(90, 90, 90),
                None => dashes.push((&r.column, r.value, COLORS[i % COLORS.len()])),
            }
        }
    }
    dashes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let rows: Vec<i32> = dashes
        .iter()
        .map(|d| chart.backend_coord(&(x1.ln(), d.1.ln())).1)
        .collect();
    let frame_top = chart.backend_coord(&(x1.ln(), y1.ln())).1;
    let baselines = label_baselines(&rows, frame_top);
    for ((name, v, color), (&line_y, &baseline)) in dashes.iter().zip(rows.iter().zip(&baselines)) {
        let at = [(x0.ln(), v.ln()), (x1.ln(), v.ln())];
        chart
            .draw_series(DashedLineSeries::new(at, 8, 5, color.stroke_width(1)))
            .map_err(plot_err)?;
        let end = pixel((x1.ln(), v.ln()));
        path.extend((0..16).map(|k| (end.0 * k / 16, end.1)));
        marks.extend([
            (end.0 - 6, baseline - origin.1),
            (end.0 - 60, baseline - origin.1),
        ]);
        let style = ("sans-serif", 13)
            .into_font()
            .color(color)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        let label = format!("{name} {}", tick(*v));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x1.ln(), v.ln()))
                    + Text::new(label, (-6, baseline - line_y), style),
            ))
            .map_err(plot_err)?;
    }
    // The legend box as plotters sizes it: its text in 12-pixel sans-serif, 30 pixels for the
    // line samples and a margin of 10 on every side.
    let font: TextStyle = ("sans-serif", 12).into_font().into();
    let mut text = MultiLineText::<_, &str>::new((0, 0), &font);
    for label in &labels {
        text.push_line(label.as_str());
    }
    let (w, h) = text.estimate_dimension().map_err(plot_err)?;
    let (area_w, area_h) = chart.plotting_area().dim_in_pixel();
    let corner = legend_corner(
        (area_w as i32, area_h as i32),
        (w + 30 + 20, h + 20),
        &marks,
        &path,
    );
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    Ok(())
}

/// Height in pixels of a reference line's label.
const LABEL_HEIGHT: i32 = 14;

/// The baselines (text bottoms, in pixels) of the labels of reference lines drawn at pixel
/// rows `rows` (top to bottom) under a frame whose top is `frame_top`. Lines closer than a
/// label's height form a cluster whose labels stack in the lines' order just above its top
/// line, or, where that would cross the frame or the labels above, just below its bottom
/// line; either way no label crosses a line of its cluster.
fn label_baselines(rows: &[i32], frame_top: i32) -> Vec<i32> {
    let mut baselines = Vec::with_capacity(rows.len());
    let mut next_free = frame_top + LABEL_HEIGHT + 2;
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        while end < rows.len() && rows[end] - rows[end - 1] < LABEL_HEIGHT + 2 {
            end += 1;
        }
        let stacked = (end - start - 1) as i32 * LABEL_HEIGHT;
        let above = rows[start] - 3 - stacked;
        let first = if above >= next_free {
            above
        } else {
            (rows[end - 1] + LABEL_HEIGHT + 1).max(next_free)
        };
        baselines.extend((0..(end - start) as i32).map(|k| first + k * LABEL_HEIGHT));
        next_free = first + stacked + LABEL_HEIGHT;
        start = end;
    }
    baselines
}

#[cfg(test)]
mod tests {
    use plotters::chart::SeriesLabelPosition;

    use super::legend_corner;

    #[test]
    fn the_legend_goes_to_the_corner_that_covers_fewest_points() {
        let (area, size) = ((700, 500), (200, 80));
        // Nothing in the way: upper left.
        assert_eq!(
            legend_corner(area, size, &[(350, 250)], &[]),
            SeriesLabelPosition::UpperLeft
        );
        // A falling line: its first point in the upper left, its last in the lower right.
        let falling = [(20, 20), (350, 250), (690, 490)];
        assert_eq!(
            legend_corner(area, size, &falling, &[]),
            SeriesLabelPosition::UpperRight
        );
        // Points in three corners, two in the lower left: the empty lower right.
        let three = [(20, 20), (690, 20), (20, 490), (30, 480)];
        assert_eq!(
            legend_corner(area, size, &three, &[]),
            SeriesLabelPosition::LowerRight
        );
        // A point in every corner, one more in the upper left: the line samples decide.
        let every = [(20, 20), (25, 25), (690, 20), (20, 490), (690, 490)];
        let path = [(600, 30), (610, 30), (30, 450)];
        assert_eq!(
            legend_corner(area, size, &every, &path),
            SeriesLabelPosition::LowerRight
        );
    }

    /// Reference labels never cross a line of their cluster nor each other: above their line
    /// where there is room, the labels of close lines stacked above or below them all.
    #[test]
    fn reference_labels_clear_their_lines() {
        use super::{label_baselines, LABEL_HEIGHT};
        let clear = |rows: &[i32], frame_top: i32| {
            let b = label_baselines(rows, frame_top);
            for (i, &bi) in b.iter().enumerate() {
                let span = bi - LABEL_HEIGHT..=bi;
                assert!(
                    span.start() > &frame_top,
                    "{rows:?}: label {i} crosses the frame"
                );
                for &r in rows {
                    assert!(
                        !span.contains(&r),
                        "{rows:?}: label {i} {span:?} crosses line {r}"
                    );
                }
                if i > 0 {
                    assert!(bi - b[i - 1] >= LABEL_HEIGHT, "{rows:?}: labels overlap");
                }
            }
            b
        };
        assert_eq!(clear(&[100, 200], 45), vec![97, 197]);
        assert_eq!(clear(&[100, 104], 45), vec![83, 97]);
        assert_eq!(clear(&[62, 66], 45), vec![81, 95]);
        clear(&[50, 52, 54, 120, 300, 305], 45);
    }
}
