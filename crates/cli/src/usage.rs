//! Usage mistakes clap reports without saying how to fix them.

use cmux_core::quote;

/// The options of `cmux exec` that take a value (the next word, unless `--opt=value`).
const EXEC_VALUE_OPTIONS: &[&str] = &["--timeout", "--cwd", "--env"];

/// For `cmux exec ws ls -la` (the command without `--`): the one-line error with the
/// line the user meant, `cmux exec ws -- ls -la`. `None` when `args` (without the
/// program name) are not that mistake.
pub fn forgotten_dashes(args: &[String]) -> Option<String> {
    let (first, rest) = args.split_first()?;
    if first != "exec" || rest.iter().any(|a| a == "--") {
        return None;
    }
    let mut prefix = Vec::new();
    let mut words = rest.iter();
    let mut named = false;
    while let Some(word) = words.next() {
        prefix.push(word.clone());
        if EXEC_VALUE_OPTIONS.contains(&word.as_str()) {
            // Its value.
            prefix.extend(words.next().cloned());
        } else if !word.starts_with('-') {
            named = true;
            break;
        }
    }
    let command: Vec<String> = words.cloned().collect();
    if !named || command.is_empty() {
        return None;
    }
    Some(format!(
        "the command goes after `--`: cmux exec {} -- {}",
        quote::join(&prefix),
        quote::join(&command)
    ))
}

#[cfg(test)]
mod tests {
    use super::forgotten_dashes;

    fn hint(line: &str) -> Option<String> {
        let args: Vec<String> = line.split(' ').map(str::to_owned).collect();
        forgotten_dashes(&args)
    }

    #[test]
    fn suggests_the_line_with_dashes() {
        assert_eq!(
            hint("exec ws ls -la").as_deref(),
            Some("the command goes after `--`: cmux exec ws -- ls -la")
        );
        assert_eq!(
            hint("exec --cwd sub --timeout 5 ws echo a$b").as_deref(),
            Some("the command goes after `--`: cmux exec --cwd sub --timeout 5 ws -- echo 'a$b'")
        );
        assert_eq!(hint("exec ws -- ls"), None);
        assert_eq!(hint("exec ws"), None);
        assert_eq!(hint("cat ws f"), None);
    }
}
