//! The `unidiff-studio` binary: parses the command line, opens the app or
//! runs the headless command, and reports errors as readable messages. The
//! only place where the CLI and the app meet.

use clap::Parser;
use unidiff_studio::base::{allocator, data_dir::data_dir, logging};
use unidiff_studio::{cli, ui};

fn main() -> std::process::ExitCode {
    allocator::keep_freed_memory();
    let args = cli::Cli::parse();
    logging::init(Some(&data_dir()));
    let checked = args.check().and_then(|()| {
        unidiff_studio::base::threads::use_threads(args.threads)?;
        Ok(())
    });
    let result = if let Err(e) = checked {
        Err(e)
    } else if args.opens_window() {
        ui::run_app(ui::AppOptions {
            demo: args.demo,
            files: args.files,
            data_dir: None,
        })
    } else {
        cli::run(args)
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            logging::to_file_only(log::Level::Error, &format!("{e:#}"));
            std::process::ExitCode::FAILURE
        }
    }
}
