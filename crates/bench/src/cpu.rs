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

/// CPU time of another process (the daemonised ControlMaster), from /proc.
pub fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
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
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return Duration::ZERO;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The calling thread's id.
#[allow(unsafe_code)]
pub fn current_tid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}
