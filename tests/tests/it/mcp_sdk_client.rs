//! Interoperability: the official Rust MCP SDK's client (rmcp) talks to the server,
//! both with the `initialize` handshake and with the `server/discover` lifecycle of
//! protocol 2026-07-28 (what newer agents speak).

use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, RoleClient, RunningService};
use rmcp::{ClientServiceExt, ServiceExt};
use serde_json::json;

use crate::mcp_local::{local_ctx, EXPECTED_TOOLS};

async fn check(client: &RunningService<RoleClient, ()>) {
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let expected: Vec<&str> = EXPECTED_TOOLS.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(names, expected);

    let args = |v: serde_json::Value| v.as_object().cloned().expect("object");
    let ok = client
        .call_tool(
            CallToolRequestParams::new("bash").with_arguments(args(json!({"command": "echo sdk"}))),
        )
        .await
        .expect("tools/call");
    assert_eq!(ok.is_error, Some(false), "{ok:?}");
    let text = serde_json::to_string(&ok.content).expect("json");
    assert!(
        text.contains("sdk") && text.contains("exit code 0"),
        "{text}"
    );

    let failed = client
        .call_tool(CallToolRequestParams::new("edit_file").with_arguments(args(
            json!({"path": "nope.txt", "old_string": "a", "new_string": "b"}),
        )))
        .await
        .expect("tools/call");
    assert_eq!(failed.is_error, Some(true), "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rmcp_client_with_initialize() {
    let (_home, _ws, ctx) = local_ctx();
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (r, w) = tokio::io::split(server_io);
    tokio::spawn(cmux_mcp::serve(ctx, r, w));
    let client = ().serve(tokio::io::split(client_io)).await.expect("initialize");
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("cmux")
    );
    check(&client).await;
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rmcp_client_with_discover() {
    let (_home, _ws, ctx) = local_ctx();
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (r, w) = tokio::io::split(server_io);
    tokio::spawn(cmux_mcp::serve(ctx, r, w));
    let client = ()
        .serve_with_lifecycle(
            tokio::io::split(client_io),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("discover");
    check(&client).await;
    client.cancel().await.expect("close");
}
