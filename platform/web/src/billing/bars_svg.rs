//! The billing summary's bar chart as inline SVG, drawn on the server (no script, scales to
//! the width it is given). Each period has two bars side by side: billed (outlined) and
//! received after refunds (solid), so shape as well as colour tells them apart; the page puts
//! the same numbers in a table beside it. Only text this code formats goes into the markup
//! (dates and amounts), so nothing needs escaping.

use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 32.0;

/// One period's bar pair.
pub struct Pair {
    /// The x-axis label ("2 Nov", "Nov 2026"); drawn only where there is room.
    pub label: String,
    pub billed: i64,
    pub received: i64,
}

/// The chart; `money` writes an amount in minor units as the axis shows it.
pub fn render(
    pairs: &[Pair],
    money: impl Fn(i64) -> String,
    title_id: &str,
    desc_id: &str,
) -> String {
    let top = pairs
        .iter()
        .flat_map(|p| [p.billed, p.received])
        .max()
        .unwrap_or(0)
        .max(1);
    // A round maximum: 1, 2 or 5 times a power of ten, at or above the largest bar.
    let mut step = 1_i64;
    let ceiling = loop {
        if let Some(c) = [1, 2, 5].iter().map(|m| m * step).find(|c| *c >= top) {
            break c;
        }
        step = step.saturating_mul(10);
    };
    let plot_h = H - TOP - BOTTOM;
    let y = |v: i64| TOP + plot_h - (v.max(0) as f64 / ceiling as f64) * plot_h;
    let slot = (W - LEFT - RIGHT) / pairs.len().max(1) as f64;
    let bar = (slot * 0.38).max(1.0);

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="bars" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{title_id} {desc_id}" data-testid="summary-chart">"#
    );
    // Five steps: a fifth of 1, 2 or 5 × 10ⁿ is a round number too.
    for i in 0..=5 {
        let v = ceiling * i / 5;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#c9ced6" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#333">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            money(v)
        );
    }
    // Every label when there are few periods, else about six, evenly spread.
    let every = pairs.len().div_ceil(6).max(1);
    for (i, p) in pairs.iter().enumerate() {
        let x0 = LEFT + slot * i as f64 + (slot - 2.0 * bar) / 2.0;
        let _ = write!(
            s,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="#ffffff" stroke="#1f4e79" stroke-width="1.5" data-bar="billed" data-value="{}"/>"##,
            y(p.billed),
            (TOP + plot_h - y(p.billed)).max(0.0),
            p.billed
        );
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}" fill="#1f4e79" data-bar="received" data-value="{}"/>"##,
            x0 + bar,
            y(p.received),
            (TOP + plot_h - y(p.received)).max(0.0),
            p.received
        );
        if i % every == 0 {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" fill="#333">{}</text>"##,
                x0 + bar,
                H - 10.0,
                p.label
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heights(svg: &str, which: &str) -> Vec<f64> {
        svg.split("<rect")
            .filter(|r| r.contains(&format!("data-bar=\"{which}\"")))
            .map(|r| {
                let at = r.find("height=\"").unwrap() + 8;
                r[at..at + r[at..].find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn bars_are_as_tall_as_their_amounts_on_a_round_scale() {
        let pairs = vec![
            Pair {
                label: "1 Nov".into(),
                billed: 40_000,
                received: 10_000,
            },
            Pair {
                label: "2 Nov".into(),
                billed: 0,
                received: 20_000,
            },
        ];
        let svg = render(&pairs, |m| format!("${}", m / 100), "t", "d");
        let plot = H - TOP - BOTTOM;
        // 40,000 rounds up to a 50,000 scale.
        let near = |got: Vec<f64>, want: Vec<f64>| {
            got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| (g - w).abs() < 0.06)
        };
        assert!(
            near(heights(&svg, "billed"), vec![plot * 0.8, 0.0]),
            "{svg}"
        );
        assert!(
            near(heights(&svg, "received"), vec![plot * 0.2, plot * 0.4]),
            "{svg}"
        );
        assert!(svg.contains(">$500<"), "the top of the scale: {svg}");
        assert!(
            svg.contains(">$100<") && svg.contains(">$400<"),
            "round steps: {svg}"
        );
        assert!(svg.contains(">1 Nov<") && svg.contains(">2 Nov<"));
        assert!(svg.contains(r#"role="img" aria-labelledby="t d""#));
    }

    #[test]
    fn an_empty_period_draws_flat_bars() {
        let pairs = vec![Pair {
            label: "Nov 2026".into(),
            billed: 0,
            received: 0,
        }];
        let svg = render(&pairs, |m| m.to_string(), "t", "d");
        assert_eq!(heights(&svg, "billed"), vec![0.0]);
        assert_eq!(heights(&svg, "received"), vec![0.0]);
    }
}
