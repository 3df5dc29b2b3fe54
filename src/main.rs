//! Entry point: parse the command line, then launch the GUI or run a headless command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = transfer_workbench::cli::Cli::parse();
    transfer_workbench::train::cpu_runtime::tune_allocator();
    match transfer_workbench::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
