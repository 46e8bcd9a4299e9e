//! Persisted state: value specs and the typed storage view of one address.
//!
//! A function declares its state as [`ValueSpec`]s (a name, a [`Type`], an optional
//! [`Expiration`]) when it is registered. The runtime sends every declared value with each
//! batch; a handler reads and writes them through [`Storage`] (from
//! [`Context::storage`](crate::Context::storage)). All invocations of a batch share one storage
//! view, in order: the second message of a batch sees what the first one wrote. Only values a
//! handler wrote or removed become state mutations in the reply (a write always counts, even of
//! an equal value, since it restarts an expire-after-write timer — as with Apache's SDKs).
//!
//! ```
//! use eddy_sdk::{Expiration, LongType, StringType, ValueSpec};
//! use std::time::Duration;
//!
//! const COUNT: ValueSpec<LongType> = ValueSpec::new("count", LongType);
//! const SESSION: ValueSpec<StringType> =
//!     ValueSpec::new("session", StringType).expire_after_write(Duration::from_secs(3600));
//! assert_eq!(SESSION.expiration(), Expiration::AfterWrite(Duration::from_secs(3600)));
//! # let _ = COUNT;
//! ```

use crate::types::{from_typed_value, Type};
use crate::Error;
use eddy_protocol::reqreply::from_function::{
    expiration_spec::ExpireMode, persisted_value_mutation::MutationType, ExpirationSpec,
    PersistedValueMutation, PersistedValueSpec,
};
use eddy_protocol::TypedValue;
use std::borrow::Cow;
use std::time::Duration;

/// When a state value expires (is removed by the runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiration {
    /// Never.
    #[default]
    Never,
    /// This long after it was last written.
    AfterWrite(Duration),
    /// This long after the function was last invoked for the address (StateFun's
    /// `expire_after_call`, `AFTER_INVOKE` on the wire).
    AfterCall(Duration),
}

/// The declaration of one persisted value of a function: name, type, expiration.
#[derive(Debug, Clone)]
pub struct ValueSpec<T> {
    name: Cow<'static, str>,
    ty: T,
    expiration: Expiration,
}

impl<T> ValueSpec<T> {
    /// A value named `name` of type `ty` that never expires; usable in a `const`. Names are
    /// lower case ASCII letters, digits and `_`, starting with a letter or `_` (checked when
    /// the function is registered, so that every StateFun SDK accepts them).
    pub const fn new(name: &'static str, ty: T) -> ValueSpec<T> {
        ValueSpec {
            name: Cow::Borrowed(name),
            ty,
            expiration: Expiration::Never,
        }
    }

    /// A value with a name built at run time.
    pub fn named(name: impl Into<String>, ty: T) -> ValueSpec<T> {
        ValueSpec {
            name: Cow::Owned(name.into()),
            ty,
            expiration: Expiration::Never,
        }
    }

    /// Expire the value `after` its last write.
    pub const fn expire_after_write(mut self, after: Duration) -> ValueSpec<T> {
        self.expiration = Expiration::AfterWrite(after);
        self
    }

    /// Expire the value `after` the last invocation of the address.
    pub const fn expire_after_call(mut self, after: Duration) -> ValueSpec<T> {
        self.expiration = Expiration::AfterCall(after);
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type.
    pub fn ty(&self) -> &T {
        &self.ty
    }

    /// The expiration.
    pub fn expiration(&self) -> Expiration {
        self.expiration
    }
}

/// A value spec with its type erased: what [`Functions::register`](crate::Functions::register)
/// takes (`&[&COUNT, &NAME]`).
pub trait AnyValueSpec: Send + Sync {
    /// The state name.
    fn name(&self) -> &str;
    /// The typename of the value.
    fn typename(&self) -> &str;
    /// The expiration.
    fn expiration(&self) -> Expiration;
}

impl<T: Type> AnyValueSpec for ValueSpec<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn typename(&self) -> &str {
        self.ty.typename()
    }

    fn expiration(&self) -> Expiration {
        self.expiration
    }
}

/// A declared state value as registered: name, typename, expiration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSpec {
    pub name: String,
    pub typename: String,
    pub expiration: Expiration,
}

