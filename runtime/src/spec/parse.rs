//! Parsing and validation of `module.yaml`.
//!
//! Each YAML document is read into a [`serde_norway::Value`] and checked by hand, so that every
//! mistake becomes a [`crate::Error::Config`] naming the file, the zero-based document index and
//! the dotted field (e.g. `spec.transport.timeouts.call`), with a message that says what is
//! wrong and what to write instead. Unknown fields are errors (they are usually typos, and a
//! silently ignored setting is worse than a refusal). Rules that span documents — one endpoint
//! per function selector, unique ingress and egress ids, unique HTTP ingress bind addresses, at
//! most one runtime config — are checked as the documents are read; the first mistake wins.
//!
//! Relative paths (file ingress and egress, dead letters, TLS files, AWS profile files) are
//! resolved against the folder of the module file. The format is described field by field in
//! `docs/module-yaml.md`.

use super::duration::parse_duration;
use super::{
    AwsCredentialsSpec, EgressSpec, EndpointSpec, EndpointTarget, FileIngressSpec,
    FunctionSelector, HttpIngressSpec, HttpTarget, IngressSpec, KafkaEgressSpec, KafkaIngressSpec,
    KinesisEgressSpec, KinesisIngressSpec, LambdaTarget, ModuleSpec, RetrySpec, RoutedSource,
    StartupPosition, TlsSpec, TransportSpec,
};
use crate::address::FunctionType;
use crate::{Error, Result};
use serde::Deserialize;
use serde_norway::{Mapping, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// StateFun 3.1+ remote HTTP endpoint.
pub const KIND_ENDPOINT_V2: &str = "io.statefun.endpoints.v2/http";
/// StateFun 3.0 remote HTTP endpoint (timeouts directly under `spec`).
pub const KIND_ENDPOINT_V1: &str = "io.statefun.endpoints.v1/http";
/// Eddy's AWS Lambda endpoint.
pub const KIND_LAMBDA_ENDPOINT: &str = "io.eddy.endpoints.v1/lambda";
/// Eddy's embedded endpoint: `eddy-sdk` functions linked into the binary.
pub const KIND_EMBEDDED_ENDPOINT: &str = "io.eddy.endpoints.v1/embedded";
/// StateFun Kafka ingress (validated; not runnable yet).
pub const KIND_KAFKA_INGRESS: &str = "io.statefun.kafka.v1/ingress";
/// StateFun Kafka egress (validated; not runnable yet).
pub const KIND_KAFKA_EGRESS: &str = "io.statefun.kafka.v1/egress";
/// StateFun Kinesis ingress (validated; not runnable yet).
pub const KIND_KINESIS_INGRESS: &str = "io.statefun.kinesis.v1/ingress";
/// StateFun Kinesis egress (validated; not runnable yet).
pub const KIND_KINESIS_EGRESS: &str = "io.statefun.kinesis.v1/egress";
/// Eddy's HTTP ingress.
pub const KIND_HTTP_INGRESS: &str = "io.eddy.http.v1/ingress";
/// Eddy's JSON-lines file ingress.
pub const KIND_FILE_INGRESS: &str = "io.eddy.file.v1/ingress";
/// Eddy's JSON-lines standard-output egress.
pub const KIND_STDOUT_EGRESS: &str = "io.eddy.stdout.v1/egress";
/// Eddy's JSON-lines file egress.
pub const KIND_FILE_EGRESS: &str = "io.eddy.file.v1/egress";
/// Eddy's runtime settings.
pub const KIND_RUNTIME_CONFIG: &str = "io.eddy.runtime.v1/config";

/// Every kind this parser reads.
pub const SUPPORTED_KINDS: [&str; 13] = [
    KIND_ENDPOINT_V2,
    KIND_ENDPOINT_V1,
    KIND_LAMBDA_ENDPOINT,
    KIND_EMBEDDED_ENDPOINT,
    KIND_KAFKA_INGRESS,
    KIND_KAFKA_EGRESS,
    KIND_KINESIS_INGRESS,
    KIND_KINESIS_EGRESS,
    KIND_HTTP_INGRESS,
    KIND_FILE_INGRESS,
    KIND_STDOUT_EGRESS,
    KIND_FILE_EGRESS,
    KIND_RUNTIME_CONFIG,
];

/// `spec.transport.type` of StateFun's asynchronous (Netty) transport.
pub const ASYNC_TRANSPORT: &str = "io.statefun.transports.v1/async";
/// `spec.transport.type` of StateFun's default (OkHttp) transport; same as leaving `type` out.
pub const OKHTTP_TRANSPORT: &str = "io.statefun.transports.v1/okhttp";
/// Default listen address of `io.eddy.http.v1/ingress`.
pub const DEFAULT_HTTP_INGRESS_BIND: &str = "127.0.0.1:8090";
/// Default `maxNumBatchRequests`.
pub const DEFAULT_MAX_NUM_BATCH_REQUESTS: usize = 1000;
/// Largest `workers` of `io.eddy.runtime.v1/config`.
pub const MAX_WORKERS: usize = 256;

/// The fields of the async transport (`transport.type: io.statefun.transports.v1/async`).
const ASYNC_TRANSPORT_FIELDS: [&str; 10] = [
    "type",
    "call",
    "connect",
    "pool_ttl",
    "pool_size",
    "payload_max_bytes",
    "trust_cacerts",
    "client_cert",
    "client_key",
    "client_key_password",
];

const SELECTOR_HINT: &str = "write `namespace/name` for one function type (e.g. \
    `com.example/greeter`) or `namespace/*` for every type of a namespace (e.g. `com.example/*`)";
const TYPE_NAME_HINT: &str = "write `namespace/name`, e.g. `com.example/greeter`";
const VALUE_TYPE_HINT: &str =
    "write a typename `namespace/name`, e.g. `io.statefun.types/string`, \
    `com.example/User` or `type.googleapis.com/com.example.User`";
const DATE_HINT: &str = "write `yyyy-MM-dd HH:mm:ss.SSS Z`, e.g. `2020-02-01 04:15:00.000 +0000`";

/// Reads and validates a module file.
pub fn load(path: &Path) -> Result<ModuleSpec> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::Error::io(format!("reading {}", path.display()), e))?;
    parse_str(path, &text)
}

/// Validates module text that was read from `path` (used for messages and to resolve relative
/// paths against its folder).
pub fn parse_str(path: &Path, text: &str) -> Result<ModuleSpec> {
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let mut module = ModuleSpec {
        path: path.to_path_buf(),
        endpoints: Vec::new(),
        ingresses: Vec::new(),
        egresses: Vec::new(),
        runtime: Default::default(),
    };
    let mut seen = Seen::default();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let ctx = Ctx {
            file: path,
            document: index,
            dir,
        };
        // The iterator repeats a load failure forever: the `?` below ends the loop on it.
        let mut value = Value::deserialize(document).map_err(|e| ctx.yaml_error(&e))?;
        if value.is_null() {
            continue;
        }
        value.apply_merge().map_err(|e| ctx.yaml_error(&e))?;
        parse_document(&ctx, &value, &mut module, &mut seen)?;
    }
    Ok(module)
}

/// Where in the file we are, to build errors and resolve paths.
struct Ctx<'a> {
    file: &'a Path,
    document: usize,
    dir: &'a Path,
}

impl Ctx<'_> {
    fn error(&self, field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Config {
            file: self.file.to_path_buf(),
            document: Some(self.document),
            field: field.into(),
            message: message.into(),
        }
    }

    fn yaml_error(&self, error: &serde_norway::Error) -> Error {
        let text = error.to_string();
        let message = match error.location() {
            Some(location) => {
                // The library writes "at line L column C" into its text; say it once, up front.
                let marker = format!(" at line {} column {}", location.line(), location.column());
                let detail = text.replacen(&marker, "", 1);
                let hint = if detail.contains("duplicate entry") {
                    "a field may appear once per mapping: remove or rename one of them"
                } else {
                    "check the indentation, the `key: value` form and the quoting around that place"
                };
                format!(
                    "invalid YAML at line {}, column {}: {detail}; {hint}",
                    location.line(),
                    location.column()
                )
            }
            None => format!("invalid YAML: {text}"),
        };
        self.error("yaml", message)
    }

    /// A path from the module file: `file:` prefix dropped, `~/` expanded, relative paths
    /// resolved against the module file's folder.
    fn resolve(&self, text: &str) -> PathBuf {
        let text = match text.strip_prefix("file:") {
            Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
            None => text,
        };
        let path = match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => PathBuf::from(text),
        };
        if path.is_relative() {
            self.dir.join(path)
        } else {
            path
        }
    }
}

/// What earlier documents declared, for the rules that span documents.
#[derive(Default)]
struct Seen {
    selectors: HashMap<String, usize>,
    ingress_ids: HashMap<String, usize>,
    egress_ids: HashMap<String, usize>,
    binds: HashMap<SocketAddr, usize>,
    runtime: Option<usize>,
}

/// A YAML mapping and the dotted path that leads to it.
struct Map<'a> {
    ctx: &'a Ctx<'a>,
    path: String,
    map: &'a Mapping,
}

impl<'a> Map<'a> {
    /// `value` as a mapping with string keys, or an error saying what was expected.
    fn of(ctx: &'a Ctx<'a>, path: String, value: &'a Value, expected: &str) -> Result<Map<'a>> {
        let Value::Mapping(map) = value else {
            return Err(ctx.error(
                path,
                format!("expected {expected}, found {}", describe(value)),
            ));
        };
        for key in map.keys() {
            if !key.is_string() {
                let field = if path.is_empty() { "document" } else { &path };
                return Err(ctx.error(
                    field,
                    format!(
                        "field names must be text, found {}; quote the name",
                        describe(key)
                    ),
                ));
            }
        }
        Ok(Map { ctx, path, map })
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn error(&self, key: &str, message: impl Into<String>) -> Error {
        self.ctx.error(self.field(key), message)
    }

    fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.map.keys().filter_map(Value::as_str)
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The value of `key`; an explicit null (`key:` with nothing after it) counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    /// Fails on the first field not in `known`, suggesting the closest known name.
    fn deny_unknown(&self, known: &[&str]) -> Result<()> {
        for key in self.keys() {
            if known.contains(&key) {
                continue;
            }
            let suggestion = closest(key, known)
                .map(|name| format!(" (did you mean `{name}`?)"))
                .unwrap_or_default();
            return Err(self.error(
                key,
                format!(
                    "unknown field `{key}`{suggestion}; the fields accepted here are: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn missing(&self, key: &str, hint: &str) -> Error {
        self.error(key, format!("required field is missing; {hint}"))
    }

    fn str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(
                key,
                format!("expected text, found {}; quote the value", describe(other)),
            )),
        }
    }

    /// A non-empty string without surrounding whitespace.
    fn non_empty_str(&self, key: &str, hint: &str) -> Result<Option<&'a str>> {
        match self.str(key)? {
            Some(text) if text.trim().is_empty() => {
                Err(self.error(key, format!("must not be empty; {hint}")))
            }
            Some(text) if text.trim() != text => {
                Err(self.error(key, format!("{text:?} has spaces around it; remove them")))
            }
            other => Ok(other),
        }
    }

    fn req_str(&self, key: &str, hint: &str) -> Result<&'a str> {
        self.non_empty_str(key, hint)?
            .ok_or_else(|| self.missing(key, hint))
    }

    /// A whole number ≥ 0 (a YAML integer, or text holding one).
    fn uint(&self, key: &str, example: &str) -> Result<Option<u64>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Number(number) => number.as_u64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        };
        match parsed {
            Some(number) => Ok(Some(number)),
            None => Err(self.error(
                key,
                format!(
                    "expected a positive whole number (e.g. {example}), found {}",
                    describe(value)
                ),
            )),
        }
    }

    /// A whole number ≥ 1.
    fn positive(&self, key: &str, example: &str) -> Result<Option<u64>> {
        match self.uint(key, example)? {
            Some(0) => {
                Err(self.error(key, format!("must be at least 1 (e.g. {example}), found 0")))
            }
            other => Ok(other),
        }
    }

    fn positive_usize(&self, key: &str, example: &str) -> Result<Option<usize>> {
        match self.positive(key, example)? {
            None => Ok(None),
            Some(number) => usize::try_from(number)
                .map(Some)
                .map_err(|_| self.error(key, format!("{number} is too large"))),
        }
    }

    /// A Flink-style duration (`"10s"`, `"1 min"`) or a YAML integer of milliseconds; zero is
    /// refused unless `allow_zero`.
    fn duration(&self, key: &str, allow_zero: bool) -> Result<Option<Duration>> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let duration = match value {
            Value::Number(number) => match number.as_u64() {
                Some(millis) => Duration::from_millis(millis),
                None => {
                    return Err(self.error(
                        key,
                        format!(
                            "expected a duration such as \"10s\" or \"1 min\" (a plain whole \
                             number is milliseconds), found {}",
                            describe(value)
                        ),
                    ))
                }
            },
            Value::String(text) => {
                parse_duration(text).map_err(|message| self.error(key, message))?
            }
            other => {
                return Err(self.error(
                    key,
                    format!(
                        "expected a duration such as \"10s\" or \"1 min\", found {}",
                        describe(other)
                    ),
                ))
            }
        };
        if duration.is_zero() && !allow_zero {
            return Err(self.error(
                key,
                "must be greater than zero; write e.g. \"10s\" or \"1 min\"",
            ));
        }
        Ok(Some(duration))
    }

    fn map(&self, key: &str, expected: &str) -> Result<Option<Map<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => Map::of(self.ctx, self.field(key), value, expected).map(Some),
        }
    }

    fn req_map(&self, key: &str, expected: &str, hint: &str) -> Result<Map<'a>> {
        self.map(key, expected)?
            .ok_or_else(|| self.missing(key, hint))
    }

    /// A list, as `(path of the item, item)` pairs.
    fn list(&self, key: &str, example: &str) -> Result<Option<Vec<(String, &'a Value)>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Sequence(items)) => Ok(Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| (format!("{}[{index}]", self.field(key)), item))
                    .collect(),
            )),
            Some(other) => Err(self.error(
                key,
                format!(
                    "expected a list (`- item` lines), found {}; e.g. {example}",
                    describe(other)
                ),
            )),
        }
    }

    /// A non-empty list.
    fn req_list(&self, key: &str, example: &str) -> Result<Vec<(String, &'a Value)>> {
        match self.list(key, example)? {
            None => Err(self.missing(key, &format!("e.g. {example}"))),
            Some(items) if items.is_empty() => {
                Err(self.error(key, format!("must list at least one item, e.g. {example}")))
            }
            Some(items) => Ok(items),
        }
    }
}

