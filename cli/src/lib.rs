//! `cortex-q4`, the command-line tool: quantizes safetensors checkpoints
//! to cortex_q4's 4-bit format ([`quantize`]), restores them
//! ([`dequantize`]) and reports their size and error ([`inspect`]).
//!
//! The reading and checking of files is plain functions over bytes, for
//! tests and fuzz targets: [`safetensors::Header::parse`] (any
//! safetensors file) and [`format::QuantizedFile::read`] (the cortex_q4
//! convention on top of a parsed header). Neither panics on any input.

#[cfg(target_endian = "big")]
compile_error!("cortex-q4 reads and writes little-endian safetensors data in place");

pub mod calibration;
pub mod cli;
pub mod dequantize;
pub mod error;
pub mod format;
pub mod input;
pub mod inspect;
pub mod quantize;
pub mod safetensors;
pub mod select;
pub mod writer;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{Cli, Command};
use crate::error::CliError;

/// Runs the tool with the process's arguments and returns its exit code
/// ([`error::EXIT_BAD_INPUT`], [`error::EXIT_USAGE`], [`error::EXIT_IO`]).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui { quiet: cli.quiet };
    let result = match &cli.command {
        Command::Quantize(args) => quantize::run(args, &ui),
        Command::Dequantize(args) => dequantize::run(args, &ui),
        Command::Inspect(args) => inspect::run(args, &ui, &mut std::io::stdout().lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cortex-q4: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// What the user sees besides results: warnings, summaries, progress.
pub struct Ui {
    /// No progress bar, summary or warnings.
    pub quiet: bool,
}

impl Ui {
    /// Prints a warning on stderr unless quiet.
    pub fn warn(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("cortex-q4: warning: {message}");
        }
    }

    /// Prints a summary line on stderr unless quiet.
    pub fn note(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A progress bar over `total` bytes, drawn on stderr only when it is
    /// a terminal and the run is not quiet.
    pub fn progress(&self, total: u64) -> ProgressBar {
        let target = if self.quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {binary_bytes}/{binary_total_bytes} {elapsed_precise} eta {eta} {wide_msg}",
            )
            .expect("the template is valid"),
        );
        bar
    }
}

/// Refuses to write `output` over `input` (the same file by any path).
fn check_distinct(input: &Path, output: &Path) -> Result<(), CliError> {
    let same = match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(CliError::Usage(format!(
            "the output {} is the input file",
            output.display()
        )));
    }
    Ok(())
}
