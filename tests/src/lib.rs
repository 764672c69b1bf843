//! Test harness shared by the integration tests and the benchmarks: a real sshd per
//! test, a latency-injecting proxy, a fake `coder` CLI, temporary git repositories, a
//! runtime wrapper that forces the tools' generic path.

pub mod agent;
pub mod coder;
pub mod generic;
pub mod helper;
pub mod jobs;
pub mod load;
pub mod proxy;
pub mod sshd;
pub mod users;
