//! `cmux mcp`: serve a workspace's agent tools to any agent over MCP on stdio.

use anyhow::Result;
use cmux_core::tools::ToolContext;

use super::Ctx;
use crate::args::McpArgs;
use crate::backends;

/// Serves until the client closes stdin or a termination signal arrives; exit code 0.
///
/// An unknown workspace fails here, before anything is written on stdout. The runtime
/// is not readied first: the server readies it in the background, so a slow connect
/// (a Coder workspace starting) does not hold up the client's handshake, and a host
/// that is down is reported on each call instead of killing the server.
pub async fn run(ctx: &Ctx, args: &McpArgs) -> Result<i32> {
    let record = ctx.registry.load(&args.name)?;
    let runtime = backends::runtime_for(&record.backend, &ctx.home).await?;
    cmux_mcp::serve_stdio(ToolContext::new(runtime, record.path.clone())).await?;
    Ok(0)
}
