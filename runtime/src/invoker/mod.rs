//! The invoker: calls functions and returns their replies.
//!
//! One transport per endpoint (index = the endpoint's index in the [`Catalog`]). Each transport
//! bounds its own concurrency and retries inside its own call budget, so a failing endpoint
//! slows only its own addresses. [`http`] is the HTTP transport ([`pool`] keeps its
//! connections, [`conn`] is one HTTP/1.1 client connection, [`tls`] loads its TLS material),
//! [`lambda`] the AWS Lambda transport, [`embedded`] calls `eddy-sdk` functions
//! linked into the binary; the remote transports share their retry loop (`call.rs`).

pub(crate) mod call;
pub mod conn;
pub mod embedded;
pub mod http;
pub mod lambda;
pub mod pool;
pub mod tls;

use crate::address::Address;
use crate::catalog::Catalog;
use crate::spec::EndpointTarget;
use crate::{Error, Result};
use bytes::Bytes;
use eddy_protocol::{FromFunction, Message as _, ToFunction};
use std::path::PathBuf;
use tokio::sync::watch;

/// A batch request as the machine hands it over: the prost struct, or already encoded for
/// transports that send bytes (see `partition/wire.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Proto(ToFunction),
    Encoded(Bytes),
}

impl Request {
    /// The request as a struct (decoding it if it was encoded).
    pub fn into_proto(self) -> Result<ToFunction> {
        match self {
            Request::Proto(request) => Ok(request),
            Request::Encoded(bytes) => ToFunction::decode(bytes).map_err(|error| {
                Error::Rejected(format!("cannot decode a built request: {error}"))
            }),
        }
    }

    /// The request's bytes (encoding it if it is a struct).
    pub fn into_bytes(self) -> Bytes {
        match self {
            Request::Proto(request) => Bytes::from(request.encode_to_vec()),
            Request::Encoded(bytes) => bytes,
        }
    }
}

/// How one endpoint is reached.
pub enum Transport {
    Http(Box<http::HttpTransport>),
    Lambda(Box<lambda::LambdaTransport>),
    Embedded(embedded::EmbeddedTransport),
}

/// What the transports need besides the catalog.
#[derive(Default)]
pub struct InvokerSetup {
    /// The module file, to name it in configuration errors.
    pub module_path: PathBuf,
    /// The functions linked into this binary (embedded endpoints).
    pub embedded: Option<eddy_sdk::Functions>,
    /// Flips to `true` at shutdown: ends throttled Lambda calls.
    pub shutdown: Option<watch::Receiver<bool>>,
    /// The AWS configuration for Lambda endpoints; `None` loads it from the standard chain
    /// when the module has a Lambda endpoint.
    pub aws: Option<aws_config::SdkConfig>,
}

/// Every endpoint's transport.
pub struct Invoker {
    transports: Vec<Transport>,
}

impl Invoker {
    /// Builds one transport per endpoint of `catalog` (loads TLS material and the AWS
    /// configuration, so it can fail).
    pub async fn new(catalog: &Catalog, setup: InvokerSetup) -> Result<Invoker> {
        let InvokerSetup {
            module_path,
            embedded,
            shutdown,
            aws,
        } = setup;
        let needs_aws = catalog
            .endpoints()
            .iter()
            .any(|endpoint| matches!(endpoint.target, EndpointTarget::Lambda(_)));
        let aws = match aws {
            Some(aws) => Some(aws),
            None if needs_aws => Some(load_aws_config(catalog).await),
            None => None,
        };
        let mut transports = Vec::with_capacity(catalog.endpoints().len());
        for endpoint in catalog.endpoints() {
            let transport = match &endpoint.target {
                EndpointTarget::Http(target) => {
                    Transport::Http(Box::new(http::HttpTransport::new(target)?))
                }
                EndpointTarget::Lambda(target) => {
                    let Some(aws) = aws.as_ref() else {
                        return Err(Error::Rejected("no aws configuration".into()));
                    };
                    let transport = lambda::LambdaTransport::new(target, aws, shutdown.clone())
                        .map_err(|message| Error::Config {
                            file: module_path.clone(),
                            document: Some(endpoint.document),
                            field: "spec.region".to_string(),
                            message,
                        })?;
                    Transport::Lambda(Box::new(transport))
                }
                EndpointTarget::Embedded => match &embedded {
                    Some(functions) => {
                        Transport::Embedded(embedded::EmbeddedTransport::new(functions.clone()))
                    }
                    None => {
                        return Err(Error::Config {
                            file: module_path.clone(),
                            document: Some(endpoint.document),
                            field: "spec.functions".to_string(),
                            message: "an embedded endpoint needs functions linked into the \
                                      binary; build your own binary with \
                                      eddy_runtime::cli::main_with(Some(functions))"
                                .to_string(),
                        })
                    }
                },
            };
            transports.push(transport);
        }
        Ok(Invoker { transports })
    }

    /// True if endpoint `endpoint` runs functions in this process: its invocations usually
    /// complete on their first poll, so the worker runs them inline instead of as a task.
    pub fn is_in_process(&self, endpoint: usize) -> bool {
        matches!(self.transports.get(endpoint), Some(Transport::Embedded(_)))
    }

