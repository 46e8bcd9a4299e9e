//! `reminder-lambda`: the reminder sample's functions as an AWS Lambda handler.
//!
//! Deploy it as a Lambda function (`cargo lambda build`), or run it locally with
//! `cargo lambda watch` in `samples/reminder/`: the function name in the Invoke URL is
//! `reminder-lambda`. The runtime invokes it with the API Gateway proxy envelope
//! (`lambda.yaml`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .without_time()
        .init();
    eddy_sdk::lambda::run(eddy_sample_reminder::functions())
        .await
        .map_err(anyhow::Error::from_boxed)
}