/// A short description of a YAML value for "expected X, found Y" messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_string(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => format!("the text {text:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(tagged) => format!("a value tagged {}", tagged.tag),
    }
}

/// The known name closest to `key` (ignoring case, `_` and `-`), if close enough to be a typo.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let normalize = |text: &str| -> Vec<char> {
        text.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let key = normalize(key);
    known
        .iter()
        .map(|name| (edit_distance(&key, &normalize(name)), *name))
        .filter(|(distance, name)| *distance <= 2.max(name.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Edit distance counting a swap of two neighbouring characters as one edit (optimal string
/// alignment), so `bnid` is one edit from `bind`.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

fn parse_document(
    ctx: &Ctx<'_>,
    value: &Value,
    module: &mut ModuleSpec,
    seen: &mut Seen,
) -> Result<()> {
    if !value.is_mapping() {
        return Err(ctx.error(
            "document",
            format!(
                "expected a mapping with `kind` and `spec` (e.g. `kind: {KIND_ENDPOINT_V2}`), \
                 found {}",
                describe(value)
            ),
        ));
    }
    let top = Map::of(
        ctx,
        String::new(),
        value,
        "a mapping with `kind` and `spec`",
    )?;
    if top.has("module") || top.has("version") {
        let key = if top.has("module") {
            "module"
        } else {
            "version"
        };
        return Err(top.error(
            key,
            "this is the StateFun 2.x module format (`version` + `module:`); Eddy reads the \
             StateFun 3.x format: one YAML document per component, each with `kind` and `spec`, \
             separated by `---` (see docs/module-yaml.md)",
        ));
    }
    top.deny_unknown(&["kind", "spec"])?;
    let kinds = SUPPORTED_KINDS.join(", ");
    let kind = top.req_str(
        "kind",
        &format!("every document needs a `kind`, one of: {kinds}"),
    )?;
    if !SUPPORTED_KINDS.contains(&kind) {
        let suggestion = closest(kind, &SUPPORTED_KINDS)
            .map(|name| format!(" (did you mean `{name}`?)"))
            .unwrap_or_default();
        return Err(top.error(
            "kind",
            format!("unknown kind `{kind}`{suggestion}; the supported kinds are: {kinds}"),
        ));
    }
    let spec = top.req_map(
        "spec",
        "a mapping of settings",
        &format!("every document needs a `spec` mapping with the settings of its kind ({kind})"),
    )?;
    match kind {
        KIND_ENDPOINT_V2 | KIND_ENDPOINT_V1 | KIND_LAMBDA_ENDPOINT | KIND_EMBEDDED_ENDPOINT => {
            let endpoint = match kind {
                KIND_LAMBDA_ENDPOINT => parse_lambda_endpoint(&spec)?,
                KIND_EMBEDDED_ENDPOINT => parse_embedded_endpoint(&spec)?,
                _ => parse_endpoint(&spec, kind == KIND_ENDPOINT_V2)?,
            };
            let selector = endpoint.functions.to_string();
            if let Some(first) = seen.selectors.insert(selector.clone(), ctx.document) {
                return Err(spec.error(
                    "functions",
                    format!(
                        "`{selector}` is already served by the endpoint of document {first} \
                         (and again here in document {}); each function selector may appear \
                         in one endpoint only, whatever its kind (http, lambda, embedded): \
                         remove one of them",
                        ctx.document
                    ),
                ));
            }
            module.endpoints.push(endpoint);
        }
        KIND_HTTP_INGRESS | KIND_FILE_INGRESS | KIND_KAFKA_INGRESS | KIND_KINESIS_INGRESS => {
            let ingress = match kind {
                KIND_HTTP_INGRESS => parse_http_ingress(&spec, seen)?,
                KIND_FILE_INGRESS => parse_file_ingress(&spec)?,
                KIND_KAFKA_INGRESS => parse_kafka_ingress(&spec)?,
                _ => parse_kinesis_ingress(&spec)?,
            };
            let id = match &ingress {
                IngressSpec::Http(spec) => &spec.id,
                IngressSpec::File(spec) => &spec.id,
                IngressSpec::Kafka(spec) => &spec.id,
                IngressSpec::Kinesis(spec) => &spec.id,
            };
            if let Some(first) = seen.ingress_ids.insert(id.clone(), ctx.document) {
                return Err(spec.error(
                    "id",
                    format!(
                        "ingress id `{id}` is already declared in document {first}; give each \
                         ingress its own id"
                    ),
                ));
            }
            module.ingresses.push(ingress);
        }
        KIND_STDOUT_EGRESS | KIND_FILE_EGRESS | KIND_KAFKA_EGRESS | KIND_KINESIS_EGRESS => {
            let egress = match kind {
                KIND_STDOUT_EGRESS => {
                    spec.deny_unknown(&["id"])?;
                    EgressSpec::Stdout {
                        document: ctx.document,
                        id: parse_id(&spec, "egress")?,
                    }
                }
                KIND_FILE_EGRESS => {
                    spec.deny_unknown(&["id", "path"])?;
                    let id = parse_id(&spec, "egress")?;
                    let path = spec.req_str(
                        "path",
                        "the file to append JSON lines to, e.g. `out.jsonl` (relative to the \
                         module file's folder)",
                    )?;
                    EgressSpec::File {
                        document: ctx.document,
                        id,
                        path: ctx.resolve(path),
                    }
                }
                KIND_KAFKA_EGRESS => EgressSpec::Kafka(parse_kafka_egress(&spec)?),
                _ => EgressSpec::Kinesis(parse_kinesis_egress(&spec)?),
            };
            let id = egress.id().to_string();
            if let Some(first) = seen.egress_ids.insert(id.clone(), ctx.document) {
                return Err(spec.error(
                    "id",
                    format!(
                        "egress id `{id}` is already declared in document {first}; give each \
                         egress its own id"
                    ),
                ));
            }
            module.egresses.push(egress);
        }
        _ => {
            if let Some(first) = seen.runtime {
                return Err(top.error(
                    "kind",
                    format!(
                        "a second {KIND_RUNTIME_CONFIG} document (the first is document \
                         {first}); merge them into one"
                    ),
                ));
            }
            seen.runtime = Some(ctx.document);
            parse_runtime(&spec, module)?;
        }
    }
    Ok(())
}

fn parse_endpoint(spec: &Map<'_>, v2: bool) -> Result<EndpointSpec> {
    if v2 && spec.has("timeouts") {
        return Err(spec.error(
            "timeouts",
            format!(
                "in {KIND_ENDPOINT_V2}, timeouts go under `transport:` (`transport: {{timeouts: \
                 {{call: 1 min}}}}`); `timeouts` directly under `spec` is the {KIND_ENDPOINT_V1} \
                 form"
            ),
        ));
    }
    if !v2 && spec.has("transport") {
        return Err(spec.error(
            "transport",
            format!(
                "`transport` needs kind {KIND_ENDPOINT_V2}; in {KIND_ENDPOINT_V1} write the \
                 timeouts directly under `spec` (`timeouts: {{call: 1 min}}`)"
            ),
        ));
    }
    let last = if v2 { "transport" } else { "timeouts" };
    spec.deny_unknown(&[
        "functions",
        "urlPathTemplate",
        "maxNumBatchRequests",
        last,
        "retries",
    ])?;
    let functions_text = spec.req_str("functions", SELECTOR_HINT)?;
    let functions =
        parse_selector(functions_text).map_err(|message| spec.error("functions", message))?;
    let url_path_template = spec.req_str(
        "urlPathTemplate",
        "give the URL of the function(s), e.g. `http://127.0.0.1:8000/{function.name}`",
    )?;
    check_url_template(url_path_template)
        .map_err(|message| spec.error("urlPathTemplate", message))?;
    if matches!(functions, FunctionSelector::Namespace(_))
        && !url_path_template.contains("{function.name}")
    {
        tracing::warn!(
            file = %spec.ctx.file.display(),
            document = spec.ctx.document,
            functions = %functions,
            url = url_path_template,
            "namespace endpoint url has no {{function.name}}: every function type goes to the same url"
        );
    }
    let max_num_batch_requests = spec
        .positive_usize("maxNumBatchRequests", "1000")?
        .unwrap_or(DEFAULT_MAX_NUM_BATCH_REQUESTS);
    let mut transport = TransportSpec::default();
    if v2 {
        if let Some(map) = spec.map("transport", "a mapping of transport settings")? {
            parse_transport(&map, &mut transport)?;
        }
    } else if let Some(map) = spec.map(
        "timeouts",
        "a mapping of timeouts (call, connect, read, write)",
    )? {
        parse_timeouts(&map, &mut transport)?;
    }
    if let Some(map) = spec.map(
        "retries",
        "a mapping (maxAttempts, initialBackoff, maxBackoff)",
    )? {
        transport.retry = parse_retries(&map)?;
    }
    Ok(EndpointSpec {
        document: spec.ctx.document,
        functions,
        max_num_batch_requests,
        target: EndpointTarget::Http(HttpTarget {
            url_path_template: url_path_template.to_string(),
            transport,
        }),
    })
}

const FUNCTION_NAME_HINT: &str = "give the Lambda function's name (e.g. `reminder`), partial ARN \
    (`123456789012:function:reminder`) or ARN (`arn:aws:lambda:us-east-1:123456789012:function:\
    reminder`); `{function.name}` stands for the function type's name";

/// `io.eddy.endpoints.v1/lambda`.
fn parse_lambda_endpoint(spec: &Map<'_>) -> Result<EndpointSpec> {
    spec.deny_unknown(&[
        "functions",
        "functionName",
        "qualifier",
        "region",
        "endpointUrl",
        "maxNumBatchRequests",
        "maxConcurrency",
        "timeouts",
        "retries",
    ])?;
    let functions_text = spec.req_str("functions", SELECTOR_HINT)?;
    let functions =
        parse_selector(functions_text).map_err(|message| spec.error("functions", message))?;
    let function_name = spec.req_str("functionName", FUNCTION_NAME_HINT)?;
    let qualifier = spec.non_empty_str("qualifier", QUALIFIER_HINT)?;
    let embedded_qualifier = check_function_name(function_name)
        .map_err(|message| spec.error("functionName", message))?;
    if let Some(qualifier) = qualifier {
        check_qualifier(qualifier).map_err(|message| spec.error("qualifier", message))?;
        if let Some(embedded) = embedded_qualifier {
            return Err(spec.error(
                "qualifier",
                format!(
                    "functionName {function_name:?} already ends with the qualifier \
                     `{embedded}`; give the qualifier once: drop `:{embedded}` from \
                     functionName or remove `qualifier`"
                ),
            ));
        }
    }
    if matches!(functions, FunctionSelector::Namespace(_))
        && !function_name.contains("{function.name}")
    {
        tracing::warn!(
            file = %spec.ctx.file.display(),
            document = spec.ctx.document,
            functions = %functions,
            function_name,
            "namespace lambda endpoint has no {{function.name}} in functionName: every function type goes to the same lambda function"
        );
    }
    let region = spec.non_empty_str(
        "region",
        "give an AWS region such as `us-east-1`, or leave `region` out to take it from the AWS \
         chain (AWS_REGION, the profile)",
    )?;
    if let Some(region) = region {
        check_region(region).map_err(|message| spec.error("region", message))?;
    }
    let endpoint_url = spec.non_empty_str(
        "endpointUrl",
        "give the URL of a Lambda API emulator, e.g. `http://127.0.0.1:9000`, or leave \
         `endpointUrl` out for AWS",
    )?;
    if let Some(url) = endpoint_url {
        check_endpoint_url(url).map_err(|message| spec.error("endpointUrl", message))?;
    }
    let max_num_batch_requests = spec
        .positive_usize("maxNumBatchRequests", "1000")?
        .unwrap_or(DEFAULT_MAX_NUM_BATCH_REQUESTS);
    let mut target = LambdaTarget::new(function_name);
    target.qualifier = qualifier.map(str::to_string);
    target.region = region.map(str::to_string);
    target.endpoint_url = endpoint_url.map(|url| url.trim_end_matches('/').to_string());
    if let Some(max_concurrency) = spec.positive_usize("maxConcurrency", "100")? {
        target.max_concurrency = max_concurrency;
    }
    if let Some(map) = spec.map("timeouts", "a mapping of timeouts (call, connect, read)")? {
        map.deny_unknown(&["call", "connect", "read"])?;
        if let Some(call) = map.duration("call", false)? {
            target.call = call;
        }
        if let Some(connect) = map.duration("connect", false)? {
            target.connect = connect;
        }
        target.read = map.duration("read", false)?;
        check_durations_within_call(
            &map,
            target.call,
            &[("connect", Some(target.connect)), ("read", target.read)],
        )?;
    }
    if let Some(map) = spec.map(
        "retries",
        "a mapping (maxAttempts, initialBackoff, maxBackoff)",
    )? {
        target.retry = parse_retries(&map)?;
    }
    Ok(EndpointSpec {
        document: spec.ctx.document,
        functions,
        max_num_batch_requests,
        target: EndpointTarget::Lambda(target),
    })
}

const QUALIFIER_HINT: &str =
    "give a published version (e.g. `3`), an alias (e.g. `live`) or `$LATEST`";

/// A Lambda function name, partial ARN or ARN (with `{function.name}` placeholders); returns
/// the qualifier it ends with, if any.
fn check_function_name(text: &str) -> Result<Option<String>, String> {
    if text.chars().any(char::is_whitespace) {
        return Err(format!("{text:?} contains spaces; {FUNCTION_NAME_HINT}"));
    }
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let placeholder = after.find('}').map(|close| &after[..=close]);
        if placeholder != Some("{function.name}") {
            return Err(format!(
                "{text:?} has an unknown placeholder or a `{{` without `}}`; the only \
                 placeholder is {{function.name}} (the name part of the function type)"
            ));
        }
        rest = &after["{function.name}".len()..];
    }
    let concrete = text.replace("{function.name}", "name");
    if concrete.contains(['{', '}']) {
        return Err(format!(
            "{text:?} has a `}}` without an opening `{{`; the only placeholder is \
             {{function.name}}"
        ));
    }
    let parts: Vec<&str> = concrete.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        [account, "function", name] => {
            check_account(account, text)?;
            (*name, None)
        }
        [account, "function", name, qualifier] => {
            check_account(account, text)?;
            (*name, Some(*qualifier))
        }
        ["arn", partition, "lambda", region, account, "function", name, rest @ ..]
            if rest.len() <= 1 =>
        {
            if !partition.starts_with("aws") {
                return Err(format!(
                    "{text:?}: the ARN partition `{partition}` is not an AWS partition (`aws`, \
                     `aws-cn`, `aws-us-gov`); {FUNCTION_NAME_HINT}"
                ));
            }
            check_region(region).map_err(|message| format!("{text:?}: {message}"))?;
            check_account(account, text)?;
            (*name, rest.first().copied())
        }
        _ => {
            return Err(format!(
                "{text:?} is not a Lambda function name, partial ARN or ARN; \
                 {FUNCTION_NAME_HINT}"
            ))
        }
    };
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !name_ok {
        return Err(format!(
            "{text:?}: the function name part `{name}` may only hold letters, digits, `-`, `_` \
             and `.`; {FUNCTION_NAME_HINT}"
        ));
    }
    if !text.contains("{function.name}") && name.len() > 64 {
        return Err(format!(
            "{text:?}: the function name part is {} characters long, Lambda allows 64",
            name.len()
        ));
    }
    if let Some(qualifier) = qualifier {
        check_qualifier(qualifier).map_err(|message| format!("{text:?}: {message}"))?;
    }
    Ok(qualifier.map(str::to_string))
}

fn check_account(account: &str, text: &str) -> Result<(), String> {
    if account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "{text:?}: `{account}` is not a 12-digit AWS account id; {FUNCTION_NAME_HINT}"
        ))
    }
}

