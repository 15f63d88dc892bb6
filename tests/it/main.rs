//! The integration tests, one binary: a module per area, shared helpers in
//! `common`. Run one area with `cargo test --test it build_layout::`.

mod attest_attach;
mod attest_catalog;
mod attest_sbom;
mod build_archives;
mod build_base;
mod build_debian;
mod build_errors;
mod build_layout;
mod build_reproducible;
mod build_stream;
mod cache_cli;
mod ci_cli;
mod ci_docs;
mod ci_git;
mod ci_outputs;
mod ci_tags;
mod cli_attest;
mod cli_copy;
mod cli_registry;
mod common;
mod layer_output;
mod layer_support;
mod layer_tar;
mod registry_concurrency;
mod registry_faults;
mod registry_login;
mod registry_push;
mod registry_quirks;
mod registry_referrers;
mod registry_security;
mod registry_tags;
mod registry_token;
mod schema_selfcheck;
mod signing;
mod sinks;
