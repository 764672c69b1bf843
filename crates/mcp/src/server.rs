//! [`WorkspaceServer`]: the MCP server handler that lists the workspace tools and runs
//! each `tools/call` through the core agent tools.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use cmux_core::tools::{self, ToolContext, ToolOutput};
use cmux_core::{Error as CoreError, ExitStatus};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::args::{
    BashArgs, EditFileArgs, GlobArgs, GrepArgs, ListDirArgs, ReadFileArgs, WriteFileArgs,
};

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
    /// unknown tool name is a protocol error. Cancelling `cancel` kills a running
    /// `bash` command on the host.
    pub async fn call(
        &self,
        name: &str,
        arguments: serde_json::Value,
        cancel: CancellationToken,
    ) -> Result<CallToolResult, ErrorData> {
        let started = Instant::now();
        let result = match name {
            "bash" => self.bash(arguments, cancel).await,
            "read_file" => {
                self.idempotent(name, arguments, |c, a: ReadFileArgs| async move {
                    tools::read_file(&c, a.into())
                        .await
                        .map(ToolOutput::ReadFile)
                })
                .await
            }
            "write_file" => {
                // Writing the same content twice is harmless: retried after a drop.
                self.idempotent(name, arguments, |c, a: WriteFileArgs| async move {
                    tools::write_file(&c, a.into())
                        .await
                        .map(ToolOutput::WriteFile)
                })
                .await
            }
            "edit_file" => self.edit_file(arguments).await,
            "list_dir" => {
                self.idempotent(name, arguments, |c, a: ListDirArgs| async move {
                    tools::list_dir(&c, a.into()).await.map(ToolOutput::ListDir)
                })
                .await
            }
            "glob" => {
                self.idempotent(name, arguments, |c, a: GlobArgs| async move {
                    tools::glob(&c, a.into()).await.map(ToolOutput::Glob)
                })
                .await
            }
            "grep" => {
                self.idempotent(name, arguments, |c, a: GrepArgs| async move {
                    tools::grep(&c, a.into()).await.map(ToolOutput::Grep)
                })
                .await
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "unknown tool {other:?}: this server has {}",
                        tools::TOOL_NAMES.join(", ")
                    ),
                    None,
                ))
            }
        };
        tracing::debug!(
            tool = name,
            is_error = result.is_error.unwrap_or(false),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tool call done"
        );
        Ok(result)
    }

    async fn bash(
        &self,
        arguments: serde_json::Value,
        cancel: CancellationToken,
    ) -> CallToolResult {
        let args: BashArgs = match parse("bash", arguments) {
            Ok(a) => a,
            Err(r) => return r,
        };
        // Not retried after a dropped connection: the command may already have run.
        match tools::bash_cancellable(&self.ctx, args.into(), cancel).await {
            Ok(out) => {
                let failed = out.status != ExitStatus::Exited(0);
                let text = out.to_text();
                if failed {
                    CallToolResult::error(vec![ContentBlock::text(text)])
                } else {
                    CallToolResult::success(vec![ContentBlock::text(text)])
                }
            }
            Err(e) => self.failure(
                &e,
                if e.nothing_ran() {
                    "the command did not run (it never reached the host): run it again once the host is reachable"
                } else {
                    "the command may or may not have run: check before repeating it"
                },
            ),
        }
    }

    async fn edit_file(&self, arguments: serde_json::Value) -> CallToolResult {
        let args: EditFileArgs = match parse("edit_file", arguments) {
            Ok(a) => a,
            Err(r) => return r,
        };
        // Not retried after a dropped connection: a second attempt could apply the
        // edit twice (replace_all) or report a confusing mismatch.
        match tools::edit_file(&self.ctx, args.into()).await {
            Ok(out) => CallToolResult::success(vec![ContentBlock::text(
                ToolOutput::EditFile(out).to_text(),
            )]),
            Err(e) => self.failure(
                &e,
                "the edit may or may not have been applied: read the file before retrying",
            ),
        }
    }

    /// Runs a tool that is safe to repeat; a dropped connection is retried once after
    /// the runtime reconnects, so a host that came back is used without the model
    /// noticing.
    async fn idempotent<A, F, Fut>(
        &self,
        tool: &str,
        arguments: serde_json::Value,
        op: F,
    ) -> CallToolResult
    where
        A: DeserializeOwned + Clone,
        F: Fn(ToolContext, A) -> Fut,
        Fut: Future<Output = cmux_core::Result<ToolOutput>>,
    {
        let args: A = match parse(tool, arguments) {
            Ok(a) => a,
            Err(r) => return r,
        };
        let mut outcome = op(self.ctx.clone(), args.clone()).await;
        if matches!(&outcome, Err(e) if e.is_connection()) {
            tracing::info!(
                tool,
                host = self.ctx.host(),
                "connection lost; reconnecting once"
            );
            if self.ctx.runtime.ensure_ready().await.is_ok() {
                outcome = op(self.ctx.clone(), args).await;
            }
        }
        match outcome {
            Ok(out) => CallToolResult::success(vec![ContentBlock::text(out.to_text())]),
            Err(e) => self.failure(&e, "retry once the host is reachable again"),
        }
    }

    /// A tool failure as a result the model can act on.
    fn failure(&self, err: &CoreError, on_connection: &str) -> CallToolResult {
        let mut text = err.to_string();
        match err {
            CoreError::Connection { .. } => {
                text.push_str(&format!(
                    "\n(the connection to {} was lost; cmux reconnects on the next call; {on_connection})",
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

/// Parses `tools/call` arguments, or says what is wrong as an error result.
fn parse<A: DeserializeOwned>(
    tool: &str,
    arguments: serde_json::Value,
) -> Result<A, CallToolResult> {
    serde_json::from_value(arguments).map_err(|e| {
        CallToolResult::error(vec![ContentBlock::text(format!(
            "invalid arguments for {tool}: {e}; see the tool's input schema for the argument names and types"
        ))])
    })
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
                 code.",
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

/// Tool definitions: names, descriptions a model can follow, input schemas.
fn tool_list() -> Vec<Tool> {
    let read_only = || ToolAnnotations::new().read_only(true).open_world(false);
    let writes = |destructive: bool| {
        ToolAnnotations::new()
            .read_only(false)
            .destructive(destructive)
            .open_world(false)
    };
    vec![
        tool::<BashArgs>(
            "bash",
            "Run a shell command (bash -c) in the workspace and return its stdout, stderr and \
             exit code. The command runs non-interactively with a timeout (default 120 s) \
             that kills it and its background processes. A non-zero exit is reported as an \
             error result with the exit code. Use it for builds, tests, git and anything the \
             file tools do not cover.",
            writes(true),
        ),
        tool::<ReadFileArgs>(
            "read_file",
            "Read a text file of the workspace as numbered lines (like cat -n). Long files \
             are shown 2000 lines at a time: pass offset (1-based line) and limit to read \
             further. Binary files are refused.",
            read_only(),
        ),
        tool::<WriteFileArgs>(
            "write_file",
            "Create or completely replace a file with the given content (atomically; an \
             existing file keeps its permissions). Creates missing parent directories. To \
             change part of an existing file, prefer edit_file.",
            writes(true).idempotent(true),
        ),
        tool::<EditFileArgs>(
            "edit_file",
            "Replace an exact piece of text in a file. old_string must match the file \
             exactly (whitespace included) and occur once, unless replace_all is true; if \
             it does not match, read the file again and retry with the exact text.",
            writes(true),
        ),
        tool::<ListDirArgs>(
            "list_dir",
            "List one directory of the workspace (default: the workspace root) with each \
             entry's kind (file, dir, symlink) and size.",
            read_only(),
        ),
        tool::<GlobArgs>(
            "glob",
            "Find files whose paths match a glob pattern (e.g. **/*.rs), searching the \
             workspace or the given directory. Returns matching paths.",
            read_only(),
        ),
        tool::<GrepArgs>(
            "grep",
            "Search file contents for a regular expression, in the workspace or the given \
             file or directory (recursively; .git, binary and very large files skipped), \
             optionally only in files matching a glob. Returns path:line:text for each \
             matching line.",
            read_only(),
        ),
    ]
}

fn tool<A: JsonSchema>(
    name: &'static str,
    description: &'static str,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(name, description, input_schema::<A>()).with_annotations(annotations)
}

/// The JSON schema of `A`'s arguments, tidied for models: optional arguments are
/// plain types (not `[T, "null"]` unions some clients reject) without `default: null`,
/// no Rust-specific `format`s (`uint`, `double`), descriptions on one line per
/// paragraph.
fn input_schema<A: JsonSchema>() -> Arc<JsonObject> {
    let schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<A>();
    let mut object = match schema.to_value() {
        serde_json::Value::Object(object) => object,
        // Derived schemas of structs are objects; an empty object schema accepts any
        // arguments, which the parse then checks.
        _ => JsonObject::new(),
    };
    object.insert("type".into(), "object".into());
    object.remove("title");
    object.remove("description");
    if let Some(serde_json::Value::Object(props)) = object.get_mut("properties") {
        for prop in props.values_mut() {
            if let serde_json::Value::Object(prop) = prop {
                tidy_property(prop);
            }
        }
    }
    Arc::new(object)
}

fn tidy_property(prop: &mut JsonObject) {
    if let Some(serde_json::Value::Array(types)) = prop.get("type") {
        let mut non_null = types.iter().filter(|t| t.as_str() != Some("null"));
        if let (Some(only), None) = (non_null.next(), non_null.next()) {
            let only = only.clone();
            prop.insert("type".into(), only);
        }
    }
    if prop.get("default") == Some(&serde_json::Value::Null) {
        prop.remove("default");
    }
    prop.remove("format");
    if let Some(serde_json::Value::String(text)) = prop.get_mut("description") {
        *text = unwrap_lines(text);
    }
}

/// Joins the lines of each paragraph of a doc comment with spaces.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|para| para.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_with_described_arguments() {
        let tools = tool_list();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, tools::TOOL_NAMES);
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
            if std::env::var_os("CMUX_PRINT_SCHEMAS").is_some() {
                println!("{}: {schema:#}", tool.name);
            }
        }
    }
}
