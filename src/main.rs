use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    revocable::cli::run(revocable::cli::Cli::parse())
}
