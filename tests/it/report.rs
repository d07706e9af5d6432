//! Snapshot tests of every exporter on a fixed report (`nslat::report::sample_report`), and the
//! HTML page rendered by headless Chromium. The snapshots are insta's, in
//! `tests/snapshots/report__*.snap`: after a deliberate change run
//! `INSTA_UPDATE=always cargo test --test it report::` (or `cargo insta review`) and review the
//! diff of the `.snap` files before committing them.

use crate::common;

use std::process::Command;

use nslat::compare::CompareReport;
use nslat::report::{
    self, CsvExporter, Exporter, HtmlExporter, JsonExporter, MarkdownExporter, TableExporter,
};

fn render(e: &dyn Exporter) -> String {
    let mut buf = Vec::new();
    e.export(&report::sample_report(), &mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// Compares `actual` with the reviewed snapshot `tests/snapshots/report__NAME.snap` (insta).
/// A difference fails the test and writes `NAME.snap.new` beside it: review it with
/// `cargo insta review` (or accept all with `INSTA_UPDATE=always`), then commit the `.snap`.
fn check_snapshot(name: &str, actual: &str) {
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(format!("report__{name}"), actual);
    });
}

/// What keeps the HTML page self-contained (it is opened from disk, offline, by anyone): no
/// script and no address outside the page, the SVG namespace (an identifier, never fetched)
/// aside. Returns every problem found.
fn self_contained_problems(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if html.contains("<script") {
        problems.push("a <script> element".to_string());
    }
    let rest = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for scheme in ["http://", "https://", "//"] {
        let mut from = 0;
        while let Some(i) = rest[from..].find(scheme) {
            let at = from + i;
            // "//" also ends "http://": only a protocol-relative address (src="//...") counts.
            if scheme != "//" || rest[..at].ends_with('"') || rest[..at].ends_with('\'') {
                let end = rest[at..]
                    .find(|c: char| c == '"' || c == '\'' || c == '<' || c.is_whitespace())
                    .map_or(rest.len(), |e| at + e);
                problems.push(format!("an outside address {}", &rest[at..end]));
            }
            from = at + scheme.len();
        }
    }
    problems
}

#[test]
fn table_snapshot() {
    check_snapshot("table", &render(&TableExporter));
}

#[test]
fn json_snapshot_and_round_trip() {
    let text = render(&JsonExporter);
    check_snapshot("json", &text);
    let back: CompareReport = serde_json::from_str(&text).unwrap();
    // Same document after a decode/encode cycle (serde_json's float parsing may differ in the
    // last ulp, so numbers are compared with a relative tolerance).
    let original = serde_json::to_value(report::sample_report()).unwrap();
    let decoded = serde_json::to_value(&back).unwrap();
    assert!(
        approx_eq(&original, &decoded),
        "round trip changed the report"
    );
}

fn approx_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| approx_eq(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| approx_eq(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn csv_snapshot() {
    let text = render(&CsvExporter);
    check_snapshot("csv", &text);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), report::sample_report().modes.len());
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[1][col("mode")], "bridge");
    assert_eq!(rows[1][col("latency_us_mean")].parse::<f64>().unwrap(), 6.6);
    assert_eq!(&rows[4][col("available")], "false");
    assert_eq!(&rows[4][col("latency_us_mean")], "");
    assert!(headers.iter().any(|h| h == "tp_net_netif_rx_per_tx"));
}

#[test]
fn markdown_snapshot() {
    check_snapshot("markdown", &render(&MarkdownExporter));
}

#[test]
fn html_snapshot() {
    let html = render(&HtmlExporter);
    check_snapshot("html", &html);
    assert_eq!(html.matches("<svg").count(), 3);
    for fact in [
        "Date (UTC)",
        "2026-12-01 20:21:25",
        "Command",
        "Machine",
        "CPU placement",
    ] {
        assert!(html.contains(fact), "header: {fact}");
    }
    assert_eq!(self_contained_problems(&html), Vec::<String>::new());
}

/// The check above finds what the old one (`!script && !http || has the SVG namespace`, true
/// for any page with a plot) let through: a script, an outside address beside the plots.
#[test]
fn the_self_contained_check_finds_a_script_and_an_outside_address() {
    let html = render(&HtmlExporter);
    assert!(self_contained_problems(&html).is_empty());
    let with_script = html.replacen("</body>", "<script>alert(1)</script></body>", 1);
    let with_link = html.replacen(
        "</head>",
        "<link rel=\"stylesheet\" href=\"https://cdn.example/x.css\"></head>",
        1,
    );
    let with_relative = html.replacen("</body>", "<img src=\"//cdn.example/x.png\"></body>", 1);
    for (what, bad) in [
        ("script", &with_script),
        ("https link", &with_link),
        ("protocol-relative image", &with_relative),
    ] {
        assert_ne!(&html, bad, "{what}: the page was not changed");
        assert!(
            bad.contains("xmlns=\"http://www.w3.org/2000/svg\""),
            "{what}: the old check passed any page with an SVG plot"
        );
        assert!(
            !self_contained_problems(bad).is_empty(),
            "{what}: not found in the page"
        );
    }
}

#[test]
fn html_renders_in_headless_chromium() {
    if !common::need_tool("html_renders_in_headless_chromium", "chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = report::write_html_dir(&report::sample_report(), &dir.path().join("out")).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let url = format!("file://{}", page.display());
    let chromium = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1200,1600",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = chromium(&["--dump-dom"]);
    assert_eq!(
        dom.matches("<svg").count(),
        3,
        "three inline SVG plots in the DOM"
    );
    // The percentile plot: its figure, a line per measured mode and the tail axis' ticks.
    let start = dom
        .find("<figure id=\"percentiles\">")
        .expect("the percentile plot's figure");
    let figure = &dom[start..start + dom[start..].find("</figure>").expect("figure end")];
    let lines = figure
        .split("<polyline")
        .skip(1)
        .filter(|p| {
            p.split(" points=\"")
                .nth(1)
                .is_some_and(|pts| pts.split('"').next().unwrap_or("").split(' ').count() >= 20)
        })
        .count();
    assert_eq!(lines, 4, "one percentile line per measured mode");
    for tick in ["50%", "90%", "99%", "99.9%", "99.99%"] {
        assert!(
            figure.contains(&format!(">{tick}<")) || figure.contains(&format!("\n{tick}\n")),
            "tail axis tick {tick}"
        );
    }
    assert!(
        dom.contains("<polyline") || dom.contains("<path"),
        "CDF lines"
    );
    assert!(dom.contains("<rect"), "bars");
    for mode in ["host", "bridge", "ptp", "macvlan"] {
        assert!(
            dom.contains(&format!(">{mode}<")),
            "legend/axis label {mode}"
        );
    }
    chromium(&[&format!("--screenshot={}", shot.display())]);
    let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(len > 10_000, "screenshot written ({len} bytes)");
    if let Ok(keep) = std::env::var("NSLAT_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
