//! Where each mode's capacity ends, from the rate sweep's points: three markers per mode, each
//! as a ratio to the host's with an interval, and the next rate `auto` measures to find them.
//!
//! A point (one mode at one offered rate) comes in [`WINDOWS`] sub-windows of consecutive
//! interleaved rounds, each with its own p99 and achieved rate. On a VM a vCPU stopped for a
//! millisecond puts one window's p99 over any bound; queueing past a knee puts every window's
//! there. So a point crosses only when at least 6 of its 10 windows do:
//!
//! - **knee**: the p99 bound: a window crosses when its p99 exceeds `factor ×` the mode's idle
//!   p99, the median window p99 over the rates from [`IDLE_FROM_RPS`] to [`IDLE_TO_RPS`];
//! - **wall**: the throughput: a window crosses when it achieves under [`WALL_SHARE`] of the
//!   offered rate;
//! - **kept**: what the mode still sustains at the wall's first crossing rate (the mean window
//!   achieved rate there).
//!
//! A rate crosses when every measurement at it crossed: `auto` bisects every (last under,
//! first over) bracket geometrically until it is within [`BISECT_UNTIL`], then measures each
//! mode's first crossing again before believing it (a fluke that does not repeat moves the
//! crossing up and reopens the bracket).
//! A marker's value is the bracket's lower end, its interval the bracket; the ratio's interval
//! to the host is [lo / host's hi, hi / host's lo].

use std::collections::BTreeMap;

use super::model::{Knee, Marker, Point};

/// Sub-windows per point.
pub const WINDOWS: usize = 10;
/// The idle rates: a mode's idle p99 is the median window p99 over points from here...
pub const IDLE_FROM_RPS: f64 = 2_000.0;
/// ... to here.
pub const IDLE_TO_RPS: f64 = 8_000.0;
/// Without a point in the idle rates: the points up to this many times the lowest rate.
pub const FALLBACK_IDLE_SPAN: f64 = 4.0;
/// A window is short of the offered rate below this share of it.
pub const WALL_SHARE: f64 = 0.99;
/// `auto` bisects a bracket until hi / lo is at most this.
pub const BISECT_UNTIL: f64 = 1.05;

/// Windows that must cross for a point to cross: 6 of 10 (at least one).
pub fn crossing_windows(n: usize) -> usize {
    (n * 6).div_ceil(10).max(1)
}

/// One mode's measurements at one offered rate (several when a crossing was confirmed).
struct AtRate<'a> {
    rate: f64,
    points: Vec<&'a Point>,
}

fn offered(p: &Point) -> f64 {
    p.rate.map_or(f64::NAN, |r| r.offered_rps)
}

/// `mode`'s points grouped by offered rate, ascending.
fn by_rate<'a>(points: &'a [Point], mode: &str) -> Vec<AtRate<'a>> {
    let mut m: BTreeMap<i64, AtRate<'a>> = BTreeMap::new();
    for p in points
        .iter()
        .filter(|p| p.mode.as_deref() == Some(mode) && p.rate.is_some())
    {
        let r = offered(p);
        m.entry((r * 1000.0).round() as i64)
            .or_insert(AtRate {
                rate: r,
                points: Vec::new(),
            })
            .points
            .push(p);
    }
    m.into_values().collect()
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

/// The points a mode's idle figures come from: the idle rates, or the lowest ones.
fn idle_points<'a>(rates: &[AtRate<'a>]) -> Vec<&'a Point> {
    let inside: Vec<&Point> = rates
        .iter()
        .filter(|r| (IDLE_FROM_RPS..=IDLE_TO_RPS).contains(&r.rate))
        .flat_map(|r| r.points.iter().copied())
        .collect();
    if !inside.is_empty() {
        return inside;
    }
    let Some(low) = rates.first().map(|r| r.rate) else {
        return Vec::new();
    };
    rates
        .iter()
        .filter(|r| r.rate <= low * FALLBACK_IDLE_SPAN)
        .flat_map(|r| r.points.iter().copied())
        .collect()
}

/// The median window p99 over the idle points (a point without windows counts its p99), µs.
fn idle_p99(rates: &[AtRate]) -> Option<f64> {
    median(
        idle_points(rates)
            .iter()
            .flat_map(|p| {
                if p.windows.is_empty() {
                    vec![p.latency_us.p99]
                } else {
                    p.windows.iter().map(|w| w.p99_us).collect()
                }
            })
            .collect(),
    )
}

