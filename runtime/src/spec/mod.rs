//! The module specification: what `module.yaml` declares, validated.
//!
//! A module file is a multi-document YAML file in StateFun 3.x format: each document has a
//! `kind` and a `spec`. This module holds the validated, typed form ([`ModuleSpec`]); parsing
//! and validation live in [`parse`], Flink-style durations (`"1 min"`, `"250ms"`) in
//! [`duration`]. Every error names the file, the document index and the field
//! ([`crate::Error::Config`]).
//!
//! Kinds read here (see `docs/module-yaml.md` for every field):
//! - `io.statefun.endpoints.v2/http` and `io.statefun.endpoints.v1/http`: remote HTTP functions.
//! - Eddy's endpoints: `io.eddy.endpoints.v1/lambda` (AWS Lambda `Invoke`) and
//!   `io.eddy.endpoints.v1/embedded` (`eddy-sdk` functions linked into the binary).
//! - `io.statefun.kafka.v1/ingress|egress`, `io.statefun.kinesis.v1/ingress|egress`: parsed and
//!   validated; their connectors come later, so `eddy run` rejects them with a clear message.
//! - Eddy's own: `io.eddy.http.v1/ingress`, `io.eddy.file.v1/ingress`,
//!   `io.eddy.stdout.v1/egress`, `io.eddy.file.v1/egress`, `io.eddy.runtime.v1/config`.

pub mod duration;
pub mod parse;

use crate::address::FunctionType;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::{load, parse_str};

/// A whole module file, validated.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    pub endpoints: Vec<EndpointSpec>,
    pub ingresses: Vec<IngressSpec>,
    pub egresses: Vec<EgressSpec>,
    pub runtime: RuntimeSpec,
}

/// Which function types an endpoint serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionSelector {
    /// Exactly one function type, e.g. `com.example/greeter`.
    Exact(FunctionType),
    /// Every function type of a namespace: `com.example/*`.
    Namespace(String),
}

impl FunctionSelector {
    /// True if this selector covers `function_type`.
    pub fn matches(&self, function_type: &FunctionType) -> bool {
        match self {
            FunctionSelector::Exact(exact) => exact == function_type,
            FunctionSelector::Namespace(namespace) => function_type.namespace() == namespace,
        }
    }
}

impl std::fmt::Display for FunctionSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FunctionSelector::Exact(exact) => write!(f, "{exact}"),
            FunctionSelector::Namespace(namespace) => write!(f, "{namespace}/*"),
        }
    }
}

/// An endpoint: a set of function types and how to reach them.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// Zero-based index of the YAML document that declared it.
    pub document: usize,
    pub functions: FunctionSelector,
    /// Most messages per address sent in one batch; over it, that address's senders wait.
    /// `maxNumBatchRequests`, default 1000.
    pub max_num_batch_requests: usize,
    pub target: EndpointTarget,
}

impl EndpointSpec {
    /// Most invocations this endpoint takes at once: `pool_size` over HTTP, `maxConcurrency`
    /// on Lambda; `None` (no bound) for linked-in functions.
    pub fn max_in_flight(&self) -> Option<usize> {
        match &self.target {
            EndpointTarget::Http(http) => Some(http.transport.pool_size.max(1)),
            EndpointTarget::Lambda(lambda) => Some(lambda.max_concurrency.max(1)),
            EndpointTarget::Embedded => None,
        }
    }
}

/// How an endpoint is reached.
#[derive(Debug, Clone)]
pub enum EndpointTarget {
    /// Remote function over HTTP(S).
    Http(HttpTarget),
    /// AWS Lambda function, called with `Invoke` (`io.eddy.endpoints.v1/lambda`).
    Lambda(LambdaTarget),
    /// `eddy-sdk` functions linked into the running binary (`io.eddy.endpoints.v1/embedded`).
    Embedded,
}

impl EndpointTarget {
    /// A short description for logs and summaries: the URL template, the Lambda function or
    /// `embedded`.
    pub fn describe(&self) -> String {
        match self {
            EndpointTarget::Http(target) => target.url_path_template.clone(),
            EndpointTarget::Lambda(target) => {
                let mut text = format!("lambda {}", target.function_name);
                if let Some(qualifier) = &target.qualifier {
                    text.push(':');
                    text.push_str(qualifier);
                }
                if let Some(url) = &target.endpoint_url {
                    text.push_str(" at ");
                    text.push_str(url);
                }
                text
            }
            EndpointTarget::Embedded => "embedded".to_string(),
        }
    }
}

/// Default `maxConcurrency` of a Lambda endpoint.
pub const DEFAULT_LAMBDA_MAX_CONCURRENCY: usize = 100;

