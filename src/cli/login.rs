//! `hoist login` and `hoist logout`: credentials where docker and podman
//! keep them, checked against the registry before they are stored.

use super::RegistryArguments;
use super::report::{Mode, Reporter};
use anyhow::{Context, bail};
use hoist::operation::{self, login::AwsLoginRequest, login::LoginRequest};
use std::io::Read;

#[derive(Debug, clap::Args)]
pub struct LoginArguments {
    /// The registry, e.g. ghcr.io, docker.io, localhost:5000.
    registry: String,
    /// The user name. Not needed for Amazon ECR, whose password comes from
    /// the AWS credentials at hand (GetAuthorizationToken).
    #[arg(short, long)]
    username: Option<String>,
    /// Read the password (or token) from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// The password; visible to other users of this machine, prefer --password-stdin.
    #[arg(
        short,
        long,
        conflicts_with = "password_stdin",
        env = "HOIST_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    #[command(flatten)]
    registry_arguments: RegistryArguments,
}

#[derive(Debug, clap::Args)]
pub struct LogoutArguments {
    /// The registry to forget.
    registry: String,
}

pub fn login(arguments: LoginArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    let Some(username) = arguments.username else {
        let own = [hoist::registry::api_host(&arguments.registry).to_string()];
        let request = AwsLoginRequest {
            registry: arguments.registry.clone(),
            client: arguments.registry_arguments.client_options_for(1, &own)?,
        };
        if arguments.password_stdin || arguments.password.is_some() {
            bail!("give --username with a password (none is needed for Amazon ECR)");
        }
        operation::login::login_with_aws(&request, &reporter)?;
        return Ok(());
    };
    let password = if arguments.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from standard input")?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(password) = arguments.password {
        password
    } else {
        bail!("give the password with --password-stdin (or HOIST_PASSWORD)");
    };
    let request = LoginRequest {
        registry: arguments.registry,
        username,
        password: zeroize::Zeroizing::new(password),
        client: arguments.registry_arguments.client_options(1)?,
    };
    operation::login::login(&request, &reporter)?;
    Ok(())
}

pub fn logout(arguments: LogoutArguments) -> anyhow::Result<()> {
    let reporter = Reporter::new(Mode::Human);
    operation::login::logout(&arguments.registry, &reporter)?;
    Ok(())
}
