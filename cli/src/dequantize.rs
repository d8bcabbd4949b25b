//! `cortex-q4 dequantize`: unpacks every quantized tensor with the
//! library's [`Quantizer`] to its original (or the asked) type and shape,
//! one tensor at a time, and copies the rest; the format's metadata keys
//! are dropped, the others kept.

use std::collections::HashMap;

use cortex_q4::{Options, Quantizer};
use half::{bf16, f16};

use crate::cli::DequantizeArgs;
use crate::error::CliError;
use crate::format::{QuantizedFile, QuantizedTensor, KEY_PREFIX};
use crate::input::{first_non_finite, Float, FloatType, Input};
use crate::writer::{Output, Planned};
use crate::{check_distinct, Ui};

/// Opens `input` as a checked cortex_q4 checkpoint.
pub fn open_quantized(input: &Input) -> Result<QuantizedFile, CliError> {
    QuantizedFile::read(input.header())
        .map_err(|e| input.bad(e))?
        .ok_or_else(|| {
            input.bad(format!(
                "is not a cortex_q4 checkpoint (its __metadata__ has no \"{}\")",
                crate::format::FORMAT_KEY
            ))
        })
}

/// Runs `dequantize` as the module says.
pub fn run(args: &DequantizeArgs, ui: &Ui) -> Result<(), CliError> {
    check_distinct(&args.input, &args.output)?;
    let input = Input::open(&args.input)?;
    let quantized = open_quantized(&input)?;
    let header = input.header();
    let by_packed: HashMap<&str, &QuantizedTensor> = quantized
        .tensors
        .iter()
        .map(|t| (t.packed.name.as_str(), t))
        .collect();

    let mut planned: Vec<Planned> = quantized
        .tensors
        .iter()
        .map(|t| Planned {
            name: t.name.clone(),
            dtype: args.dtype.unwrap_or(t.dtype).dtype(),
            shape: vec![t.layout.rows(), t.layout.cols()],
        })
        .collect();
    let copied: Vec<_> = header
        .tensors()
        .iter()
        .filter(|t| !quantized.holds_part(&t.name))
        .collect();
    planned.extend(copied.iter().map(|t| Planned {
        name: t.name.clone(),
        dtype: t.dtype,
        shape: t.shape.clone(),
    }));
    let mut metadata = header.metadata().clone();
    metadata.retain(|k, _| !k.starts_with(KEY_PREFIX));

    let mut out = Output::create(&args.output, &planned, &metadata)?;
    let total: usize = header.tensors().iter().map(|t| t.range.len()).sum();
    let bar = ui.progress(total as u64);
    let quantizer = Quantizer::new(quantized.group_size)
        .with_options(Options::default().with_threads(args.threads.unwrap_or(0)));
    for t in header.tensors() {
        bar.set_message(t.name.clone());
        if let Some(q) = by_packed.get(t.name.as_str()) {
            let job = Job {
                input: &input,
                tensor: q,
                quantizer: &quantizer,
                allow_non_finite: args.allow_non_finite,
            };
            match args.dtype.unwrap_or(q.dtype) {
                FloatType::F32 => job.unpack::<f32>(&mut out),
                FloatType::F16 => job.unpack::<f16>(&mut out),
                FloatType::BF16 => job.unpack::<bf16>(&mut out),
            }?;
            input.release(&q.scales);
        } else if !quantized.holds_part(&t.name) {
            input.copy_to(t, &mut out)?;
        }
        input.release(t);
        bar.inc(t.range.len() as u64);
    }
    bar.finish_and_clear();
    out.finish()?;
    ui.note(format!(
        "restored {} tensors, copied {}; wrote {}",
        quantized.tensors.len(),
        copied.len(),
        args.output.display()
    ));
    Ok(())
}

/// One tensor to unpack.
struct Job<'a> {
    input: &'a Input,
    tensor: &'a QuantizedTensor,
    quantizer: &'a Quantizer<'static>,
    allow_non_finite: bool,
}

impl Job<'_> {
    /// Unpacks the tensor to `T` and writes it.
    fn unpack<T: Float>(&self, out: &mut Output) -> Result<(), CliError> {
        let (t, layout) = (self.tensor, &self.tensor.layout);
        let scales = f32::values(self.input.bytes(&t.scales));
        if !self.allow_non_finite {
            if let Some((i, v)) = first_non_finite(&scales) {
                let groups = layout.groups_per_row();
                return Err(self.input.bad_tensor(
                    &t.scales.name,
                    format!(
                        "scale [{}, {}] is {v} (pass --allow-non-finite to restore its group \
                         as the format defines)",
                        i / groups,
                        i % groups
                    ),
                ));
            }
        }
        let values: Vec<T> = self
            .quantizer
            .unpack_to_vec(
                self.input.bytes(&t.packed),
                &scales,
                layout.rows(),
                layout.cols(),
            )
            .map_err(|e| self.input.bad_tensor(&t.name, e))?;
        // Finite scales give finite f32 weights; a narrower --dtype can
        // still overflow them (f16 ends at 65504).
        if !self.allow_non_finite {
            if let Some((i, v)) = first_non_finite(&values) {
                return Err(self.input.bad_tensor(
                    &t.name,
                    format!(
                        "element [{}, {}] restores to {v} in {} (choose a wider --dtype, or \
                         pass --allow-non-finite to write it)",
                        i / layout.cols(),
                        i % layout.cols(),
                        T::TYPE.dtype()
                    ),
                ));
            }
        }
        out.write(&t.name, T::bytes(&values))
    }
}
