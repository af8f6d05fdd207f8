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
        // Output cut short by a closed pipe (`| head`) is not a failure.
        Err(error) if closed_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: what was attempted and why, causes joined by ": ".
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `error` comes from writing to a pipe whose reader has gone.
fn closed_pipe(error: &anyhow::Error) -> bool {
    let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(broken)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|csv| matches!(csv.kind(), csv::ErrorKind::Io(io) if broken(io)))
    })
}
