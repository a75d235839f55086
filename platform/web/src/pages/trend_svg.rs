//! A trend chart as inline SVG, drawn on the server: no script, no library, readable on a
//! phone (it scales to the width it is given). The normal range is a shaded band; a value
//! outside it is drawn as a square (shape, not colour alone, says so). Only numbers and
//! dates this code formats go into the markup, so nothing needs escaping. The page puts an
//! accessible table of the same values beside it.

use std::fmt::Write as _;

use chrono_tz::Tz;
use portal_domain::record::results::trend::Trend;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;
/// Up to this many values each gets its own dot; beyond it (years of weekly weights) the dots
/// would overlap into a thick smear on a phone's width, so the line alone carries the normal
/// values. Values outside the range keep their squares whatever the count.
const DOTS_UP_TO: usize = 60;

/// A value as the axis writes it: no more digits than it needs.
pub fn number(v: f64) -> String {
    portal_domain::record::results::plain_number(v)
}

/// The SVG for `t` (at least one point), titled by the element ids the page gives.
pub fn render(t: &Trend, tz: Tz, title_id: &str, desc_id: &str) -> String {
    let values = t.points.iter().map(|p| p.value);
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    for r in [t.range_low, t.range_high].into_iter().flatten() {
        lo = lo.min(r);
        hi = hi.max(r);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return String::new();
    }
    let pad = if hi > lo {
        (hi - lo) * 0.1
    } else {
        lo.abs().max(1.0) * 0.1
    };
    let (lo, hi) = (lo - pad, hi + pad);
    let first = t.points.first().map(|p| p.at.timestamp()).unwrap_or(0) as f64;
    let last = t.points.last().map(|p| p.at.timestamp()).unwrap_or(0) as f64;
    let span = (last - first).max(1.0);
    let x = |ts: i64| {
        if t.points.len() == 1 {
            LEFT + (W - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (ts as f64 - first) / span * (W - LEFT - RIGHT)
        }
    };
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="trend" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{title_id} {desc_id}" data-testid="trend-chart">"#
    );
    // The normal range, shaded and labelled.
    if t.range_low.is_some() || t.range_high.is_some() {
        let top = y(t.range_high.unwrap_or(hi));
        let bottom = y(t.range_low.unwrap_or(lo));
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#d8efe0" data-testid="normal-band"/>"##,
            W - LEFT - RIGHT,
            (bottom - top).max(0.0)
        );
    }
    // Axes and four value gridlines.
    for i in 0..=3 {
        let v = lo + (hi - lo) * f64::from(i) / 3.0;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#c9ced6" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#333">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            number(v)
        );
    }
    // First and last dates under the axis.
    let mut dates = vec![(t.points.first(), "start")];
    if t.points.len() > 1 {
        dates.push((t.points.last(), "end"));
    }
    for (p, anchor) in dates {
        if let Some(p) = p {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" font-size="12" fill="#333">{}</text>"##,
                x(p.at.timestamp()),
                H - 12.0,
                p.at.with_timezone(&tz).format("%-d %b %Y")
            );
        }
    }
    // The line, then the points on top (normal ones only while they fit apart).
    if t.points.len() > 1 {
        s.push_str(r##"<polyline fill="none" stroke="#1f4e79" stroke-width="2" points=""##);
        for p in &t.points {
            let _ = write!(s, "{:.1},{:.1} ", x(p.at.timestamp()), y(p.value));
        }
        s.push_str(r#""/>"#);
    }
    let dots = t.points.len() <= DOTS_UP_TO;
    for p in &t.points {
        let (px, py) = (x(p.at.timestamp()), y(p.value));
        let out = p.interpretation.as_deref().is_some_and(|f| f != "N");
        if out {
            let _ = write!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="9" height="9" fill="#b3261e" data-flag="out"/>"##,
                px - 4.5,
                py - 4.5
            );
        } else if dots {
            let _ = write!(
                s,
                r##"<circle cx="{px:.1}" cy="{py:.1}" r="4" fill="#1f4e79"/>"##
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use portal_domain::record::results::trend::Point;

    fn trend(values: &[(i64, f64, &str)]) -> Trend {
        Trend {
            loinc: "2345-7".into(),
            name: "Glucose".into(),
            unit: "mg/dL".into(),
            range_low: Some(70.0),
            range_high: Some(99.0),
            points: values
                .iter()
                .map(|(day, v, flag)| Point {
                    at: chrono::Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap()
                        + chrono::Duration::days(*day),
                    value: *v,
                    interpretation: Some((*flag).to_owned()),
                    report_id: None,
                })
                .collect(),
            other_units: 0,
        }
    }

    #[test]
    fn the_chart_shades_the_range_and_marks_values_outside_it() {
        let svg = render(
            &trend(&[(0, 92.0, "N"), (90, 130.0, "H"), (180, 88.0, "N")]),
            chrono_tz::America::New_York,
            "t",
            "d",
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"aria-labelledby="t d""#));
        assert_eq!(svg.matches("normal-band").count(), 1);
        assert_eq!(
            svg.matches(r#"data-flag="out""#).count(),
            1,
            "one high value"
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("1 Jan 2024") && svg.contains("29 Jun 2024"));
        // The high value sits above the band's top edge (smaller y).
        let band_top: f64 = svg
            .split("normal-band")
            .next()
            .and_then(|s| s.rsplit("y=\"").next())
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        let high_y: f64 = svg
            .split(r#"data-flag="out""#)
            .next()
            .and_then(|s| s.rsplit("y=\"").next())
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(high_y < band_top, "{high_y} < {band_top}");
    }

    #[test]
    fn years_of_values_draw_a_line_with_only_the_flagged_ones_marked() {
        let many: Vec<(i64, f64, &str)> = (0..300)
            .map(|d| {
                (
                    d * 7,
                    if d % 50 == 0 { 130.0 } else { 90.0 },
                    if d % 50 == 0 { "H" } else { "N" },
                )
            })
            .collect();
        let svg = render(&trend(&many), chrono_tz::UTC, "t", "d");
        assert_eq!(svg.matches("<circle").count(), 0, "no smear of dots");
        assert_eq!(
            svg.matches(r#"data-flag="out""#).count(),
            6,
            "every high value"
        );
        let line = svg
            .split("points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap();
        assert_eq!(
            line.split_whitespace().count(),
            300,
            "the line goes through every value"
        );
    }

    #[test]
    fn one_value_is_drawn_without_a_line() {
        let svg = render(&trend(&[(0, 92.0, "N")]), chrono_tz::UTC, "t", "d");
        assert!(!svg.contains("<polyline"));
        assert_eq!(svg.matches("<circle").count(), 1);
    }

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(number(5.0), "5");
        assert_eq!(number(5.25), "5.25");
        assert_eq!(number(0.1 + 0.2), "0.3");
    }
}
