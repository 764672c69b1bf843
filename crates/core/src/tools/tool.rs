//! What a tool is: the one definition the MCP server, the CLI and the library all use.
//!
//! A tool is a unit struct implementing [`Tool`]: its name, the description agents
//! read, what it does to the workspace ([`Effect`]), its input type (deserialized from
//! the JSON an agent sends; the JSON schema agents see is derived from it, field docs
//! included), its handler, and its output type, which says how it renders
//! ([`ToolResult`]). Registering it is one line in [`TOOLS`](super::TOOLS); every
//! caller goes through the type-erased [`AnyTool`] view of that list.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;
use base64::Engine as _;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use tokio_util::sync::CancellationToken;

use super::schema::input_schema;
use super::ToolContext;
use crate::error::{Error, Result};

/// What running a tool does to the workspace. MCP clients show it to users (tool
/// annotations), and the MCP server decides from it whether a call cut off by a lost
/// connection may be run again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// Only reads: safe to repeat.
    ReadOnly,
    /// Changes the workspace, and running it again with the same input changes
    /// nothing more (`write_file`).
    Idempotent,
    /// Changes the workspace or runs arbitrary commands: running it again could apply
    /// it twice, so it is never repeated behind the agent's back.
    NotIdempotent {
        /// What the agent should check before repeating a call whose outcome is
        /// unknown (the connection dropped while it ran).
        if_interrupted: &'static str,
    },
}

impl Effect {
    /// True when the tool changes nothing.
    pub fn is_read_only(self) -> bool {
        self == Effect::ReadOnly
    }

    /// True when running the call again is harmless.
    pub fn is_repeatable(self) -> bool {
        matches!(self, Effect::ReadOnly | Effect::Idempotent)
    }
}

/// One piece of what a tool returns to a model.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// Text.
    Text(String),
    /// An image the model can look at.
    Image {
        /// Its media type, e.g. `image/png`.
        mime_type: &'static str,
        /// The image file's bytes.
        data: Vec<u8>,
    },
}

impl Content {
    /// The bytes of an image as standard base64, as MCP and model APIs carry them.
    pub fn base64(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

/// How a tool's result is shown: text for a model, content blocks for an MCP client,
/// JSON (through `Serialize`) for `--json` and programs.
pub trait ToolResult: Serialize + fmt::Debug + Send + Sync + 'static {
    /// What a model reads.
    fn text(&self) -> String;

    /// What an MCP client receives: the text, unless the result is more than text
    /// (an image).
    fn content(&self) -> Vec<Content> {
        vec![Content::Text(self.text())]
    }

    /// True when the result reports a failure the model must notice (a command that
    /// exited non-zero): MCP's `isError`. Failures that stop a tool from producing a
    /// result at all are [`Error`]s instead.
    fn is_error(&self) -> bool {
        false
    }
}

/// One agent tool, defined once. See the module docs; implement it on a unit struct
/// and add that struct to [`TOOLS`](super::TOOLS).
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The name agents call it by, e.g. `read_file`.
    const NAME: &'static str;
    /// What agents read to decide when and how to use it: what it does, its limits
    /// and caps, what it refuses and what to do instead.
    const DESCRIPTION: &'static str;
    /// What running it does to the workspace.
    const EFFECT: Effect;
    /// Its arguments, as JSON from an agent. The derived JSON schema (field docs become
    /// descriptions) is what agents see; unknown fields should be refused
    /// (`#[serde(deny_unknown_fields)]`) so a wrong name is reported, not ignored.
    type Input: DeserializeOwned + JsonSchema + Send + 'static;
    /// Its result.
    type Output: ToolResult;

    /// Runs it in the workspace `ctx`. `cancel` is cancelled when the caller gives up
    /// (an MCP client cancels the request): a tool that runs commands kills them.
    async fn run(
        &self,
        ctx: &ToolContext,
        input: Self::Input,
        cancel: CancellationToken,
    ) -> Result<Self::Output>;
}

