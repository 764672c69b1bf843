//! The one integration-test binary: a module per concern, helpers in `cmux_integration_tests`.

mod coder_backend;
mod coder_conformance;
mod conformance_local;
mod mcp_client;
mod mcp_local;
mod mcp_sdk_client;
mod mcp_ssh;
mod reliability_bad_input;
mod reliability_crash_write;
mod reliability_orphans;
mod reliability_quoting;
mod reliability_ssh_faults;
mod security_escapes;
mod security_ssh_config;
mod ssh_bench;
mod ssh_concurrency;
mod ssh_config;
mod ssh_conformance;
mod ssh_exec;
mod ssh_faults;
mod ssh_files;
mod ssh_harness;
mod ssh_kill;
mod ssh_multiprocess;
mod ssh_safety;
mod ssh_workspace;
