//! [`WorkspaceServer`]: the MCP server handler that lists the workspace tools and runs
//! each `tools/call` through the core agent tools.
//!
//! Everything about a tool (name, description, schema, handler, rendering, whether a
//! call may be repeated) comes from its one definition in [`cmux_core::tools::TOOLS`];
//! this file only maps it to MCP.

use std::sync::Arc;
use std::time::Instant;

use cmux_core::tools::{self, AnyTool, Content, Effect, ToolContext, ToolOutput};
use cmux_core::Error as CoreError;
use rmcp::model::{
    CallToolRequestMethod, CallToolRequestParams, CallToolResponse, CallToolResult, ConstString,
    ContentBlock, CustomRequest, CustomResult, ErrorCode, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves one workspace's agent tools over MCP. Cheap to clone (the context is shared);
/// every `tools/call` runs in its own task, so calls proceed concurrently.
#[derive(Clone, Debug)]
pub struct WorkspaceServer {
    ctx: ToolContext,
    tools: Arc<Vec<Tool>>,
    calls: TaskTracker,
}

impl WorkspaceServer {
    /// A server for the workspace `ctx` names (its runtime and root directory).
    pub fn new(ctx: ToolContext) -> Self {
        WorkspaceServer {
            ctx,
            tools: Arc::new(tool_list()),
            calls: TaskTracker::new(),
        }
    }

    /// Tracks the calls in flight, so a stopping server can wait for their commands
    /// to be killed.
    pub(crate) fn calls(&self) -> TaskTracker {
        self.calls.clone()
    }

    /// The tools this server lists, in order.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// Runs one tool call. Tool failures (a failed command, a missing file, a
    /// non-matching edit, bad arguments) are results with `isError: true`; only an
    /// unknown tool name is a protocol error. Cancelling `cancel` stops the call (a
    /// running command is killed on the host).
    ///
    /// A call of a tool that is safe to repeat ([`Effect::is_repeatable`]) that fails
    /// because the connection dropped is run once more after the runtime reconnects,
    /// so a host that came back is used without the model noticing.
    pub async fn call(
        &self,
        name: &str,
        arguments: serde_json::Value,
        cancel: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(tool) = tools::find(name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool {name:?}: this server has {}", tools::names()),
                None,
            ));
        };
        let started = Instant::now();
        let result = self.run(tool, arguments, cancel).await;
        tracing::debug!(
            tool = name,
            is_error = result.is_error.unwrap_or(false),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tool call done"
        );
        Ok(result)
    }

    async fn run(
        &self,
        tool: &'static dyn AnyTool,
        arguments: serde_json::Value,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let effect = tool.effect();
        let retry = effect.is_repeatable().then(|| arguments.clone());
        let mut outcome = tool.call(&self.ctx, arguments, cancel.clone()).await;
        if let (Err(e), Some(arguments)) = (&outcome, retry) {
            if e.is_connection() && !cancel.is_cancelled() {
                tracing::info!(
                    tool = tool.name(),
                    host = self.ctx.host(),
                    "connection lost; reconnecting once"
                );
                if self.ctx.runtime.ensure_ready().await.is_ok() {
                    outcome = tool.call(&self.ctx, arguments, cancel).await;
                }
            }
        }
        match outcome {
            Ok(out) => to_result(&out),
            Err(e) => self.failure(&e, effect),
        }
    }

    /// A tool failure as a result the model can act on.
    fn failure(&self, err: &CoreError, effect: Effect) -> CallToolResult {
        let mut text = err.to_string();
        match err {
            CoreError::Connection { .. } => {
                let next = match effect {
                    // Refused before anything reached the host: safe to run again.
                    Effect::NotIdempotent { .. } if err.nothing_ran() => {
                        "it did not run (nothing reached the host): run it again once the host is reachable"
                    }
                    Effect::NotIdempotent { if_interrupted } => if_interrupted,
                    _ => "retry once the host is reachable again",
                };
                text.push_str(&format!(
                    "\n(the connection to {} was lost; cmux reconnects on the next call; {next})",
                    self.ctx.host()
                ));
            }
            CoreError::TimedOut { .. } => {
                text.push_str("\n(the operation was stopped; retry or use a larger timeout)");
            }
            _ => {}
        }
        tracing::debug!(error = %err, "tool failed");
        CallToolResult::error(vec![ContentBlock::text(text)])
    }
}

/// A tool's result as MCP content: text blocks, and images as base64 image blocks.
fn to_result(out: &ToolOutput) -> CallToolResult {
    let blocks = out
        .content()
        .into_iter()
        .map(|content| match content {
            Content::Image { mime_type, data } => {
                ContentBlock::image(Content::base64(&data), mime_type)
            }
            Content::Text(text) => ContentBlock::text(text),
            // A kind of content this server does not know yet: its text is always
            // there.
            _ => ContentBlock::text(out.to_text()),
        })
        .collect();
    if out.is_error() {
        CallToolResult::error(blocks)
    } else {
        CallToolResult::success(blocks)
    }
}