/// A boxed future of a tool call.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<ToolOutput>> + Send + 'a>>;

/// Any [`Tool`], with JSON in and a type-erased result out: what lists and dispatchers
/// hold (`&'static dyn AnyTool`).
pub trait AnyTool: Send + Sync {
    /// [`Tool::NAME`].
    fn name(&self) -> &'static str;
    /// [`Tool::DESCRIPTION`].
    fn description(&self) -> &'static str;
    /// [`Tool::EFFECT`].
    fn effect(&self) -> Effect;
    /// The JSON schema of the input, tidied for models (see [`input_schema`]).
    fn input_schema(&self) -> serde_json::Map<String, serde_json::Value>;
    /// Parses `input` and runs the tool. Input that does not fit the schema is
    /// [`Error::InvalidInput`] naming the tool and the field.
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        input: serde_json::Value,
        cancel: CancellationToken,
    ) -> CallFuture<'a>;
}

impl<T: Tool> AnyTool for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn description(&self) -> &'static str {
        T::DESCRIPTION
    }

    fn effect(&self) -> Effect {
        T::EFFECT
    }

    fn input_schema(&self) -> serde_json::Map<String, serde_json::Value> {
        input_schema::<T::Input>()
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        input: serde_json::Value,
        cancel: CancellationToken,
    ) -> CallFuture<'a> {
        Box::pin(async move {
            let input: T::Input = serde_json::from_value(input).map_err(|e| {
                Error::invalid(format!(
                    "invalid arguments for {}: {e}; see the tool's input schema for the \
                     argument names and types",
                    T::NAME
                ))
            })?;
            let output = self.run(ctx, input, cancel).await?;
            Ok(ToolOutput::new(T::NAME, output))
        })
    }
}

/// The result of any tool, as [`AnyTool::call`] returns it. Serializes as
/// `{"tool": <name>, "output": <the tool's result>}`.
#[derive(Debug)]
pub struct ToolOutput {
    tool: &'static str,
    result: Box<dyn ErasedResult>,
}

impl ToolOutput {
    /// Wraps the result of the tool called `tool`.
    pub fn new<R: ToolResult>(tool: &'static str, result: R) -> Self {
        ToolOutput {
            tool,
            result: Box::new(result),
        }
    }

    /// The name of the tool that produced it.
    pub fn tool(&self) -> &'static str {
        self.tool
    }

    /// What a model reads.
    pub fn to_text(&self) -> String {
        self.result.text()
    }

    /// What an MCP client receives.
    pub fn content(&self) -> Vec<Content> {
        self.result.content()
    }

    /// True when the result reports a failure (MCP's `isError`).
    pub fn is_error(&self) -> bool {
        self.result.is_error()
    }

    /// The typed result, e.g. `downcast_ref::<GrepOutput>()`.
    pub fn downcast_ref<R: ToolResult>(&self) -> Option<&R> {
        self.result.as_any().downcast_ref()
    }
}

impl Serialize for ToolOutput {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeStruct};
        let output = self.result.to_json().map_err(S::Error::custom)?;
        let mut s = serializer.serialize_struct("ToolOutput", 2)?;
        s.serialize_field("tool", self.tool)?;
        s.serialize_field("output", &output)?;
        s.end()
    }
}

/// [`ToolResult`] in a form that can be boxed (serde's `Serialize` cannot).
trait ErasedResult: fmt::Debug + Send + Sync {
    fn text(&self) -> String;
    fn content(&self) -> Vec<Content>;
    fn is_error(&self) -> bool;
    fn to_json(&self) -> serde_json::Result<serde_json::Value>;
    fn as_any(&self) -> &dyn Any;
}

impl<R: ToolResult> ErasedResult for R {
    fn text(&self) -> String {
        ToolResult::text(self)
    }

    fn content(&self) -> Vec<Content> {
        ToolResult::content(self)
    }

    fn is_error(&self) -> bool {
        ToolResult::is_error(self)
    }

    fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