/// An AWS Lambda endpoint (`io.eddy.endpoints.v1/lambda`).
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaTarget {
    /// Function name, partial ARN or ARN; `{function.name}` is replaced by the function type's
    /// name (`functionName`).
    pub function_name: String,
    /// Version or alias (`qualifier`).
    pub qualifier: Option<String>,
    /// AWS region (`region`); `None`: from the AWS chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint override, e.g. a local emulator (`endpointUrl`).
    pub endpoint_url: Option<String>,
    /// Most invocations in flight to this endpoint (`maxConcurrency`, default 100).
    pub max_concurrency: usize,
    /// Budget of one invocation, retries included (`timeouts.call`, default 1 min).
    pub call: Duration,
    /// TCP+TLS connect timeout (`timeouts.connect`, default 10 s).
    pub connect: Duration,
    /// Longest wait for the reply of one attempt (`timeouts.read`, default: bounded by `call`).
    pub read: Option<Duration>,
    pub retry: RetrySpec,
}

impl LambdaTarget {
    /// A target for `function_name` with every optional setting at its default.
    pub fn new(function_name: impl Into<String>) -> LambdaTarget {
        LambdaTarget {
            function_name: function_name.into(),
            qualifier: None,
            region: None,
            endpoint_url: None,
            max_concurrency: DEFAULT_LAMBDA_MAX_CONCURRENCY,
            call: Duration::from_secs(60),
            connect: Duration::from_secs(10),
            read: None,
            retry: RetrySpec::default(),
        }
    }

    /// The Lambda function name for one function type.
    pub fn function_name_for(&self, function_type: &FunctionType) -> String {
        self.function_name
            .replace("{function.name}", function_type.name())
    }
}

/// A remote HTTP endpoint.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// URL template; `{function.name}` is replaced by the function type's name.
    pub url_path_template: String,
    pub transport: TransportSpec,
}

impl HttpTarget {
    /// The URL for one function type.
    pub fn url_for(&self, function_type: &FunctionType) -> String {
        self.url_path_template
            .replace("{function.name}", function_type.name())
    }
}

/// Transport settings of an HTTP endpoint (`spec.transport`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportSpec {
    /// Budget of one invocation, retries included (`call`, default 1 min).
    pub call: Duration,
    /// TCP+TLS connect timeout (`connect`, default 10 s).
    pub connect: Duration,
    /// Longest wait for response bytes (`read`, default: bounded by `call`).
    pub read: Option<Duration>,
    /// Longest time to send the request (`write`, default: bounded by `call`).
    pub write: Option<Duration>,
    /// How long an idle pooled connection is kept (`pool_ttl`, default 15 s).
    pub pool_ttl: Duration,
    /// Most connections (and so concurrent invocations) to this endpoint (`pool_size`, default 1024).
    pub pool_size: usize,
    /// Largest reply body accepted (`payload_max_bytes`, default 32 MiB).
    pub payload_max_bytes: usize,
    pub tls: TlsSpec,
    pub retry: RetrySpec,
}

impl Default for TransportSpec {
    fn default() -> TransportSpec {
        TransportSpec {
            call: Duration::from_secs(60),
            connect: Duration::from_secs(10),
            read: None,
            write: None,
            pool_ttl: Duration::from_secs(15),
            pool_size: 1024,
            payload_max_bytes: 32 * 1024 * 1024,
            tls: TlsSpec::default(),
            retry: RetrySpec::default(),
        }
    }
}

/// TLS options of an HTTP endpoint (StateFun's async transport names).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSpec {
    /// PEM file of CA certificates to trust instead of the system roots (`trust_cacerts`).
    pub trust_cacerts: Option<PathBuf>,
    /// PEM client certificate chain (`client_cert`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key for the client certificate (`client_key`).
    pub client_key: Option<PathBuf>,
    /// Password of an encrypted client key (`client_key_password`): rejected at start-up,
    /// since encrypted PEM keys are not supported; decrypt the key instead.
    pub client_key_password: Option<String>,
}

/// Retries of one invocation inside the call budget (Eddy's optional `spec.retries`).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySpec {
    /// Most attempts (first try included), default 8.
    pub max_attempts: u32,
    /// First backoff, default 20 ms; doubles each retry, with jitter.
    pub initial_backoff: Duration,
    /// Largest backoff, default 2 s.
    pub max_backoff: Duration,
}

