# Routine tasks. Install just with `pip install rust-just`; every recipe is a plain command too.

# Build every binary (debug).
build:
    cargo build --workspace --bins

# Every test: installs what the tests need, then lint + unit + end-to-end (the README's test command).
test:
    ./scripts/test.sh

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

# Format the code.
fmt:
    cargo fmt --all

# The end-to-end demo on embedded defaults (no external services).
demo:
    ./scripts/demo.sh

# The throughput/latency benchmark (release build): eddy vs the bare HTTP baseline.
bench *ARGS:
    cargo build --release --bins
    ./target/release/eddy-bench {{ARGS}}

# Check a module file.
validate MODULE:
    cargo run --quiet --bin eddy -- validate {{MODULE}}
