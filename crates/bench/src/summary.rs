//! Issue 10's targets, each with its figure from this run, met or missed, and for an
//! operation above one round trip, why.

use std::fmt::Write as _;

use crate::report::{f, Report, Row, RttResult};
use crate::why;

/// Whether a target was met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Met,
    Missed,
    NotMeasured,
}

impl Status {
    fn from(met: bool) -> Self {
        if met {
            Status::Met
        } else {
            Status::Missed
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Missed => "**missed**",
            Status::NotMeasured => "not measured",
        }
    }
}

/// One target of issue 10 and how this run did.
#[derive(Clone, Debug)]
pub struct Target {
    pub target: String,
    pub figure: String,
    pub status: Status,
    /// Why an operation takes more than one round trip (empty when it does not).
    pub why: String,
}

/// Above this many round trips an operation's row says why.
const WHY_ABOVE_RT: f64 = 1.1;

/// The first result with an injected RTT (50 ms by default), and the loopback one.
fn far(report: &Report) -> Option<&RttResult> {
    report.results.iter().find(|r| r.rtt_ms > 0)
}

fn near(report: &Report) -> Option<&RttResult> {
    report.results.iter().find(|r| r.rtt_ms == 0)
}

fn rt_of(row: &Row, rtt_ms: u64) -> f64 {
    row.helper.median_ms / rtt_ms as f64
}

/// "≤ N RT" for one row at the far RTT.
fn rt_target(row: &Row, r: &RttResult, limit: f64, name: &str) -> Target {
    let rt = rt_of(row, r.rtt_ms);
    Target {
        target: format!("{name} ≤ {limit} RT at {} ms", r.rtt_ms),
        figure: format!("{} RT ({} ms)", f(rt), f(row.helper.median_ms)),
        status: Status::from(rt <= limit),
        why: if rt > WHY_ABOVE_RT {
            why::above_one_rt(&row.op).to_owned()
        } else {
            String::new()
        },
    }
}

