//! Charts of the history summary, drawn as SVG by `plotters` on the
//! server: licenses over time stacked by status, and horizontal bars for
//! counts by category.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use crate::wire::SeriesBucketView;

const WIDTH: u32 = 720;
const SUCCESS: RGBColor = RGBColor(46, 125, 50);
const FAIL: RGBColor = RGBColor(198, 40, 40);
const BAR: RGBColor = RGBColor(21, 101, 192);

/// Licenses per bucket, successes below failures; `label` names a bucket
/// by its start.
pub fn over_time(
    buckets: &[SeriesBucketView],
    label: impl Fn(i64) -> String,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let count = buckets.len().max(1);
        let highest = buckets
            .iter()
            .map(|bucket| bucket.success + bucket.fail)
            .max()
            .unwrap_or(0)
            .max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d((0..count).into_segmented(), 0..highest + highest / 10 + 1)
            .map_err(drawing)?;
        let names: Vec<String> = buckets.iter().map(|bucket| label(bucket.start)).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(count.min(8))
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|value| match value {
                SegmentValue::CenterOf(index) => names.get(*index).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc("licenses")
            .draw()
            .map_err(drawing)?;
        let bar = |index: usize, from: i64, to: i64, color: RGBColor| {
            Rectangle::new(
                [
                    (SegmentValue::Exact(index), from),
                    (SegmentValue::Exact(index + 1), to),
                ],
                color.filled(),
            )
        };
        chart
            .draw_series(
                buckets
                    .iter()
                    .enumerate()
                    .map(|(index, bucket)| bar(index, 0, bucket.success, SUCCESS)),
            )
            .map_err(drawing)?
            .label("success")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], SUCCESS.filled()));
        chart
            .draw_series(buckets.iter().enumerate().map(|(index, bucket)| {
                bar(index, bucket.success, bucket.success + bucket.fail, FAIL)
            }))
            .map_err(drawing)?
            .label("fail")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], FAIL.filled()));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// One horizontal bar per (name, count), in the order given.
pub fn bars(items: &[(String, i64)]) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let height = 60 + 32 * items.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let count = items.len().max(1);
        let highest = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(230)
            .build_cartesian_2d(0..highest + highest / 10 + 1, (0..count).into_segmented())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(count)
            .label_style(("sans-serif", 15))
            .y_label_formatter(&|value| match value {
                SegmentValue::CenterOf(index) => items
                    .get(*index)
                    .map(|(name, _)| name.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(drawing)?;
        chart
            .draw_series(items.iter().enumerate().map(|(index, (_, n))| {
                Rectangle::new(
                    [
                        (0, SegmentValue::Exact(index)),
                        (*n, SegmentValue::Exact(index + 1)),
                    ],
                    BAR.filled(),
                )
            }))
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn drawing(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart failed: {error}")
}
