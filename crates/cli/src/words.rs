//! The agent tools' vocabulary in CLI words: an error of the `edit_file` tool says
//! "set replace_all to true", which a person at `cmux edit` reads as `--all`.

/// Tool words and what a CLI user types instead, longest phrases first.
const CLI_WORDS: &[(&str, &str)] = &[
    ("set replace_all to true", "pass --all"),
    (" (without the line-number prefixes)", ""),
    (
        "read the file again with read_file",
        "print the file again with `cmux cat`",
    ),
    ("replace_all", "--all"),
    ("old_string", "--old"),
    ("new_string", "--new"),
    ("read_file", "`cmux cat`"),
    ("write_file", "`cmux write`"),
    ("edit_file", "`cmux edit`"),
    ("list_dir", "`cmux ls`"),
    ("job_output", "`cmux job-output`"),
    ("job_kill", "`cmux job-kill`"),
];

/// `text` with the tools' words replaced by the CLI's.
pub fn in_cli_words(text: &str) -> String {
    CLI_WORDS
        .iter()
        .fold(text.to_owned(), |text, (tool, cli)| text.replace(tool, cli))
}

/// A library error from a file command, reworded for the CLI, with its exit code.
pub fn cli_error(err: cmux_core::Error) -> anyhow::Error {
    let code = err.exit_code();
    anyhow::Error::new(crate::error::CliError {
        code,
        message: in_cli_words(&err.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::in_cli_words;

    #[test]
    fn tool_words_become_cli_words() {
        assert_eq!(
            in_cli_words("old_string occurs 3 times in f: include more, or set replace_all to true to replace all 3"),
            "--old occurs 3 times in f: include more, or pass --all to replace all 3"
        );
        assert_eq!(
            in_cli_words("no such file: check the path, or create the file with write_file"),
            "no such file: check the path, or create the file with `cmux write`"
        );
        assert_eq!(
            in_cli_words("is not a directory: use read_file to read a file"),
            "is not a directory: use `cmux cat` to read a file"
        );
    }
}
