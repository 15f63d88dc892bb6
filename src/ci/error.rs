//! Everything that can go wrong while reading git and CI state or writing CI
//! outputs. Each variant names the command, variable, template or file involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CiError {
    #[error(
        "cannot run `{command}` in {dir}: {source}; install git, or build outside a git checkout"
    )]
    GitUnavailable {
        command: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "git refuses to read {dir} because another user owns it (`{command}`); if you trust the checkout, run `git config --global --add safe.directory {dir}`"
    )]
    GitDubiousOwnership { command: String, dir: PathBuf },
    #[error("`{command}` failed ({status}): {stderr}")]
    GitCommand {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("`{command}` printed `{output}`, which is not {expected}")]
    GitOutput {
        command: String,
        output: String,
        expected: &'static str,
    },
    #[error("{variable}=`{value}` is not {expected}; fix or unset the variable")]
    InvalidVariable {
        variable: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot read the GitHub event file {path} (GITHUB_EVENT_PATH): {source}")]
    EventFileRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the GitHub event file {path} (GITHUB_EVENT_PATH) is not JSON: {source}")]
    EventFileParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "tag template `{template}` uses unknown placeholder {{{placeholder}}}; allowed: {allowed}"
    )]
    UnknownPlaceholder {
        template: String,
        placeholder: String,
        allowed: String,
    },
    #[error("tag template `{template}` has a `{{` without a matching `}}`")]
    UnclosedPlaceholder { template: String },
    #[error("tag date format `{format}` is not a valid strftime format (e.g. `%Y%m%d`)")]
    InvalidDateFormat { format: String },
    #[error(
        "date-timezone `{value}` is not a time zone: use UTC or an offset like +09:00 or -05:00"
    )]
    InvalidTimezone { value: String },
    #[error("sha-length {length} is out of range: use 1 to 40")]
    InvalidShaLength { length: usize },
    #[error("time {seconds} (seconds since 1970) cannot be written as a date")]
    TimeOutOfRange { seconds: i64 },
    #[error("cannot write {path}: {source}")]
    WriteOutput {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("reading the {what} {digest}: {source}")]
    Decode {
        what: &'static str,
        digest: crate::oci::Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("output `{key}` cannot be written to {path}: {reason}")]
    OutputValue {
        key: String,
        path: PathBuf,
        reason: &'static str,
    },
}
