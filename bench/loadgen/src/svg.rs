//! The chart next to the tables (latest.svg): (a) delivered messages/s at the highest
//! sustainable send rate, by room size N, one bar per target; (b) p99 latency against
//! the send rate for one room size (N=100 when it ran), one line per target, from every
//! step run at that N. Both on log scales, with ticks at each power of ten. Plain SVG 1.1
//! with text labels and a legend, so it reads the same rendered on GitHub.

use serde_json::Value;
use std::fmt::Write;

const WIDTH: f64 = 980.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const LEGEND_Y: f64 = 56.0;
/// Panel (a)'s plot area, top to bottom; then panel (b)'s.
const A_TOP: f64 = 120.0;
const A_BOTTOM: f64 = 420.0;
const B_TOP: f64 = 510.0;
const B_BOTTOM: f64 = 810.0;
const HEIGHT: f64 = 870.0;
/// Sustainable fan-out steps have a p99 under this (bench/README.md, "Reading the figures").
const P99_LIMIT_MS: f64 = 50.0;
const PREFERRED_N: u64 = 100;

/// Each target's colour (a colour-blind-safe palette); others grey.
fn colour(target: &str) -> &'static str {
    match target {
        "roomgate" => "#D55E00",
        "roomgate-v1" => "#E69F00",
        "roomgate-no-presence" => "#CC79A7",
        "js-reference" => "#0072B2",
        "js-bare" => "#009E73",
        "js-bare-batched" => "#56B4E9",
        "native" => "#555555",
        _ => "#999999",
    }
}

/// A log10 scale from `[10^lo, 10^hi]` onto pixels `[p0, p1]` (p1 < p0 for a y axis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogScale {
    pub lo: i32,
    pub hi: i32,
    pub p0: f64,
    pub p1: f64,
}

impl LogScale {
    /// The powers of ten around `[min, max]`; `floor_below`: one more below, so that the
    /// smallest value still has a visible bar.
    pub fn covering(min: f64, max: f64, floor_below: bool, p0: f64, p1: f64) -> LogScale {
        let (min, max) = (min.max(1e-6), max.max(min.max(1e-6)));
        let mut lo = min.log10().floor() as i32 - i32::from(floor_below);
        let mut hi = max.log10().ceil() as i32;
        if hi <= lo {
            hi = lo + 1;
        }
        // Headroom above the largest value, for the label over its bar.
        if max.log10() > f64::from(hi) - 0.1 {
            hi += 1;
        }
        lo = lo.min(hi - 1);
        LogScale { lo, hi, p0, p1 }
    }

    /// The pixel of `v` (clamped into the scale).
    pub fn at(&self, v: f64) -> f64 {
        let x = v
            .max(1e-12)
            .log10()
            .clamp(f64::from(self.lo), f64::from(self.hi));
        self.p0 + (self.p1 - self.p0) * (x - f64::from(self.lo)) / f64::from(self.hi - self.lo)
    }

    pub fn decades(&self) -> impl Iterator<Item = f64> {
        (self.lo..=self.hi).map(|k| 10f64.powi(k))
    }
}

