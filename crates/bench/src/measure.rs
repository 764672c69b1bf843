//! Timing a repeated operation: latency percentiles and the CPU it cost, locally and
//! in the host helper.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::cpu::{process_cpu, thread_cpu, CpuSample};
use crate::report::Stats;

/// Which CPU a measurement counts besides the latency.
#[derive(Clone, Copy, Debug)]
pub enum CpuScope {
    /// This process minus the proxy's thread, plus cmux's ssh master; `helper` is the
    /// host helper's process, counted apart (it runs on the host).
    Own {
        master: Option<u32>,
        proxy_tid: Option<i32>,
        helper: Option<u32>,
    },
    /// Reaped child processes (ssh clients, `cmux` CLI processes), plus a master.
    Children { master: Option<u32> },
}

/// CPU used so far: (local, host helper).
pub fn cpu_now(scope: CpuScope) -> (Duration, Option<Duration>) {
    let sample = CpuSample::now();
    match scope {
        CpuScope::Own {
            master,
            proxy_tid,
            helper,
        } => {
            let proxy = proxy_tid.map(thread_cpu).unwrap_or_default();
            let local =
                sample.own.saturating_sub(proxy) + master.map(process_cpu).unwrap_or_default();
            (local, helper.map(process_cpu))
        }
        CpuScope::Children { master } => (
            sample.children + master.map(process_cpu).unwrap_or_default(),
            None,
        ),
    }
}

/// The `p` quantile (0..=1) of sorted durations, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Milliseconds, as the report prints them.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Statistics of `samples` (latencies) that cost `cpu` locally and `host_cpu` in the
/// helper in all.
pub fn stats_of(mut samples: Vec<Duration>, cpu: Duration, host_cpu: Option<Duration>) -> Stats {
    samples.sort();
    let n = samples.len().max(1) as f64;
    Stats {
        n: samples.len(),
        median_ms: ms(percentile(&samples, 0.5)),
        p90_ms: ms(percentile(&samples, 0.9)),
        cpu_ms_per_op: ms(cpu) / n,
        host_cpu_ms_per_op: host_cpu.map(|c| ms(c) / n),
    }
}

/// Runs `op` once to warm up (connection set-up is not what a row measures), then `n`
/// times in turn, timing each call. `op` gets the call's index (0 is the warm-up).
pub async fn measure<F, Fut>(n: usize, scope: CpuScope, mut op: F) -> anyhow::Result<Stats>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    op(0).await?;
    let (cpu_before, host_before) = cpu_now(scope);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        op(i + 1).await?;
        lat.push(t.elapsed());
    }
    let (cpu_after, host_after) = cpu_now(scope);
    let host = match (host_before, host_after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    Ok(stats_of(lat, cpu_after.saturating_sub(cpu_before), host))
}

/// Calls per row: cmux (each mode), baseline (a), baseline (b). Far hosts and the
/// quick smoke run get fewer; the fresh-connection baseline costs a handshake a call.
#[derive(Clone, Copy, Debug)]
pub struct Iterations {
    pub cmux: usize,
    pub a: usize,
    /// 0: the row has no (b) figure.
    pub b: usize,
}

impl Iterations {
    pub fn new(quick: bool, rtt: Duration) -> Self {
        let (cmux, a, b) = match (quick, rtt.is_zero()) {
            // The smoke run: every path once or a few times; (b) only at loopback.
            (true, true) => (10, 4, 1),
            (true, false) => (3, 1, 0),
            (false, true) => (300, 100, 30),
            (false, false) => (30, 15, 8),
        };
        Iterations { cmux, a, b }
    }
}
