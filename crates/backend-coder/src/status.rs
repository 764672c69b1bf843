//! A Coder workspace as `coder list -o json` describes it.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// `latest_build.status`: the ten values Coder defines, plus anything newer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceStatus {
    /// A build is queued.
    Pending,
    /// A start build runs.
    Starting,
    /// Started: the agent can be reached.
    Running,
    /// A stop build runs.
    Stopping,
    /// Stopped.
    Stopped,
    /// The last build failed.
    Failed,
    /// A build is being cancelled.
    Canceling,
    /// The last build was cancelled.
    Canceled,
    /// A delete build runs.
    Deleting,
    /// Deleted.
    Deleted,
    /// A value this version of cmux does not know.
    Other(String),
}

impl WorkspaceStatus {
    /// Parses Coder's status string.
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "starting" => Self::Starting,
            "running" => Self::Running,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "failed" => Self::Failed,
            "canceling" => Self::Canceling,
            "canceled" => Self::Canceled,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for WorkspaceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Canceling => "canceling",
            Self::Canceled => "canceled",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Other(s) => s,
        })
    }
}

/// The fields cmux uses from one element of `coder list -o json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workspace {
    /// Workspace name.
    pub name: String,
    /// Owner's user name.
    pub owner: String,
    /// Template name.
    pub template: String,
    /// `latest_build.status`.
    pub status: WorkspaceStatus,
    /// `latest_build.transition`: `start`, `stop` or `delete`.
    pub transition: String,
    /// Agent names of the latest build (empty while stopped).
    pub agents: Vec<String>,
}

impl Workspace {
    /// Reads the fields from one JSON element; missing fields become empty.
    pub fn from_json(v: &Value) -> Self {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let build = v.get("latest_build").cloned().unwrap_or(Value::Null);
        let agents = build
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("agents").and_then(Value::as_array))
            .flatten()
            // Devcontainer sub-agents (`parent_id` set) are not ssh targets of their own.
            .filter(|a| a.get("parent_id").is_none_or(Value::is_null))
            .map(|a| s(a, "name"))
            .filter(|n| !n.is_empty())
            .collect();
        Workspace {
            name: s(v, "name"),
            owner: s(v, "owner_name"),
            template: s(v, "template_name"),
            status: WorkspaceStatus::parse(&s(&build, "status")),
            transition: s(&build, "transition"),
            agents,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_json_shape() {
        let v: Value = serde_json::from_str(
            r#"{"name":"dev","owner_name":"u","template_name":"docker",
                "latest_build":{"status":"running","transition":"start","job":{"status":"succeeded"},
                "resources":[{"agents":[{"name":"main"},{"name":"sub","parent_id":"x"}]},{"agents":null}]}}"#,
        )
        .expect("json");
        let w = Workspace::from_json(&v);
        assert_eq!(w.name, "dev");
        assert_eq!(w.status, WorkspaceStatus::Running);
        assert_eq!(w.agents, vec!["main".to_owned()]);
        assert_eq!(WorkspaceStatus::parse("weird").to_string(), "weird");
    }
}