impl StateSpec {
    /// Validates `spec` of function `function`.
    pub(crate) fn validate(function: &str, spec: &dyn AnyValueSpec) -> Result<StateSpec, Error> {
        let invalid = |reason: String| Error::InvalidSpec {
            function: function.to_string(),
            name: spec.name().to_string(),
            reason,
        };
        let name = spec.name();
        let mut chars = name.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        if !valid_start || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                "a state name is lower case ASCII letters, digits and '_', starting with a letter \
                 or '_' (e.g. \"seen_count\"); rename the value"
                    .into(),
            ));
        }
        if spec.typename().is_empty() {
            return Err(invalid("the value's type has an empty typename".into()));
        }
        match spec.expiration() {
            Expiration::Never => {}
            Expiration::AfterWrite(after) | Expiration::AfterCall(after) => {
                let millis = after.as_millis();
                if millis == 0 || millis > i64::MAX as u128 {
                    return Err(invalid(format!(
                        "expiration after {after:?}: give at least 1 ms (and less than 292 million \
                         years), or Expiration::Never"
                    )));
                }
            }
        }
        Ok(StateSpec {
            name: name.to_string(),
            typename: spec.typename().to_string(),
            expiration: spec.expiration(),
        })
    }

    /// The protocol's `PersistedValueSpec` (always with an `ExpirationSpec`, as Apache's SDKs
    /// send it).
    pub fn to_protocol(&self) -> PersistedValueSpec {
        let (mode, after) = match self.expiration {
            Expiration::Never => (ExpireMode::None, Duration::ZERO),
            Expiration::AfterWrite(after) => (ExpireMode::AfterWrite, after),
            Expiration::AfterCall(after) => (ExpireMode::AfterInvoke, after),
        };
        PersistedValueSpec {
            state_name: self.name.clone(),
            expiration_spec: Some(ExpirationSpec {
                mode: mode as i32,
                expire_after_millis: i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            }),
            type_typename: self.typename.clone(),
        }
    }
}

/// One state value during a batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cell {
    /// The value as received or last written (`None` = absent).
    pub(crate) value: Option<TypedValue>,
    /// Written or removed during the batch.
    pub(crate) dirty: bool,
}

/// The state of one address during a batch: one cell per declared value, in spec order.
#[derive(Debug, Default)]
pub(crate) struct Cells {
    pub(crate) cells: Vec<Cell>,
}

impl Cells {
    /// The mutations of the batch: one per written or removed value, in spec order.
    pub(crate) fn into_mutations(self, specs: &[StateSpec]) -> Vec<PersistedValueMutation> {
        self.cells
            .into_iter()
            .zip(specs)
            .filter(|(cell, _)| cell.dirty)
            .map(|(cell, spec)| match cell.value {
                Some(value) => PersistedValueMutation {
                    mutation_type: MutationType::Modify as i32,
                    state_name: spec.name.clone(),
                    state_value: Some(value),
                },
                None => PersistedValueMutation {
                    mutation_type: MutationType::Delete as i32,
                    state_name: spec.name.clone(),
                    state_value: None,
                },
            })
            .collect()
    }
}

