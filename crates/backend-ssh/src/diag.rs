//! Turns what `ssh` printed into an error a user can act on.

use std::time::Duration;

use cmux_core::Error;

/// What kind of failure ssh reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Connection,
    Authentication,
    HostKey,
    /// A problem on this machine (ssh missing, a file we cannot write).
    Local,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Connection => "connection",
            Kind::Authentication => "authentication",
            Kind::HostKey => "hostkey",
            Kind::Local => "local",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "connection" => Kind::Connection,
            "authentication" => Kind::Authentication,
            "hostkey" => Kind::HostKey,
            "local" => Kind::Local,
            _ => return None,
        })
    }
}

/// A classified connection failure, kept for the backoff's fast failures.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub(crate) kind: Kind,
    /// ssh's own diagnostic plus the next step.
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn local(detail: String) -> Self {
        Failure {
            kind: Kind::Local,
            detail,
        }
    }

    pub(crate) fn timeout(limit: Duration) -> Self {
        Failure {
            kind: Kind::Connection,
            detail: format!(
                "ssh did not finish connecting within {}s; check the network and any ProxyJump/ProxyCommand",
                limit.as_secs()
            ),
        }
    }

    pub(crate) fn to_error(&self, host: &str) -> Error {
        let host = host.to_owned();
        let message = self.detail.clone();
        match self.kind {
            // A master that could not start: no operation reached the host.
            Kind::Connection => Error::Connection {
                host,
                message: format!("{message} ({})", cmux_core::error::NOTHING_RAN),
            },
            Kind::Authentication => Error::Authentication { host, message },
            Kind::HostKey => Error::HostKey { host, message },
            Kind::Local => Error::Backend {
                backend: format!("ssh {host}"),
                message,
            },
        }
    }
}

fn fingerprint(log: &str) -> Option<&str> {
    log.split_whitespace()
        .find(|w| w.starts_with("SHA256:") || w.starts_with("MD5:"))
        .map(|w| w.trim_end_matches('.'))
}

/// `Offending ED25519 key in /path/known_hosts:3` → (`/path/known_hosts`, `3`).
fn offending_line(log: &str) -> Option<(&str, &str)> {
    log.lines()
        .find(|l| l.trim_start().starts_with("Offending "))
        .and_then(|l| l.split_once(" in "))
        .and_then(|(_, loc)| loc.trim().rsplit_once(':'))
}

/// The `NAME` in `Host key for NAME has changed` / `known for NAME and`.
fn key_name(log: &str) -> Option<&str> {
    for line in log.lines() {
        if let Some(rest) = line.split("Host key for ").nth(1) {
            return rest.split(" has changed").next();
        }
        if let Some(rest) = line.split("host key is known for ").nth(1) {
            return rest.split(" and ").next();
        }
    }
    None
}

/// `ssh-keyscan` for a known_hosts name: `[host]:port` (how OpenSSH names a host on
/// another port) becomes `ssh-keyscan -p port host`, which is what keyscan takes.
fn keyscan_words(name: &str) -> String {
    if let Some((host, port)) = name
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
        .filter(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
    {
        return format!("ssh-keyscan -p {port} {host}");
    }
    format!("ssh-keyscan {name}")
}

/// The lines of ssh's output worth showing (no banners, no blank lines).
fn diagnostic(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning: Permanently added")
        })
        .collect();
    let start = lines.len().saturating_sub(4);
    let text = lines[start..].join(" / ");
    format!("{text:?}")
}

