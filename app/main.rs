//! The `unidiff-studio` binary: parses the command line and reports errors
//! as readable messages.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = unidiff_studio::cli::Cli::parse();
    match unidiff_studio::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
