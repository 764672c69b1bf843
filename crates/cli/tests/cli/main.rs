//! End-to-end tests of the `cmux` binary.

#[test]
fn binary_exists() {
    assert!(std::path::Path::new(env!("CARGO_BIN_EXE_cmux")).exists());
}
