//! git's `--progress` output (on stderr: `Writing objects:  45% (9/20), 1.20 MiB |
//! 3.00 MiB/s`, lines ended by `\r` while they update) as [`ProgressEvent::Transfer`]s,
//! so a front end can draw a bar for a push instead of seconds of silence.

use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::workspace::progress::{Progress, ProgressEvent};

/// Splits git's stderr into lines (at `\r` or `\n`), reports the progress lines as
/// [`ProgressEvent::Transfer`] and keeps the others (errors, `remote:` lines) for the
/// error message.
#[derive(Debug, Default)]
pub struct GitProgressParser {
    partial: Vec<u8>,
    other: String,
}

/// One parsed progress line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitProgressLine {
    /// git's name of the phase: `Counting objects`, `Writing objects`...
    pub phase: String,
    /// Objects done.
    pub done: u64,
    /// Objects in all, when git knows.
    pub total: Option<u64>,
    /// Bytes sent so far, when git says (rounded as git prints it: `1.20 MiB`).
    pub bytes: Option<u64>,
    /// The phase is complete (`, done.`).
    pub finished: bool,
}

impl GitProgressParser {
    /// Feeds bytes from git's stderr; reports each complete progress line to
    /// `progress` as a transfer of `what` (e.g. "push to host").
    pub fn feed(&mut self, chunk: &[u8], what: &str, progress: &dyn Progress) {
        for &byte in chunk {
            if byte == b'\r' || byte == b'\n' {
                let line = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.line(&line, what, progress);
            } else {
                self.partial.push(byte);
            }
        }
    }

    /// Ends the stream; returns the lines that were not progress, `\n`-joined.
    pub fn finish(mut self, what: &str, progress: &dyn Progress) -> String {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.line(&line, what, progress);
        }
        self.other
    }

    fn line(&mut self, line: &str, what: &str, progress: &dyn Progress) {
        if line.trim().is_empty() {
            return;
        }
        match parse_line(line) {
            Some(p) => progress.event(ProgressEvent::Transfer {
                what,
                phase: &p.phase,
                done: p.done,
                total: p.total,
                bytes: p.bytes,
                finished: p.finished,
            }),
            None => {
                self.other.push_str(line);
                self.other.push('\n');
            }
        }
    }
}

/// Parses one of git's progress lines; `None` for anything else.
pub fn parse_line(line: &str) -> Option<GitProgressLine> {
    let (phase, rest) = line.trim().split_once(": ")?;
    if phase.starts_with("remote") || !phase.ends_with("objects") && !phase.ends_with("deltas") {
        return None;
    }
    let rest = rest.trim_start();
    let finished = rest.contains(", done");
    let (done, total, after) = if let Some((_, counts)) = rest
        .split_once('%')
        .filter(|(pct, _)| pct.trim().parse::<u32>().is_ok())
    {
        // ` (9/20), 1.20 MiB | 3.00 MiB/s`
        let inner = counts.trim_start().strip_prefix('(')?;
        let (pair, after) = inner.split_once(')')?;
        let (done, total) = pair.split_once('/')?;
        (done.parse().ok()?, Some(total.parse().ok()?), after)
    } else {
        // `Enumerating objects: 5, done.`
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (digits.parse().ok()?, None, &rest[digits.len()..])
    };
    let bytes = after
        .trim_start_matches(',')
        .split(['|', ','])
        .next()
        .and_then(parse_size);
    Some(GitProgressLine {
        phase: phase.to_owned(),
        done,
        total,
        bytes,
        finished,
    })
}

/// `1.20 MiB` → bytes.
fn parse_size(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let number: f64 = words.next()?.parse().ok()?;
    let unit = match words.next()? {
        "bytes" | "byte" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * unit) as u64)
}

/// Runs `cmd` (a git command given `--progress`), reporting its progress to `progress`
/// as transfers of `what`. Returns its output, with only the lines of stderr that were
/// not progress.
pub async fn run_with_progress(
    mut cmd: tokio::process::Command,
    what: &str,
    progress: &dyn Progress,
) -> std::io::Result<std::process::Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.kill_on_drop(true).spawn()?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let read_stdout = async {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            s.read_to_end(&mut out).await?;
        }
        std::io::Result::Ok(out)
    };
    let read_stderr = async {
        let mut parser = GitProgressParser::default();
        let mut buf = vec![0u8; 8192];
        if let Some(s) = stderr.as_mut() {
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                parser.feed(&buf[..n], what, progress);
            }
        }
        std::io::Result::Ok(parser.finish(what, progress))
    };
    let (out, err) = tokio::try_join!(read_stdout, read_stderr)?;
    let status = child.wait().await?;
    Ok(std::process::Output {
        status,
        stdout: out,
        stderr: err.into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn parses_git_progress_lines() {
        assert_eq!(
            parse_line("Writing objects:  45% (9/20), 1.20 MiB | 3.00 MiB/s"),
            Some(GitProgressLine {
                phase: "Writing objects".into(),
                done: 9,
                total: Some(20),
                bytes: Some(1_258_291),
                finished: false,
            })
        );
        let done = parse_line("Writing objects: 100% (20/20), 2.00 KiB | 2.00 KiB/s, done.")
            .expect("parsed");
        assert!(done.finished && done.bytes == Some(2048) && done.done == 20);
        let counted = parse_line("Counting objects: 100% (3/3), done.").expect("parsed");
        assert_eq!(
            (counted.total, counted.bytes, counted.finished),
            (Some(3), None, true)
        );
        let enumerated = parse_line("Enumerating objects: 5, done.").expect("parsed");
        assert_eq!((enumerated.done, enumerated.total), (5, None));
        assert_eq!(
            parse_line("Total 3 (delta 0), reused 0 (delta 0), pack-reused 0"),
            None
        );
        assert_eq!(parse_line("remote: Resolving deltas: 100% (1/1)"), None);
        assert_eq!(parse_line("fatal: unable to access"), None);
    }

    #[test]
    fn carriage_returns_split_updates_and_other_lines_are_kept() {
        let seen = Mutex::new(Vec::new());
        let progress = |e: ProgressEvent<'_>| {
            if let ProgressEvent::Transfer { done, .. } = e {
                seen.lock().expect("lock").push(done);
            }
        };
        let mut parser = GitProgressParser::default();
        parser.feed(
            b"Writing objects:  50% (1/2)\rWriting obj",
            "push",
            &progress,
        );
        parser.feed(b"ects: 100% (2/2), done.\nerror: nope\n", "push", &progress);
        assert_eq!(parser.finish("push", &progress), "error: nope\n");
        assert_eq!(*seen.lock().expect("lock"), vec![1, 2]);
    }
}