/// A Lambda version, alias or `$LATEST`.
fn check_qualifier(text: &str) -> Result<(), String> {
    let valid = text == "$LATEST"
        || (!text.is_empty()
            && text.len() <= 128
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not a Lambda version or alias (letters, digits, `-`, `_`, at most 128 \
             characters); {QUALIFIER_HINT}"
        ))
    }
}

/// An AWS region name such as `us-east-1`.
fn check_region(text: &str) -> Result<(), String> {
    let valid = text.contains('-')
        && !text.starts_with('-')
        && !text.ends_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{text:?} is not an AWS region name; write e.g. `us-east-1` or `eu-west-3`"
        ))
    }
}

/// `http://` or `https://` URL of a Lambda API (emulator), without placeholders.
fn check_endpoint_url(url: &str) -> Result<(), String> {
    let example = "e.g. `http://127.0.0.1:9000` (a local emulator such as `cargo lambda watch`)";
    if url.chars().any(char::is_whitespace) {
        return Err(format!("{url:?} contains spaces; {example}"));
    }
    if url.contains(['{', '}']) {
        return Err(format!(
            "{url:?}: endpointUrl takes no placeholders (the function goes in functionName); \
             {example}"
        ));
    }
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(format!(
            "{url:?} is not an http:// or https:// URL; {example}"
        ));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a valid URL ({error}); {example}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host; {example}"));
    }
    if uri.query().is_some() {
        return Err(format!("{url:?} has a query string; {example}"));
    }
    Ok(())
}

/// `io.eddy.endpoints.v1/embedded`.
fn parse_embedded_endpoint(spec: &Map<'_>) -> Result<EndpointSpec> {
    spec.deny_unknown(&["functions", "maxNumBatchRequests"])?;
    let functions_text = spec.req_str("functions", SELECTOR_HINT)?;
    let functions =
        parse_selector(functions_text).map_err(|message| spec.error("functions", message))?;
    let max_num_batch_requests = spec
        .positive_usize("maxNumBatchRequests", "1000")?
        .unwrap_or(DEFAULT_MAX_NUM_BATCH_REQUESTS);
    Ok(EndpointSpec {
        document: spec.ctx.document,
        functions,
        max_num_batch_requests,
        target: EndpointTarget::Embedded,
    })
}

/// `namespace/name` or `namespace/*`.
fn parse_selector(text: &str) -> Result<FunctionSelector, String> {
    if text.chars().any(char::is_whitespace) {
        return Err(format!("{text:?} contains spaces; {SELECTOR_HINT}"));
    }
    match text.split_once('/') {
        Some((namespace, "*")) if !namespace.is_empty() && !namespace.contains('*') => {
            Ok(FunctionSelector::Namespace(namespace.to_string()))
        }
        Some((namespace, name))
            if !namespace.is_empty()
                && !name.is_empty()
                && !name.contains('/')
                && !text.contains('*') =>
        {
            Ok(FunctionSelector::Exact(FunctionType::new(namespace, name)))
        }
        _ if text.contains('*') => Err(format!(
            "{text:?} is not a function selector: `*` may only stand for the whole name \
             (`namespace/*`); {SELECTOR_HINT}"
        )),
        _ => Err(format!(
            "{text:?} is not a function selector; {SELECTOR_HINT}"
        )),
    }
}

/// `namespace/name` without spaces or wildcards.
fn parse_type_name(text: &str) -> Result<FunctionType, String> {
    if text.chars().any(char::is_whitespace) || text.contains('*') {
        return Err(format!(
            "{text:?} is not a `namespace/name` (no spaces or `*`); {TYPE_NAME_HINT}"
        ));
    }
    FunctionType::parse(text)
        .map_err(|_| format!("{text:?} is not a `namespace/name`; {TYPE_NAME_HINT}"))
}

/// A typename such as `io.statefun.types/string` or `type.googleapis.com/com.example.User`.
fn check_value_type(text: &str) -> Result<(), String> {
    let valid = !text.chars().any(char::is_whitespace)
        && matches!(text.rsplit_once('/'), Some((namespace, name)) if !namespace.is_empty() && !name.is_empty());
    if valid {
        Ok(())
    } else {
        Err(format!("{text:?} is not a typename; {VALUE_TYPE_HINT}"))
    }
}

/// The `id` of an ingress or egress: `namespace/name`.
fn parse_id(spec: &Map<'_>, what: &str) -> Result<String> {
    let hint = format!("the {what} id, `namespace/name`, e.g. `com.example/{what}`");
    let text = spec.req_str("id", &hint)?;
    parse_type_name(text)
        .map(|id| id.to_string())
        .map_err(|message| spec.error("id", message))
}

/// `http://` or `https://` URL, optionally with `{function.name}` placeholders.
fn check_url_template(template: &str) -> Result<(), String> {
    let example = "e.g. `http://127.0.0.1:8000/{function.name}`";
    if template.chars().any(char::is_whitespace) {
        return Err(format!("{template:?} contains spaces; {example}"));
    }
    let lower = template.to_ascii_lowercase();
    if lower.starts_with("http+unix:") || lower.starts_with("https+unix:") {
        return Err(format!(
            "{template:?}: UNIX domain socket URLs (http+unix, https+unix) are not supported by \
             Eddy; serve the function over TCP and use an http:// or https:// URL, {example}"
        ));
    }
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(format!(
            "{template:?} is not an http:// or https:// URL; {example}"
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            return Err(format!(
                "{template:?} has a `{{` without a closing `}}`; the only placeholder is \
                 {{function.name}}"
            ));
        };
        let placeholder = &after[..=close];
        if placeholder != "{function.name}" {
            return Err(format!(
                "{template:?} has the unknown placeholder `{placeholder}`; the only placeholder \
                 is {{function.name}} (the name part of the function type)"
            ));
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!(
            "{template:?} has a `}}` without an opening `{{`; the only placeholder is \
             {{function.name}}"
        ));
    }
    let after_scheme = template.split_once("://").map_or("", |(_, rest)| rest);
    if after_scheme.is_empty() || after_scheme.starts_with(['/', '?', '#']) {
        return Err(format!("{template:?} has no host; {example}"));
    }
    let concrete = template.replace("{function.name}", "name");
    let uri: http::Uri = concrete
        .parse()
        .map_err(|error| format!("{template:?} is not a valid URL ({error}); {example}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{template:?} has no host; {example}"));
    }
    Ok(())
}

/// `spec.transport` of a v2 endpoint: the default transport (`timeouts:`) or the async one.
fn parse_transport(map: &Map<'_>, transport: &mut TransportSpec) -> Result<()> {
    match map.str("type")? {
        None | Some(OKHTTP_TRANSPORT) => {
            for key in map.keys() {
                if key != "type" && ASYNC_TRANSPORT_FIELDS.contains(&key) {
                    return Err(map.error(
                        key,
                        format!(
                            "`{key}` is a field of the async transport: add `type: \
                             {ASYNC_TRANSPORT}` to `transport` to use it; the default transport \
                             only takes `timeouts: {{call, connect, read, write}}`"
                        ),
                    ));
                }
            }
            map.deny_unknown(&["type", "timeouts"])?;
            if let Some(timeouts) = map.map(
                "timeouts",
                "a mapping of timeouts (call, connect, read, write)",
            )? {
                parse_timeouts(&timeouts, transport)?;
            }
            Ok(())
        }
        Some(ASYNC_TRANSPORT) => {
            if map.has("timeouts") {
                return Err(map.error(
                    "timeouts",
                    format!(
                        "the async transport ({ASYNC_TRANSPORT}) takes `call` and `connect` \
                         directly under `transport`, without `timeouts:`; remove `type` to use \
                         the default transport's `timeouts` instead"
                    ),
                ));
            }
            map.deny_unknown(&ASYNC_TRANSPORT_FIELDS)?;
            if let Some(call) = map.duration("call", false)? {
                transport.call = call;
            }
            if let Some(connect) = map.duration("connect", false)? {
                transport.connect = connect;
            }
            if let Some(pool_ttl) = map.duration("pool_ttl", true)? {
                transport.pool_ttl = pool_ttl;
            }
            if let Some(pool_size) = map.positive_usize("pool_size", "1024")? {
                transport.pool_size = pool_size;
            }
            if let Some(payload_max_bytes) = map.positive_usize("payload_max_bytes", "33554432")? {
                transport.payload_max_bytes = payload_max_bytes;
            }
            transport.tls = parse_tls(map)?;
            check_within_call(map, transport, &["connect"])
        }
        Some(other) => Err(map.error(
            "type",
            format!(
                "unknown transport type `{other}`; use `{ASYNC_TRANSPORT}`, or leave `type` out \
                 for the default transport (`{OKHTTP_TRANSPORT}`)"
            ),
        )),
    }
}

/// `timeouts: {call, connect, read, write}` (v2 default transport, or v1 `spec.timeouts`).
fn parse_timeouts(map: &Map<'_>, transport: &mut TransportSpec) -> Result<()> {
    map.deny_unknown(&["call", "connect", "read", "write"])?;
    if let Some(call) = map.duration("call", false)? {
        transport.call = call;
    }
    if let Some(connect) = map.duration("connect", false)? {
        transport.connect = connect;
    }
    transport.read = map.duration("read", false)?;
    transport.write = map.duration("write", false)?;
    check_within_call(map, transport, &["connect", "read", "write"])
}

/// Each of `keys` (given in `map`) must not exceed the call budget.
fn check_within_call(map: &Map<'_>, transport: &TransportSpec, keys: &[&str]) -> Result<()> {
    let values: Vec<(&str, Option<Duration>)> = keys
        .iter()
        .map(|key| {
            let value = match *key {
                "connect" => Some(transport.connect),
                "read" => transport.read,
                "write" => transport.write,
                _ => None,
            };
            (*key, value)
        })
        .collect();
    check_durations_within_call(map, transport.call, &values)
}

/// Each named duration (checked only when given in `map`) must not exceed `call`.
fn check_durations_within_call(
    map: &Map<'_>,
    call: Duration,
    values: &[(&str, Option<Duration>)],
) -> Result<()> {
    let call_text = if map.has("call") {
        super::duration::format_duration(call)
    } else {
        format!("{}, the default", super::duration::format_duration(call))
    };
    for (key, value) in values {
        if !map.has(key) {
            continue;
        }
        if let Some(value) = value.filter(|value| *value > call) {
            return Err(map.error(
                key,
                format!(
                    "{key} ({}) exceeds call ({call_text}), the budget of the whole invocation; \
                     lower {key} or raise call",
                    super::duration::format_duration(value)
                ),
            ));
        }
    }
    Ok(())
}

/// TLS files of the async transport.
fn parse_tls(map: &Map<'_>) -> Result<TlsSpec> {
    if map.get("client_key_password").is_some() {
        return Err(map.error(
            "client_key_password",
            "encrypted client keys are not supported: decrypt the key once (e.g. `openssl pkey \
             -in client.key -out client-plain.key`, which asks for the password), point \
             client_key at the decrypted file and remove client_key_password",
        ));
    }
    let path = |key: &str| -> Result<Option<PathBuf>> {
        let hint = "give the path of a PEM file (relative to the module file's folder)";
        let Some(text) = map.non_empty_str(key, hint)? else {
            return Ok(None);
        };
        if text.starts_with("classpath:") {
            return Err(map.error(
                key,
                format!(
                    "{text:?}: `classpath:` resources only exist inside a JVM; {hint}, e.g. \
                     `certs/{key}.pem`"
                ),
            ));
        }
        Ok(Some(map.ctx.resolve(text)))
    };
    let tls = TlsSpec {
        trust_cacerts: path("trust_cacerts")?,
        client_cert: path("client_cert")?,
        client_key: path("client_key")?,
        client_key_password: None,
    };
    match (&tls.client_cert, &tls.client_key) {
        (Some(_), None) => Err(map.error(
            "client_key",
            "client_cert is set but client_key is not: mutual TLS needs both (PEM files)",
        )),
        (None, Some(_)) => Err(map.error(
            "client_cert",
            "client_key is set but client_cert is not: mutual TLS needs both (PEM files)",
        )),
        _ => Ok(tls),
    }
}