/// `1`, `10`, `1k`, `64k`, `1.2M`, `0.5`: a tick or bar label.
pub fn compact(v: f64) -> String {
    // The unit is chosen after rounding: 999,980 is 1.0M, not 1000k.
    let (x, unit) = match v.abs() {
        a if a >= 999_500.0 => (v / 1e6, "M"),
        a if a >= 999.5 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = if x.abs() >= 10.0 || x.fract() == 0.0 {
        0
    } else if x.abs() >= 0.1 {
        1
    } else {
        2
    };
    format!("{x:.digits$}{unit}")
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(v: &Value) -> Option<f64> {
    v.get("median")
        .and_then(Value::as_f64)
        .or_else(|| v.as_f64())
}

fn text(out: &mut String, x: f64, y: f64, attrs: &str, s: &str) {
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" {attrs}>{}</text>"#,
        esc(s)
    );
}

/// Grid lines and labels at each power of ten of a y scale, across `[x0, x1]`.
fn y_axis(out: &mut String, y: &LogScale, x0: f64, x1: f64, title: &str) {
    for v in y.decades() {
        let py = y.at(v);
        let _ = writeln!(
            out,
            r##"<line x1="{x0:.1}" y1="{py:.1}" x2="{x1:.1}" y2="{py:.1}" stroke="#dddddd"/>"##
        );
        text(
            out,
            x0 - 6.0,
            py + 4.0,
            r#"text-anchor="end" font-size="11""#,
            &compact(v),
        );
    }
    let (top, bottom) = (y.p1, y.p0);
    let _ = writeln!(
        out,
        r##"<line x1="{x0:.1}" y1="{top:.1}" x2="{x0:.1}" y2="{bottom:.1}" stroke="#333333"/>"##
    );
    let mid = (top + bottom) / 2.0;
    text(
        out,
        24.0,
        mid,
        &format!(r#"text-anchor="middle" font-size="12" transform="rotate(-90 24 {mid:.1})""#),
        title,
    );
}

/// Panel (a): one group of bars per N, one bar per target with a figure.
fn bars(out: &mut String, results: &Value, names: &[&str], ns: &[u64]) {
    let figure = |t: &str, n: u64| -> Option<(f64, bool)> {
        let f = results["targets"][t].pointer(&format!("/fanout/{n}"))?;
        // No rate confirmed: no figure at the highest sustainable rate to draw.
        if !crate::report::confirmed(f) {
            return None;
        }
        let v = number(&f["delivered_per_s"])?;
        let lower_bound =
            f["generator_limited"] == Value::Bool(true) || f["sweep_hit_cap"] == Value::Bool(true);
        (v > 0.0).then_some((v, lower_bound))
    };
    text(
        out,
        LEFT,
        A_TOP - 16.0,
        r#"font-size="14" font-weight="bold""#,
        "(a) Delivered messages/s at the highest sustainable send rate, by room size N",
    );
    let values: Vec<f64> = ns
        .iter()
        .flat_map(|&n| names.iter().filter_map(move |t| figure(t, n)))
        .map(|(v, _)| v)
        .collect();
    let x0 = LEFT;
    let x1 = WIDTH - RIGHT;
    if values.is_empty() {
        text(
            out,
            (x0 + x1) / 2.0,
            (A_TOP + A_BOTTOM) / 2.0,
            r#"text-anchor="middle" font-size="13""#,
            "no fan-out figures in this run",
        );
        return;
    }
    let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = values.iter().cloned().fold(0.0, f64::max);
    let y = LogScale::covering(min, max, true, A_BOTTOM, A_TOP);
    y_axis(out, &y, x0, x1, "delivered msg/s (log scale)");
    let group_w = (x1 - x0) / ns.len() as f64;
    for (g, &n) in ns.iter().enumerate() {
        let present: Vec<(&str, f64, bool)> = names
            .iter()
            .filter_map(|t| figure(t, n).map(|(v, lb)| (*t, v, lb)))
            .collect();
        let gx = x0 + g as f64 * group_w;
        text(
            out,
            gx + group_w / 2.0,
            A_BOTTOM + 20.0,
            r#"text-anchor="middle" font-size="12""#,
            &format!("N={n}"),
        );
        let bar_w = (group_w * 0.8 / present.len().max(1) as f64).min(60.0);
        let start = gx + (group_w - bar_w * present.len() as f64) / 2.0;
        for (i, (t, v, lower_bound)) in present.iter().enumerate() {
            let bx = start + i as f64 * bar_w;
            let top = y.at(*v);
            let h = A_BOTTOM - top;
            let label = format!("{}{}", if *lower_bound { "≥" } else { "" }, compact(*v));
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}, N={n}: {v:.0} msg/s{}</title></rect>"#,
                bx + 1.0,
                bar_w - 2.0,
                colour(t),
                esc(t),
                if *lower_bound {
                    " (a lower bound: the generator's or the sweep's limit)"
                } else {
                    ""
                }
            );
            text(
                out,
                bx + bar_w / 2.0,
                top - 4.0,
                r#"text-anchor="middle" font-size="10""#,
                &label,
            );
        }
    }
    let _ = writeln!(
        out,
        r##"<line x1="{x0:.1}" y1="{A_BOTTOM:.1}" x2="{x1:.1}" y2="{A_BOTTOM:.1}" stroke="#333333"/>"##
    );
    text(
        out,
        x1,
        A_BOTTOM + 38.0,
        r##"text-anchor="end" font-size="11" fill="#555555""##,
        "≥: a lower bound (the generator's core was saturated, or the sweep reached its cap); no bar: no rate confirmed",
    );
}

