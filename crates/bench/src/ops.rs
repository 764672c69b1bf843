//! Raw `Runtime` operations, each run by cmux in helper mode, by cmux on the
//! shell/SFTP path, and by the two ssh baselines.

use anyhow::bail;
use cmux_core::{ExecRequest, Runtime, RuntimeExt};

use crate::baseline::Baseline;
use crate::measure::{measure, CpuScope, Iterations};
use crate::report::Row;
use crate::setup::BenchEnv;
use crate::Args;

/// One raw runtime operation of the tables (also measured over russh).
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// `exec true`.
    ExecTrue,
    /// `stat` of a 4 KiB file.
    Stat,
    /// Reading a 4 KiB file.
    Read4k,
    /// Reading a 1 MiB file.
    Read1m,
    /// Writing a 4 KiB file.
    Write4k,
    /// Listing a directory of 100 entries.
    List100,
}

impl Op {
    /// Every operation, in the tables' order.
    pub const ALL: [Op; 6] = [
        Op::ExecTrue,
        Op::Stat,
        Op::Read4k,
        Op::Read1m,
        Op::Write4k,
        Op::List100,
    ];

    /// The row's label.
    pub fn label(self) -> &'static str {
        match self {
            Op::ExecTrue => "exec `true`",
            Op::Stat => "stat",
            Op::Read4k => "read 4 KiB",
            Op::Read1m => "read 1 MiB",
            Op::Write4k => "write 4 KiB",
            Op::List100 => "list 100 entries",
        }
    }
}

/// Runs `op` once on `rt`, checking what it returns.
pub async fn cmux_op(env: &BenchEnv, rt: &dyn Runtime, op: Op) -> anyhow::Result<()> {
    match op {
        Op::ExecTrue => {
            let out = rt.output(ExecRequest::script("true"), 1 << 16).await?;
            if !out.status.success() {
                bail!("true failed: {}", out.status);
            }
        }
        Op::Stat => {
            rt.stat(&env.remote("f4k")?).await?;
        }
        Op::Read4k => {
            let data = rt.read_file(&env.remote("f4k")?).await?;
            if data.len() != 4096 {
                bail!("read {} bytes, expected 4096", data.len());
            }
        }
        Op::Read1m => {
            let data = rt.read_file(&env.remote("f1m")?).await?;
            if data.len() != 1 << 20 {
                bail!("read {} bytes, expected 1 MiB", data.len());
            }
        }
        Op::Write4k => rt.write_file(&env.remote("w4k")?, &[b'w'; 4096]).await?,
        Op::List100 => {
            let entries = rt.read_dir(&env.remote("dir100")?).await?;
            if entries.len() != 100 {
                bail!("listed {} entries, expected 100", entries.len());
            }
        }
    }
    Ok(())
}

async fn baseline_op(env: &BenchEnv, base: &Baseline, op: Op) -> anyhow::Result<()> {
    let q = |name: &str| cmux_core::quote::quote(&env.path(name));
    match op {
        Op::ExecTrue => {
            base.run("true", None).await?;
        }
        Op::Stat => {
            base.run(&format!("stat -c '%s %a %Y %F' {}", q("f4k")), None)
                .await?;
        }
        Op::Read4k => {
            base.run(&format!("cat {}", q("f4k")), None).await?;
        }
        Op::Read1m => {
            base.run(&format!("cat {}", q("f1m")), None).await?;
        }
        Op::Write4k => {
            // Atomic, like cmux: temp file beside the target, then rename.
            let cmd = format!(
                "cat > {t} && mv {t} {f}",
                t = q("w4k.b.tmp"),
                f = q("w4k.b")
            );
            base.run(&cmd, Some(&[b'w'; 4096])).await?;
        }
        Op::List100 => {
            base.run(&format!("ls -la {}", q("dir100")), None).await?;
        }
    }
    Ok(())
}

/// The CPU scopes of cmux's two modes and of the baselines in `env`.
pub struct Scopes {
    pub helper: CpuScope,
    pub shell: CpuScope,
    pub a: CpuScope,
    pub b: CpuScope,
}

impl Scopes {
    pub fn new(env: &BenchEnv, with_master: &Baseline) -> Self {
        let own = |helper| CpuScope::Own {
            master: env.master_pid,
            proxy_tid: env.proxy_tid,
            helper,
        };
        Scopes {
            helper: own(env.helper_pid),
            shell: own(None),
            a: CpuScope::Children {
                master: with_master.master_pid(),
            },
            b: CpuScope::Children { master: None },
        }
    }
}

/// The raw runtime rows.
pub async fn measure_runtime_ops(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<Row>> {
    let n = Iterations::new(args.quick, env.rtt);
    let with_master = Baseline::with_master(&env.config, &env.dir.path().join("a.sock"));
    let fresh = Baseline::fresh(&env.config);
    with_master.run("true", None).await?;
    let scopes = Scopes::new(env, &with_master);
    let mut rows = Vec::new();
    for op in Op::ALL {
        eprintln!("  {}", op.label());
        let helper = measure(n.cmux, scopes.helper, |_| {
            cmux_op(env, env.helper.runtime.as_ref(), op)
        })
        .await?;
        let shell = measure(n.cmux, scopes.shell, |_| {
            cmux_op(env, env.shell.runtime.as_ref(), op)
        })
        .await?;
        let a = measure(n.a, scopes.a, |_| baseline_op(env, &with_master, op)).await?;
        let b = if n.b > 0 {
            Some(measure(n.b, scopes.b, |_| baseline_op(env, &fresh, op)).await?)
        } else {
            None
        };
        rows.push(Row {
            op: op.label().into(),
            helper,
            shell: Some(shell),
            a: Some(a),
            b,
        });
    }
    with_master.close();
    Ok(rows)
}
