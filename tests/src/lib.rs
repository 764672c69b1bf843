//! Test harness shared by the integration tests.

pub mod sshd;
