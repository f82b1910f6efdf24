//! `--chart FILE.svg`: a hand-written SVG of the result, readable at a glance — per runtime, one
//! horizontal bar per cell (length = p50 of a whole run, whisker to p95), a dashed line at the
//! runtime's bare p50, an axis in ms, a legend of the isolation levels, and the host in the title.

use std::fmt::Write as _;

use super::levels::Level;
use super::output::{BenchReport, CellResult, Mode};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 230.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 104.0;
const ROW: f64 = 22.0;
const BAR: f64 = 14.0;
const GROUP_HEAD: f64 = 26.0;
const AXIS: f64 = 56.0;

fn color(level: Level) -> &'static str {
    match level {
        Level::Bare => "#8c8c8c",
        Level::Namespaces => "#4e79a7",
        Level::Cgroups => "#59a14f",
        Level::Seccomp => "#f28e2b",
        Level::Audit => "#e15759",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A round axis maximum and tick step (1, 2 or 5 × 10^k) for values up to `max`.
pub fn axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let rough = max / 6.0;
    let mag = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= rough).unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The SVG document for `r`.
pub fn svg(r: &BenchReport) -> String {
    let mut runtimes: Vec<&str> = Vec::new();
    for c in &r.cells {
        if !runtimes.contains(&c.runtime.as_str()) {
            runtimes.push(&c.runtime);
        }
    }
    let group = |rt: &str| r.cells.iter().filter(move |c| c.runtime == rt).collect::<Vec<&CellResult>>();
    let rows: usize = runtimes.iter().map(|rt| group(rt).len()).sum();
    let height = TOP + runtimes.len() as f64 * GROUP_HEAD + rows as f64 * ROW + AXIS;
    let max = r.cells.iter().filter_map(|c| c.total.map(|t| t.p95.max(t.p50))).fold(0.0, f64::max);
    let (xmax, step) = axis(max * 1.02);
    let plot = WIDTH - LEFT - RIGHT;
    let x = |v: f64| LEFT + (v / xmax).clamp(0.0, 1.0) * plot;

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    s.push('\n');
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text class="title" x="16" y="24" font-size="16" font-weight="bold">ignite bench: time per run, ms (bar p50, whisker p95; dashed line: bare p50)</text>"#
    );
    let _ = writeln!(s, r##"<text class="host" x="16" y="44" fill="#444">{}</text>"##, esc(&r.host.line()));
    let mut sub = format!("{} measured runs per cell after {} warm-up", r.runs, r.warmup);
    if let Some(stop) = &r.stopped {
        let _ = write!(sub, " · stopped early: {stop}");
    }
    let _ = writeln!(s, r##"<text x="16" y="62" fill="#444">{}</text>"##, esc(&sub));

    // Legend: the levels present, in order, and what a pale bar means.
    let mut lx = 16.0;
    let mut levels: Vec<Level> = r.cells.iter().map(|c| c.level).collect();
    levels.sort();
    levels.dedup();
    for l in levels {
        let _ = writeln!(
            s,
            r#"<rect class="legend" x="{lx}" y="76" width="12" height="12" fill="{}"/><text x="{}" y="86">{}</text>"#,
            color(l),
            lx + 16.0,
            l
        );
        lx += 28.0 + 7.0 * l.as_str().len() as f64;
    }
    if r.cells.iter().any(|c| c.mode == Mode::Warm) {
        let _ = writeln!(
            s,
            r##"<rect x="{lx}" y="76" width="12" height="12" fill="#8c8c8c" fill-opacity="0.45"/><text x="{}" y="86">warm (pool)</text>"##,
            lx + 16.0
        );
    }

    // Grid and axis.
    let bottom = height - AXIS + 6.0;
    let mut tick = 0.0;
    while tick <= xmax + step / 2.0 {
        let tx = x(tick);
        let _ = writeln!(s, r##"<line x1="{tx:.1}" y1="{TOP}" x2="{tx:.1}" y2="{bottom}" stroke="#e6e6e6"/>"##);
        let _ = writeln!(
            s,
            r##"<text class="tick" x="{tx:.1}" y="{}" text-anchor="middle" fill="#444">{}</text>"##,
            bottom + 16.0,
            if step >= 1.0 { format!("{tick:.0}") } else { format!("{tick:.1}") }
        );
        tick += step;
    }
    let _ = writeln!(s, r##"<line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#444"/>"##, LEFT + plot);
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#444">milliseconds per run</text>"##,
        LEFT + plot / 2.0,
        bottom + 36.0
    );

    let mut y = TOP;
    for rt in &runtimes {
        let cells = group(rt);
        let _ = writeln!(
            s,
            r#"<text class="group" x="16" y="{}" font-weight="bold" font-size="13">{}</text>"#,
            y + 17.0,
            esc(rt)
        );
        let top = y + GROUP_HEAD - 4.0;
        y += GROUP_HEAD;
        for c in &cells {
            let cy = y + (ROW - BAR) / 2.0;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                LEFT - 8.0,
                cy + BAR - 3.0,
                esc(&c.label())
            );
            match c.total {
                Some(t) => {
                    let w = (x(t.p50) - LEFT).max(1.0);
                    let opacity = if c.mode == Mode::Warm { " fill-opacity=\"0.45\"" } else { "" };
                    let _ = writeln!(
                        s,
                        r#"<rect class="bar" data-runtime="{}" data-level="{}" data-oci="{}" data-mode="{}" data-p50="{:.3}" data-p95="{:.3}" x="{LEFT}" y="{cy}" width="{w:.2}" height="{BAR}" fill="{}"{opacity}/>"#,
                        esc(&c.runtime),
                        c.level,
                        esc(c.oci.as_deref().unwrap_or("")),
                        c.mode.as_str(),
                        t.p50,
                        t.p95,
                        color(c.level)
                    );
                    let (x50, x95, my) = (x(t.p50), x(t.p95), cy + BAR / 2.0);
                    let _ = writeln!(
                        s,
                        r##"<g class="whisker" stroke="#222"><line x1="{x50:.2}" y1="{my}" x2="{x95:.2}" y2="{my}"/><line x1="{x95:.2}" y1="{}" x2="{x95:.2}" y2="{}"/></g>"##,
                        my - 4.0,
                        my + 4.0
                    );
                    let mut label = format!("{} ms", fmt_ms(t.p50));
                    if let (Some(o), false) = (c.overhead, c.level == Level::Bare) {
                        let _ = write!(label, " · {:.1}× bare", o.ratio);
                    }
                    let _ = writeln!(s, r#"<text x="{:.2}" y="{}">{}</text>"#, x95 + 6.0, cy + BAR - 3.0, esc(&label));
                }
                None => {
                    let _ = writeln!(
                        s,
                        r##"<text class="absent" x="{}" y="{}" fill="#777" font-style="italic">{}</text>"##,
                        LEFT + 4.0,
                        cy + BAR - 3.0,
                        esc(&c.absent())
                    );
                }
            }
            y += ROW;
        }
        if let Some(b) = cells.iter().find(|c| c.level == Level::Bare).and_then(|c| c.total) {
            let bx = x(b.p50);
            let _ = writeln!(
                s,
                r##"<line class="baseline" data-runtime="{}" x1="{bx:.2}" y1="{top}" x2="{bx:.2}" y2="{y}" stroke="#333" stroke-dasharray="4 3"/>"##,
                esc(rt)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::output::tests::sample;

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(axis(45.0), (50.0, 10.0));
        assert_eq!(axis(7.3), (8.0, 2.0));
        assert_eq!(axis(260.0), (300.0, 50.0));
        assert_eq!(axis(0.0), (1.0, 0.2));
    }

    #[test]
    fn svg_parses_and_has_one_bar_per_measured_cell() {
        let r = sample();
        let text = svg(&r);
        let doc = roxmltree::Document::parse(&text).expect("the chart is well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let bars: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("bar")).collect();
        assert_eq!(bars.len(), 2, "bun bare and bun seccomp have numbers; the others do not");
        let width = |level: &str| -> f64 {
            bars.iter()
                .find(|b| b.attribute("data-level") == Some(level))
                .unwrap()
                .attribute("width")
                .unwrap()
                .parse()
                .unwrap()
        };
        // Lengths in proportion to the medians (4 ms vs 45 ms).
        assert!((width("seccomp") / width("bare") - 45.0 / 4.0).abs() < 0.01);
        assert_eq!(bars[1].attribute("data-oci"), Some("runc"));
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("whisker")).count(), 2);
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("baseline")).count(), 1);
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.iter().any(|t| t.contains("kernel 6.18.0") && t.contains("runc")), "{texts:?}");
        assert!(texts.contains(&"n/a (no pool)"), "{texts:?}");
        assert!(texts.contains(&"bun@1.4.5") && texts.contains(&"node@24.1.0"), "{texts:?}");
        assert!(texts.iter().any(|t| t.contains("11.2× bare")), "{texts:?}");
        // Every level present appears in the legend.
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("legend")).count(), 3);
    }

    #[test]
    fn text_is_escaped() {
        let mut r = sample();
        r.cells[3].note = Some("<&>".into());
        r.cells[3].status = super::super::output::CellStatus::Unavailable;
        roxmltree::Document::parse(&svg(&r)).expect("escaped");
    }
}
