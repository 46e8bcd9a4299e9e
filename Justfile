# Routine tasks. Install just with `pip install rust-just`; every recipe is a plain command too.

# Build every binary (debug).
build:
    cargo build --workspace --bins

# Every test: installs what the tests need, then lint + unit + end-to-end (the README's test command).
test:
    ./scripts/test.sh

# Install what the tests need: .venv-statefun (Apache's SDK), .venv-eddy (our Python SDK), .venv-lambda (cargo-lambda).
setup:
    ./scripts/setup-python.sh
    ./scripts/setup-python-sdk.sh
    ./scripts/setup-lambda.sh

# The Python SDK's checks: mypy --strict and pytest (sdk-python), in .venv-eddy.
test-python:
    ./scripts/setup-python-sdk.sh
    cd sdk-python && ../.venv-eddy/bin/mypy
    .venv-eddy/bin/pytest -q sdk-python

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy -p eddy-sdk --no-default-features --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

# Format the code.
fmt:
    cargo fmt --all

# The end-to-end demo: eddy + the counter function over HTTP (no external services).
demo:
    ./scripts/demo.sh

# The throughput/latency benchmark (release build): eddy vs the bare HTTP baseline.
bench *ARGS:
    cargo build --release --bins
    ./target/release/eddy-bench {{ARGS}}

# Check a module file.
validate MODULE:
    cargo run --quiet --bin eddy -- validate {{MODULE}}

# One eddy-sdk counter embedded, over HTTP and on the Lambda emulator (release build).
bench-deployments *ARGS:
    ./scripts/setup-lambda.sh
    cargo build --release -p eddy-runtime -p eddy-integration-tests --bins
    ./target/release/eddy-bench-deployments {{ARGS}}

# A Python SDK counter over ASGI (uvicorn) through eddy (release build), e.g. just bench-python --messages 100000 --addresses 100.
bench-python *ARGS:
    ./scripts/setup-python-sdk.sh
    cargo build --release -p eddy-runtime --bin eddy
    .venv-eddy/bin/python sdk-python/bench/bench_counter.py --eddy target/release/eddy {{ARGS}}

# The reminder sample, embedded (see samples/reminder/README.md for HTTP and Lambda).
reminder:
    cargo run -p eddy-sample-reminder --bin reminder-eddy -- run samples/reminder/embedded.yaml
