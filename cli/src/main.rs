//! The `cortex-q4` binary; everything but argument parsing is in the
//! library part of this crate.

fn main() -> std::process::ExitCode {
    cortex_q4_cli::main()
}
