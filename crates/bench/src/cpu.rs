//! CPU time of this process, of its reaped children, and of a daemonised ssh master.

use std::time::Duration;

/// User+system CPU of this process (`RUSAGE_SELF`) and of its waited-for children
/// (`RUSAGE_CHILDREN`: the ssh client processes of the baselines).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    pub own: Duration,
    pub children: Duration,
}

#[allow(unsafe_code)]
fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

impl CpuSample {
    pub fn now() -> Self {
        CpuSample {
            own: rusage(libc::RUSAGE_SELF),
            children: rusage(libc::RUSAGE_CHILDREN),
        }
    }
}

/// CPU time of another process (a daemonised ControlMaster, the host helper), every
/// thread included, those that ended too: its CPU-time clock (nanoseconds), else the
/// 10 ms ticks of /proc.
pub fn process_cpu(pid: u32) -> Duration {
    process_clock(pid).unwrap_or_else(|| ticks(&format!("/proc/{pid}/stat")))
}

#[allow(unsafe_code)]
fn process_clock(pid: u32) -> Option<Duration> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: both calls only write into the locals we pass.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return None;
    }
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// The first field of a `schedstat` file: nanoseconds one thread spent on a CPU.
fn schedstat(path: &str) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// utime + stime of a `stat` file.
fn ticks(path: &str) -> Duration {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = 100u64; // USER_HZ on Linux
    Duration::from_millis((ticks(11) + ticks(12)) * 1000 / hz)
}

/// The pid of the master behind `control_path`, as `ssh -O check` reports it.
pub fn master_pid(
    config: &std::path::Path,
    control_path: &std::path::Path,
    host: &str,
) -> Option<u32> {
    let out = std::process::Command::new("ssh")
        .arg("-F")
        .arg(config)
        .arg("-o")
        .arg(format!("ControlPath={}", control_path.display()))
        .args(["-O", "check", host])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let start = text.find("pid=")? + 4;
    let end = text[start..].find(')')? + start;
    text[start..end].parse().ok()
}

/// CPU time of one thread of this process (the proxy's), from /proc.
pub fn thread_cpu(tid: i32) -> Duration {
    let dir = format!("/proc/self/task/{tid}");
    schedstat(&format!("{dir}/schedstat")).unwrap_or_else(|| ticks(&format!("{dir}/stat")))
}

/// The calling thread's id.
#[allow(unsafe_code)]
pub fn current_tid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}
