//! The registry of functions: typename → value specs + handler.
//!
//! [`Functions`] is what every deployment serves: the runtime calls
//! [`Functions::invoke`] in-process (embedded), the [`http`](crate::http) service and the
//! [`lambda`](crate::lambda) handler call [`Functions::handle`] on request bytes.

use crate::address::split_typename;
use crate::context::Context;
use crate::error::BoxError;
use crate::message::Message;
use crate::storage::{AnyValueSpec, StateSpec};
use crate::Error;
use eddy_protocol::{FromFunction, Message as _, ToFunction};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a handler returns, boxed.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// A handler with its concrete type erased.
pub(crate) trait ErasedHandler: Send + Sync {
    fn call(&self, context: Context, message: Message) -> HandlerFuture;
}

struct FnHandler<F>(F);

impl<F, Fut, E> ErasedHandler for FnHandler<F>
where
    F: Fn(Context, Message) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn call(&self, context: Context, message: Message) -> HandlerFuture {
        // A handler that panics before returning its future fails like one that panics inside it.
        let called =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)(context, message)));
        match called {
            Ok(future) => Box::pin(async move { future.await.map_err(Into::into) }),
            Err(panic) => {
                let message = crate::handler::panic_message(&*panic);
                Box::pin(async move { Err(format!("the handler panicked: {message}").into()) })
            }
        }
    }
}

/// One registered function type.
pub(crate) struct Registered {
    /// `namespace/name`.
    pub(crate) typename: String,
    /// The declared state, in declaration order.
    pub(crate) specs: Vec<StateSpec>,
    pub(crate) handler: Box<dyn ErasedHandler>,
}

#[derive(Default, Clone)]
struct Registry {
    /// namespace → name → function (two lookups by `&str`, no allocation per request).
    by_namespace: HashMap<String, HashMap<String, Arc<Registered>>>,
    /// Typenames in registration order.
    order: Vec<String>,
}

/// The functions of an application, by typename. Cheap to clone (one `Arc`), `Send + Sync`.
///
/// ```
/// use eddy_sdk::{Context, Functions, LongType, Message, ValueSpec};
///
/// const SEEN: ValueSpec<LongType> = ValueSpec::new("seen", LongType);
///
/// async fn greet(context: Context, _message: Message) -> Result<(), eddy_sdk::BoxError> {
///     let seen = context.storage().get(&SEEN)?.unwrap_or(0) + 1;
///     context.storage().set(&SEEN, &seen)?;
///     Ok(())
/// }
///
/// # fn main() -> Result<(), eddy_sdk::Error> {
/// let functions = Functions::new().register("com.example/greeter", &[&SEEN], greet)?;
/// assert_eq!(functions.typenames(), ["com.example/greeter"]);
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Functions {
    registry: Arc<Registry>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("typenames", &self.registry.order)
            .finish()
    }
}

impl Functions {
    /// No functions yet.
    pub fn new() -> Functions {
        Functions::default()
    }

    /// Registers the function type `typename` (`namespace/name`) with its declared state
    /// `specs` and its `handler`: an async function (or closure returning a future) of a
    /// [`Context`] and a [`Message`] returning `Result<(), E>` for any error `E` that converts
    /// into a [`BoxError`].
    ///
    /// Fails if the typename is not `namespace/name`, is already registered, or a spec is
    /// invalid (bad name, duplicate name, zero expiration).
    pub fn register<F, Fut, E>(
        mut self,
        typename: &str,
        specs: &[&dyn AnyValueSpec],
        handler: F,
    ) -> Result<Functions, Error>
    where
        F: Fn(Context, Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let (namespace, name) = split_typename("function type", typename)?;
        let mut declared: Vec<StateSpec> = Vec::with_capacity(specs.len());
        for spec in specs {
            let spec = StateSpec::validate(typename, *spec)?;
            if declared.iter().any(|other| other.name == spec.name) {
                return Err(Error::InvalidSpec {
                    function: typename.to_string(),
                    name: spec.name,
                    reason: "declared twice; declare each state name once".into(),
                });
            }
            declared.push(spec);
        }
        let registry = Arc::make_mut(&mut self.registry);
        let names = registry
            .by_namespace
            .entry(namespace.to_string())
            .or_default();
        if names.contains_key(name) {
            return Err(Error::DuplicateFunction(typename.to_string()));
        }
        names.insert(
            name.to_string(),
            Arc::new(Registered {
                typename: typename.to_string(),
                specs: declared,
                handler: Box::new(FnHandler(handler)),
            }),
        );
        registry.order.push(typename.to_string());
        Ok(self)
    }