impl ServerHandler for WorkspaceServer {
    fn get_info(&self) -> ServerConfig {
        let (host, kind) = (self.ctx.host(), self.ctx.runtime.kind());
        let place = if host == kind {
            host.to_owned()
        } else {
            format!("{host} ({kind})")
        };
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("cmux", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "These tools work inside the cmux workspace {} on {place}. Relative paths \
                 resolve against that directory. Each bash call runs in a fresh shell in the \
                 workspace (or cwd) with no stdin; a failed command is reported with its exit \
                 code. For servers, watchers and long runs, call bash with run_in_background \
                 and follow the job with job_output; the jobs this session starts end with \
                 it.",
                self.ctx.root
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        if KNOWN_METHODS.contains(&request.method.as_str()) {
            Err(malformed_request(&request))
        } else {
            // What rmcp answers by default.
            Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                request.method,
                None,
            ))
        }
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        self.calls
            .track_future(self.call(&request.name, arguments, context.ct))
            .await
            .map(CallToolResponse::from)
    }
}

/// The MCP form of every tool in [`tools::TOOLS`]: name, description, input schema and
/// annotations derived from its [`Effect`].
fn tool_list() -> Vec<Tool> {
    tools::TOOLS
        .iter()
        .map(|tool| {
            Tool::new(
                tool.name(),
                tool.description(),
                Arc::new(tool.input_schema()),
            )
            .with_annotations(annotations(tool.effect()))
        })
        .collect()
}

fn annotations(effect: Effect) -> ToolAnnotations {
    let base = ToolAnnotations::new().open_world(false);
    match effect {
        Effect::ReadOnly => base.read_only(true),
        Effect::Idempotent => base.read_only(false).destructive(true).idempotent(true),
        _ => base.read_only(false).destructive(true),
    }
}

/// The answer to a request rmcp could not parse as the MCP method it names (rmcp
/// passes such a request on as a custom one): invalid params (-32602) saying what is
/// wrong, rather than "method not found".
fn malformed_request(request: &CustomRequest) -> ErrorData {
    let method = request.method.as_str();
    if method == CallToolRequestMethod::VALUE {
        let problem = match request.params_as::<CallToolRequestParams>() {
            Err(e) => e.to_string(),
            Ok(None) => "params are missing".to_owned(),
            Ok(Some(_)) => "params are not valid".to_owned(),
        };
        return ErrorData::invalid_params(
            format!(
                "invalid tools/call params: {problem}: send {{\"name\": <tool>, \"arguments\": \
                 {{...}}}} where arguments is a JSON object of the tool's input fields, e.g. \
                 {{\"name\": \"bash\", \"arguments\": {{\"command\": \"echo hi\"}}}}"
            ),
            None,
        );
    }
    ErrorData::invalid_params(
        format!("invalid params for {method:?}: see the MCP specification for its parameters"),
        None,
    )
}

/// MCP methods this server answers when their params are valid: a request naming one
/// with params rmcp cannot parse is answered with -32602.
pub(crate) const KNOWN_METHODS: &[&str] = &["initialize", "ping", "tools/list", "tools/call"];

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated `tools/list`: names, descriptions, schemas and annotations, as
    /// agents see them. Any change shows up here for review.
    #[test]
    fn tools_list_snapshot() {
        let tools = serde_json::to_value(tool_list()).expect("tools serialize");
        insta::assert_json_snapshot!("tools_list", tools);
    }

    #[test]
    fn every_tool_has_an_object_schema_with_described_arguments() {
        let tools = tool_list();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        let registered: Vec<&str> = tools::TOOLS.iter().map(|t| t.name()).collect();
        assert_eq!(names, registered);
        for tool in &tools {
            let schema = serde_json::Value::Object(tool.input_schema.as_ref().clone());
            assert_eq!(schema["type"], "object", "{schema}");
            assert_eq!(schema["additionalProperties"], false, "{schema}");
            for (arg, prop) in schema["properties"].as_object().expect("properties") {
                assert!(
                    prop["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{}.{arg} has no description",
                    tool.name
                );
            }
            assert!(!schema.to_string().contains("null"), "{schema}");
            assert!(!schema.to_string().contains("$ref"), "{schema}");
            let description = tool.description.as_deref().unwrap_or_default();
            assert!(
                description.contains("workspace"),
                "{} must say where relative paths resolve: {description}",
                tool.name
            );
        }
    }
}
