//! Progress of workspace operations, printed to stderr (stdout stays for results).
//!
//! Steps and warnings are `cmux: ...` lines. A transfer (the push of `cmux new --ssh`)
//! is a bar redrawn in place on a terminal, and a few plain lines otherwise (each
//! quarter of a phase, and its end), so a log shows it moving without a line per
//! update.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use cmux_core::workspace::{Progress, ProgressEvent};

/// Prints progress on stderr: see the module docs.
#[derive(Debug)]
pub struct StderrProgress {
    render: Mutex<Render>,
}

impl StderrProgress {
    /// Draws bars when stderr is a terminal, plain lines otherwise.
    pub fn new() -> StderrProgress {
        StderrProgress {
            render: Mutex::new(Render::new(std::io::stderr().is_terminal())),
        }
    }
}

impl Default for StderrProgress {
    fn default() -> Self {
        StderrProgress::new()
    }
}

impl Progress for StderrProgress {
    fn event(&self, event: ProgressEvent<'_>) {
        let Ok(mut render) = self.render.lock() else {
            return;
        };
        let text = render.event(event);
        if !text.is_empty() {
            let mut err = std::io::stderr().lock();
            // stderr gone (closed pipe): progress is not worth failing for.
            let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
        }
    }
}

/// Width of the bar, in characters.
const BAR_WIDTH: usize = 24;

/// Turns events into the text to print; remembers what a bar or a plain line showed.
#[derive(Debug)]
pub struct Render {
    terminal: bool,
    /// Length of the bar line drawn last without its newline (0: none open).
    open_bar: usize,
    /// The phase and quarter (0-3) of the last plain transfer line.
    last_quarter: Option<(String, u64)>,
}

impl Render {
    /// A renderer for a terminal (bars) or not (plain lines).
    pub fn new(terminal: bool) -> Render {
        Render {
            terminal,
            open_bar: 0,
            last_quarter: None,
        }
    }

    /// The text `event` prints (possibly nothing).
    pub fn event(&mut self, event: ProgressEvent<'_>) -> String {
        match event {
            ProgressEvent::Transfer {
                what,
                phase,
                done,
                total,
                bytes,
                finished,
            } => {
                if self.terminal {
                    self.bar(what, phase, done, total, bytes, finished)
                } else {
                    self.plain(what, phase, done, total, bytes, finished)
                }
            }
            ProgressEvent::Step(msg) => self.line(format!("cmux: {msg}")),
            ProgressEvent::Warning(msg) => self.line(format!("cmux: warning: {msg}")),
            ProgressEvent::HookLine { line, .. } => self.line(line.to_owned()),
            _ => String::new(),
        }
    }

    /// A whole line, after closing an open bar.
    fn line(&mut self, text: String) -> String {
        let mut out = self.close_bar();
        out.push_str(&text);
        out.push('\n');
        out
    }

    fn close_bar(&mut self) -> String {
        if std::mem::take(&mut self.open_bar) > 0 {
            "\n".into()
        } else {
            String::new()
        }
    }

    fn bar(
        &mut self,
        what: &str,
        phase: &str,
        done: u64,
        total: Option<u64>,
        bytes: Option<u64>,
        finished: bool,
    ) -> String {
        let mut text = format!("cmux: {what}: {phase}");
        match total {
            Some(total) if total > 0 => {
                let filled = (done.min(total) as usize * BAR_WIDTH) / total as usize;
                text.push_str(&format!(
                    " {:>3}% [{}{}] {done}/{total}",
                    done.min(total) * 100 / total,
                    "#".repeat(filled),
                    "-".repeat(BAR_WIDTH - filled)
                ));
            }
            _ => text.push_str(&format!(" {done}")),
        }
        if let Some(bytes) = bytes {
            text.push_str(&format!(", {}", human_bytes(bytes)));
        }
        if finished {
            text.push_str(", done");
        }
        // Pad over a longer previous line (the bar is redrawn in place).
        let len = text.chars().count();
        let pad = self.open_bar.saturating_sub(len);
        let mut out = format!("\r{text}{}", " ".repeat(pad));
        if finished {
            out.push('\n');
            self.open_bar = 0;
        } else {
            self.open_bar = len;
        }
        out
    }

    fn plain(
        &mut self,
        what: &str,
        phase: &str,
        done: u64,
        total: Option<u64>,
        bytes: Option<u64>,
        finished: bool,
    ) -> String {
        let bytes = bytes
            .map(|b| format!(", {}", human_bytes(b)))
            .unwrap_or_default();
        match total {
            _ if finished => {
                self.last_quarter = None;
                let count = match total {
                    Some(total) => format!("{done}/{total}"),
                    None => done.to_string(),
                };
                format!("cmux: {what}: {phase}: {count}{bytes}, done\n")
            }
            Some(total) if total > 0 => {
                let quarter = done.min(total) * 4 / total;
                let key = (phase.to_owned(), quarter);
                let new_quarter = match &self.last_quarter {
                    Some(last) => *last != key,
                    None => quarter > 0,
                };
                if !new_quarter || quarter >= 4 {
                    return String::new();
                }
                self.last_quarter = Some(key);
                format!(
                    "cmux: {what}: {phase}: {}% ({done}/{total}){bytes}\n",
                    done * 100 / total
                )
            }
            _ => String::new(),
        }
    }
}

/// `1536` → `1.5 KiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A push as git reports it: enumerate, count, compress, write (two updates).
    fn push_events(render: &mut Render) -> String {
        let what = "push to host";
        let t = |phase, done, total, bytes, finished| ProgressEvent::Transfer {
            what,
            phase,
            done,
            total,
            bytes,
            finished,
        };
        let mut out = String::new();
        out += &render.event(ProgressEvent::Step("pushing main to host:/r"));
        for event in [
            t("Enumerating objects", 20, None, None, true),
            t("Counting objects", 10, Some(20), None, false),
            t("Counting objects", 20, Some(20), None, true),
            t("Compressing objects", 20, Some(20), None, true),
            t("Writing objects", 3, Some(20), Some(900_000), false),
            t("Writing objects", 9, Some(20), Some(60_000_000), false),
            t("Writing objects", 16, Some(20), Some(100_000_000), false),
            t("Writing objects", 20, Some(20), Some(126_000_000), true),
        ] {
            out += &render.event(event);
        }
        out += &render.event(ProgressEvent::Step("creating worktree"));
        out
    }

    #[test]
    fn push_progress_as_plain_lines() {
        insta::assert_snapshot!(push_events(&mut Render::new(false)));
    }

    #[test]
    fn push_progress_as_a_bar() {
        // `\r` shown as `⏎` so the snapshot shows each redraw.
        insta::assert_snapshot!(push_events(&mut Render::new(true)).replace('\r', "⏎"));
    }

    #[test]
    fn sizes_read_like_git() {
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(126_000_000), "120.2 MiB");
    }
}