/// A fan-out step, or the steps at one rate, in panel (b).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    rate: f64,
    p99_ms: f64,
    sustainable: bool,
}

/// Every fan-out step run at N=`n` for `t`.
fn steps(results: &Value, t: &str, n: u64) -> Vec<Point> {
    let f = &results["targets"][t]["fanout"][n.to_string()];
    let mut all: Vec<&Value> = vec![];
    for key in ["sweep", "repetitions"] {
        all.extend(f[key].as_array().into_iter().flatten());
    }
    for round in f["unconfirmed_rates"].as_array().into_iter().flatten() {
        all.extend(round["repetitions"].as_array().into_iter().flatten());
    }
    all.iter()
        .filter_map(|s| {
            Some(Point {
                rate: s["offered_per_s"].as_f64()?,
                p99_ms: s["latency"]["p99_ms"].as_f64()?,
                sustainable: s["sustainable"] == Value::Bool(true),
            })
        })
        .filter(|p| p.rate > 0.0 && p.p99_ms > 0.0)
        .collect()
}

/// One point per rate: the median p99 of the steps at it, and whether most were
/// sustainable.
fn per_rate(mut steps: Vec<Point>) -> Vec<Point> {
    steps.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let mut out = vec![];
    for chunk in steps.chunk_by(|a, b| a.rate == b.rate) {
        let p99s: Vec<f64> = chunk.iter().map(|s| s.p99_ms).collect();
        let ok = chunk.iter().filter(|s| s.sustainable).count();
        if let Some(m) = crate::stats::median(&p99s) {
            out.push(Point {
                rate: chunk[0].rate,
                p99_ms: m,
                sustainable: ok * 2 > chunk.len(),
            });
        }
    }
    out
}

