//! `--plot FILE.svg`: a latency histogram (the latency run, Sigil and baseline) beside
//! throughput against concurrency (the sweep).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::report::Report;

/// Histogram buckets.
const BUCKETS: u32 = 30;

/// Draws both charts into one SVG at `path`.
pub fn write(path: &Path, report: &Report) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (left, right) = root.split_horizontally(600);
    histogram(&left, report)?;
    throughput(&right, report)?;
    root.present().map_err(err)?;
    Ok(())
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting: {e:?}")
}

/// Milliseconds of every signed request of the latency run, per path.
fn series(report: &Report) -> Vec<(&'static str, RGBColor, Vec<f64>)> {
    let mut out = Vec::new();
    if let Some(o) = &report.ours {
        out.push(("sigil", BLUE, millis(&o.latency.samples)));
    }
    if let Some(b) = &report.baseline {
        out.push(("baseline", RED, millis(&b.latency.samples)));
    }
    out
}

fn millis(samples: &[std::time::Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

fn histogram<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let series = series(report);
    let all: Vec<f64> = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .collect();
    let (lo, hi) = all
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let (lo, hi) = if all.is_empty() {
        (0.0, 1.0)
    } else {
        (lo * 0.95, hi * 1.05 + 1.0)
    };
    let width = (hi - lo) / f64::from(BUCKETS);
    let counts: Vec<Vec<u32>> = series
        .iter()
        .map(|(_, _, values)| {
            let mut c = vec![0u32; BUCKETS as usize];
            for v in values {
                let b = (((v - lo) / width) as usize).min(BUCKETS as usize - 1);
                c[b] += 1;
            }
            c
        })
        .collect();
    let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption("end-to-end signature latency", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(lo..hi, 0u32..top + 1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("requests")
        .draw()
        .map_err(err)?;
    let groups = series.len().max(1) as f64;
    for (index, ((name, color, _), c)) in series.iter().zip(&counts).enumerate() {
        let color = *color;
        let offset = width * index as f64 / groups;
        chart
            .draw_series(c.iter().enumerate().filter(|(_, n)| **n > 0).map(|(b, n)| {
                let x0 = lo + width * b as f64 + offset;
                Rectangle::new(
                    [(x0, 0), (x0 + width / groups, *n)],
                    color.mix(0.7).filled(),
                )
            }))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    // Between the two paths' clusters, where the bars usually leave room.
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperMiddle)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn throughput<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    report: &Report,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut lines = Vec::new();
    if let Some(o) = &report.ours {
        lines.push(("sigil", BLUE, points(&o.throughput)));
    }
    if let Some(b) = &report.baseline {
        lines.push(("baseline", RED, points(&b.throughput)));
    }
    let max_c = lines
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|(c, _)| *c))
        .fold(1.0f64, f64::max);
    let max_t = lines
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|(_, t)| *t))
        .fold(0.1f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption("throughput against concurrency", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0.0..max_c * 1.1, 0.0..max_t * 1.2)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("requests in flight")
        .y_desc("signatures per second")
        .draw()
        .map_err(err)?;
    for (name, color, p) in lines {
        chart
            .draw_series(LineSeries::new(p.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
        chart
            .draw_series(p.iter().map(|pt| Circle::new(*pt, 4, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(err)?;
    Ok(())
}

fn points(levels: &[super::load::Level]) -> Vec<(f64, f64)> {
    levels
        .iter()
        .map(|l| (l.concurrency as f64, l.signatures_per_second))
        .collect()
}