/// Eddy's `spec.retries`.
fn parse_retries(map: &Map<'_>) -> Result<RetrySpec> {
    map.deny_unknown(&["maxAttempts", "initialBackoff", "maxBackoff"])?;
    let mut retry = RetrySpec::default();
    if let Some(attempts) = map.positive("maxAttempts", "8")? {
        retry.max_attempts = u32::try_from(attempts)
            .map_err(|_| map.error("maxAttempts", format!("{attempts} is too large")))?;
    }
    if let Some(initial) = map.duration("initialBackoff", false)? {
        retry.initial_backoff = initial;
    }
    if let Some(max) = map.duration("maxBackoff", false)? {
        retry.max_backoff = max;
    }
    if retry.initial_backoff > retry.max_backoff {
        let key = if map.has("maxBackoff") {
            "maxBackoff"
        } else {
            "initialBackoff"
        };
        return Err(map.error(
            key,
            format!(
                "initialBackoff ({}) exceeds maxBackoff ({}); the backoff starts at \
                 initialBackoff and doubles up to maxBackoff",
                super::duration::format_duration(retry.initial_backoff),
                super::duration::format_duration(retry.max_backoff)
            ),
        ));
    }
    Ok(retry)
}

fn parse_http_ingress(spec: &Map<'_>, seen: &mut Seen) -> Result<IngressSpec> {
    spec.deny_unknown(&["id", "bind", "valueType"])?;
    let id = parse_id(spec, "ingress")?;
    let bind_text = spec
        .non_empty_str("bind", "e.g. `127.0.0.1:8090`")?
        .unwrap_or(DEFAULT_HTTP_INGRESS_BIND);
    let bind: SocketAddr = bind_text.parse().map_err(|_| {
        spec.error(
            "bind",
            format!(
                "{bind_text:?} is not an IP address and port; write e.g. `127.0.0.1:8090` (host \
                 names are not resolved; `[::1]:8090` for IPv6)"
            ),
        )
    })?;
    if bind.port() != 0 {
        if let Some(first) = seen.binds.insert(bind, spec.ctx.document) {
            return Err(spec.error(
                "bind",
                format!(
                    "{bind} is already the bind address of the HTTP ingress in document \
                     {first}; give each HTTP ingress its own port"
                ),
            ));
        }
    }
    let default_typename = match spec.non_empty_str("valueType", VALUE_TYPE_HINT)? {
        Some(text) => {
            check_value_type(text).map_err(|message| spec.error("valueType", message))?;
            Some(text.to_string())
        }
        None => None,
    };
    Ok(IngressSpec::Http(HttpIngressSpec {
        document: spec.ctx.document,
        id,
        bind,
        default_typename,
    }))
}

fn parse_file_ingress(spec: &Map<'_>) -> Result<IngressSpec> {
    spec.deny_unknown(&["id", "path"])?;
    let id = parse_id(spec, "ingress")?;
    let path = spec.req_str(
        "path",
        "the JSON-lines file to read, e.g. `messages.jsonl` (relative to the module file's folder)",
    )?;
    Ok(IngressSpec::File(FileIngressSpec {
        document: spec.ctx.document,
        id,
        path: spec.ctx.resolve(path),
    }))
}

fn parse_runtime(spec: &Map<'_>, module: &mut ModuleSpec) -> Result<()> {
    spec.deny_unknown(&["deadLetters", "workers"])?;
    if let Some(dead_letters) = spec.map("deadLetters", "a mapping with `path`")? {
        dead_letters.deny_unknown(&["path"])?;
        let path = dead_letters.req_str(
            "path",
            "the JSON-lines file failed batches are appended to, e.g. `dead-letters.jsonl` \
             (relative to the module file's folder)",
        )?;
        module.runtime.dead_letters = Some(spec.ctx.resolve(path));
    }
    if let Some(workers) = spec.positive_usize("workers", "4")? {
        if workers > MAX_WORKERS {
            return Err(spec.error(
                "workers",
                format!("{workers} is more than the most, {MAX_WORKERS}; use 1 to {MAX_WORKERS}"),
            ));
        }
        module.runtime.workers = Some(workers);
    }
    Ok(())
}

/// StateFun-style client properties: a list of `- key: value` mappings.
fn parse_properties(spec: &Map<'_>, key: &str) -> Result<Vec<(String, String)>> {
    let example =
        format!("`{key}: [{{max.poll.records: 500}}]`, written as `- max.poll.records: 500` lines");
    let Some(items) = spec.list(key, &example)? else {
        return Ok(Vec::new());
    };
    let mut properties: Vec<(String, String)> = Vec::new();
    for (path, item) in items {
        let entry = Map::of(
            spec.ctx,
            path.clone(),
            item,
            &format!("a `name: value` mapping, e.g. {example}"),
        )?;
        if entry.map.is_empty() {
            return Err(spec.ctx.error(path, format!("empty item; e.g. {example}")));
        }
        for (name, value) in entry.map {
            let name = name.as_str().unwrap_or_default();
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => {
                    return Err(entry.error(
                        name,
                        format!(
                            "expected a text, number or boolean value, found {}",
                            describe(other)
                        ),
                    ))
                }
            };
            if properties.iter().any(|(existing, _)| existing == name) {
                return Err(
                    entry.error(name, format!("property `{name}` is given twice; keep one"))
                );
            }
            properties.push((name.to_string(), text));
        }
    }
    Ok(properties)
}

fn property<'p>(properties: &'p [(String, String)], name: &str) -> Option<&'p str> {
    properties
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// `topics` of a Kafka ingress or `streams` of a Kinesis ingress.
fn parse_routed_sources(spec: &Map<'_>, key: &str, name_key: &str) -> Result<Vec<RoutedSource>> {
    let example = format!(
        "`- {name_key}: my-{name_key}` with `valueType: com.example/User` and `targets: \
         [com.example/greeter]`"
    );
    let mut sources: Vec<RoutedSource> = Vec::new();
    for (path, item) in spec.req_list(key, &example)? {
        let entry = Map::of(spec.ctx, path, item, &format!("a mapping, e.g. {example}"))?;
        entry.deny_unknown(&[name_key, "valueType", "targets"])?;
        let name = entry.req_str(name_key, &format!("the {name_key} name"))?;
        if sources.iter().any(|source| source.name == name) {
            return Err(entry.error(
                name_key,
                format!("{name_key} `{name}` is listed twice; list each {name_key} once"),
            ));
        }
        let value_type = entry.req_str("valueType", VALUE_TYPE_HINT)?;
        check_value_type(value_type).map_err(|message| entry.error("valueType", message))?;
        let mut targets = Vec::new();
        for (target_path, target) in
            entry.req_list("targets", "`targets: [com.example/greeter]`")?
        {
            let Value::String(text) = target else {
                return Err(spec.ctx.error(
                    target_path,
                    format!(
                        "expected a function type, found {}; {TYPE_NAME_HINT}",
                        describe(target)
                    ),
                ));
            };
            targets.push(
                parse_type_name(text).map_err(|message| spec.ctx.error(target_path, message))?,
            );
        }
        sources.push(RoutedSource {
            name: name.to_string(),
            value_type: value_type.to_string(),
            targets,
        });
    }
    Ok(sources)
}

/// `startupPosition` of a Kafka (`kafka == true`) or Kinesis ingress; `None` if absent.
fn parse_startup_position(spec: &Map<'_>, kafka: bool) -> Result<Option<StartupPosition>> {
    let Some(map) = spec.map("startupPosition", "a mapping with `type`")? else {
        return Ok(None);
    };
    let types = if kafka {
        "earliest, latest, group-offsets, specific-offsets, date"
    } else {
        "earliest, latest, date"
    };
    let kind = map.req_str("type", &format!("one of: {types}"))?;
    let position = match kind {
        "earliest" => {
            map.deny_unknown(&["type"])?;
            StartupPosition::Earliest
        }
        "latest" => {
            map.deny_unknown(&["type"])?;
            StartupPosition::Latest
        }
        "group-offsets" if kafka => {
            map.deny_unknown(&["type"])?;
            StartupPosition::GroupOffsets
        }
        "date" => {
            map.deny_unknown(&["type", "date"])?;
            let date = map.req_str("date", DATE_HINT)?;
            check_startup_date(date).map_err(|message| map.error("date", message))?;
            StartupPosition::Date(date.to_string())
        }
        "specific-offsets" if kafka => {
            map.deny_unknown(&["type", "offsets"])?;
            StartupPosition::SpecificOffsets(parse_specific_offsets(&map)?)
        }
        other => {
            return Err(map.error(
                "type",
                format!("unknown startup position `{other}`; use one of: {types}"),
            ))
        }
    };
    Ok(Some(position))
}

/// `offsets: [{topic/partition: offset}, ...]`.
fn parse_specific_offsets(map: &Map<'_>) -> Result<Vec<(String, u32, i64)>> {
    let example = "`- my-topic/0: 91` lines (topic/partition: offset)";
    let mut offsets = Vec::new();
    for (path, item) in map.req_list("offsets", example)? {
        let entry = Map::of(
            map.ctx,
            path,
            item,
            &format!("a `topic/partition: offset` mapping, e.g. {example}"),
        )?;
        for (key, value) in entry.map {
            let key = key.as_str().unwrap_or_default();
            let partition = key
                .rsplit_once('/')
                .filter(|(topic, _)| !topic.is_empty())
                .and_then(|(topic, partition)| Some((topic, partition.parse::<u32>().ok()?)));
            let Some((topic, partition)) = partition else {
                return Err(entry.error(
                    key,
                    format!("`{key}` is not `topic/partition`; write e.g. {example}"),
                ));
            };
            let offset = match value {
                Value::Number(number) => number.as_i64().filter(|offset| *offset >= 0),
                _ => None,
            };
            let Some(offset) = offset else {
                return Err(entry.error(
                    key,
                    format!(
                        "expected an offset (a whole number ≥ 0), found {}",
                        describe(value)
                    ),
                ));
            };
            offsets.push((topic.to_string(), partition, offset));
        }
    }
    Ok(offsets)
}

/// `yyyy-MM-dd HH:mm:ss.SSS Z` (1 to 9 fraction digits; zone `Z`, `+HHMM` or `+HH:MM`).
fn check_startup_date(text: &str) -> Result<(), String> {
    let fail = || format!("{text:?} is not a date; {DATE_HINT}");
    let digits = |part: &str, len: usize, max: u32, min: u32| -> Option<u32> {
        if part.len() != len || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse()
            .ok()
            .filter(|value| (min..=max).contains(value))
    };
    let mut parts = text.split(' ');
    let (Some(date), Some(time), Some(zone), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(fail());
    };
    let date_ok = {
        let mut fields = date.split('-');
        matches!(
            (fields.next(), fields.next(), fields.next(), fields.next()),
            (Some(year), Some(month), Some(day), None)
                if digits(year, 4, 9999, 0).is_some()
                    && digits(month, 2, 12, 1).is_some()
                    && digits(day, 2, 31, 1).is_some()
        )
    };
    let time_ok = match time.split_once('.') {
        Some((clock, fraction)) => {
            let mut fields = clock.split(':');
            (1..=9).contains(&fraction.len())
                && fraction.bytes().all(|b| b.is_ascii_digit())
                && matches!(
                    (fields.next(), fields.next(), fields.next(), fields.next()),
                    (Some(hour), Some(minute), Some(second), None)
                        if digits(hour, 2, 23, 0).is_some()
                            && digits(minute, 2, 59, 0).is_some()
                            && digits(second, 2, 59, 0).is_some()
                )
        }
        None => false,
    };
    let zone_ok = zone == "Z"
        || match zone.strip_prefix(['+', '-']) {
            Some(offset) => {
                let offset = offset.replacen(':', "", 1);
                offset.len() == 4
                    && digits(&offset[..2], 2, 18, 0).is_some()
                    && digits(&offset[2..], 2, 59, 0).is_some()
            }
            None => false,
        };
    if date_ok && time_ok && zone_ok {
        Ok(())
    } else {
        Err(fail())
    }
}

fn parse_kafka_ingress(spec: &Map<'_>) -> Result<IngressSpec> {
    spec.deny_unknown(&[
        "id",
        "address",
        "consumerGroupId",
        "topics",
        "startupPosition",
        "autoOffsetResetPosition",
        "properties",
    ])?;
    let id = parse_id(spec, "ingress")?;
    let properties = parse_properties(spec, "properties")?;
    let address = kafka_address(spec, &properties)?;
    let consumer_group_id = match spec.non_empty_str("consumerGroupId", "e.g. `my-group`")? {
        Some(group) => group.to_string(),
        None => property(&properties, "group.id")
            .map(str::to_string)
            .ok_or_else(|| {
                spec.missing(
                    "consumerGroupId",
                    "the Kafka consumer group, e.g. `consumerGroupId: my-group` (or a `group.id` \
                     property)",
                )
            })?,
    };
    let topics = parse_routed_sources(spec, "topics", "topic")?;
    let startup_position = parse_startup_position(spec, true)?.unwrap_or(StartupPosition::Latest);
    let auto_offset_reset_position =
        match spec.non_empty_str("autoOffsetResetPosition", "earliest or latest")? {
            None => None,
            Some(text) => match text.to_ascii_lowercase().as_str() {
                "earliest" => Some(StartupPosition::Earliest),
                "latest" => Some(StartupPosition::Latest),
                _ => {
                    return Err(spec.error(
                        "autoOffsetResetPosition",
                        format!("unknown position `{text}`; use earliest or latest"),
                    ))
                }
            },
        };
    Ok(IngressSpec::Kafka(KafkaIngressSpec {
        document: spec.ctx.document,
        id,
        address,
        consumer_group_id,
        topics,
        startup_position,
        auto_offset_reset_position,
        properties,
    }))
}