/// Panel (b): p99 against the send rate at N=`n`, a line per target.
fn lines(out: &mut String, results: &Value, names: &[&str], n: Option<u64>) {
    let series: Vec<(&str, Vec<Point>)> = n.map_or(vec![], |n| {
        names
            .iter()
            .map(|t| (*t, per_rate(steps(results, t, n))))
            .filter(|(_, pts)| !pts.is_empty())
            .collect()
    });
    text(
        out,
        LEFT,
        B_TOP - 16.0,
        r#"font-size="14" font-weight="bold""#,
        &format!(
            "(b) p99 latency against send rate, N={}: every step of the sweep and the repetitions",
            n.map_or("—".into(), |n| n.to_string())
        ),
    );
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let pts = || series.iter().flat_map(|(_, p)| p.iter());
    if series.is_empty() {
        text(
            out,
            (x0 + x1) / 2.0,
            (B_TOP + B_BOTTOM) / 2.0,
            r#"text-anchor="middle" font-size="13""#,
            "no fan-out steps in this run",
        );
        return;
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, g: fn(&Point) -> f64| pts().map(g).fold(init, f);
    let x = LogScale::covering(
        fold(f64::min, f64::INFINITY, |p| p.rate),
        fold(f64::max, 0.0, |p| p.rate),
        false,
        x0,
        x1,
    );
    let y = LogScale::covering(
        fold(f64::min, P99_LIMIT_MS, |p| p.p99_ms),
        fold(f64::max, P99_LIMIT_MS, |p| p.p99_ms),
        false,
        B_BOTTOM,
        B_TOP,
    );
    y_axis(out, &y, x0, x1, "p99 latency (ms, log scale)");
    for v in x.decades() {
        let px = x.at(v);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{B_BOTTOM:.1}" x2="{px:.1}" y2="{:.1}" stroke="#333333"/>"##,
            B_BOTTOM + 5.0
        );
        text(
            out,
            px,
            B_BOTTOM + 18.0,
            r#"text-anchor="middle" font-size="11""#,
            &compact(v),
        );
    }
    let _ = writeln!(
        out,
        r##"<line x1="{x0:.1}" y1="{B_BOTTOM:.1}" x2="{x1:.1}" y2="{B_BOTTOM:.1}" stroke="#333333"/>"##
    );
    text(
        out,
        (x0 + x1) / 2.0,
        B_BOTTOM + 38.0,
        r#"text-anchor="middle" font-size="12""#,
        "send rate (msg/s, log scale); filled: most steps at that rate sustainable, hollow: not",
    );
    let limit = y.at(P99_LIMIT_MS);
    let _ = writeln!(
        out,
        r##"<line x1="{x0:.1}" y1="{limit:.1}" x2="{x1:.1}" y2="{limit:.1}" stroke="#aa0000" stroke-dasharray="6 4"/>"##
    );
    text(
        out,
        x1 - 4.0,
        limit - 5.0,
        r##"text-anchor="end" font-size="11" fill="#aa0000""##,
        "p99 50 ms: the limit of a sustainable step",
    );
    for (t, p) in &series {
        let c = colour(t);
        let path: Vec<String> = p
            .iter()
            .map(|p| format!("{:.1},{:.1}", x.at(p.rate), y.at(p.p99_ms)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for pt in p {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}" stroke="{c}" stroke-width="1.5"><title>{}, {:.0} msg/s: p99 {:.2} ms</title></circle>"#,
                x.at(pt.rate),
                y.at(pt.p99_ms),
                if pt.sustainable { c } else { "#ffffff" },
                esc(t),
                pt.rate,
                pt.p99_ms
            );
        }
    }
}

