//! The `multidrm` binary: parse the command line and run it.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: every license request makes
/// many small short-lived allocations on several threads, where glibc's
/// allocator spent a quarter of the service's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match multidrm::cli::run(multidrm::cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: what was attempted and why, causes joined by ": ".
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
