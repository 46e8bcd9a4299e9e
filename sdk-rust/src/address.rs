//! Function types and addresses.
//!
//! A function type is `namespace/name` (e.g. `com.example/greeter`); an [`Address`] is a
//! function type plus an id: one logical instance with its own state. Typenames follow the
//! runtime's rules: both parts non-empty, no `/` in either.

use crate::Error;
use std::fmt;

/// Splits `namespace/name`, validating both parts; `what` names the typename in the error.
pub(crate) fn split_typename<'a>(
    what: &'static str,
    typename: &'a str,
) -> Result<(&'a str, &'a str), Error> {
    match typename.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok((namespace, name))
        }
        _ => Err(Error::InvalidTypename {
            what,
            value: typename.to_string(),
        }),
    }
}

/// The address of a function instance: `namespace/name/id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    namespace: String,
    name: String,
    id: String,
}

impl Address {
    /// The address of `id` of function type `typename` (`namespace/name`). Fails if the
    /// typename is not `namespace/name` or the id is empty.
    pub fn new(typename: &str, id: impl Into<String>) -> Result<Address, Error> {
        let (namespace, name) = split_typename("function type", typename)?;
        let id = id.into();
        if id.is_empty() {
            return Err(Error::InvalidAddress {
                typename: typename.to_string(),
                id,
                reason: "the id is empty; give every address a non-empty id",
            });
        }
        Ok(Address {
            namespace: namespace.to_string(),
            name: name.to_string(),
            id,
        })
    }

    /// An address from the protocol (no validation: the runtime checked it).
    pub(crate) fn from_protocol(address: eddy_protocol::Address) -> Address {
        Address {
            namespace: address.namespace,
            name: address.r#type,
            id: address.id,
        }
    }

    /// This address in the protocol's form.
    pub fn to_protocol(&self) -> eddy_protocol::Address {
        eddy_protocol::Address {
            namespace: self.namespace.clone(),
            r#type: self.name.clone(),
            id: self.id.clone(),
        }
    }

    /// The function type's namespace, e.g. `com.example`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The function type's name, e.g. `greeter`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The function type, `namespace/name`.
    pub fn typename(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// True if this address is of function type `typename` (`namespace/name`).
    pub fn is_type(&self, typename: &str) -> bool {
        typename
            .split_once('/')
            .is_some_and(|(namespace, name)| namespace == self.namespace && name == self.name)
    }

    /// The id, e.g. `alice`.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.name, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_their_typename() {
        let address = Address::new("com.example/greeter", "alice").unwrap();
        assert_eq!(address.namespace(), "com.example");
        assert_eq!(address.name(), "greeter");
        assert_eq!(address.id(), "alice");
        assert_eq!(address.typename(), "com.example/greeter");
        assert!(address.is_type("com.example/greeter"));
        assert!(!address.is_type("com.example/other"));
        assert_eq!(address.to_string(), "com.example/greeter/alice");
        assert_eq!(Address::from_protocol(address.to_protocol()), address);
    }

    #[test]
    fn bad_typenames_and_ids_are_rejected_with_what_to_do() {
        for bad in ["greeter", "/greeter", "com.example/", "a/b/c", ""] {
            let error = Address::new(bad, "x").unwrap_err();
            assert!(
                error.to_string().contains("expected \"namespace/name\""),
                "{bad}: {error}"
            );
        }
        let error = Address::new("a/b", "").unwrap_err();
        assert!(error.to_string().contains("non-empty id"), "{error}");
    }
}
