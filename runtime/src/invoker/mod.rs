//! The invoker: calls functions and returns their replies.
//!
//! One transport per endpoint (index = the endpoint's index in the [`Catalog`]). Each transport
//! bounds its own concurrency and retries inside its own call budget, so a failing endpoint
//! slows only its own addresses. [`http`] is the HTTP transport; [`tls`] loads TLS material.

pub mod http;
pub mod tls;

use crate::address::Address;
use crate::catalog::Catalog;
use crate::spec::EndpointTarget;
use crate::{Error, Result};
use bytes::Bytes;
use eddy_protocol::{FromFunction, Message as _, ToFunction};

/// How one endpoint is reached.
pub enum Transport {
    Http(http::HttpTransport),
}

/// Every endpoint's transport.
pub struct Invoker {
    transports: Vec<Transport>,
}

impl Invoker {
    /// Builds one transport per endpoint of `catalog` (loads TLS material, so it can fail).
    pub fn new(catalog: &Catalog) -> Result<Invoker> {
        let transports = catalog
            .endpoints()
            .iter()
            .map(|endpoint| match &endpoint.target {
                EndpointTarget::Http(target) => {
                    http::HttpTransport::new(target).map(Transport::Http)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Invoker { transports })
    }

    /// Invokes `target` through endpoint `endpoint` with `request`.
    pub async fn invoke(
        &self,
        endpoint: usize,
        target: &Address,
        request: ToFunction,
    ) -> Result<FromFunction> {
        let body = Bytes::from(request.encode_to_vec());
        match self.transports.get(endpoint) {
            Some(Transport::Http(transport)) => transport.invoke(target, body).await,
            None => Err(Error::Rejected(format!(
                "no endpoint with index {endpoint} for {target}"
            ))),
        }
    }
}