impl Default for RetrySpec {
    fn default() -> RetrySpec {
        RetrySpec {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// An ingress declaration.
#[derive(Debug, Clone)]
pub enum IngressSpec {
    Http(HttpIngressSpec),
    File(FileIngressSpec),
    Kafka(KafkaIngressSpec),
    Kinesis(KinesisIngressSpec),
}

/// `io.eddy.http.v1/ingress`: messages POSTed over HTTP.
#[derive(Debug, Clone)]
pub struct HttpIngressSpec {
    pub document: usize,
    /// `namespace/name` of this ingress.
    pub id: String,
    /// Listen address (`bind`, default 127.0.0.1:8090).
    pub bind: SocketAddr,
    /// Typename used when a request names none (`valueType`).
    pub default_typename: Option<String>,
}

/// `io.eddy.file.v1/ingress`: a file of JSON lines, read once at start-up.
#[derive(Debug, Clone)]
pub struct FileIngressSpec {
    pub document: usize,
    pub id: String,
    /// Path (relative paths are resolved against the module file's folder).
    pub path: PathBuf,
}

/// Where a Kafka or Kinesis ingress starts reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPosition {
    Earliest,
    Latest,
    GroupOffsets,
    /// A date, as written (`yyyy-MM-dd HH:mm:ss.SSS Z`).
    Date(String),
    /// Kafka only (`type: specific-offsets`): `(topic, partition, offset)` triples.
    SpecificOffsets(Vec<(String, u32, i64)>),
}

/// One topic of a Kafka ingress, or stream of a Kinesis ingress.
#[derive(Debug, Clone)]
pub struct RoutedSource {
    /// Topic or stream name.
    pub name: String,
    /// Typename of the record values (`valueType`).
    pub value_type: String,
    /// Function types each record is sent to, with the record key as id.
    pub targets: Vec<FunctionType>,
}

/// `io.statefun.kafka.v1/ingress` (validated; connector in a later issue).
#[derive(Debug, Clone)]
pub struct KafkaIngressSpec {
    pub document: usize,
    pub id: String,
    pub address: String,
    pub consumer_group_id: String,
    pub topics: Vec<RoutedSource>,
    pub startup_position: StartupPosition,
    /// Where to start when a stored or requested offset is out of range
    /// (`autoOffsetResetPosition`: `Earliest` or `Latest`; `None` means StateFun's default, latest).
    pub auto_offset_reset_position: Option<StartupPosition>,
    pub properties: Vec<(String, String)>,
}

/// AWS credentials of a Kinesis ingress or egress (`awsCredentials`); absent (`None` in the
/// specs) or `type: default` means the default provider chain.
#[derive(Clone, PartialEq, Eq)]
pub enum AwsCredentialsSpec {
    /// `type: basic`: an access key id and secret.
    Basic {
        access_key_id: String,
        secret_access_key: String,
    },
    /// `type: profile`: a named profile, optionally from a given config file.
    Profile {
        profile_name: String,
        profile_path: Option<PathBuf>,
    },
}

impl std::fmt::Debug for AwsCredentialsSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AwsCredentialsSpec::Basic { access_key_id, .. } => f
                .debug_struct("Basic")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<redacted>")
                .finish(),
            AwsCredentialsSpec::Profile {
                profile_name,
                profile_path,
            } => f
                .debug_struct("Profile")
                .field("profile_name", profile_name)
                .field("profile_path", profile_path)
                .finish(),
        }
    }
}

/// `io.statefun.kinesis.v1/ingress` (validated; connector in a later issue).
#[derive(Debug, Clone)]
pub struct KinesisIngressSpec {
    pub document: usize,
    pub id: String,
    pub aws_region: Option<String>,
    /// Service endpoint of `awsRegion.type: custom-endpoint` (e.g. a local emulator).
    pub aws_endpoint: Option<String>,
    /// `awsCredentials`; `None` means the default provider chain.
    pub aws_credentials: Option<AwsCredentialsSpec>,
    pub streams: Vec<RoutedSource>,
    pub startup_position: StartupPosition,
    pub client_config_properties: Vec<(String, String)>,
}

/// An egress declaration.
#[derive(Debug, Clone)]
pub enum EgressSpec {
    /// `io.eddy.stdout.v1/egress`: JSON lines on standard output.
    Stdout {
        document: usize,
        id: String,
    },
    /// `io.eddy.file.v1/egress`: JSON lines appended to a file.
    File {
        document: usize,
        id: String,
        path: PathBuf,
    },
    Kafka(KafkaEgressSpec),
    Kinesis(KinesisEgressSpec),
}

impl EgressSpec {
    /// The `namespace/name` id functions use to address this egress.
    pub fn id(&self) -> &str {
        match self {
            EgressSpec::Stdout { id, .. } | EgressSpec::File { id, .. } => id,
            EgressSpec::Kafka(spec) => &spec.id,
            EgressSpec::Kinesis(spec) => &spec.id,
        }
    }
}

/// `io.statefun.kafka.v1/egress` (validated; connector in a later issue).
#[derive(Debug, Clone)]
pub struct KafkaEgressSpec {
    pub document: usize,
    pub id: String,
    pub address: String,
    /// `at-least-once`, `exactly-once` or `none`.
    pub delivery_semantic: String,
    pub transaction_timeout: Option<Duration>,
    pub properties: Vec<(String, String)>,
}

/// `io.statefun.kinesis.v1/egress` (validated; connector in a later issue).
#[derive(Debug, Clone)]
pub struct KinesisEgressSpec {
    pub document: usize,
    pub id: String,
    pub aws_region: Option<String>,
    /// Service endpoint of `awsRegion.type: custom-endpoint` (e.g. a local emulator).
    pub aws_endpoint: Option<String>,
    /// `awsCredentials`; `None` means the default provider chain.
    pub aws_credentials: Option<AwsCredentialsSpec>,
    pub max_outstanding_records: Option<u64>,
    pub client_config_properties: Vec<(String, String)>,
}

/// `io.eddy.runtime.v1/config`: settings of the state tier itself (at most one document).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeSpec {
    /// Dead-letter file (`deadLetters.path`); relative to the module file's folder.
    pub dead_letters: Option<PathBuf>,
    /// Number of partition workers (`workers`), default: the number of CPU cores.
    pub workers: Option<usize>,
}
