//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};

use crate::format::EncoderName;
use crate::input::FloatType;

/// Quantize safetensors checkpoints to cortex_q4's 4-bit format, restore
/// them, and report their size and error.
#[derive(Debug, Parser)]
#[command(
    name = "cortex-q4",
    version,
    after_help = "Exit codes: 0 success, 1 bad input (a malformed or inconsistent file), \
                  2 usage, 3 a file that cannot be read or written."
)]
pub struct Cli {
    /// No progress bar, summary or warnings (errors still print).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pack the selected 2-D float tensors of a safetensors file into 4-bit
    /// groups; copy every other tensor unchanged.
    Quantize(QuantizeArgs),
    /// Restore a float checkpoint from a quantized one.
    Dequantize(DequantizeArgs),
    /// Print each tensor's shape, type, bits per weight and size, and with
    /// --against the error of each quantized tensor.
    Inspect(InspectArgs),
}

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The checkpoint to quantize (safetensors).
    pub input: PathBuf,
    /// Where to write the quantized checkpoint (replaced if it exists).
    pub output: PathBuf,
    /// Elements per scale (1 to 1048576).
    #[arg(
        short,
        long,
        default_value_t = 32,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=cortex_q4::MAX_GROUP_SIZE as u64)
    )]
    pub group_size: usize,
    /// How each group's scale is chosen.
    #[arg(short, long, value_enum, default_value_t = EncoderName::Default)]
    pub encoder: EncoderName,
    /// Per-column importance for the search encoder: a safetensors file
    /// with, for each weight NAME [rows, cols], a tensor NAME holding either
    /// the importance [cols] (finite, >= 0) or activations [n, cols] (the
    /// importance is then their per-column mean square).
    #[arg(long, value_name = "IMP.safetensors")]
    pub importance: Option<PathBuf>,
    /// Calibration for the gptq encoder (required by it, refused by the
    /// others): a safetensors file with, for each weight NAME [rows, cols]
    /// to quantize, exactly one of NAME.hessian [cols, cols] (F64 or F32,
    /// e.g. XᵀX) or NAME.activations [n, cols] with n > 0 (F32, F16, BF16
    /// or F64, finite: the layer's input rows, summed into XᵀX in f64). A
    /// weight with neither, or with both, is refused (--exclude it to leave
    /// it unquantized).
    #[arg(long, value_name = "CAL.safetensors")]
    pub calibration: Option<PathBuf>,
    /// For the gptq encoder: added to the Hessian's diagonal, as a fraction
    /// of the diagonal's mean (finite, >= 0) [default: 0.05].
    #[arg(long, value_name = "X", allow_negative_numbers = true, value_parser = parse_damping)]
    pub damping: Option<f64>,
    /// Pack the tensors whose names match GLOB (repeatable; default
    /// "*.weight" minus "*embed*").
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave the tensors whose names match GLOB unpacked (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Pack NaN and infinite weights as the format defines instead of
    /// refusing them.
    #[arg(long)]
    pub allow_non_finite: bool,
    /// Threads to pack with (default: every core).
    #[arg(short, long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
}

/// `--damping`: a finite number >= 0.
fn parse_damping(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        // -0 recorded as 0.
        Ok(d) if d.is_finite() && d >= 0.0 => Ok(d.abs()),
        Ok(_) => Err("the damping must be finite and >= 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Args)]
pub struct DequantizeArgs {
    /// A checkpoint written by `cortex-q4 quantize`.
    pub input: PathBuf,
    /// Where to write the float checkpoint (replaced if it exists).
    pub output: PathBuf,
    /// Type of the restored tensors (default: each one's original type).
    #[arg(long, value_enum)]
    pub dtype: Option<FloatType>,
    /// Restore groups whose scale is NaN or infinite instead of refusing
    /// them.
    #[arg(long)]
    pub allow_non_finite: bool,
    /// Threads to unpack with (default: every core).
    #[arg(short, long, value_name = "N", value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A safetensors file, quantized or not.
    pub file: PathBuf,
    /// The checkpoint FILE was quantized from: adds each quantized
    /// tensor's error (RMSE, max error, relative error, SNR) and checks
    /// that every other tensor is unchanged.
    #[arg(long, value_name = "ORIGINAL")]
    pub against: Option<PathBuf>,
}
