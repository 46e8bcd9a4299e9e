//! The SDK's one error type.
//!
//! Every fallible call of the SDK returns [`Error`]. Each variant names what is wrong (the
//! function type, the state name, the typename, ...) and says what to do about it. Handlers
//! return their own errors as a [`BoxError`]; the SDK wraps them in [`Error::Handler`].

/// Any error a handler returns: `?` converts every `std::error::Error`, `anyhow::Error` and
/// `&str`/`String` into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A function type or egress typename is not `namespace/name`.
    #[error("{what} {value:?} is not a typename: expected \"namespace/name\" with both parts non-empty and no '/' in the name, e.g. \"com.example/greeter\"")]
    InvalidTypename {
        /// What the typename was for ("function type", "egress", ...).
        what: &'static str,
        /// The text given.
        value: String,
    },

    /// An address is incomplete.
    #[error("invalid address {typename}/{id:?}: {reason}")]
    InvalidAddress {
        typename: String,
        id: String,
        reason: &'static str,
    },

    /// A value spec (persisted state declaration) is invalid.
    #[error("function {function}: value spec {name:?}: {reason}")]
    InvalidSpec {
        function: String,
        name: String,
        reason: String,
    },

    /// The same function type was registered twice.
    #[error("function type {0} is registered twice: register each function type once")]
    DuplicateFunction(String),

    /// A request names a function type that is not registered.
    #[error("no function of type {typename} is registered here (registered: {known}); register it with Functions::register or route the type to another endpoint in module.yaml")]
    UnknownFunction { typename: String, known: String },

    /// The request bytes are not a `ToFunction` message.
    #[error("the request body is not a StateFun ToFunction message: {0}")]
    Decode(#[from] prost::DecodeError),

    /// The request decoded but is not a usable invocation batch.
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// A value's typename is not the one the caller expected.
    #[error("{what}: expected a value of type {expected}, got {actual}")]
    TypeMismatch {
        /// Which value ("message", "state value \"count\"", ...).
        what: String,
        expected: String,
        actual: String,
    },

    /// A value is absent where one is required (e.g. a message without a value).
    #[error("{what} of type {typename} has no value")]
    MissingValue { what: String, typename: String },

    /// Bytes do not decode as the type that claims them.
    #[error("a value of type {typename} does not decode: {reason}")]
    Deserialize { typename: String, reason: String },

    /// A value does not encode as its type.
    #[error("a value of type {typename} does not encode: {reason}")]
    Serialize { typename: String, reason: String },

    /// A handler read or wrote state that its function did not declare.
    #[error("function {function} has no value spec {name:?} (declared: {declared}); add it to the specs given to Functions::register")]
    UnknownState {
        function: String,
        name: String,
        declared: String,
    },

    /// A handler used a value spec whose type differs from the declared one.
    #[error("function {function}: state {name:?} is declared with type {declared} but accessed as {used}; use the same ValueSpec everywhere")]
    StateTypeMismatch {
        function: String,
        name: String,
        declared: String,
        used: String,
    },

    /// An egress record is incomplete (e.g. a Kafka record without a topic).
    #[error("invalid egress record: {0}")]
    InvalidRecord(String),

    /// The test kit got a reply no runtime would accept (see [`testkit`](crate::testkit)).
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),

    /// The Lambda handler runs outside a Lambda environment (feature `lambda`).
    #[error("environment variable {variable} {problem}: run the handler inside AWS Lambda or under `cargo lambda watch`, which set it")]
    LambdaEnvironment {
        variable: &'static str,
        problem: String,
    },

    /// A delayed message or cancellation is invalid.
    #[error("invalid delayed message: {0}")]
    InvalidDelay(String),

    /// The handler of a function failed; the whole batch fails with it (no effect applies).
    #[error("function {function} failed for id {id:?}: {source}")]
    Handler {
        function: String,
        id: String,
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// True if the error is the caller's fault (a bad request), false if the function failed.
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            Error::Decode(_) | Error::InvalidRequest(_) | Error::UnknownFunction { .. }
        )
    }

    /// The HTTP status that answers a request failing with this error (HTTP service and Lambda
    /// envelope): 400 for a bad request, 404 for an unknown function type, 500 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Decode(_) | Error::InvalidRequest(_) => 400,
            Error::UnknownFunction { .. } => 404,
            _ => 500,
        }
    }

    /// Logs a failed request: an error for a failed function, a warning for a bad request.
    #[cfg(any(feature = "http", feature = "lambda"))]
    pub(crate) fn log(&self) {
        match self {
            Error::Handler {
                function,
                id,
                source,
            } => {
                tracing::error!(function = %function, id = %id, error = %source, "function failed")
            }
            other if other.status_code() >= 500 => {
                tracing::error!(error = %other, "invocation failed")
            }
            other => {
                tracing::warn!(status = other.status_code(), error = %other, "rejected a request")
            }
        }
    }
}
