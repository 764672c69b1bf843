//! Hosts as users write them: an ssh config alias or hostname, `user@host`,
//! `host:port`, `user@host:port`, `[::1]:2222`, or `ssh://[user@]host[:port]`, turned
//! into what `ssh` takes (`-p <port>`, `-l <user>`, then the host).

use cmux_core::{Error, Result};

/// Where ssh connects: the host word and the port and user given with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Destination {
    /// The host as ssh takes it (an alias, a name, `user@name`, an address).
    pub(crate) host: String,
    /// The port written with the host, if any.
    pub(crate) port: Option<u16>,
    /// The user written in an `ssh://` URL, if any (`user@host` keeps its user in
    /// `host`, where ssh reads it).
    pub(crate) user: Option<String>,
}

impl Destination {
    /// Parses `spec` (see the module docs). A bare IPv6 address (`::1`) is a host, not
    /// a host and a port.
    pub(crate) fn parse(spec: &str) -> Result<Destination> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "ssh host {spec:?}: {why}; write an alias, user@host, host:port or ssh://user@host:port"
            ))
        };
        let port = |text: &str| -> Result<u16> {
            match text.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => Err(bad("the port must be a number from 1 to 65535")),
            }
        };
        if let Some(rest) = spec.strip_prefix("ssh://") {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.contains('/') {
                return Err(bad("an ssh:// host takes no path"));
            }
            let (user, hostport) = match rest.rsplit_once('@') {
                Some((user, hp)) if !user.is_empty() => (Some(user.to_owned()), hp),
                Some(_) => return Err(bad("the user before @ is empty")),
                None => (None, rest),
            };
            let (host, port) = split_port(hostport, &port)?;
            if host.is_empty() {
                return Err(bad("the host is empty"));
            }
            return Ok(Destination { host, port, user });
        }
        let (host, port) = split_port(spec, &port)?;
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        Ok(Destination {
            host,
            port,
            user: None,
        })
    }

    /// `-p <port>` and `-l <user>`, for every ssh invocation (before the host).
    pub(crate) fn option_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if let Some(port) = self.port {
            words.extend(["-p".to_owned(), port.to_string()]);
        }
        if let Some(user) = &self.user {
            words.extend(["-l".to_owned(), user.clone()]);
        }
        words
    }

    /// The host for an `ssh://` URL (git's): IPv6 addresses in brackets; the port and
    /// user travel in [`Destination::option_words`].
    pub(crate) fn url_host(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            match self.host.rsplit_once('@') {
                Some((user, addr)) => format!("{user}@[{addr}]"),
                None => format!("[{}]", self.host),
            }
        } else {
            self.host.clone()
        }
    }
}

/// `host:port`, `[v6]:port`, `[v6]`, or a host without a port.
fn split_port(text: &str, port: &dyn Fn(&str) -> Result<u16>) -> Result<(String, Option<u16>)> {
    // `user@[::1]:22`: the brackets come after the user.
    let (user, rest) = match text.rsplit_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, text),
    };
    let with_user = |host: &str| match user {
        Some(u) => format!("{u}@{host}"),
        None => host.to_owned(),
    };
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Ok((text.to_owned(), None));
        };
        return match after.strip_prefix(':') {
            Some(p) => Ok((with_user(addr), Some(port(p)?))),
            None if after.is_empty() => Ok((with_user(addr), None)),
            None => Ok((text.to_owned(), None)),
        };
    }
    match rest.split_once(':') {
        // One colon: host and port. More: a bare IPv6 address.
        Some((host, p)) if !p.contains(':') => Ok((with_user(host), Some(port(p)?))),
        _ => Ok((text.to_owned(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(host: &str, port: Option<u16>, user: Option<&str>) -> Destination {
        Destination {
            host: host.into(),
            port,
            user: user.map(Into::into),
        }
    }

    #[test]
    fn hosts_as_users_write_them() {
        let cases = [
            ("web", d("web", None, None)),
            ("me@web", d("me@web", None, None)),
            ("127.0.0.1:2222", d("127.0.0.1", Some(2222), None)),
            ("me@127.0.0.1:2222", d("me@127.0.0.1", Some(2222), None)),
            ("[::1]:2222", d("::1", Some(2222), None)),
            ("me@[::1]:2222", d("me@::1", Some(2222), None)),
            ("::1", d("::1", None, None)),
            ("[::1]", d("::1", None, None)),
            ("ssh://me@host:2200", d("host", Some(2200), Some("me"))),
            ("ssh://host", d("host", None, None)),
            ("ssh://me@[::1]:22/", d("::1", Some(22), Some("me"))),
        ];
        for (spec, want) in cases {
            assert_eq!(Destination::parse(spec).expect(spec), want, "{spec}");
        }
        for bad in [
            "host:0",
            "host:99999",
            "host:x",
            "ssh://",
            "ssh://h/path",
            "ssh://@h",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
        let v6 = Destination::parse("ssh://me@[::1]:22").expect("v6");
        assert_eq!(v6.option_words(), ["-p", "22", "-l", "me"]);
        assert_eq!(v6.url_host(), "[::1]");
        assert_eq!(
            Destination::parse("me@[::1]:2").expect("v6").url_host(),
            "me@[::1]"
        );
    }
}
