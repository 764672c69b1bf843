//! The one integration-test binary: a module per concern, helpers in `cmux_integration_tests`.

mod ssh_harness;
mod mcp_client;
mod mcp_local;
mod ssh_exec;
mod ssh_files;
mod conformance_local;
mod ssh_concurrency;
mod ssh_kill;
mod mcp_ssh;
mod coder_backend;
mod coder_conformance;
mod ssh_config;
mod ssh_safety;
mod mcp_sdk_client;
mod ssh_bench;
mod ssh_conformance;
mod ssh_faults;
mod ssh_workspace;
mod ssh_multiprocess;
mod reliability_crash_write;
mod reliability_orphans;
mod reliability_ssh_faults;
mod reliability_quoting;
mod security_ssh_config;
mod security_escapes;
mod reliability_bad_input;