    /// Invokes `target` through endpoint `endpoint` with `request`.
    pub async fn invoke(
        &self,
        endpoint: usize,
        target: &Address,
        request: Request,
    ) -> Result<FromFunction> {
        match self.transports.get(endpoint) {
            Some(Transport::Http(transport)) => {
                transport.invoke(target, request.into_bytes()).await
            }
            // Boxed: the Lambda call's future (the AWS SDK's) is kilobytes large, and this
            // future lives in every queued invocation task, whatever its transport.
            Some(Transport::Lambda(transport)) => {
                let request = request.into_proto()?;
                Box::pin(transport.invoke(target, request)).await
            }
            Some(Transport::Embedded(transport)) => {
                transport.invoke(target, request.into_proto()?).await
            }
            None => Err(Error::Rejected(format!(
                "no endpoint with index {endpoint} for {target}"
            ))),
        }
    }
}

/// The AWS configuration from the standard chain, with an HTTPS client on rustls + ring.
///
/// When every Lambda endpoint names its region, the first one is given to the loader so that
/// the region chain (whose last resort is the EC2 instance metadata service) is not consulted.
async fn load_aws_config(catalog: &Catalog) -> aws_config::SdkConfig {
    let regions: Vec<Option<&String>> = catalog
        .endpoints()
        .iter()
        .filter_map(|endpoint| match &endpoint.target {
            EndpointTarget::Lambda(target) => Some(target.region.as_ref()),
            _ => None,
        })
        .collect();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(lambda::https_client());
    if let Some(Some(region)) = regions.first() {
        if regions.iter().all(Option::is_some) {
            loader = loader.region(aws_config::Region::new((*region).clone()));
        }
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Every queued invocation task holds one `invoke` future (thousands may wait for a
    /// permit), whatever the endpoint's transport: large transport futures (the AWS SDK's,
    /// connection set-up, one attempt) must stay boxed. Measured 1.5 KiB; at 7.6 KiB the
    /// idle-memory benchmark (1M addresses) peaked ~135 MiB higher and kept ~75 MiB more.
    #[tokio::test]
    async fn the_invoke_future_stays_small() {
        let catalog = Catalog::new(vec![]);
        let invoker = Invoker::new(&catalog, InvokerSetup::default())
            .await
            .expect("an invoker without endpoints");
        let address = Address::parse("test/f/a").expect("address");
        let invocation = invoker.invoke(0, &address, Request::Proto(ToFunction::default()));
        let size = std::mem::size_of_val(&invocation);
        assert!(size <= 2048, "the invoke future is {size} bytes");
    }

    async fn invoker(text: &str, setup: InvokerSetup) -> Result<Invoker> {
        let module = crate::spec::parse_str(Path::new("/app/module.yaml"), text).expect("valid");
        let catalog = Catalog::new(module.endpoints.clone());
        Invoker::new(
            &catalog,
            InvokerSetup {
                module_path: module.path.clone(),
                ..setup
            },
        )
        .await
    }

    fn config_error(result: Result<Invoker>) -> (Option<usize>, String, String) {
        match result {
            Err(Error::Config {
                file,
                document,
                field,
                message,
            }) => {
                assert_eq!(file, Path::new("/app/module.yaml"));
                (document, field, message)
            }
            Err(other) => panic!("expected a config error, got {other}"),
            Ok(_) => panic!("expected a config error"),
        }
    }

    const HTTP: &str = "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  \
                        urlPathTemplate: http://127.0.0.1:1/{function.name}\n---\n";

    #[tokio::test]
    async fn lambda_endpoint_without_a_region_is_a_config_error() {
        let no_region = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let text = format!(
            "{HTTP}kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: b/*\n  \
             functionName: f\n"
        );
        let setup = InvokerSetup {
            aws: Some(no_region.clone()),
            ..InvokerSetup::default()
        };
        let (document, field, message) = config_error(invoker(&text, setup).await);
        assert_eq!((document, field.as_str()), (Some(1), "spec.region"));
        assert!(
            message.starts_with("no AWS region: set `region` here"),
            "{message}"
        );

        // With the region in the spec, the same configuration is enough.
        let setup = InvokerSetup {
            aws: Some(no_region),
            ..InvokerSetup::default()
        };
        let text = format!("{text}  region: us-east-1\n");
        let invoker = invoker(&text, setup).await.expect("invoker");
        assert!(matches!(invoker.transports[1], Transport::Lambda(_)));
    }

    #[tokio::test]
    async fn embedded_endpoint_needs_functions() {
        let text = format!("{HTTP}kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: b/*\n");
        let (document, field, message) =
            config_error(invoker(&text, InvokerSetup::default()).await);
        assert_eq!((document, field.as_str()), (Some(1), "spec.functions"));
        assert!(message.contains("cli::main_with"), "{message}");

        let setup = InvokerSetup {
            embedded: Some(eddy_sdk::Functions::new()),
            ..InvokerSetup::default()
        };
        let invoker = invoker(&text, setup).await.expect("invoker");
        assert!(matches!(invoker.transports[0], Transport::Http(_)));
        assert!(matches!(invoker.transports[1], Transport::Embedded(_)));
    }
}
