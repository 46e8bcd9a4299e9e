//! The sample's three module files parse with the runtime's own parser and route the sample's
//! one function type to the deployment each file is for, with the egress the function writes.

use eddy_runtime::address::FunctionType;
use eddy_runtime::spec::{load, EndpointTarget};
use eddy_sample_reminder::{functions, EGRESS, REMINDER};
use std::path::Path;

fn check(file: &str, expected: fn(&EndpointTarget) -> bool) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let module = load(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    for typename in functions().typenames() {
        let function_type = FunctionType::parse(&typename).expect("a function type");
        let endpoint = module
            .endpoints
            .iter()
            .find(|endpoint| endpoint.functions.matches(&function_type))
            .unwrap_or_else(|| panic!("{file}: no endpoint serves {typename}"));
        assert!(
            expected(&endpoint.target),
            "{file}: {typename} goes to {}",
            endpoint.target.describe()
        );
    }
    assert!(
        module.egresses.iter().any(|egress| egress.id() == EGRESS),
        "{file}: no egress {EGRESS}"
    );
    assert!(
        !module.ingresses.is_empty(),
        "{file}: no ingress to send hits to"
    );
}

#[test]
fn http_yaml_routes_the_function_over_http() {
    check("http.yaml", |target| {
        matches!(target, EndpointTarget::Http(_))
    });
}

#[test]
fn lambda_yaml_routes_the_function_to_the_reminder_lambda() {
    check("lambda.yaml", |target| match target {
        EndpointTarget::Lambda(lambda) => lambda.function_name == "reminder-lambda",
        _ => false,
    });
}

#[test]
fn embedded_yaml_routes_the_function_in_process() {
    check("embedded.yaml", |target| {
        matches!(target, EndpointTarget::Embedded)
    });
    assert_eq!(functions().typenames(), [REMINDER]);
}
