//! A connected runtime that does nothing: what it costs per second, locally (this
//! process and its master) and on the host (the helper). No polling loop should show.

use std::time::Duration;

use cmux_backend_ssh::{HelperMode, SshRuntime};
use cmux_core::{ExecRequest, Runtime, RuntimeExt};

use crate::cpu::master_pid;
use crate::measure::{cpu_now, ms, CpuScope};
use crate::report::IdleRow;
use crate::setup::{helper_pid, BenchEnv, HOST};
use crate::Args;

pub async fn measure_idle(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<IdleRow>> {
    // /proc counts CPU in 10 ms ticks: 30 s resolve 0.33 ms/s.
    let secs = if args.quick { 1 } else { 30 };
    let mut rows = Vec::new();
    for (who, mode) in [
        ("cmux, helper mode (helper up)", HelperMode::Auto),
        ("cmux, shell/SFTP path", HelperMode::Off),
    ] {
        eprintln!("  idle {secs} s, {who}");
        // A master of its own, so nothing else's traffic is counted.
        let options = env
            .options(&env.config, &format!("idle-ctl-{mode:?}"), &env.install_dir)
            .helper(mode);
        let rt = SshRuntime::new(HOST, options)?;
        rt.ensure_ready().await?;
        // One operation, so the session is as an agent leaves it between calls.
        rt.output(ExecRequest::script("true"), 1 << 10).await?;
        let scope = CpuScope::Own {
            master: master_pid(&env.config, &rt.control_path(), HOST),
            proxy_tid: env.proxy_tid,
            helper: helper_pid(&rt).await,
        };
        let (cpu0, host0) = cpu_now(scope);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (cpu1, host1) = cpu_now(scope);
        let host = match (host0, host1) {
            (Some(b), Some(a)) => Some(ms(a.saturating_sub(b)) / secs as f64),
            _ => None,
        };
        rows.push(IdleRow {
            who: who.to_owned(),
            seconds: secs,
            local_cpu_ms_per_s: ms(cpu1.saturating_sub(cpu0)) / secs as f64,
            host_cpu_ms_per_s: host,
        });
        rt.disconnect().await;
    }
    Ok(rows)
}
