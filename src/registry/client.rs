//! The registry client the rest of hoist holds: options, a tokio runtime of
//! its own, and synchronous faces over the async transport so rayon threads
//! can call it concurrently.

use super::credentials::{Credential, CredentialEnvironment};
use super::error::RegistryError;
use super::options::{ClientOptions, GivenCredentials};
use super::transport::{Call, Context, Request, Scopes, Transport};
use reqwest::Method;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

struct RuntimeHolder(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeHolder {
    fn drop(&mut self) {
        // Never blocks, so dropping the last client is safe anywhere.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A registry client; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) transport: Arc<Transport>,
    runtime: Arc<RuntimeHolder>,
    pub(crate) transfers: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RegistryClient")
            .field("options", &self.transport.options)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    pub fn new(options: ClientOptions) -> Result<Self, RegistryError> {
        let jobs = options.jobs.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(jobs.clamp(1, 4))
            .thread_name("hoist-registry")
            .enable_all()
            .build()
            .map_err(RegistryError::Runtime)?;
        // reqwest's connection pool binds to the runtime that first uses it,
        // so the client is built inside ours.
        let transport = {
            let _guard = runtime.enter();
            Transport::new(options)?
        };
        Ok(RegistryClient {
            transport: Arc::new(transport),
            runtime: Arc::new(RuntimeHolder(Some(runtime))),
            transfers: Arc::new(tokio::sync::Semaphore::new(jobs)),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.transport.options
    }

    /// Asks `registry` for `/v2/` as `username`/`password`, like `docker
    /// login` does before storing them: a client with only these
    /// credentials (no stored ones, which would hide a wrong password) and
    /// this client's TLS and insecure-registry options.
    pub fn check_login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<(), RegistryError> {
        let mut options = self.options().clone();
        options.credentials = vec![GivenCredentials::everywhere(username, password)];
        options.credential_environment = CredentialEnvironment::default();
        let checker = RegistryClient::new(options)?;
        let host = super::reference::api_host(registry).to_string();
        let transport = checker.transport.clone();
        checker.block_on(async move {
            let base = transport.base_url(&host).await?;
            let context = Context::new("logging in to", &host);
            let url = format!("{base}/v2/");
            transport
                .send(
                    Call::new(&host, &Scopes::none(), &context),
                    &Request::new(Method::GET, &url),
                    None,
                )
                .await
                .map(|_| ())
        })
    }

    /// The registry password for `registry` from the AWS credential chain
    /// (`GetAuthorizationToken`), when it is an ECR registry; `None` when
    /// it is not one.
    pub fn ecr_login(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let host = super::reference::api_host(registry).to_string();
        let transport = self.transport.clone();
        self.block_on(async move {
            let Some(ecr) = transport.ecr_registry(&host)? else {
                return Ok(None);
            };
            let options = &transport.options;
            let login = transport
                .ecr_logins
                .credential(&transport.http, &options.aws, &host, &ecr);
            Ok(Some(login.await?))
        })
    }

    /// Runs `future` to completion on the client's runtime.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.runtime.0 {
            Some(runtime) => runtime.block_on(future),
            None => unreachable!("the runtime lives as long as the client"),
        }
    }

    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &self.runtime.0 {
            runtime.spawn(future);
        }
    }
}