/// The index of `spec` among the function's declared values, checking its type.
pub(crate) fn locate<T: Type>(
    function: &str,
    specs: &[StateSpec],
    spec: &ValueSpec<T>,
) -> Result<usize, Error> {
    let index = specs
        .iter()
        .position(|declared| declared.name == spec.name())
        .ok_or_else(|| Error::UnknownState {
            function: function.to_string(),
            name: spec.name().to_string(),
            declared: specs
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let declared = &specs[index].typename;
    if declared != spec.ty().typename() {
        return Err(Error::StateTypeMismatch {
            function: function.to_string(),
            name: spec.name().to_string(),
            declared: declared.clone(),
            used: spec.ty().typename().to_string(),
        });
    }
    Ok(index)
}

/// Reads the cell's value as `spec`'s type.
pub(crate) fn read_cell<T: Type>(
    cell: &Cell,
    spec: &ValueSpec<T>,
) -> Result<Option<T::Value>, Error> {
    match &cell.value {
        None => Ok(None),
        Some(value) => {
            from_typed_value(spec.ty(), value, &format!("state value {:?}", spec.name()))
        }
    }
}

/// Writes `value` into the cell.
pub(crate) fn write_cell<T: Type>(
    cell: &mut Cell,
    spec: &ValueSpec<T>,
    value: &T::Value,
) -> Result<(), Error> {
    let bytes = spec.ty().serialize(value)?;
    match &mut cell.value {
        // Reuse the typename already there (no allocation on the hot path of a counter).
        Some(current) if current.typename == spec.ty().typename() => {
            current.has_value = true;
            current.value = bytes;
        }
        slot => {
            *slot = Some(TypedValue {
                typename: spec.ty().typename().to_string(),
                has_value: true,
                value: bytes,
            })
        }
    }
    cell.dirty = true;
    Ok(())
}

/// The typed storage of the address under invocation. Get one from
/// [`Context::storage`](crate::Context::storage).
pub struct Storage<'a> {
    pub(crate) context: &'a crate::Context,
}

impl Storage<'_> {
    /// The current value of `spec`, `None` if absent (never written, removed or expired).
    pub fn get<T: Type>(&self, spec: &ValueSpec<T>) -> Result<Option<T::Value>, Error> {
        self.context.with_cell(spec, |cell| read_cell(cell, spec))
    }

    /// Writes `value` (becomes a MODIFY mutation).
    pub fn set<T: Type>(&self, spec: &ValueSpec<T>, value: &T::Value) -> Result<(), Error> {
        self.context
            .with_cell(spec, |cell| write_cell(cell, spec, value))
    }

    /// Removes the value (becomes a DELETE mutation).
    pub fn remove<T: Type>(&self, spec: &ValueSpec<T>) -> Result<(), Error> {
        self.context.with_cell(spec, |cell| {
            cell.value = None;
            cell.dirty = true;
            Ok(())
        })
    }

    /// True if the value is present.
    pub fn contains<T: Type>(&self, spec: &ValueSpec<T>) -> Result<bool, Error> {
        self.context.with_cell(spec, |cell| {
            Ok(cell.value.as_ref().is_some_and(|value| value.has_value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IntType, LongType};

    #[test]
    fn names_follow_the_portable_rules() {
        for good in ["count", "_x", "seen_2"] {
            let spec = ValueSpec::named(good, IntType);
            assert!(StateSpec::validate("a/b", &spec).is_ok(), "{good}");
        }
        for bad in ["", "Count", "2x", "a-b", "a b", "é"] {
            let spec = ValueSpec::named(bad, IntType);
            let error = StateSpec::validate("a/b", &spec).unwrap_err();
            assert!(
                error.to_string().contains("rename the value"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn expirations_map_to_the_protocol() {
        let spec = ValueSpec::new("x", LongType).expire_after_call(Duration::from_secs(86_400));
        let state = StateSpec::validate("a/b", &spec).unwrap();
        let wire = state.to_protocol();
        let expiration = wire.expiration_spec.unwrap();
        assert_eq!(expiration.mode, ExpireMode::AfterInvoke as i32);
        assert_eq!(expiration.expire_after_millis, 86_400_000);
        let zero = ValueSpec::new("x", LongType).expire_after_write(Duration::from_micros(10));
        assert!(StateSpec::validate("a/b", &zero).is_err());
    }

    #[test]
    fn writes_carry_the_declared_typename() {
        let spec = ValueSpec::new("a", IntType);
        // A value stored under another type (e.g. before a type change) is replaced whole.
        let mut cell = Cell {
            value: Some(TypedValue::new("io.statefun.types/long", vec![9u8])),
            dirty: false,
        };
        write_cell(&mut cell, &spec, &5).unwrap();
        let value = cell.value.clone().unwrap();
        assert_eq!(value.typename, "io.statefun.types/int");
        assert_eq!(read_cell(&cell, &spec).unwrap(), Some(5));
        // An absent but typed value becomes present.
        let mut cell = Cell {
            value: Some(TypedValue {
                typename: "io.statefun.types/int".into(),
                has_value: false,
                value: Default::default(),
            }),
            dirty: false,
        };
        write_cell(&mut cell, &spec, &0).unwrap();
        assert!(cell.dirty);
        assert_eq!(read_cell(&cell, &spec).unwrap(), Some(0));
    }

    #[test]
    fn only_dirty_cells_become_mutations() {
        let specs = vec![
            StateSpec::validate("a/b", &ValueSpec::new("a", IntType)).unwrap(),
            StateSpec::validate("a/b", &ValueSpec::new("b", IntType)).unwrap(),
            StateSpec::validate("a/b", &ValueSpec::new("c", IntType)).unwrap(),
        ];
        let mut cells = Cells {
            cells: vec![Cell::default(); 3],
        };
        write_cell(&mut cells.cells[0], &ValueSpec::new("a", IntType), &1).unwrap();
        cells.cells[2].dirty = true;
        let mutations = cells.into_mutations(&specs);
        assert_eq!(mutations.len(), 2);
        assert_eq!(mutations[0].state_name, "a");
        assert_eq!(mutations[0].mutation_type, MutationType::Modify as i32);
        assert_eq!(mutations[1].state_name, "c");
        assert_eq!(mutations[1].mutation_type, MutationType::Delete as i32);
        assert!(mutations[1].state_value.is_none());
    }
}