/// The point's p99 is over `bound` in at least 6 of its 10 windows.
pub fn over(p: &Point, bound: f64) -> bool {
    if p.windows.is_empty() {
        return p.latency_us.p99 > bound;
    }
    let n = p.windows.iter().filter(|w| w.p99_us > bound).count();
    n >= crossing_windows(p.windows.len())
}

/// The point achieved under [`WALL_SHARE`] of its offered rate in at least 6 of its 10 windows.
pub fn short(p: &Point) -> bool {
    let Some(r) = p.rate else { return false };
    let floor = WALL_SHARE * r.offered_rps;
    if p.windows.is_empty() {
        return r.achieved_rps < floor;
    }
    let n = p.windows.iter().filter(|w| w.achieved_rps < floor).count();
    n >= crossing_windows(p.windows.len())
}

/// Where a mode first crosses: `hi` the lowest rate every measurement of which crossed, `lo`
/// the rate measured just below it (`hi` `None`: never crossed; `lo` the highest rate).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Crossing {
    lo: Option<f64>,
    hi: Option<f64>,
    confirmed: bool,
}

fn crossing(rates: &[AtRate], crossed: impl Fn(&Point) -> bool) -> Crossing {
    match rates
        .iter()
        .position(|r| r.points.iter().all(|p| crossed(p)))
    {
        Some(i) => Crossing {
            lo: i.checked_sub(1).map(|j| rates[j].rate),
            hi: Some(rates[i].rate),
            confirmed: rates[i].points.len() >= 2,
        },
        None => Crossing {
            lo: rates.last().map(|r| r.rate),
            hi: None,
            confirmed: false,
        },
    }
}

/// A mode's two crossings and its idle p99.
struct Crossings {
    idle: f64,
    knee: Crossing,
    wall: Crossing,
}

fn crossings(rates: &[AtRate], factor: f64) -> Option<Crossings> {
    let idle = idle_p99(rates)?;
    let bound = idle * factor;
    Some(Crossings {
        idle,
        knee: crossing(rates, |p| over(p, bound)),
        wall: crossing(rates, short),
    })
}

fn bracket_marker(c: &Crossing) -> Marker {
    Marker {
        rps: c.lo,
        lo: c.lo,
        hi: c.hi,
        confirmed: c.confirmed,
        vs_host: None,
        vs_host_range: None,
    }
}

/// The mean window achieved rate over the points at `rate` and its 95 % interval.
fn kept_marker(rates: &[AtRate], wall: &Crossing) -> Marker {
    let Some(at) = wall.hi.and_then(|h| rates.iter().find(|r| r.rate == h)) else {
        return Marker::default();
    };
    let xs: Vec<f64> = at
        .points
        .iter()
        .flat_map(|p| {
            if p.windows.is_empty() {
                vec![p.rate.map_or(f64::NAN, |r| r.achieved_rps)]
            } else {
                p.windows.iter().map(|w| w.achieved_rps).collect()
            }
        })
        .filter(|x| x.is_finite())
        .collect();
    let Some(m) = crate::stats::mean_ci95(&xs) else {
        return Marker::default();
    };
    let h = m.ci95.unwrap_or(0.0);
    Marker {
        rps: Some(m.mean),
        lo: Some(m.mean - h),
        hi: Some(m.mean + h),
        confirmed: wall.confirmed,
        vs_host: None,
        vs_host_range: None,
    }
}