/// Classifies ssh's output (`-E` log) after a failed master start.
pub(crate) fn classify(log: &str, code: Option<i32>) -> Failure {
    let has = |s: &str| log.contains(s);
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("has changed and you have requested strict checking")
    {
        let fp = fingerprint(log).unwrap_or("(not shown by ssh)");
        let name = key_name(log).unwrap_or("the host");
        let (fix, file) = match offending_line(log) {
            Some((file, line)) => (
                format!("delete line {line} of {file}, or run `ssh-keygen -R {name} -f {file}`"),
                file.to_owned(),
            ),
            None => (
                format!("run `ssh-keygen -R {name}`"),
                "known_hosts".to_owned(),
            ),
        };
        return Failure {
            kind: Kind::HostKey,
            detail: format!(
                "the host key CHANGED: the host now presents {fp}, which does not match the key for {name} in {file}. \
                 This can be a man-in-the-middle attack; nothing was sent. If the host was reinstalled, confirm the new \
                 fingerprint with its administrator, then {fix} and retry (cmux never accepts a changed key by itself)"
            ),
        };
    }
    if has("host key is known for") || has("Host key verification failed") {
        let name = key_name(log).unwrap_or("the host");
        let keyscan = keyscan_words(name);
        return Failure {
            kind: Kind::HostKey,
            detail: format!(
                "the host key of {name} is unknown (not in known_hosts) and strict checking is on; nothing was sent. \
                 Check its fingerprint (`{keyscan} | ssh-keygen -lf -` against what the host's administrator \
                 shows), then retry with --accept-new-host-key to trust and remember it. ssh said: {}",
                diagnostic(log)
            ),
        };
    }
    if has("Permission denied (")
        || has("Too many authentication failures")
        || has("no more authentication methods")
    {
        return Failure {
            kind: Kind::Authentication,
            detail: format!(
                "the host refused every key we offered (ssh said: {}). Check the user and keys ssh uses \
                 (`ssh -G <host>`: user, identityfile), that the public key is in the host's ~/.ssh/authorized_keys, \
                 and that a passphrase-protected key is loaded in ssh-agent (cmux runs ssh with BatchMode, no prompts)",
                diagnostic(log)
            ),
        };
    }
    let hint = if has("Could not resolve hostname") {
        "the name does not resolve: check the spelling, your DNS, or add a Host entry to ~/.ssh/config"
    } else if has("Connection refused") {
        "nothing listens on the ssh port: check that sshd runs on the host and the Port in your ssh config"
    } else if has("timed out") || has("No route to host") || has("Network is unreachable") {
        "the host does not answer: check that it is up and reachable (VPN, firewall, ProxyJump)"
    } else if has("kex_exchange_identification")
        || has("Connection closed by")
        || has("Connection reset")
    {
        "the server closed the connection before login: it may be overloaded (MaxStartups) or restarting; retry shortly"
    } else if has("Bad configuration option")
        || has("command-line line")
        || has("Bad owner or permissions")
    {
        "your ssh configuration has an error: fix the file ssh names"
    } else {
        "run the same ssh by hand to see more (`ssh -v <host> true`), or `cmux doctor --ssh <host>`"
    };
    let said = if log.trim().is_empty() {
        format!(
            "ssh exited with {} and printed nothing",
            code.map_or("a signal".to_owned(), |c| format!("code {c}"))
        )
    } else {
        format!("ssh said: {}", diagnostic(log))
    };
    Failure {
        kind: Kind::Connection,
        detail: format!("{said}; {hint}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGED: &str = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
The fingerprint for the ED25519 key sent by the remote host is\n\
SHA256:abcDEF123.\n\
Please contact your system administrator.\n\
Add correct host key in /tmp/k/known_hosts to get rid of this message.\n\
Offending ED25519 key in /tmp/k/known_hosts:3\n\
Host key for myalias has changed and you have requested strict checking.\n\
Host key verification failed.\n";

    #[test]
    fn changed_key_names_fingerprint_and_line() {
        let f = classify(CHANGED, Some(255));
        assert_eq!(f.kind, Kind::HostKey);
        assert!(f.detail.contains("SHA256:abcDEF123"), "{}", f.detail);
        assert!(
            f.detail.contains("line 3 of /tmp/k/known_hosts"),
            "{}",
            f.detail
        );
        assert!(f.detail.contains("ssh-keygen -R myalias"), "{}", f.detail);
    }

    #[test]
    fn auth_and_connection_failures() {
        let f = classify(
            "root@127.0.0.1: Permission denied (publickey).\n",
            Some(255),
        );
        assert_eq!(f.kind, Kind::Authentication);
        let f = classify(
            "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
            Some(255),
        );
        assert_eq!(f.kind, Kind::Connection);
        assert!(f.detail.contains("Connection refused"));
        let f = classify(
            "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n",
            Some(255),
        );
        assert_eq!(f.kind, Kind::HostKey);
        assert!(f.detail.contains("--accept-new-host-key"));
        // Issue 11 #17: keyscan takes the port as -p, not in known_hosts' brackets.
        let f = classify(
            "No ED25519 host key is known for [localhost]:35107 and you have requested strict checking.\nHost key verification failed.\n",
            Some(255),
        );
        assert!(
            f.detail.contains("`ssh-keyscan -p 35107 localhost |"),
            "{}",
            f.detail
        );
        assert!(
            !f.detail.contains("ssh-keyscan [localhost]"),
            "{}",
            f.detail
        );
    }
}
