//! The environment variables the CLI maps to library options (the libraries read
//! none): they work as before.

use super::{stderr, Env};

/// `~` on this machine is `$HOME`, as in a shell, not the passwd database's home
/// (the local runtime's default when no home is given).
#[test]
fn tilde_is_home_locally() {
    let env = Env::new();
    env.ok(&["new", "w"]);
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(home.path().join("note.txt"), "from $HOME\n").expect("write");
    let out = env
        .command(&["cat", "w", "~/note.txt"])
        .env("HOME", home.path())
        .output()
        .expect("cmux runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from $HOME\n");
}