/// The chart of a run's results (the JSON written to latest.json).
pub fn chart(results: &Value) -> String {
    let names: Vec<&str> = crate::report::targets(results)
        .into_iter()
        .filter(|(_, v)| v.get("fanout").is_some_and(Value::is_object))
        .map(|(n, _)| n)
        .collect();
    let ns: Vec<u64> = results["config"]["fanout_n"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let line_n = ns
        .iter()
        .copied()
        .find(|&n| n == PREFERRED_N)
        .or(ns.first().copied());
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let mut title = String::from("roomgate fan-out benchmark");
    if let Some(d) = results["machine"]["date"].as_str() {
        let _ = write!(title, ", {d}");
    }
    if results["config"]["quick"] == Value::Bool(true) {
        title.push_str(" (--quick: a smoke test, not a measurement)");
    }
    text(
        &mut out,
        LEFT,
        28.0,
        r#"font-size="16" font-weight="bold""#,
        &title,
    );
    let mut lx = LEFT;
    for t in &names {
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="14" fill="{}"/>"#,
            LEGEND_Y - 11.0,
            colour(t)
        );
        text(&mut out, lx + 20.0, LEGEND_Y, r#"font-size="12""#, t);
        lx += 34.0 + 6.5 * t.chars().count() as f64;
    }
    bars(&mut out, results, &names, &ns);
    lines(&mut out, results, &names, line_n);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Checks that `s` is well-formed XML: tags nest and close, attribute values are
    /// quoted, text holds no raw `<` and only entity `&`s. Returns the root's name.
    fn well_formed(s: &str) -> Result<String, String> {
        let mut stack: Vec<String> = vec![];
        let mut root = None;
        let mut rest = s;
        while let Some(open) = rest.find('<') {
            let text = &rest[..open];
            for (i, _) in text.match_indices('&') {
                let ent = &text[i..];
                if !["&amp;", "&lt;", "&gt;", "&quot;"]
                    .iter()
                    .any(|e| ent.starts_with(e))
                {
                    return Err(format!("bare & in {text:?}"));
                }
            }
            let close = rest[open..].find('>').ok_or("unclosed tag")? + open;
            let tag = &rest[open + 1..close];
            if tag.contains('<') {
                return Err(format!("< inside a tag: {tag:?}"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                let top = stack.pop().ok_or(format!("</{name}> with nothing open"))?;
                if top != name.trim() {
                    return Err(format!("</{name}> closes <{top}>"));
                }
            } else {
                let self_closing = tag.ends_with('/');
                let body = tag.trim_end_matches('/');
                let name = body.split_whitespace().next().ok_or("empty tag")?;
                // Attributes: name="value" pairs, quotes balanced.
                if !body.matches('"').count().is_multiple_of(2) {
                    return Err(format!("unbalanced quotes in <{body}>"));
                }
                for attr in body[name.len()..].split('"').step_by(2) {
                    let a = attr.trim();
                    if !a.is_empty() && !a.ends_with('=') {
                        return Err(format!("unquoted attribute {a:?} in <{name}>"));
                    }
                }
                if root.is_none() {
                    root = Some(name.to_owned());
                } else if stack.is_empty() {
                    return Err(format!("a second root <{name}>"));
                }
                if !self_closing {
                    stack.push(name.to_owned());
                }
            }
            rest = &rest[close + 1..];
        }
        if !stack.is_empty() {
            return Err(format!("left open: {stack:?}"));
        }
        if !rest.trim().is_empty() {
            return Err(format!("text after the root: {rest:?}"));
        }
        root.ok_or("no element".into())
    }

    fn step(rate: u64, p99: f64, sustainable: bool) -> Value {
        json!({"offered_per_s": rate, "latency": {"p99_ms": p99}, "sustainable": sustainable})
    }

    fn results() -> Value {
        let fan = |d10: f64, d100: f64, limited: bool| {
            json!({
                "10": {"delivered_per_s": {"median": d10}, "generator_limited": false, "sweep_hit_cap": false},
                "100": {
                    "delivered_per_s": {"median": d100},
                    "generator_limited": limited,
                    "sweep_hit_cap": false,
                    "sweep": [step(20, 2.0, true), step(40, 3.0, true), step(80, 90.0, false), step(80, 95.0, false)],
                    "repetitions": [step(40, 4.0, true)],
                    "unconfirmed_rates": [{"rate_per_s": 60, "repetitions": [step(60, 70.0, false)]}],
                },
            })
        };
        json!({
            "config": {"fanout_n": [10, 100], "quick": true},
            "machine": {"date": "2026-12-03T10:00:00Z"},
            "targets": {
                "roomgate": {"fanout": fan(19_000.0, 64_000.0, false)},
                "roomgate-no-presence": {"upgrades": {}},
                "js-reference": {"fanout": fan(15_360.0, 60_000.0, false)},
                "js-bare-batched": {"fanout": fan(100_000.0, 1_000.0, true)},
                "js-bare": {"fanout": {"10": {"delivered_per_s": {"median": 5_000.0}, "confirmed": false}}},
                "native": {"error": "did not start"},
            }
        })
    }

    #[test]
    fn log_scales_put_each_power_of_ten_evenly() {
        let y = LogScale::covering(20.0, 5_000.0, false, 300.0, 0.0);
        assert_eq!((y.lo, y.hi), (1, 4));
        assert_eq!(y.at(10.0), 300.0);
        assert_eq!(y.at(100.0), 200.0);
        assert_eq!(y.at(10_000.0), 0.0);
        assert!(y.at(20.0) < y.at(10.0) && y.at(5_000.0) > 0.0);
        assert_eq!(
            y.decades().collect::<Vec<_>>(),
            [10.0, 100.0, 1_000.0, 10_000.0]
        );
        // Bars start a power of ten below the smallest value; a power of ten at the top
        // gets one more above it, and a single value still spans a decade.
        let b = LogScale::covering(1_000.0, 100_000.0, true, 0.0, 1.0);
        assert_eq!((b.lo, b.hi), (2, 6));
        let one = LogScale::covering(50.0, 50.0, false, 0.0, 1.0);
        assert_eq!((one.lo, one.hi), (1, 2));
        // Out of range: clamped to the edges.
        assert_eq!(y.at(1.0), 300.0);
        assert_eq!(y.at(1e9), 0.0);
    }

    #[test]
    fn labels_are_compact() {
        assert_eq!(compact(1.0), "1");
        assert_eq!(compact(1_000.0), "1k");
        assert_eq!(compact(63_979.0), "64k");
        assert_eq!(compact(9_000.0), "9k");
        assert_eq!(compact(1_200.0), "1.2k");
        assert_eq!(compact(999_980.0), "1.0M");
        assert_eq!(compact(999.7), "1.0k");
        assert_eq!(compact(1_200_000.0), "1.2M");
        assert_eq!(compact(0.1), "0.1");
        assert_eq!(compact(0.01), "0.01");
    }

    #[test]
    fn the_chart_is_well_formed_and_shows_every_target_with_fan_out_figures() {
        let svg = chart(&results());
        assert_eq!(well_formed(&svg), Ok("svg".into()), "{svg}");
        for t in ["roomgate", "js-reference", "js-bare-batched"] {
            assert!(svg.contains(&format!(">{t}</text>")), "legend lacks {t}");
            assert!(
                svg.contains(&format!("<title>{t}, N=100: ")),
                "no bar for {t}"
            );
            assert!(
                svg.contains(&format!("<title>{t}, 40 msg/s: p99 ")),
                "no point for {t}"
            );
        }
        // A room size without a confirmed rate gets no bar.
        assert!(!svg.contains("<title>js-bare, N=10: "), "{svg}");
        // No fan-out figures: not in the legend.
        assert!(!svg.contains(">roomgate-no-presence<"));
        assert!(!svg.contains(">native<"));
        assert!(svg.contains("--quick"));
        // A generator-limited figure is marked as a lower bound.
        assert!(svg.contains(">≥1k</text>"), "{svg}");
        assert!(svg.contains(">64k</text>"));
    }

    #[test]
    fn bars_and_points_sit_where_the_scales_put_them() {
        let svg = chart(&results());
        // Bars: values 1,000 … 100,000 → from 10^2 (one power below) to 10^5 (+1 as
        // 100,000 is a power itself: 10^6).
        let y = LogScale::covering(1_000.0, 100_000.0, true, A_BOTTOM, A_TOP);
        let top = y.at(64_000.0);
        let h = A_BOTTOM - top;
        assert!(
            svg.contains(&format!(r#"y="{top:.1}" width="#))
                && svg.contains(&format!(r#"height="{h:.1}" fill="{}""#, colour("roomgate"))),
            "no roomgate bar of height {h:.1}"
        );
        // Points: the median p99 per rate (80/s: 90 and 95 → 92.5), hollow where the
        // steps at that rate were not sustainable.
        assert!(svg.contains("80 msg/s: p99 92.50 ms"));
        assert!(svg.contains("40 msg/s: p99 3.50 ms"));
        assert!(svg.contains(r##"fill="#ffffff" stroke="#D55E00""##));
        // The 50 ms limit is drawn.
        assert!(svg.contains("stroke-dasharray"));
    }

    #[test]
    fn a_run_without_fan_out_still_gives_a_valid_chart() {
        let r = json!({"config": {"fanout_n": [10, 100]}, "targets": {"js-reference": {"upgrades": {}}}});
        let svg = chart(&r);
        assert_eq!(well_formed(&svg), Ok("svg".into()), "{svg}");
        assert!(svg.contains("no fan-out figures in this run"));
        assert!(svg.contains("no fan-out steps in this run"));
        assert_eq!(
            well_formed("<svg><g></svg>"),
            Err("</svg> closes <g>".into())
        );
        assert!(well_formed(r#"<svg a=b></svg>"#).is_err());
        assert!(well_formed("<svg>a & b</svg>").is_err());
    }
}
