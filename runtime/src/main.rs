//! `eddy`: the command line of the state tier ([`eddy_runtime::cli`]), without embedded
//! functions. A program that links its own `eddy-sdk` functions in calls
//! `eddy_runtime::cli::main_with(Some(functions))` instead.

use std::process::ExitCode;

/// mimalloc: glibc's malloc spends much of eddy's time in arena locks when one thread
/// allocates a message and another frees it (measured with `perf` under `eddy-bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    eddy_runtime::cli::main_with(None)
}