pub fn targets(report: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let far = far(report);
    let near = near(report);
    if let Some(r) = far {
        for row in &r.tools {
            if row.op.contains("grep") {
                // "≤ 1.2 RT + search time": the search time is the loopback figure.
                let search = near
                    .and_then(|n| n.tools.iter().find(|x| x.op == row.op))
                    .map(|x| x.helper.median_ms)
                    .unwrap_or(0.0);
                let limit = 1.2 * r.rtt_ms as f64 + search;
                let rt = rt_of(row, r.rtt_ms);
                out.push(Target {
                    target: format!(
                        "{} ≤ 1.2 RT + search time at {} ms (search time: the loopback median)",
                        row.op, r.rtt_ms
                    ),
                    figure: format!(
                        "{} RT ({} ms; limit {} ms)",
                        f(rt),
                        f(row.helper.median_ms),
                        f(limit)
                    ),
                    status: Status::from(row.helper.median_ms <= limit),
                    why: if rt > WHY_ABOVE_RT {
                        why::above_one_rt(&row.op).to_owned()
                    } else {
                        String::new()
                    },
                });
            } else {
                out.push(rt_target(row, r, 1.2, &row.op));
            }
        }
        for row in &r.runtime {
            out.push(rt_target(row, r, 1.2, &format!("Runtime {}", row.op)));
        }
        if let Some(row) = r.create.iter().find(|x| x.op.contains("warm")) {
            out.push(rt_target(row, r, 6.0, &row.op));
        }
    }
    for r in &report.results {
        let Some(g) = &r.big_grep else { continue };
        let mut patterns: Vec<&str> = g.rows.iter().map(|x| x.pattern.as_str()).collect();
        patterns.dedup();
        for p in patterns {
            let host = g
                .rows
                .iter()
                .find(|x| x.pattern == p && x.files_searched.is_none());
            let cmux = g
                .rows
                .iter()
                .find(|x| x.pattern == p && x.who.contains("helper"));
            let (Some(host), Some(cmux)) = (host, cmux) else {
                continue;
            };
            let limit = 2.0 * host.median_ms + r.rtt_ms as f64;
            let searched = cmux.files_searched.unwrap_or(0);
            let met =
                searched == g.files && cmux.matches == host.matches && cmux.median_ms <= limit;
            out.push(Target {
                target: format!(
                    "grep `{p}` over {} files / {:.0} MB at {} ms: every file searched, every match found, ≤ 2× `grep -rn` + 1 RT",
                    g.files,
                    g.bytes as f64 / 1e6,
                    r.rtt_ms
                ),
                figure: format!(
                    "{} ms vs `grep` {} ms (limit {}); {searched} of {} files; {} of {} lines",
                    f(cmux.median_ms),
                    f(host.median_ms),
                    f(limit),
                    g.files,
                    cmux.matches,
                    host.matches
                ),
                status: Status::from(met),
                why: String::new(),
            });
        }
    }
    for r in &report.results {
        if let Some(c) = r.max_sessions_1.iter().find(|c| c.who.contains("helper")) {
            out.push(Target {
                target: format!(
                    "{} operations at once, `MaxSessions 1`, at {} ms: 0 failures",
                    c.total(),
                    r.rtt_ms
                ),
                figure: format!("{} failures, {} s", c.failures, f(c.wall_s)),
                status: Status::from(c.failures == 0),
                why: String::new(),
            });
        }
    }
    for r in &report.results {
        let ratios: Vec<(f64, &str)> = r
            .tools
            .iter()
            .chain(&r.runtime)
            .filter_map(|row| {
                let a = row.a.as_ref()?;
                (row.helper.cpu_ms_per_op > 0.0)
                    .then(|| (a.cpu_ms_per_op / row.helper.cpu_ms_per_op, row.op.as_str()))
            })
            .collect();
        if ratios.is_empty() {
            continue;
        }
        let mut sorted: Vec<f64> = ratios.iter().map(|x| x.0).collect();
        sorted.sort_by(f64::total_cmp);
        let below: Vec<&(f64, &str)> = ratios.iter().filter(|x| x.0 < 10.0).collect();
        let mut figure = format!(
            "×{} median over {} rows",
            f(sorted[sorted.len() / 2]),
            sorted.len()
        );
        if !below.is_empty() {
            let list: Vec<String> = below
                .iter()
                .map(|(x, op)| format!("{op} ×{}", f(*x)))
                .collect();
            let _ = write!(figure, "; below 10×: {}", list.join(", "));
        }
        let mut reasons: Vec<&str> = below.iter().map(|(_, op)| why::cpu_ratio(op)).collect();
        reasons.retain(|r| !r.is_empty());
        reasons.dedup();
        out.push(Target {
            target: format!(
                "local CPU per operation ≥ 10× lower than (a) at {} ms",
                r.rtt_ms
            ),
            figure,
            status: Status::from(below.is_empty()),
            why: reasons.join(" "),
        });
    }
    if let Some(r) = near {
        if let Some(first) = r.first_op.first() {
            out.push(Target {
                target: "first operation on a host without the helper ≤ 1.5 s at loopback".into(),
                figure: format!("{} ms (max {})", f(first.median_ms), f(first.max_ms)),
                status: Status::from(first.median_ms <= 1500.0),
                why: String::new(),
            });
        }
    }
    for r in &report.results {
        let Some(cli) = &r.cli else { continue };
        if let Some(why) = &cli.skipped {
            out.push(Target {
                target: format!("CLI rows at {} ms", r.rtt_ms),
                figure: why.clone(),
                status: Status::NotMeasured,
                why: String::new(),
            });
            continue;
        }
        for row in &cli.rows {
            if row.op.contains("exec") {
                let Some(shell) = &row.shell else { continue };
                out.push(Target {
                    target: format!(
                        "{} no slower than the shell path at {} ms",
                        row.op, r.rtt_ms
                    ),
                    figure: format!(
                        "{} ms vs {} ms",
                        f(row.helper.median_ms),
                        f(shell.median_ms)
                    ),
                    status: Status::from(row.helper.median_ms <= shell.median_ms),
                    why: if r.rtt_ms > 0 && rt_of(row, r.rtt_ms) > WHY_ABOVE_RT {
                        why::above_one_rt(&row.op).to_owned()
                    } else {
                        String::new()
                    },
                });
            } else if r.rtt_ms > 0 {
                out.push(rt_target(row, r, 3.0, &row.op));
            }
        }
    }
    for r in &report.results {
        if let Some(idle) = r.idle.iter().find(|x| x.who.contains("helper")) {
            let host = idle.host_cpu_ms_per_s.unwrap_or(f64::NAN);
            out.push(Target {
                target: format!(
                    "idle, connected, at {} ms: ≤ 1 ms/s CPU locally and on the host",
                    r.rtt_ms
                ),
                figure: format!(
                    "{} ms/s local, {} ms/s helper ({} s)",
                    f(idle.local_cpu_ms_per_s),
                    f(host),
                    idle.seconds
                ),
                status: Status::from(idle.local_cpu_ms_per_s <= 1.0 && host <= 1.0),
                why: String::new(),
            });
        }
    }
    out.push(Target {
        target: "ahead of distant 0.20 on every row".into(),
        figure: why::DISTANT.into(),
        status: Status::NotMeasured,
        why: String::new(),
    });
    out
}

/// The summary section, first in BENCHMARKS.md.
pub fn markdown(report: &Report) -> String {
    let mut s = String::from(
        "## Summary: issue 10's targets\n\nHelper mode, from the tables below. RT = median ÷ RTT.\n\n| target | this run | | why (above 1 RT, or missed) |\n|---|---|---|---|\n",
    );
    for t in targets(report) {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t.target,
            t.figure,
            t.status.label(),
            t.why
        );
    }
    s.push('\n');
    s
}
