//! HTTP transport (stub: being written).
use crate::address::Address;
use crate::spec::HttpTarget;
use crate::{Error, Result};
use bytes::Bytes;
use eddy_protocol::FromFunction;

/// Calls functions of one HTTP endpoint.
pub struct HttpTransport {
    target: HttpTarget,
}

impl HttpTransport {
    /// A transport for `target`.
    pub fn new(target: &HttpTarget) -> Result<HttpTransport> {
        Ok(HttpTransport {
            target: target.clone(),
        })
    }

    /// POSTs `body` (an encoded `ToFunction`) for `target` and decodes the reply.
    pub async fn invoke(&self, target: &Address, _body: Bytes) -> Result<FromFunction> {
        Err(Error::Invocation {
            target: target.to_string(),
            url: self.target.url_for(&target.function_type),
            attempts: 0,
            reason: "not implemented".into(),
        })
    }
}
