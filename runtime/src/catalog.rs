//! Which endpoint serves which function type.
//!
//! Built from the module's endpoint declarations: an exact `namespace/name` selector wins over
//! a `namespace/*` selector. Lookups are cached by the partition workers, so this is off the
//! hot path.

use crate::address::FunctionType;
use crate::spec::{EndpointSpec, FunctionSelector};

/// The endpoints of a module, indexed for lookup by function type.
#[derive(Debug, Clone)]
pub struct Catalog {
    endpoints: Vec<EndpointSpec>,
}

impl Catalog {
    /// A catalog of `endpoints` (already validated: no two claim the same selector).
    pub fn new(endpoints: Vec<EndpointSpec>) -> Catalog {
        Catalog { endpoints }
    }

    /// The index of the endpoint serving `function_type`, if any.
    pub fn resolve(&self, function_type: &FunctionType) -> Option<usize> {
        let exact = self.endpoints.iter().position(|endpoint| {
            matches!(&endpoint.functions, FunctionSelector::Exact(exact) if exact == function_type)
        });
        exact.or_else(|| {
            self.endpoints.iter().position(|endpoint| {
                matches!(&endpoint.functions, FunctionSelector::Namespace(_))
                    && endpoint.functions.matches(function_type)
            })
        })
    }

    /// The endpoint at `index`.
    pub fn endpoint(&self, index: usize) -> Option<&EndpointSpec> {
        self.endpoints.get(index)
    }

    /// All endpoints, in declaration order.
    pub fn endpoints(&self) -> &[EndpointSpec] {
        &self.endpoints
    }
}
