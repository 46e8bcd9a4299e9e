//! `reminder-eddy`: the `eddy` command line with the reminder sample's functions linked in.
//!
//! Every `eddy` subcommand works (`run`, `validate`, `send`); `io.eddy.endpoints.v1/embedded`
//! endpoints of the module are served in-process by [`eddy_sample_reminder::functions`]:
//!
//! ```text
//! cargo run -p eddy-sample-reminder --bin reminder-eddy -- run samples/reminder/embedded.yaml
//! ```

use std::process::ExitCode;

/// The same allocator as `eddy` (see runtime/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    eddy_runtime::cli::main_with(Some(eddy_sample_reminder::functions()))
}
