//! The `multidrm` binary: parse the command line and run it.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    multidrm::cli::run(multidrm::cli::Cli::parse()).await
}