/// `address`, or the `bootstrap.servers` property.
fn kafka_address(spec: &Map<'_>, properties: &[(String, String)]) -> Result<String> {
    match spec.non_empty_str("address", "e.g. `kafka-broker:9092`")? {
        Some(address) => Ok(address.to_string()),
        None => property(properties, "bootstrap.servers")
            .map(str::to_string)
            .ok_or_else(|| {
                spec.missing(
                    "address",
                    "the Kafka bootstrap servers, e.g. `address: kafka-broker:9092` (or a \
                     `bootstrap.servers` property)",
                )
            }),
    }
}

fn parse_kafka_egress(spec: &Map<'_>) -> Result<KafkaEgressSpec> {
    spec.deny_unknown(&["id", "address", "deliverySemantic", "properties"])?;
    let id = parse_id(spec, "egress")?;
    let properties = parse_properties(spec, "properties")?;
    let address = kafka_address(spec, &properties)?;
    let mut delivery_semantic = "at-least-once".to_string();
    let mut transaction_timeout = None;
    if let Some(map) = spec.map("deliverySemantic", "a mapping with `type`")? {
        map.deny_unknown(&["type", "transactionTimeout", "transactionTimeoutMillis"])?;
        let kind = map.req_str("type", "one of: at-least-once, exactly-once, none")?;
        if !matches!(kind, "at-least-once" | "exactly-once" | "none") {
            return Err(map.error(
                "type",
                format!("unknown delivery semantic `{kind}`; use one of: at-least-once, exactly-once, none"),
            ));
        }
        delivery_semantic = kind.to_string();
        let millis = map
            .positive("transactionTimeoutMillis", "900000")?
            .map(Duration::from_millis);
        let timeout = map.duration("transactionTimeout", false)?;
        if millis.is_some() && timeout.is_some() {
            return Err(map.error(
                "transactionTimeoutMillis",
                "give either transactionTimeout or the older transactionTimeoutMillis, not both",
            ));
        }
        transaction_timeout = timeout.or(millis);
        if kind == "exactly-once" && transaction_timeout.is_none() {
            return Err(map.missing(
                "transactionTimeout",
                "exactly-once delivery uses Kafka transactions and needs their timeout, e.g. \
                 `transactionTimeout: 15min` (at most the broker's transaction.max.timeout.ms)",
            ));
        }
    }
    Ok(KafkaEgressSpec {
        document: spec.ctx.document,
        id,
        address,
        delivery_semantic,
        transaction_timeout,
        properties,
    })
}

/// `awsRegion`: `(region id, custom endpoint)`; `(None, None)` for the default provider chain.
fn parse_aws_region(spec: &Map<'_>) -> Result<(Option<String>, Option<String>)> {
    let Some(map) = spec.map("awsRegion", "a mapping with `type`")? else {
        return Ok((None, None));
    };
    let types = "default, specific, custom-endpoint";
    let region_hint = "the region id, e.g. `us-west-1`";
    match map.req_str("type", &format!("one of: {types}"))? {
        "default" => {
            map.deny_unknown(&["type"])?;
            Ok((None, None))
        }
        "specific" => {
            map.deny_unknown(&["type", "id"])?;
            Ok((Some(map.req_str("id", region_hint)?.to_string()), None))
        }
        "custom-endpoint" => {
            map.deny_unknown(&["type", "id", "endpoint"])?;
            let endpoint =
                map.req_str("endpoint", "the service URL, e.g. `http://127.0.0.1:4566`")?;
            let lower = endpoint.to_ascii_lowercase();
            let valid = (lower.starts_with("http://") || lower.starts_with("https://"))
                && endpoint
                    .parse::<http::Uri>()
                    .is_ok_and(|uri| uri.host().is_some_and(|host| !host.is_empty()));
            if !valid {
                return Err(map.error(
                    "endpoint",
                    format!("{endpoint:?} is not an http:// or https:// URL; write e.g. `http://127.0.0.1:4566`"),
                ));
            }
            let id = map.req_str("id", region_hint)?;
            Ok((Some(id.to_string()), Some(endpoint.to_string())))
        }
        other => Err(map.error(
            "type",
            format!("unknown AWS region type `{other}`; use one of: {types}"),
        )),
    }
}

/// `awsCredentials`; `None` for the default provider chain.
fn parse_aws_credentials(spec: &Map<'_>) -> Result<Option<AwsCredentialsSpec>> {
    let Some(map) = spec.map("awsCredentials", "a mapping with `type`")? else {
        return Ok(None);
    };
    let types = "default, basic, profile";
    match map.req_str("type", &format!("one of: {types}"))? {
        "default" => {
            map.deny_unknown(&["type"])?;
            Ok(None)
        }
        "basic" => {
            map.deny_unknown(&["type", "accessKeyId", "secretAccessKey"])?;
            Ok(Some(AwsCredentialsSpec::Basic {
                access_key_id: map
                    .req_str("accessKeyId", "the AWS access key id")?
                    .to_string(),
                secret_access_key: map
                    .req_str("secretAccessKey", "the AWS secret access key")?
                    .to_string(),
            }))
        }
        "profile" => {
            map.deny_unknown(&["type", "profileName", "profilePath"])?;
            let profile_name = map
                .req_str("profileName", "the AWS profile name")?
                .to_string();
            let profile_path = map
                .non_empty_str("profilePath", "the AWS config file of the profile")?
                .map(|path| map.ctx.resolve(path));
            Ok(Some(AwsCredentialsSpec::Profile {
                profile_name,
                profile_path,
            }))
        }
        other => Err(map.error(
            "type",
            format!("unknown AWS credentials type `{other}`; use one of: {types}"),
        )),
    }
}

fn parse_kinesis_ingress(spec: &Map<'_>) -> Result<IngressSpec> {
    spec.deny_unknown(&[
        "id",
        "awsRegion",
        "awsCredentials",
        "startupPosition",
        "streams",
        "clientConfigProperties",
    ])?;
    let id = parse_id(spec, "ingress")?;
    let (aws_region, aws_endpoint) = parse_aws_region(spec)?;
    let aws_credentials = parse_aws_credentials(spec)?;
    let startup_position = parse_startup_position(spec, false)?.unwrap_or(StartupPosition::Latest);
    let streams = parse_routed_sources(spec, "streams", "stream")?;
    let client_config_properties = parse_properties(spec, "clientConfigProperties")?;
    Ok(IngressSpec::Kinesis(KinesisIngressSpec {
        document: spec.ctx.document,
        id,
        aws_region,
        aws_endpoint,
        aws_credentials,
        streams,
        startup_position,
        client_config_properties,
    }))
}