    /// Every registered typename (`namespace/name`), in registration order.
    pub fn typenames(&self) -> Vec<String> {
        self.registry.order.clone()
    }

    /// The declared state of `typename`, `None` if it is not registered.
    pub fn specs(&self, typename: &str) -> Option<Vec<StateSpec>> {
        let (namespace, name) = typename.split_once('/')?;
        self.lookup(namespace, name)
            .map(|function| function.specs.clone())
    }

    pub(crate) fn lookup(&self, namespace: &str, name: &str) -> Option<&Arc<Registered>> {
        self.registry.by_namespace.get(namespace)?.get(name)
    }

    pub(crate) fn unknown(&self, namespace: &str, name: &str) -> Error {
        Error::UnknownFunction {
            typename: format!("{namespace}/{name}"),
            known: if self.registry.order.is_empty() {
                "none".into()
            } else {
                self.registry.order.join(", ")
            },
        }
    }

    /// Runs one request in-process, at the struct level (no protobuf encoding): the embedded
    /// runtime calls this. Answers `IncompleteInvocationContext` when declared state is
    /// missing from the request, else runs the batch's invocations in order and returns their
    /// effects. A failing handler fails the whole batch with [`Error::Handler`].
    pub async fn invoke(&self, request: ToFunction) -> Result<FromFunction, Error> {
        crate::handler::invoke(self, request).await
    }

    /// [`invoke`](Functions::invoke) on the protobuf bytes of a `ToFunction`, returning the
    /// bytes of the `FromFunction` (the body of an HTTP request / reply).
    pub async fn handle(&self, body: &[u8]) -> Result<Vec<u8>, Error> {
        let request = ToFunction::decode(body)?;
        let reply = self.invoke(request).await?;
        Ok(reply.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IntType, ValueSpec};

    async fn noop(_: Context, _: Message) -> Result<(), BoxError> {
        Ok(())
    }

    #[test]
    fn registration_validates_typenames_and_specs() {
        let error = Functions::new().register("nope", &[], noop).unwrap_err();
        assert!(matches!(error, Error::InvalidTypename { .. }), "{error}");

        let error = Functions::new()
            .register("a/b", &[], noop)
            .and_then(|f| f.register("a/b", &[], noop))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "function type a/b is registered twice: register each function type once"
        );

        let x = ValueSpec::new("x", IntType);
        let error = Functions::new()
            .register("a/b", &[&x, &x], noop)
            .unwrap_err();
        assert!(error.to_string().contains("declared twice"), "{error}");
    }

    #[test]
    fn typenames_and_specs_are_listed() {
        let x = ValueSpec::new("x", IntType);
        let functions = Functions::new()
            .register("a/b", &[&x], noop)
            .and_then(|f| f.register("a/c", &[], noop))
            .unwrap();
        let clone = functions.clone();
        assert_eq!(clone.typenames(), ["a/b", "a/c"]);
        assert_eq!(functions.specs("a/b").unwrap()[0].name, "x");
        assert_eq!(functions.specs("a/c").unwrap(), []);
        assert!(functions.specs("a/d").is_none());
    }

    #[test]
    fn functions_are_send_sync_and_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Functions>();
    }

    #[test]
    fn invocations_can_be_spawned() {
        // The runtime spawns invoke() on its executor: the future must be Send + 'static once
        // it owns its Functions.
        fn check<F: Future + Send + 'static>(_: &F) {}
        let functions = Functions::new();
        let invoke = async move { functions.invoke(ToFunction::default()).await };
        check(&invoke);
        let functions = Functions::new();
        let handle = async move { functions.handle(&[]).await };
        check(&handle);
    }
}
