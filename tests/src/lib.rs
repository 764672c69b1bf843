//! Test harness shared by the integration tests and the benchmarks: a real sshd per
//! test, a latency-injecting proxy, a fake `coder` CLI, temporary git repositories.

pub mod coder;
pub mod proxy;
pub mod sshd;
pub mod users;