fn parse_kinesis_egress(spec: &Map<'_>) -> Result<KinesisEgressSpec> {
    spec.deny_unknown(&[
        "id",
        "awsRegion",
        "awsCredentials",
        "maxOutstandingRecords",
        "clientConfigProperties",
    ])?;
    let id = parse_id(spec, "egress")?;
    let (aws_region, aws_endpoint) = parse_aws_region(spec)?;
    let aws_credentials = parse_aws_credentials(spec)?;
    let max_outstanding_records = spec.positive("maxOutstandingRecords", "1000")?;
    let client_config_properties = parse_properties(spec, "clientConfigProperties")?;
    Ok(KinesisEgressSpec {
        document: spec.ctx.document,
        id,
        aws_region,
        aws_endpoint,
        aws_credentials,
        max_outstanding_records,
        client_config_properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RuntimeSpec;

    const FILE: &str = "/srv/app/module.yaml";

    fn parse(text: &str) -> Result<ModuleSpec> {
        parse_str(Path::new(FILE), text)
    }

    /// Parses `text`, expects a config error at `document`/`field` whose message contains every
    /// one of `needles`, and returns the message.
    #[track_caller]
    fn assert_error(text: &str, document: usize, field: &str, needles: &[&str]) -> String {
        match parse(text) {
            Err(Error::Config {
                file,
                document: got_document,
                field: got_field,
                message,
            }) => {
                assert_eq!(file, Path::new(FILE));
                assert_eq!(
                    (got_document, got_field.as_str()),
                    (Some(document), field),
                    "{message}"
                );
                for needle in needles {
                    assert!(message.contains(needle), "{needle:?} not in: {message}");
                }
                message
            }
            Err(other) => panic!("expected a config error, got {other}"),
            Ok(spec) => panic!("expected an error, parsed {spec:?}"),
        }
    }

    fn endpoint(body: &str) -> String {
        format!(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: com.example/*\n  \
             urlPathTemplate: http://127.0.0.1:9000/{{function.name}}\n{body}"
        )
    }

    fn http_target(spec: &EndpointSpec) -> &HttpTarget {
        match &spec.target {
            EndpointTarget::Http(target) => target,
            other => panic!("expected an http endpoint, found {other:?}"),
        }
    }

    fn lambda_target(spec: &EndpointSpec) -> &LambdaTarget {
        match &spec.target {
            EndpointTarget::Lambda(target) => target,
            other => panic!("expected a lambda endpoint, found {other:?}"),
        }
    }

    fn lambda(body: &str) -> String {
        format!(
            "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: example/*\n  \
             functionName: \"{{function.name}}\"\n{body}"
        )
    }

    const LAMBDA_FIELDS: &str = "functions, functionName, qualifier, region, endpointUrl, \
        maxNumBatchRequests, maxConcurrency, timeouts, retries";

    #[test]
    fn lambda_endpoint_with_every_field() {
        let text = "kind: io.eddy.endpoints.v1/lambda
spec:
  functions: example/*
  functionName: \"eddy-{function.name}\"
  qualifier: live
  region: eu-west-3
  endpointUrl: http://127.0.0.1:9000/
  maxNumBatchRequests: 50
  maxConcurrency: 7
  timeouts:
    call: 2 min
    connect: 3s
    read: 1 min
  retries: { maxAttempts: 4, initialBackoff: 10ms, maxBackoff: 1s }
";
        let module = parse(text).expect("valid");
        let endpoint = &module.endpoints[0];
        assert_eq!(endpoint.document, 0);
        assert_eq!(
            endpoint.functions,
            FunctionSelector::Namespace("example".into())
        );
        assert_eq!(endpoint.max_num_batch_requests, 50);
        let target = lambda_target(endpoint);
        assert_eq!(
            target,
            &LambdaTarget {
                function_name: "eddy-{function.name}".into(),
                qualifier: Some("live".into()),
                region: Some("eu-west-3".into()),
                endpoint_url: Some("http://127.0.0.1:9000".into()),
                max_concurrency: 7,
                call: Duration::from_secs(120),
                connect: Duration::from_secs(3),
                read: Some(Duration::from_secs(60)),
                retry: RetrySpec {
                    max_attempts: 4,
                    initial_backoff: Duration::from_millis(10),
                    max_backoff: Duration::from_secs(1),
                },
            }
        );
        assert_eq!(
            target.function_name_for(&FunctionType::new("example", "reminder")),
            "eddy-reminder"
        );
        assert_eq!(
            endpoint.target.describe(),
            "lambda eddy-{function.name}:live at http://127.0.0.1:9000"
        );
    }

    #[test]
    fn lambda_endpoint_defaults() {
        let module = parse(&lambda("")).expect("valid");
        let endpoint = &module.endpoints[0];
        assert_eq!(endpoint.max_num_batch_requests, 1000);
        assert_eq!(
            lambda_target(endpoint),
            &LambdaTarget::new("{function.name}")
        );
        let target = LambdaTarget::new("x");
        assert_eq!(target.max_concurrency, 100);
        assert_eq!(target.call, Duration::from_secs(60));
        assert_eq!(target.connect, Duration::from_secs(10));
        assert_eq!((target.read, &target.qualifier), (None, &None));
        assert_eq!((&target.region, &target.endpoint_url), (&None, &None));
        assert_eq!(target.retry, RetrySpec::default());
    }

    #[test]
    fn lambda_function_names_and_arns() {
        for name in [
            "reminder",
            "my_fn-2.v1",
            "reminder:live",
            "reminder:$LATEST",
            "123456789012:function:reminder",
            "123456789012:function:reminder:7",
            "arn:aws:lambda:us-east-1:123456789012:function:reminder",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:reminder:live",
            "{function.name}",
            "prefix-{function.name}-suffix",
        ] {
            let text = format!(
                "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: a/b\n  functionName: \"{name}\"\n"
            );
            let module = parse(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(lambda_target(&module.endpoints[0]).function_name, name);
        }
        let cases: [(&str, &[&str]); 9] = [
            ("my function", &["contains spaces"]),
            ("fn/x", &["`fn/x` may only hold letters"]),
            ("{function.id}", &["unknown placeholder", "{function.name}"]),
            ("x}", &["`}` without an opening `{`"]),
            (
                "12345:function:reminder",
                &["`12345` is not a 12-digit AWS account id"],
            ),
            (
                "arn:aws:lambda:US-EAST-1:123456789012:function:f",
                &["\"US-EAST-1\" is not an AWS region name"],
            ),
            (
                "arn:gcp:lambda:us-east-1:123456789012:function:f",
                &["partition `gcp` is not an AWS partition"],
            ),
            (
                "a:b:c",
                &["is not a Lambda function name, partial ARN or ARN"],
            ),
            ("reminder:a.b", &["not a Lambda version or alias"]),
        ];
        for (name, needles) in cases {
            let text = format!(
                "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: a/b\n  functionName: \"{name}\"\n"
            );
            assert_error(&text, 0, "spec.functionName", needles);
        }
        let long = "f".repeat(65);
        assert_error(
            &format!("kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: a/b\n  functionName: {long}\n"),
            0,
            "spec.functionName",
            &["65 characters long, Lambda allows 64"],
        );
    }

    #[test]
    fn lambda_endpoint_mistakes() {
        // Missing and unknown fields.
        assert_error(
            "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: a/b\n",
            0,
            "spec.functionName",
            &["required field is missing", "partial ARN"],
        );
        assert_error(
            "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functionName: f\n",
            0,
            "spec.functions",
            &["required field is missing", "namespace/*"],
        );
        assert_error(
            &lambda("  functionname: g\n"),
            0,
            "spec.functionname",
            &["did you mean `functionName`?", LAMBDA_FIELDS],
        );
        assert_error(
            &lambda("  endpointURL: http://h\n"),
            0,
            "spec.endpointURL",
            &["did you mean `endpointUrl`?"],
        );
        assert_error(
            &lambda("  urlPathTemplate: http://h/\n"),
            0,
            "spec.urlPathTemplate",
            &["unknown field", LAMBDA_FIELDS],
        );
        assert_error(
            &lambda("  timeouts: { write: 1s }\n"),
            0,
            "spec.timeouts.write",
            &["unknown field", "call, connect, read"],
        );
        // Values.
        assert_error(
            &lambda("  functions: a/b/c\n").replacen("  functions: example/*\n", "", 1),
            0,
            "spec.functions",
            &["not a function selector"],
        );
        assert_error(
            &lambda("  qualifier: \"v 1\"\n"),
            0,
            "spec.qualifier",
            &["not a Lambda version or alias", "`live`"],
        );
        assert_error(
            &lambda("  region: \"us east\"\n"),
            0,
            "spec.region",
            &["not an AWS region name", "us-east-1"],
        );
        assert_error(
            &lambda("  endpointUrl: 127.0.0.1:9000\n"),
            0,
            "spec.endpointUrl",
            &["not an http:// or https:// URL", "cargo lambda watch"],
        );
        assert_error(
            &lambda("  endpointUrl: \"http://h/{function.name}\"\n"),
            0,
            "spec.endpointUrl",
            &["takes no placeholders"],
        );
        assert_error(
            &lambda("  maxConcurrency: 0\n"),
            0,
            "spec.maxConcurrency",
            &["must be at least 1"],
        );
        assert_error(
            &lambda("  maxNumBatchRequests: many\n"),
            0,
            "spec.maxNumBatchRequests",
            &["expected a positive whole number"],
        );
        assert_error(
            &lambda("  timeouts: { call: 10s, read: 1 min }\n"),
            0,
            "spec.timeouts.read",
            &["read (1min) exceeds call (10s)"],
        );
        assert_error(
            &lambda("  timeouts: { connect: 2 min }\n"),
            0,
            "spec.timeouts.connect",
            &["exceeds call (1min, the default)"],
        );
        assert_error(
            &lambda("  retries: { maxAttempts: 0 }\n"),
            0,
            "spec.retries.maxAttempts",
            &["must be at least 1"],
        );
        // The qualifier given twice.
        let text = "kind: io.eddy.endpoints.v1/lambda\nspec:\n  functions: a/b\n  functionName: f:live\n  qualifier: live\n";
        assert_error(
            text,
            0,
            "spec.qualifier",
            &["already ends with the qualifier `live`"],
        );
    }

    #[test]
    fn embedded_endpoint() {
        let text = "kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: example/reminder\n";
        let module = parse(text).expect("valid");
        let endpoint = &module.endpoints[0];
        assert!(matches!(endpoint.target, EndpointTarget::Embedded));
        assert_eq!(endpoint.max_num_batch_requests, 1000);
        assert_eq!(endpoint.functions.to_string(), "example/reminder");
        let module = parse(&format!("{text}  maxNumBatchRequests: 5\n")).expect("valid");
        assert_eq!(module.endpoints[0].max_num_batch_requests, 5);

        assert_error(
            &format!("{text}  functionName: x\n"),
            0,
            "spec.functionName",
            &["unknown field", "functions, maxNumBatchRequests"],
        );
        assert_error(
            &format!("{text}  maxNumBatchRequest: 3\n"),
            0,
            "spec.maxNumBatchRequest",
            &["did you mean `maxNumBatchRequests`?"],
        );
        assert_error(
            "kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: \"*\"\n",
            0,
            "spec.functions",
            &["`*` may only stand for the whole name"],
        );
        assert_error(
            "kind: io.eddy.endpoints.v1/embedded\nspec: {}\n",
            0,
            "spec.functions",
            &["required field is missing"],
        );
        assert_error(
            "kind: io.eddy.endpoints.v1/embeded\nspec: {}\n",
            0,
            "kind",
            &["did you mean `io.eddy.endpoints.v1/embedded`?"],
        );
    }

    #[test]
    fn one_endpoint_per_selector_across_kinds() {
        let embedded = "kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: example/*\n";
        let http = "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: example/*\n  urlPathTemplate: http://h/{function.name}\n";
        for (first, second) in [
            (embedded.to_string(), lambda("")),
            (lambda(""), http.to_string()),
            (http.to_string(), embedded.to_string()),
        ] {
            assert_error(
                &format!("{first}---\n{second}"),
                1,
                "spec.functions",
                &[
                    "`example/*` is already served by the endpoint of document 0",
                    "whatever its kind",
                ],
            );
        }
        // An exact type next to its namespace, served by another kind, is fine.
        let exact = "kind: io.eddy.endpoints.v1/embedded\nspec:\n  functions: example/fast\n";
        let module = parse(&format!("{exact}---\n{}", lambda(""))).expect("valid");
        assert_eq!(module.endpoints.len(), 2);
    }

    fn fixture() -> ModuleSpec {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/spec/testdata/module.yaml");
        load(&path).expect("the fixture is valid")
    }

    #[test]
    fn full_file_of_every_kind() {
        let spec = fixture();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/spec/testdata");
        assert_eq!(spec.endpoints.len(), 5);
        assert_eq!(spec.ingresses.len(), 4);
        assert_eq!(spec.egresses.len(), 4);

        let first = &spec.endpoints[0];
        assert_eq!(first.document, 0);
        assert_eq!(
            first.functions,
            FunctionSelector::Namespace("com.example".into())
        );
        assert_eq!(first.max_num_batch_requests, 500);
        let target = http_target(first);
        assert_eq!(
            target.url_for(&FunctionType::new("com.example", "greeter")),
            "http://127.0.0.1:9000/greeter"
        );
        assert_eq!(
            target.transport,
            TransportSpec {
                call: Duration::from_secs(120),
                connect: Duration::from_secs(5),
                read: Some(Duration::from_secs(30)),
                write: Some(Duration::from_secs(10)),
                retry: RetrySpec {
                    max_attempts: 5,
                    initial_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                },
                ..TransportSpec::default()
            }
        );

        let secure = &spec.endpoints[1];
        assert_eq!(
            secure.functions,
            FunctionSelector::Exact(FunctionType::new("com.example.secure", "greeter"))
        );
        assert_eq!(
            secure.max_num_batch_requests,
            DEFAULT_MAX_NUM_BATCH_REQUESTS
        );
        assert_eq!(
            http_target(secure).transport,
            TransportSpec {
                call: Duration::from_secs(60),
                connect: Duration::from_secs(20),
                pool_ttl: Duration::from_secs(30),
                pool_size: 64,
                payload_max_bytes: 1_048_576,
                tls: TlsSpec {
                    trust_cacerts: Some(dir.join("certs/ca.pem")),
                    client_cert: Some(PathBuf::from("/etc/eddy/client.pem")),
                    client_key: Some(PathBuf::from("/etc/eddy/client-key.pem")),
                    client_key_password: None,
                },
                ..TransportSpec::default()
            }
        );

        let lambda = &spec.endpoints[3];
        assert_eq!(lambda.document, 12);
        assert_eq!(
            lambda.functions,
            FunctionSelector::Namespace("com.example.lambda".into())
        );
        assert_eq!(lambda.max_num_batch_requests, 200);
        assert_eq!(
            lambda_target(lambda),
            &LambdaTarget {
                function_name:
                    "arn:aws:lambda:eu-west-1:123456789012:function:eddy-{function.name}".into(),
                qualifier: Some("live".into()),
                region: Some("eu-west-1".into()),
                endpoint_url: Some("http://127.0.0.1:9000".into()),
                max_concurrency: 50,
                call: Duration::from_secs(120),
                connect: Duration::from_secs(5),
                read: Some(Duration::from_secs(90)),
                retry: RetrySpec {
                    max_attempts: 4,
                    initial_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                },
            }
        );
        let embedded = &spec.endpoints[4];
        assert_eq!(embedded.document, 13);
        assert!(matches!(embedded.target, EndpointTarget::Embedded));
        assert_eq!(embedded.max_num_batch_requests, 300);

        let legacy = &spec.endpoints[2];
        assert_eq!(legacy.document, 2);
        assert_eq!(legacy.max_num_batch_requests, 10);
        let transport = &http_target(legacy).transport;
        assert_eq!(transport.call, Duration::from_secs(30));
        assert_eq!(transport.connect, Duration::from_secs(2));
        assert_eq!(transport.read, None);

        match &spec.ingresses[0] {
            IngressSpec::Http(http) => {
                assert_eq!(http.document, 3);
                assert_eq!(http.id, "com.example/http");
                assert_eq!(http.bind, "127.0.0.1:8090".parse().expect("address"));
                assert_eq!(
                    http.default_typename.as_deref(),
                    Some("io.statefun.types/string")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match &spec.ingresses[1] {
            IngressSpec::File(file) => {
                assert_eq!(file.id, "com.example/replay");
                assert_eq!(file.path, dir.join("input/messages.jsonl"));
            }
            other => panic!("unexpected {other:?}"),
        }
        match &spec.ingresses[2] {
            IngressSpec::Kafka(kafka) => {
                assert_eq!(kafka.document, 8);
                assert_eq!(kafka.id, "com.example/users");
                assert_eq!(kafka.address, "kafka-broker:9092");
                assert_eq!(kafka.consumer_group_id, "my-consumer-group");
                assert_eq!(
                    kafka.startup_position,
                    StartupPosition::Date("2020-02-01 04:15:00.000 +0000".into())
                );
                assert_eq!(
                    kafka.auto_offset_reset_position,
                    Some(StartupPosition::Earliest)
                );
                assert_eq!(kafka.topics.len(), 1);
                assert_eq!(kafka.topics[0].name, "messages-1");
                assert_eq!(kafka.topics[0].value_type, "com.example/User");
                assert_eq!(
                    kafka.topics[0].targets,
                    vec![
                        FunctionType::new("com.example", "greeter"),
                        FunctionType::new("com.example", "counter")
                    ]
                );
                assert_eq!(
                    kafka.properties,
                    vec![
                        ("max.poll.records".to_string(), "500".to_string()),
                        ("isolation.level".to_string(), "read_committed".to_string())
                    ]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match &spec.ingresses[3] {
            IngressSpec::Kinesis(kinesis) => {
                assert_eq!(kinesis.id, "com.example/kinesis-in");
                assert_eq!(kinesis.aws_region.as_deref(), Some("us-east-1"));
                assert_eq!(
                    kinesis.aws_endpoint.as_deref(),
                    Some("http://127.0.0.1:4566")
                );
                assert_eq!(
                    kinesis.aws_credentials,
                    Some(AwsCredentialsSpec::Basic {
                        access_key_id: "test-key".into(),
                        secret_access_key: "test-secret".into()
                    })
                );
                assert_eq!(kinesis.startup_position, StartupPosition::Earliest);
                assert_eq!(kinesis.streams[0].name, "user-stream");
                assert_eq!(
                    kinesis.client_config_properties,
                    vec![
                        ("SocketTimeout".to_string(), "9999".to_string()),
                        ("MaxConnections".to_string(), "15".to_string())
                    ]
                );
                let debug = format!("{:?}", kinesis.aws_credentials);
                assert!(!debug.contains("test-secret"), "{debug}");
            }
            other => panic!("unexpected {other:?}"),
        }

        assert!(matches!(
            &spec.egresses[0],
            EgressSpec::Stdout { document: 5, id } if id == "com.example/console"
        ));
        assert!(matches!(
            &spec.egresses[1],
            EgressSpec::File { id, path, .. }
                if id == "com.example/out" && *path == dir.join("out.jsonl")
        ));
        match &spec.egresses[2] {
            EgressSpec::Kafka(kafka) => {
                assert_eq!(kafka.id, "com.example/kafka-out");
                assert_eq!(kafka.delivery_semantic, "exactly-once");
                assert_eq!(kafka.transaction_timeout, Some(Duration::from_secs(900)));
                assert_eq!(
                    kafka.properties,
                    vec![("compression.type".to_string(), "lz4".to_string())]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match &spec.egresses[3] {
            EgressSpec::Kinesis(kinesis) => {
                assert_eq!(kinesis.id, "com.example/kinesis-out");
                assert_eq!(kinesis.aws_region.as_deref(), Some("eu-west-1"));
                assert_eq!(kinesis.aws_endpoint, None);
                assert_eq!(
                    kinesis.aws_credentials,
                    Some(AwsCredentialsSpec::Profile {
                        profile_name: "dev".into(),
                        profile_path: Some(dir.join("aws/config"))
                    })
                );
                assert_eq!(kinesis.max_outstanding_records, Some(9999));
                assert_eq!(kinesis.client_config_properties.len(), 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            spec.runtime,
            RuntimeSpec {
                dead_letters: Some(dir.join("dead-letters.jsonl")),
                workers: Some(4),
            }
        );
    }

    #[test]
    fn defaults_apply_and_empty_documents_are_skipped() {
        let text = "---\n---\n# only a comment\n---\n".to_string()
            + &endpoint("")
            + "\n---\nkind: io.eddy.http.v1/ingress\nspec:\n  id: com.example/in\n";
        let spec = parse(&text).expect("valid");
        assert_eq!(spec.path, Path::new(FILE));
        assert_eq!(spec.endpoints.len(), 1);
        assert_eq!(spec.endpoints[0].document, 2, "empty documents still count");
        assert_eq!(
            spec.endpoints[0].max_num_batch_requests,
            DEFAULT_MAX_NUM_BATCH_REQUESTS
        );
        assert_eq!(
            http_target(&spec.endpoints[0]).transport,
            TransportSpec::default()
        );
        match &spec.ingresses[0] {
            IngressSpec::Http(http) => {
                assert_eq!(
                    http.bind,
                    DEFAULT_HTTP_INGRESS_BIND.parse().expect("address")
                );
                assert_eq!(http.default_typename, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(spec.runtime, RuntimeSpec::default());
        assert!(parse("").expect("empty file").endpoints.is_empty());
    }

    #[test]
    fn statefun_compatible_spellings() {
        // Explicit okhttp type, YAML integers as milliseconds, quoted numbers, `file://`
        // prefix, Kafka address and group from properties, transactionTimeoutMillis.
        let text = endpoint(
            "  maxNumBatchRequests: \"20\"\n  transport:\n    type: io.statefun.transports.v1/okhttp\n    timeouts:\n      call: 5000\n      read: 1000\n",
        ) + "---\nkind: io.statefun.endpoints.v2/http\nspec:\n  functions: com.other/*\n  urlPathTemplate: https://{function.name}.svc.local/\n  transport:\n    type: io.statefun.transports.v1/async\n    pool_ttl: 0\n    trust_cacerts: file:///etc/ca.pem\n"
            + "---\nkind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/k\n  topics:\n    - topic: t\n      valueType: type.googleapis.com/com.example.User\n      targets: [com.example/fn]\n  startupPosition:\n    type: specific-offsets\n    offsets:\n      - t/0: 91\n      - t/1: 11\n  properties:\n    - bootstrap.servers: broker:9092\n    - group.id: g\n"
            + "---\nkind: io.statefun.kafka.v1/egress\nspec:\n  id: com.example/ko\n  address: broker:9092\n  deliverySemantic:\n    type: exactly-once\n    transactionTimeoutMillis: 60000\n";
        let spec = parse(&text).expect("valid");
        assert_eq!(spec.endpoints[0].max_num_batch_requests, 20);
        let transport = &http_target(&spec.endpoints[0]).transport;
        assert_eq!(transport.call, Duration::from_secs(5));
        assert_eq!(transport.read, Some(Duration::from_secs(1)));
        let transport = &http_target(&spec.endpoints[1]).transport;
        assert_eq!(transport.pool_ttl, Duration::ZERO);
        assert_eq!(
            transport.tls.trust_cacerts,
            Some(PathBuf::from("/etc/ca.pem"))
        );
        match &spec.ingresses[0] {
            IngressSpec::Kafka(kafka) => {
                assert_eq!(kafka.address, "broker:9092");
                assert_eq!(kafka.consumer_group_id, "g");
                assert_eq!(
                    kafka.startup_position,
                    StartupPosition::SpecificOffsets(vec![
                        ("t".into(), 0, 91),
                        ("t".into(), 1, 11)
                    ])
                );
                assert_eq!(kafka.auto_offset_reset_position, None);
            }
            other => panic!("unexpected {other:?}"),
        }
        match &spec.egresses[0] {
            EgressSpec::Kafka(kafka) => {
                assert_eq!(kafka.transaction_timeout, Some(Duration::from_secs(60)));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn relative_paths_follow_the_module_file() {
        let text = "kind: io.eddy.file.v1/egress\nspec:\n  id: a/b\n  path: out/x.jsonl\n";
        let spec = parse_str(Path::new("module.yaml"), text).expect("valid");
        assert!(matches!(
            &spec.egresses[0],
            EgressSpec::File { path, .. } if path == Path::new("out/x.jsonl")
        ));
        let spec = parse_str(Path::new("apps/demo/module.yaml"), text).expect("valid");
        assert!(matches!(
            &spec.egresses[0],
            EgressSpec::File { path, .. } if path == Path::new("apps/demo/out/x.jsonl")
        ));
    }

    #[test]
    fn error_display_names_file_document_and_field() {
        let error = parse(&endpoint("  maxNumBatchRequests: 0\n")).expect_err("invalid");
        let text = error.to_string();
        assert!(
            text.starts_with("/srv/app/module.yaml: document 0: spec.maxNumBatchRequests: "),
            "{text}"
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let error = load(Path::new("/nonexistent/eddy/module.yaml")).expect_err("missing");
        assert!(matches!(error, Error::Io { .. }), "{error}");
        assert!(error.to_string().contains("/nonexistent/eddy/module.yaml"));
    }

    // ---- one test per kind of mistake -------------------------------------------------------

    #[test]
    fn bad_duration() {
        assert_error(
            &endpoint("  transport:\n    timeouts:\n      call: 10 fortnights\n"),
            0,
            "spec.transport.timeouts.call",
            &["fortnights", "accepted units", "ms", "min"],
        );
        assert_error(
            &endpoint("  transport:\n    timeouts:\n      read: 0s\n"),
            0,
            "spec.transport.timeouts.read",
            &["greater than zero"],
        );
        assert_error(
            &endpoint("  transport:\n    timeouts:\n      write: -5\n"),
            0,
            "spec.transport.timeouts.write",
            &["duration", "-5"],
        );
        assert_error(
            &endpoint("  transport:\n    timeouts:\n      connect: [1]\n"),
            0,
            "spec.transport.timeouts.connect",
            &["a list"],
        );
    }

    #[test]
    fn timeout_exceeding_call() {
        assert_error(
            &endpoint("  transport:\n    timeouts:\n      call: 10s\n      read: 30s\n"),
            0,
            "spec.transport.timeouts.read",
            &["read (30s) exceeds call (10s)", "lower read or raise call"],
        );
        assert_error(
            &endpoint("  transport:\n    timeouts:\n      connect: 2min\n"),
            0,
            "spec.transport.timeouts.connect",
            &["exceeds call (1min, the default)"],
        );
        assert_error(
            &endpoint("  transport:\n    type: io.statefun.transports.v1/async\n    call: 5s\n    connect: 6s\n"),
            0,
            "spec.transport.connect",
            &["connect (6s) exceeds call (5s)"],
        );
        assert_error(
            "kind: io.statefun.endpoints.v1/http\nspec:\n  functions: a/b\n  urlPathTemplate: http://h/\n  timeouts:\n    call: 1s\n    write: 2s\n",
            0,
            "spec.timeouts.write",
            &["exceeds call"],
        );
    }

    #[test]
    fn unknown_field_suggests_the_known_one() {
        assert_error(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: com.example/*\n  urlPathTemplte: http://127.0.0.1:9000/{function.name}\n",
            0,
            "spec.urlPathTemplte",
            &[
                "unknown field `urlPathTemplte`",
                "did you mean `urlPathTemplate`?",
                "functions, urlPathTemplate, maxNumBatchRequests, transport, retries",
            ],
        );
        assert_error(
            &endpoint("  transport:\n    timeouts:\n      cal: 1s\n"),
            0,
            "spec.transport.timeouts.cal",
            &["did you mean `call`?", "call, connect, read, write"],
        );
        assert_error(
            "kind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n  value_type: x/y\n",
            0,
            "spec.value_type",
            &["did you mean `valueType`?"],
        );
        assert_error(
            "kind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n  bnid: 127.0.0.1:1\n",
            0,
            "spec.bnid",
            &["did you mean `bind`?"],
        );
        assert_error(
            "kind: io.eddy.stdout.v1/egress\nspec:\n  id: a/b\nextra: 1\n",
            0,
            "extra",
            &["kind, spec"],
        );
    }

    #[test]
    fn missing_url_path_template() {
        assert_error(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: com.example/*\n",
            0,
            "spec.urlPathTemplate",
            &[
                "required field is missing",
                "http://127.0.0.1:8000/{function.name}",
            ],
        );
        assert_error(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: com.example/*\n  urlPathTemplate:\n",
            0,
            "spec.urlPathTemplate",
            &["required field is missing"],
        );
    }

    #[test]
    fn bad_url_path_template() {
        let template = |url: &str| {
            format!("kind: io.statefun.endpoints.v2/http\nspec:\n  functions: a/*\n  urlPathTemplate: \"{url}\"\n")
        };
        for (url, needle) in [
            ("ftp://host/x", "not an http:// or https:// URL"),
            ("127.0.0.1:9000/x", "not an http:// or https:// URL"),
            ("http+unix:///uds.sock/x", "UNIX domain socket"),
            (
                "http://host/{function.namespace}",
                "unknown placeholder `{function.namespace}`",
            ),
            ("http://host/{function.name", "without a closing"),
            ("http://host/function.name}", "without an opening"),
            ("http:///path", "no host"),
            ("http://host/a b", "spaces"),
        ] {
            assert_error(&template(url), 0, "spec.urlPathTemplate", &[needle]);
        }
    }

    #[test]
    fn bad_function_selector() {
        let selector = |functions: &str| {
            format!("kind: io.statefun.endpoints.v2/http\nspec:\n  functions: \"{functions}\"\n  urlPathTemplate: http://h/\n")
        };
        for (functions, needle) in [
            ("com.example", "not a function selector"),
            ("com.example/", "not a function selector"),
            ("/greeter", "not a function selector"),
            ("*", "`*` may only stand for the whole name"),
            ("*/*", "`*` may only stand for the whole name"),
            (
                "com.example/greet*",
                "`*` may only stand for the whole name",
            ),
            ("com.example/a/b", "not a function selector"),
            ("com.example/ greeter", "spaces"),
        ] {
            assert_error(
                &selector(functions),
                0,
                "spec.functions",
                &[needle, "namespace/name", "namespace/*"],
            );
        }
        assert_error(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: [a/b]\n  urlPathTemplate: http://h/\n",
            0,
            "spec.functions",
            &["expected text, found a list"],
        );
    }

    #[test]
    fn unknown_kind() {
        assert_error(
            "kind: io.statefun.endpoints.v3/http\nspec: {}\n",
            0,
            "kind",
            &[
                "unknown kind `io.statefun.endpoints.v3/http`",
                "did you mean `io.statefun.endpoints.v2/http`?",
                "io.eddy.runtime.v1/config",
            ],
        );
    }

    #[test]
    fn document_without_kind_or_spec() {
        let text = endpoint("") + "---\nspec:\n  id: a/b\n";
        assert_error(
            &text,
            1,
            "kind",
            &["every document needs a `kind`", "io.eddy.http.v1/ingress"],
        );
        assert_error(
            "kind: io.eddy.stdout.v1/egress\n",
            0,
            "spec",
            &["every document needs a `spec`"],
        );
        assert_error(
            "kind: io.eddy.stdout.v1/egress\nspec: com.example/out\n",
            0,
            "spec",
            &["expected a mapping of settings, found the text"],
        );
        assert_error(
            "- a\n- b\n",
            0,
            "document",
            &["expected a mapping with `kind` and `spec`", "found a list"],
        );
    }

    #[test]
    fn non_text_field_names() {
        assert_error(
            "kind: io.eddy.stdout.v1/egress\nspec:\n  id: a/b\n  5: x\n",
            0,
            "spec",
            &["field names must be text", "the number 5"],
        );
        assert_error("1: x\n", 0, "document", &["field names must be text"]);
    }

    #[test]
    fn old_statefun_format() {
        assert_error(
            "version: \"3.0\"\nmodule:\n  meta:\n    type: remote\n",
            0,
            "module",
            &["StateFun 2.x module format", "`kind` and `spec`"],
        );
    }

    #[test]
    fn yaml_syntax_error() {
        let text =
            endpoint("") + "---\nkind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n   bind: x\n";
        let message = assert_error(&text, 1, "yaml", &["invalid YAML at line 9, column 8"]);
        assert!(
            !message.contains("at line 9 column"),
            "location said twice: {message}"
        );
        assert_error(
            "kind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n  id: c/d\n",
            0,
            "yaml",
            &[
                "line 3",
                "duplicate entry with key \"id\"",
                "remove or rename",
            ],
        );
        let message = assert_error(
            "kind: io.eddy.http.v1/ingress\nspec:\n  id: [unclosed\n",
            0,
            "yaml",
            &["invalid YAML at line 4, column 1", "indentation"],
        );
        assert_eq!(message.matches("line 4").count(), 1, "{message}");
    }

    #[test]
    fn duplicate_selector() {
        let exact = "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: com.example/greeter\n  urlPathTemplate: http://h/\n";
        let text = format!("{exact}---\n{}---\n{exact}", endpoint(""));
        assert_error(
            &text,
            2,
            "spec.functions",
            &[
                "`com.example/greeter`",
                "endpoint of document 0",
                "document 2",
            ],
        );
        let text = format!("{}---\n{}", endpoint(""), endpoint(""));
        assert_error(
            &text,
            1,
            "spec.functions",
            &["`com.example/*`", "document 0", "document 1"],
        );
        // An exact type beside its namespace is not a duplicate.
        parse(&format!("{exact}---\n{}", endpoint(""))).expect("exact and namespace coexist");
    }

    #[test]
    fn bad_bind_address() {
        for bind in ["localhost:8090", "8090", "127.0.0.1", "127.0.0.1:99999"] {
            assert_error(
                &format!("kind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n  bind: \"{bind}\"\n"),
                0,
                "spec.bind",
                &["not an IP address and port", "127.0.0.1:8090"],
            );
        }
        assert_error(
            "kind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n  bind: 8090\n",
            0,
            "spec.bind",
            &["expected text, found the number 8090"],
        );
    }

    #[test]
    fn duplicate_bind_address() {
        let ingress = |id: &str, bind: &str| {
            format!("kind: io.eddy.http.v1/ingress\nspec:\n  id: {id}\n  bind: {bind}\n")
        };
        let text = format!(
            "{}---\n{}",
            ingress("a/one", "127.0.0.1:9100"),
            ingress("a/two", "127.0.0.1:9100")
        );
        assert_error(&text, 1, "spec.bind", &["127.0.0.1:9100", "document 0"]);
        // Port 0 asks the OS for a free port each time: never a clash.
        let text = format!(
            "{}---\n{}",
            ingress("a/one", "127.0.0.1:0"),
            ingress("a/two", "127.0.0.1:0")
        );
        parse(&text).expect("two ephemeral ports");
        // The default bind address counts too.
        let text = format!(
            "{}---\nkind: io.eddy.http.v1/ingress\nspec:\n  id: a/two\n",
            ingress("a/one", "127.0.0.1:8090")
        );
        assert_error(&text, 1, "spec.bind", &["127.0.0.1:8090"]);
    }

    #[test]
    fn bad_batch_size() {
        assert_error(
            &endpoint("  maxNumBatchRequests: 0\n"),
            0,
            "spec.maxNumBatchRequests",
            &["at least 1"],
        );
        assert_error(
            &endpoint("  maxNumBatchRequests: -3\n"),
            0,
            "spec.maxNumBatchRequests",
            &["positive whole number", "-3"],
        );
        assert_error(
            &endpoint("  maxNumBatchRequests: 1.5\n"),
            0,
            "spec.maxNumBatchRequests",
            &["positive whole number"],
        );
        assert_error(
            &endpoint("  maxNumBatchRequests: lots\n"),
            0,
            "spec.maxNumBatchRequests",
            &["positive whole number", "lots"],
        );
    }

    #[test]
    fn client_key_password_given() {
        assert_error(
            &endpoint("  transport:\n    type: io.statefun.transports.v1/async\n    client_cert: c.pem\n    client_key: k.pem\n    client_key_password: /tmp/password.txt\n"),
            0,
            "spec.transport.client_key_password",
            &["encrypted client keys are not supported", "openssl pkey", "remove client_key_password"],
        );
    }

    #[test]
    fn incomplete_or_classpath_tls() {
        assert_error(
            &endpoint(
                "  transport:\n    type: io.statefun.transports.v1/async\n    client_cert: c.pem\n",
            ),
            0,
            "spec.transport.client_key",
            &["mutual TLS needs both"],
        );
        assert_error(
            &endpoint(
                "  transport:\n    type: io.statefun.transports.v1/async\n    client_key: k.pem\n",
            ),
            0,
            "spec.transport.client_cert",
            &["mutual TLS needs both"],
        );
        assert_error(
            &endpoint("  transport:\n    type: io.statefun.transports.v1/async\n    trust_cacerts: classpath:ca.pem\n"),
            0,
            "spec.transport.trust_cacerts",
            &["`classpath:`", "JVM", "path of a PEM file"],
        );
    }

    #[test]
    fn transport_styles_are_not_mixed() {
        assert_error(
            &endpoint("  transport:\n    type: io.statefun.transports.v2/fast\n"),
            0,
            "spec.transport.type",
            &["unknown transport type", "io.statefun.transports.v1/async"],
        );
        assert_error(
            &endpoint("  transport:\n    call: 10s\n"),
            0,
            "spec.transport.call",
            &[
                "field of the async transport",
                "type: io.statefun.transports.v1/async",
                "timeouts",
            ],
        );
        assert_error(
            &endpoint("  transport:\n    type: io.statefun.transports.v1/async\n    timeouts:\n      call: 1s\n"),
            0,
            "spec.transport.timeouts",
            &["directly under `transport`"],
        );
        assert_error(
            &endpoint("  transport:\n    type: io.statefun.transports.v1/async\n    read: 1s\n"),
            0,
            "spec.transport.read",
            &["unknown field `read`", "pool_ttl"],
        );
        assert_error(
            &endpoint("  timeouts:\n    call: 1s\n"),
            0,
            "spec.timeouts",
            &["go under `transport:`"],
        );
        assert_error(
            "kind: io.statefun.endpoints.v1/http\nspec:\n  functions: a/b\n  urlPathTemplate: http://h/\n  transport: {}\n",
            0,
            "spec.transport",
            &["needs kind io.statefun.endpoints.v2/http"],
        );
        assert_error(
            &endpoint(
                "  transport:\n    type: io.statefun.transports.v1/async\n    pool_size: 0\n",
            ),
            0,
            "spec.transport.pool_size",
            &["at least 1"],
        );
    }

    #[test]
    fn bad_retries() {
        assert_error(
            &endpoint("  retries:\n    maxAttempts: 0\n"),
            0,
            "spec.retries.maxAttempts",
            &["at least 1"],
        );
        assert_error(
            &endpoint("  retries:\n    initialBackoff: 5s\n    maxBackoff: 1s\n"),
            0,
            "spec.retries.maxBackoff",
            &["initialBackoff (5s) exceeds maxBackoff (1s)"],
        );
        assert_error(
            &endpoint("  retries:\n    initialBackoff: 5s\n"),
            0,
            "spec.retries.initialBackoff",
            &["exceeds maxBackoff (2s)"],
        );
    }

    #[test]
    fn duplicate_ingress_and_egress_ids() {
        let text = "kind: io.eddy.http.v1/ingress\nspec:\n  id: com.example/in\n---\nkind: io.eddy.file.v1/ingress\nspec:\n  id: com.example/in\n  path: x.jsonl\n";
        assert_error(
            text,
            1,
            "spec.id",
            &["ingress id `com.example/in`", "document 0"],
        );
        let text = "kind: io.eddy.stdout.v1/egress\nspec:\n  id: com.example/out\n---\nkind: io.eddy.file.v1/egress\nspec:\n  id: com.example/out\n  path: x.jsonl\n";
        assert_error(
            text,
            1,
            "spec.id",
            &["egress id `com.example/out`", "document 0"],
        );
        // An ingress and an egress may share an id.
        parse("kind: io.eddy.stdout.v1/egress\nspec:\n  id: a/b\n---\nkind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n")
            .expect("separate id spaces");
    }

    #[test]
    fn bad_ids_and_value_types() {
        assert_error(
            "kind: io.eddy.stdout.v1/egress\nspec:\n  id: out\n",
            0,
            "spec.id",
            &["not a `namespace/name`", "com.example/greeter"],
        );
        assert_error(
            "kind: io.eddy.stdout.v1/egress\nspec: {}\n",
            0,
            "spec.id",
            &["required field is missing", "com.example/egress"],
        );
        assert_error(
            "kind: io.eddy.http.v1/ingress\nspec:\n  id: a/b\n  valueType: string\n",
            0,
            "spec.valueType",
            &["not a typename", "io.statefun.types/string"],
        );
        assert_error(
            "kind: io.eddy.file.v1/ingress\nspec:\n  id: a/b\n",
            0,
            "spec.path",
            &["required field is missing", "JSON-lines"],
        );
    }

    #[test]
    fn bad_runtime_config() {
        let runtime = |body: &str| format!("kind: io.eddy.runtime.v1/config\nspec:\n{body}");
        assert_error(
            &runtime("  workers: 0\n"),
            0,
            "spec.workers",
            &["at least 1"],
        );
        assert_error(&runtime("  workers: 300\n"), 0, "spec.workers", &["256"]);
        assert_error(
            &runtime("  deadLetters: {}\n"),
            0,
            "spec.deadLetters.path",
            &["required"],
        );
        assert_error(
            &runtime("  deadLetters: out.jsonl\n"),
            0,
            "spec.deadLetters",
            &["expected a mapping with `path`"],
        );
        let text = format!(
            "{}---\n{}",
            runtime("  workers: 2\n"),
            runtime("  workers: 3\n")
        );
        assert_error(
            &text,
            1,
            "kind",
            &["second io.eddy.runtime.v1/config", "document 0"],
        );
    }

    #[test]
    fn bad_kafka_ingress() {
        let kafka = |body: &str| {
            format!("kind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/k\n  address: b:9092\n  consumerGroupId: g\n{body}")
        };
        let topics = "  topics:\n    - topic: t\n      valueType: com.example/User\n      targets: [com.example/fn]\n";
        assert_error(&kafka(""), 0, "spec.topics", &["required field is missing"]);
        assert_error(
            &kafka("  topics: []\n"),
            0,
            "spec.topics",
            &["at least one"],
        );
        assert_error(
            &kafka("  topics:\n    - topic: t\n      valueType: com.example/User\n      targets: [greeter]\n"),
            0,
            "spec.topics[0].targets[0]",
            &["not a `namespace/name`"],
        );
        assert_error(
            &kafka("  topics:\n    - topic: t\n      valueType: User\n      targets: [a/b]\n"),
            0,
            "spec.topics[0].valueType",
            &["not a typename"],
        );
        assert_error(
            &kafka("  topics:\n    - topic: t\n      valueType: a/b\n      targets: [a/b]\n    - topic: t\n      valueType: a/b\n      targets: [a/b]\n"),
            0,
            "spec.topics[1].topic",
            &["listed twice"],
        );
        assert_error(
            &(kafka(topics) + "  startupPosition:\n    type: beginning\n"),
            0,
            "spec.startupPosition.type",
            &[
                "unknown startup position `beginning`",
                "group-offsets, specific-offsets, date",
            ],
        );
        assert_error(
            &(kafka(topics) + "  startupPosition:\n    type: date\n    date: 2020-02-01\n"),
            0,
            "spec.startupPosition.date",
            &["not a date", "yyyy-MM-dd HH:mm:ss.SSS Z"],
        );
        assert_error(
            &(kafka(topics) + "  startupPosition:\n    type: earliest\n    date: 2020-02-01 04:15:00.000 +0000\n"),
            0,
            "spec.startupPosition.date",
            &["unknown field `date`", "the fields accepted here are: type"],
        );
        assert_error(
            &(kafka(topics)
                + "  startupPosition:\n    type: specific-offsets\n    offsets:\n      - t: 5\n"),
            0,
            "spec.startupPosition.offsets[0].t",
            &["not `topic/partition`"],
        );
        assert_error(
            &(kafka(topics) + "  autoOffsetResetPosition: middle\n"),
            0,
            "spec.autoOffsetResetPosition",
            &["earliest or latest"],
        );
        assert_error(
            &(kafka(topics) + "  properties:\n    max.poll.records: 5\n"),
            0,
            "spec.properties",
            &["expected a list", "- max.poll.records: 500"],
        );
        assert_error(
            &(kafka(topics) + "  properties:\n    - a: 1\n    - a: 2\n"),
            0,
            "spec.properties[1].a",
            &["given twice"],
        );
        assert_error(
            &(kafka(topics) + "  properties:\n    - a: [1]\n"),
            0,
            "spec.properties[0].a",
            &["text, number or boolean"],
        );
        assert_error(
            &format!("kind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/k\n  consumerGroupId: g\n{topics}"),
            0,
            "spec.address",
            &["bootstrap servers", "bootstrap.servers"],
        );
        assert_error(
            &format!("kind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/k\n  address: b:9092\n{topics}"),
            0,
            "spec.consumerGroupId",
            &["group.id"],
        );
    }

    #[test]
    fn bad_kafka_egress() {
        let egress = |body: &str| {
            format!("kind: io.statefun.kafka.v1/egress\nspec:\n  id: com.example/k\n  address: b:9092\n{body}")
        };
        let spec = parse(&egress("")).expect("defaults");
        assert!(matches!(
            &spec.egresses[0],
            EgressSpec::Kafka(kafka) if kafka.delivery_semantic == "at-least-once" && kafka.transaction_timeout.is_none()
        ));
        assert_error(
            &egress("  deliverySemantic:\n    type: at-most-once\n"),
            0,
            "spec.deliverySemantic.type",
            &["at-least-once, exactly-once, none"],
        );
        assert_error(
            &egress("  deliverySemantic:\n    type: exactly-once\n"),
            0,
            "spec.deliverySemantic.transactionTimeout",
            &["required", "15min"],
        );
        assert_error(
            &egress("  deliverySemantic:\n    type: exactly-once\n    transactionTimeout: 1min\n    transactionTimeoutMillis: 60000\n"),
            0,
            "spec.deliverySemantic.transactionTimeoutMillis",
            &["not both"],
        );
    }

    #[test]
    fn bad_kinesis() {
        let ingress = |body: &str| {
            format!("kind: io.statefun.kinesis.v1/ingress\nspec:\n  id: com.example/in\n  streams:\n    - stream: s\n      valueType: a/b\n      targets: [a/b]\n{body}")
        };
        let spec = parse(&ingress("")).expect("defaults");
        match &spec.ingresses[0] {
            IngressSpec::Kinesis(kinesis) => {
                assert_eq!(kinesis.aws_region, None);
                assert_eq!(kinesis.aws_credentials, None);
                assert_eq!(kinesis.startup_position, StartupPosition::Latest);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_error(
            &ingress("  awsRegion:\n    type: nearest\n"),
            0,
            "spec.awsRegion.type",
            &["default, specific, custom-endpoint"],
        );
        assert_error(
            &ingress("  awsRegion:\n    type: specific\n"),
            0,
            "spec.awsRegion.id",
            &["us-west-1"],
        );
        assert_error(
            &ingress("  awsRegion:\n    type: custom-endpoint\n    id: us-east-1\n    endpoint: localhost:4566\n"),
            0,
            "spec.awsRegion.endpoint",
            &["not an http:// or https:// URL"],
        );
        assert_error(
            &ingress("  awsCredentials:\n    type: basic\n    accessKeyId: k\n"),
            0,
            "spec.awsCredentials.secretAccessKey",
            &["required"],
        );
        assert_error(
            &ingress("  awsCredentials:\n    type: session\n"),
            0,
            "spec.awsCredentials.type",
            &["default, basic, profile"],
        );
        assert_error(
            &ingress("  startupPosition:\n    type: group-offsets\n"),
            0,
            "spec.startupPosition.type",
            &["earliest, latest, date"],
        );
        assert_error(
            "kind: io.statefun.kinesis.v1/egress\nspec:\n  id: a/b\n  maxOutstandingRecords: 0\n",
            0,
            "spec.maxOutstandingRecords",
            &["at least 1"],
        );
    }

    #[test]
    fn startup_dates() {
        for good in [
            "2020-02-01 04:15:00.000 +0000",
            "2020-02-01 04:15:00.00 Z",
            "1999-12-31 23:59:59.123456789 -05:30",
        ] {
            assert_eq!(check_startup_date(good), Ok(()), "{good}");
        }
        for bad in [
            "2020-02-01",
            "2020-02-01 04:15:00 +0000",
            "2020-13-01 04:15:00.000 +0000",
            "2020-02-01 24:00:00.000 +0000",
            "2020-02-01T04:15:00.000Z",
            "2020-02-01 04:15:00.000 UTC",
            "2020-02-01 04:15:00.000 +19",
        ] {
            assert!(check_startup_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn suggestions_are_close_names_only() {
        let chars = |text: &str| text.chars().collect::<Vec<_>>();
        assert_eq!(edit_distance(&chars("bnid"), &chars("bind")), 1);
        assert_eq!(edit_distance(&chars("kitten"), &chars("sitting")), 3);
        assert_eq!(edit_distance(&chars(""), &chars("abc")), 3);
        assert_eq!(
            closest("url_path_template", &["functions", "urlPathTemplate"]),
            Some("urlPathTemplate")
        );
        assert_eq!(
            closest("workerz", &["deadLetters", "workers"]),
            Some("workers")
        );
        assert_eq!(closest("something", &["id", "path"]), None);
    }
}
