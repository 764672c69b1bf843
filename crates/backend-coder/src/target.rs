//! [`CoderTarget`]: which Coder workspace (and agent) a cmux workspace lives in.

use std::fmt;

use cmux_core::{Error, Result};

/// A Coder workspace, optionally one agent of it: `my-ws` or `my-ws.agent`.
///
/// Coder names match `^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$` (no dots, no `--`), so the
/// split on the first `.` is unambiguous.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoderTarget {
    /// The workspace name, as `coder list` shows it.
    pub workspace: String,
    /// The agent, when the user named one (`name.agent`).
    pub agent: Option<String>,
}

impl CoderTarget {
    /// Parses `name` or `name.agent`, refusing what Coder would refuse.
    pub fn parse(spec: &str) -> Result<Self> {
        let (workspace, agent) = match spec.split_once('.') {
            Some((w, a)) => (w, Some(a)),
            None => (spec, None),
        };
        check_name("workspace", workspace, spec)?;
        if let Some(agent) = agent {
            check_name("agent", agent, spec)?;
        }
        Ok(CoderTarget {
            workspace: workspace.to_owned(),
            agent: agent.map(str::to_owned),
        })
    }

    /// `name` or `name.agent`: what follows the host prefix.
    pub fn host_part(&self) -> String {
        match &self.agent {
            Some(agent) => format!("{}.{agent}", self.workspace),
            None => self.workspace.clone(),
        }
    }

    /// The host cmux names the runtime by: `coder.<name>` or `coder.<name>.<agent>`.
    pub fn label(&self) -> String {
        format!("coder.{}", self.host_part())
    }
}

impl fmt::Display for CoderTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host_part())
    }
}

fn check_name(what: &str, name: &str, spec: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{spec:?} is not a Coder workspace: the {what} name {name:?} must be letters, digits \
             and single dashes (give `my-ws` or `my-ws.agent`; `coder list` shows your workspaces)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workspace_and_agent() {
        let t = CoderTarget::parse("my-ws").expect("plain name");
        assert_eq!(t.workspace, "my-ws");
        assert_eq!(t.agent, None);
        assert_eq!(t.label(), "coder.my-ws");
        let t = CoderTarget::parse("my-ws.main").expect("with agent");
        assert_eq!(t.agent.as_deref(), Some("main"));
        assert_eq!(t.label(), "coder.my-ws.main");
    }

    #[test]
    fn refuses_what_coder_refuses() {
        for bad in ["", "-x", "a--b", "a.b.c", "a b", "a/b", "x.", "ws;rm"] {
            assert!(CoderTarget::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
