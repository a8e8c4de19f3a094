//! The benchmark plot: CPU per message (full-rate publish runs) and
//! delivery latency p50/p99 (paced runs) per client, as a small SVG written
//! by the bench itself (no plotting crate: a few bars need none).

use std::fmt::Write;

use crate::latency::LatencySample;

const W: f64 = 960.0;
const H: f64 = 400.0;
const PANEL_W: f64 = 440.0;
const TOP: f64 = 70.0;
const ROW: f64 = 52.0;
const LABEL_W: f64 = 130.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn color(label: &str) -> &'static str {
    match label {
        "raw lapin" => "#8c8c8c",
        "lapin + confirms" => "#b8b8b8",
        "nost-rs" => "#d9622b",
        _ => "#3a76af",
    }
}

/// A "nice" axis end above `max`.
fn axis_end(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * mag)
}

/// One panel of horizontal bars; each row has one or two values (the
/// second drawn lighter, e.g. p99 behind p50).
fn panel(svg: &mut String, x0: f64, title: &str, unit: &str, rows: &[(String, Vec<f64>)]) {
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let end = axis_end(max);
    let bar_w = PANEL_W - LABEL_W - 50.0;
    let scale = |v: f64| (v / end).clamp(0.0, 1.0) * bar_w;
    let _ = writeln!(
        svg,
        r#"<text x="{x0}" y="{}" font-size="15" font-weight="bold">{}</text>"#,
        TOP - 30.0,
        esc(title)
    );
    let bottom = TOP + ROW * rows.len() as f64;
    for i in 0..=4 {
        let v = end * f64::from(i) / 4.0;
        let x = x0 + LABEL_W + scale(v);
        let _ = writeln!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#ddd\"/>\
<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{v}</text>",
            TOP - 8.0,
            bottom + 16.0,
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
        x0 + LABEL_W + bar_w / 2.0,
        bottom + 34.0,
        esc(unit)
    );
    for (i, (label, vals)) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" text-anchor="end">{}</text>"#,
            x0 + LABEL_W - 8.0,
            y + ROW / 2.0 + 4.0,
            esc(label)
        );
        let c = color(label);
        // The larger (second) value first, lighter, behind.
        for (j, v) in vals.iter().enumerate().rev() {
            if !v.is_finite() {
                continue;
            }
            let (h, opacity, dy) = if vals.len() > 1 && j == 0 {
                (ROW * 0.36, 1.0, ROW * 0.32)
            } else if vals.len() > 1 {
                (ROW * 0.72, 0.35, ROW * 0.14)
            } else {
                (ROW * 0.6, 1.0, ROW * 0.2)
            };
            let w = scale(*v).max(1.0);
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" fill="{c}" fill-opacity="{opacity}"/>"#,
                x0 + LABEL_W,
                y + dy
            );
        }
        let text = match vals.as_slice() {
            [a, b] => format!("p50 {a:.2} · p99 {b:.2}"),
            [a] => format!("{a:.1}"),
            _ => String::new(),
        };
        let right = vals
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#222\">{}</text>",
            (x0 + LABEL_W + scale(right) + 4.0).min(x0 + PANEL_W - 70.0),
            y + ROW / 2.0 - 10.0,
            esc(&text)
        );
    }
}

/// The SVG: CPU per message (median of the full-rate runs) left, paced
/// delivery latency (p50 dark, p99 light) right.
pub fn latency_cpu(title: &str, cpu: &[(String, f64)], latency: &[LatencySample]) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        "<text x=\"20\" y=\"20\" font-size=\"12\" fill=\"#555\">{}</text>",
        esc(title)
    );
    let cpu_rows: Vec<(String, Vec<f64>)> =
        cpu.iter().map(|(l, v)| (l.clone(), vec![*v])).collect();
    panel(
        &mut svg,
        20.0,
        "Client CPU per message (full rate, with a consumer)",
        "µs of user + system CPU per message (lower is better)",
        &cpu_rows,
    );
    let rate = latency.first().map_or(0.0, |l| l.rate);
    let lat_rows: Vec<(String, Vec<f64>)> = latency
        .iter()
        .map(|l| {
            (
                l.publisher.label().to_owned(),
                vec![l.latency.p50_ms, l.latency.p99_ms],
            )
        })
        .collect();
    panel(
        &mut svg,
        20.0 + PANEL_W + 60.0,
        &format!("Publish → delivery latency at {rate:.0} msgs/s"),
        "ms, p50 (dark) and p99 (light)",
        &lat_rows,
    );
    svg.push_str("</svg>\n");
    svg
}