fn mean_of<'a>(
    points: impl Iterator<Item = &'a Point>,
    f: impl Fn(&Point) -> Option<f64>,
) -> Option<f64> {
    let xs: Vec<f64> = points.filter_map(f).filter(|x| x.is_finite()).collect();
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

fn vs(m: &mut Marker, host: &Marker) {
    if let (Some(a), Some(h)) = (m.rps, host.rps) {
        if h > 0.0 {
            m.vs_host = Some(a / h);
        }
    }
    if let (Some(lo), Some(hi), Some(hlo), Some(hhi)) = (m.lo, m.hi, host.lo, host.hi) {
        if hlo > 0.0 && hhi > 0.0 {
            m.vs_host_range = Some((lo / hhi, hi / hlo));
        }
    }
}

/// Every mode's markers over `points` (any order), the bound `factor ×` its idle p99; ratios
/// to the mode named `host`.
pub fn knees(points: &[Point], modes: &[String], factor: f64) -> Vec<Knee> {
    let mut out: Vec<Knee> = Vec::new();
    for mode in modes {
        let rates = by_rate(points, mode);
        let Some(c) = crossings(&rates, factor) else {
            continue;
        };
        let idle = idle_points(&rates);
        let at_knee = c
            .knee
            .lo
            .and_then(|l| rates.iter().find(|r| r.rate == l))
            .map(|r| r.points.clone())
            .unwrap_or_default();
        out.push(Knee {
            mode: mode.clone(),
            idle_p99_us: c.idle,
            bound_us: c.idle * factor,
            knee: bracket_marker(&c.knee),
            wall: bracket_marker(&c.wall),
            kept: kept_marker(&rates, &c.wall),
            backlog_pkts_per_req: mean_of(idle.iter().copied(), |p| {
                p.rate?.counters.map(|c| c.backlog_pkts_per_req)
            }),
            net_rx_per_req: mean_of(idle.iter().copied(), |p| {
                p.rate?.counters.map(|c| c.net_rx_per_req)
            }),
            cpu_us_per_req: mean_of(at_knee.iter().copied(), |p| {
                p.rate.map(|r| r.cpu_us_per_req)
            }),
        });
    }
    if let Some(h) = out.iter().find(|k| k.mode == "host").cloned() {
        for k in &mut out {
            vs(&mut k.knee, &h.knee);
            vs(&mut k.wall, &h.wall);
            vs(&mut k.kept, &h.kept);
        }
    }
    out
}

/// The next rate `auto` measures given what is measured, `None` when done: climbs ×2 from
/// `start` until every mode has crossed both its bound and its wall (or `cap`); then bisects
/// the open brackets, the midpoint that falls in the most brackets first (one point measures
/// every mode); then measures each first crossing a second time.
pub fn next_rate(
    points: &[Point],
    modes: &[String],
    factor: f64,
    start: f64,
    cap: f64,
) -> Option<f64> {
    let mut measured: Vec<f64> = points
        .iter()
        .map(offered)
        .filter(|r| r.is_finite())
        .collect();
    measured.sort_by(f64::total_cmp);
    measured.dedup();
    let Some(&top) = measured.last() else {
        return Some(start.min(cap));
    };
    let all: Vec<Crossings> = modes
        .iter()
        .filter_map(|m| crossings(&by_rate(points, m), factor))
        .collect();
    let past = all.len() == modes.len()
        && all
            .iter()
            .all(|c| c.knee.hi.is_some() && c.wall.hi.is_some());
    if !past && top < cap {
        return Some((top * 2.0).min(cap));
    }
    let xs = || all.iter().flat_map(|c| [c.knee, c.wall]);
    let open: Vec<(f64, f64)> = xs()
        .filter_map(|x| match (x.lo, x.hi) {
            (Some(lo), Some(hi)) if hi / lo > BISECT_UNTIL => Some((lo, hi)),
            _ => None,
        })
        .collect();
    let mid = open
        .iter()
        .map(|&(lo, hi)| {
            let mid = (lo * hi).sqrt().round();
            let inside = open.iter().filter(|(a, b)| *a < mid && mid < *b).count();
            (inside, hi / lo, mid)
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, mid)| mid);
    // Bisected: measure each first crossing again (the lowest first; a fluke that does not
    // repeat reopens its bracket).
    mid.or_else(|| {
        xs().filter(|x| !x.confirmed)
            .filter_map(|x| x.hi)
            .reduce(f64::min)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::model::RateWindow;

    /// A point of `mode` at `rate` whose windows have these p99s and achieve `share` of it.
    fn pt(mode: &str, rate: f64, p99s: &[f64], share: f64) -> Point {
        let mut p = crate::report::sweep::sample_rate().points[0].clone();
        p.mode = Some(mode.into());
        let r = p.rate.as_mut().unwrap();
        r.offered_rps = rate;
        r.achieved_rps = rate * share;
        if let Some(c) = r.counters.as_mut() {
            c.backlog_pkts_per_req = if mode == "host" { 2.0 } else { 5.0 };
        }
        p.windows = p99s
            .iter()
            .map(|&p99_us| RateWindow {
                p50_us: p99_us / 3.0,
                p99_us,
                achieved_rps: rate * share,
                completed: 100,
                lost: 0,
            })
            .collect();
        p.latency_us.p99 = p99s.iter().copied().fold(0.0, f64::max);
        p
    }

    /// A model mode: p99 30 µs until `knee`, 1 ms past it; achieves everything until `wall`,
    /// then `wall` itself; optionally one window stalled (2 ms) at every rate.
    fn model(mode: &str, rate: f64, knee: f64, wall: f64, stall: bool) -> Point {
        let mut w = [if rate <= knee { 30.0 } else { 1000.0 }; WINDOWS];
        if stall {
            w[(rate as usize / 1000) % WINDOWS] = 2000.0;
        }
        pt(
            mode,
            rate,
            &w,
            if rate <= wall { 0.999 } else { wall / rate },
        )
    }

    #[test]
    fn six_of_ten_windows_cross_not_one_stall() {
        assert_eq!(crossing_windows(10), 6);
        assert_eq!(crossing_windows(20), 12);
        assert_eq!(crossing_windows(1), 1);
        let mut w = [30.0; 10];
        w[3] = 5000.0; // one VM stall: its window's p99 is far over
        assert!(!over(&pt("host", 4000.0, &w, 1.0), 90.0));
        for x in w.iter_mut().take(5) {
            *x = 200.0;
        }
        assert!(!over(&pt("host", 4000.0, &w, 1.0), 90.0), "5 of 10");
        w[5] = 200.0;
        assert!(over(&pt("host", 4000.0, &w, 1.0), 90.0), "6 of 10");
        assert!(!short(&pt("host", 4000.0, &w, 0.995)));
        assert!(short(&pt("host", 4000.0, &w, 0.98)));
    }

    #[test]
    fn idle_is_the_median_window_p99_at_the_idle_rates() {
        let pts = vec![
            pt("host", 2000.0, &[40.0, 40.0, 40.0, 900.0], 1.0),
            pt("host", 4000.0, &[30.0, 30.0, 30.0, 30.0], 1.0),
            pt("host", 8000.0, &[35.0, 35.0, 35.0, 35.0], 1.0),
            pt("host", 16000.0, &[10.0; 4], 1.0), // outside the idle rates
        ];
        let k = &knees(&pts, &["host".into()], 3.0)[0];
        assert_eq!(k.idle_p99_us, 35.0);
        assert_eq!(k.bound_us, 105.0);
        // No point in 2,000..8,000/s: the lowest rates up to 4× the lowest.
        let pts = vec![
            pt("host", 10_000.0, &[50.0, 60.0], 1.0),
            pt("host", 30_000.0, &[70.0, 70.0], 1.0),
            pt("host", 50_000.0, &[1.0, 1.0], 1.0),
        ];
        assert_eq!(knees(&pts, &["host".into()], 3.0)[0].idle_p99_us, 65.0);
    }

    #[test]
    fn markers_and_their_ratios_to_the_host_with_intervals() {
        let mut pts = Vec::new();
        for rate in [
            2000.0, 4000.0, 8000.0, 16000.0, 32000.0, 40000.0, 48000.0, 64000.0,
        ] {
            pts.push(model("host", rate, 40_000.0, 60_000.0, true));
            pts.push(model("bridge", rate, 32_000.0, 45_000.0, true));
        }
        let modes = ["host".to_string(), "bridge".to_string()];
        let k = knees(&pts, &modes, 3.0);
        assert_eq!(
            k[0].idle_p99_us, 30.0,
            "the stalled windows do not move the median"
        );
        assert_eq!(
            (k[0].knee.lo, k[0].knee.hi),
            (Some(40_000.0), Some(48_000.0))
        );
        assert_eq!(
            (k[1].knee.lo, k[1].knee.hi),
            (Some(32_000.0), Some(40_000.0))
        );
        assert_eq!(k[0].knee.vs_host, Some(1.0));
        assert_eq!(k[1].knee.vs_host, Some(0.8));
        assert_eq!(k[1].knee.vs_host_range, Some((32.0 / 48.0, 1.0)));
        assert_eq!(
            (k[0].wall.lo, k[0].wall.hi),
            (Some(48_000.0), Some(64_000.0))
        );
        assert_eq!(
            (k[1].wall.lo, k[1].wall.hi),
            (Some(40_000.0), Some(48_000.0))
        );
        // Kept: what each still achieves at its wall's first short rate.
        assert!((k[0].kept.rps.unwrap() - 60_000.0).abs() < 1e-6);
        assert!((k[1].kept.rps.unwrap() - 45_000.0).abs() < 1e-6);
        assert!((k[1].kept.vs_host.unwrap() - 0.75).abs() < 1e-9);
        assert!(!k[1].knee.confirmed, "measured once");
        assert_eq!(k[1].backlog_pkts_per_req, Some(5.0));
        // A mode that never crosses: the highest rate is a lower bound, no interval.
        let flat: Vec<Point> = [2000.0, 4000.0]
            .iter()
            .map(|&r| model("host", r, 1e9, 1e9, false))
            .collect();
        let k = &knees(&flat, &["host".into()], 3.0)[0];
        assert_eq!((k.knee.rps, k.knee.hi), (Some(4000.0), None));
        assert_eq!(k.kept, Marker::default());
    }

    #[test]
    fn a_crossing_that_does_not_repeat_is_not_believed() {
        let modes = ["host".to_string()];
        let mut pts = vec![
            model("host", 2000.0, 10_000.0, 1e9, false),
            model("host", 4000.0, 10_000.0, 1e9, false),
            model("host", 7800.0, 10_000.0, 1e9, false),
            // A fluke: six stalled windows at 8,000/s.
            pt(
                "host",
                8000.0,
                &[
                    900.0, 900.0, 900.0, 900.0, 900.0, 900.0, 30.0, 30.0, 30.0, 30.0,
                ],
                0.999,
            ),
            model("host", 16000.0, 10_000.0, 1e9, false),
        ];
        let k = &knees(&pts, &modes, 3.0)[0];
        assert_eq!((k.knee.hi, k.knee.confirmed), (Some(8000.0), false));
        // auto asks for the first crossing again ...
        assert_eq!(next_rate(&pts, &modes, 3.0, 2000.0, 16_000.0), Some(8000.0));
        // ... and it does not repeat: the crossing moves up and its bracket is bisected again.
        pts.push(model("host", 8000.0, 10_000.0, 1e9, false));
        let k = &knees(&pts, &modes, 3.0)[0];
        assert_eq!((k.knee.lo, k.knee.hi), (Some(8000.0), Some(16_000.0)));
        assert_eq!(
            next_rate(&pts, &modes, 3.0, 2000.0, 16_000.0),
            Some((8000.0f64 * 16_000.0).sqrt().round())
        );
        pts.push(model("host", 16000.0, 10_000.0, 1e9, false));
        assert!(knees(&pts, &modes, 3.0)[0].knee.confirmed);
    }

    #[test]
    fn auto_climbs_confirms_and_bisects_every_marker_to_five_percent() {
        let modes = ["host".to_string(), "bridge".to_string(), "ptp".to_string()];
        let truth = [
            ("host", 40_000.0, 62_000.0),
            ("bridge", 35_000.0, 50_000.0),
            ("ptp", 38_000.0, 55_000.0),
        ];
        let mut pts: Vec<Point> = Vec::new();
        let mut n = 0;
        while let Some(r) = next_rate(&pts, &modes, 3.0, 2000.0, 2e6) {
            for (m, knee, wall) in truth {
                pts.push(model(m, r, knee, wall, true));
            }
            n += 1;
            assert!(n <= 40, "auto ends within the sweep's points");
        }
        let k = knees(&pts, &modes, 3.0);
        for (k, (m, knee, wall)) in k.iter().zip(truth) {
            assert_eq!(k.mode, m);
            for (x, truth) in [(&k.knee, knee), (&k.wall, wall)] {
                let (lo, hi) = (x.lo.unwrap(), x.hi.unwrap());
                assert!(lo <= truth && truth < hi, "{m}: {truth} in [{lo}, {hi}]");
                assert!(hi / lo <= BISECT_UNTIL, "{m}: [{lo}, {hi}] within 5%");
                assert!(x.confirmed, "{m}: crossing measured twice");
            }
        }
        assert!((k[1].knee.vs_host.unwrap() - 35.0 / 40.0).abs() < 0.06);
        let (lo, hi) = k[1].knee.vs_host_range.unwrap();
        assert!(lo < 0.875 && 0.875 < hi && hi / lo < 1.11);
        eprintln!("auto: {n} points");
        assert!(n <= 30, "{n} points: shared midpoints");
    }
}
