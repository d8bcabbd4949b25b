//! `cortex-q4 quantize`: packs the selected tensors with the library's
//! [`Quantizer`], one tensor at a time (with the gptq encoder, each against
//! its Hessian from the [`Calibration`] file, built just before and dropped
//! just after), and copies the rest.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use cortex_q4::{Element, Encoder, Error, Options, Quantizer};

use crate::calibration::Calibration;
use crate::cli::QuantizeArgs;
use crate::error::CliError;
use crate::format::{self, EncoderName, PACKED_SUFFIX, SCALES_SUFFIX};
use crate::input::{first_non_finite, Float, FloatType, Input};
use crate::safetensors::{Dtype, TensorInfo};
use crate::select::Selection;
use crate::writer::{Output, Planned};
use crate::{check_distinct, with_floats, Ui};

/// Runs `quantize` as the module says.
pub fn run(args: &QuantizeArgs, ui: &Ui) -> Result<(), CliError> {
    let started = Instant::now();
    if args.importance.is_some() && args.encoder != EncoderName::Search {
        return Err(CliError::Usage(
            "--importance is only used by --encoder search".into(),
        ));
    }
    let gptq = args.encoder == EncoderName::Gptq;
    if args.calibration.is_some() && !gptq {
        return Err(CliError::Usage(
            "--calibration is only used by --encoder gptq".into(),
        ));
    }
    if args.damping.is_some() && !gptq {
        return Err(CliError::Usage(
            "--damping is only used by --encoder gptq".into(),
        ));
    }
    if gptq && args.calibration.is_none() {
        return Err(CliError::Usage(
            "--encoder gptq needs --calibration CAL.safetensors".into(),
        ));
    }
    let damping = args.damping.unwrap_or(Encoder::DEFAULT_DAMPING);
    check_distinct(&args.input, &args.output)?;
    if let Some(path) = &args.calibration {
        check_distinct_calibration(path, &args.output)?;
    }
    let input = Input::open(&args.input)?;
    let header = input.header();
    if let Some(key) = header
        .metadata()
        .keys()
        .find(|k| k.starts_with(format::KEY_PREFIX))
    {
        return Err(input.bad(format!(
            "is already a cortex_q4 checkpoint (its __metadata__ has \"{key}\")"
        )));
    }
    let selection = Selection::new(&args.include, &args.exclude)?;
    let selected: HashMap<&str, &TensorInfo> = header
        .tensors()
        .iter()
        .filter(|t| selection.packs(t))
        .map(|t| (t.name.as_str(), t))
        .collect();
    if selected.is_empty() {
        return Err(input.bad(
            "no tensor to quantize: none is a 2-D F32, F16 or BF16 tensor matching \
             the --include patterns (default \"*.weight\") and no --exclude pattern",
        ));
    }
    let importance = match &args.importance {
        Some(path) => Some(Importance::open(path, &selected, ui)?),
        None => None,
    };
    let calibration = match &args.calibration {
        Some(path) => Some(Calibration::open(path, &selected, ui)?),
        None => None,
    };
    // The gptq encoder's Hessian is set per tensor.
    let encoder = match args.encoder {
        EncoderName::Default | EncoderName::Gptq => Encoder::AbsMax,
        EncoderName::Signed => Encoder::Signed,
        EncoderName::Search => Encoder::Search { importance: None },
    };
    let options = Options::default().with_threads(args.threads.unwrap_or(0));
    let quantizer = Quantizer::new(args.group_size)
        .with_encoder(encoder)
        .with_options(options);

    let mut planned = Vec::new();
    let mut metadata = format::file_metadata(
        header.metadata().clone(),
        args.group_size,
        args.encoder,
        gptq.then_some(damping),
    );
    for t in header.tensors() {
        if !selected.contains_key(t.name.as_str()) {
            planned.push(Planned {
                name: t.name.clone(),
                dtype: t.dtype,
                shape: t.shape.clone(),
            });
            continue;
        }
        let (rows, cols) = t.matrix().expect("selected tensors are 2-D");
        let layout = quantizer
            .layout(rows, cols)
            .map_err(|e| input.bad_tensor(&t.name, e))?;
        planned.push(Planned {
            name: format!("{}{PACKED_SUFFIX}", t.name),
            dtype: Dtype::U8,
            shape: vec![rows, layout.packed_row_bytes()],
        });
        planned.push(Planned {
            name: format!("{}{SCALES_SUFFIX}", t.name),
            dtype: Dtype::F32,
            shape: vec![rows, layout.groups_per_row()],
        });
        let weighed = importance.as_ref().is_some_and(|i| i.covers(&t.name));
        let ty = FloatType::of(t.dtype).expect("selected tensors are floats");
        let (key, value) = format::tensor_entry(&t.name, ty, rows, cols, weighed);
        metadata.insert(key, value);
    }
    let mut names = HashSet::new();
    for p in &planned {
        if !names.insert(p.name.as_str()) {
            return Err(input.bad_tensor(
                &p.name,
                "is both a tensor of the input and the packed form of another",
            ));
        }
    }

    let mut out = Output::create(&args.output, &planned, &metadata)?;
    let total: usize = header.tensors().iter().map(|t| t.range.len()).sum();
    let bar = ui.progress(total as u64);
    let (mut packed_weights, mut packed_bytes, mut source_bytes) = (0, 0, 0);
    for t in header.tensors() {
        bar.set_message(t.name.clone());
        if selected.contains_key(t.name.as_str()) {
            let weights = importance
                .as_ref()
                .map(|i| i.vector(&t.name))
                .transpose()?
                .flatten();
            let hessian = calibration
                .as_ref()
                .map(|c| c.hessian(t, &options))
                .transpose()?;
            let q = match (&weights, &hessian) {
                (Some(w), _) => quantizer.with_encoder(Encoder::Search {
                    importance: Some(w),
                }),
                (_, Some(h)) => quantizer.with_encoder(Encoder::ErrorCompensating {
                    hessian: h.matrix(),
                    damping,
                }),
                _ => quantizer,
            };
            let job = Job {
                input: &input,
                tensor: t,
                quantizer: &q,
                allow_non_finite: args.allow_non_finite,
                importance_file: args.importance.as_deref(),
                hessian_source: calibration.as_ref().zip(hessian.as_ref()).map(|(c, h)| {
                    HessianSource {
                        file: c.path(),
                        tensor: h.source(),
                        damping,
                    }
                }),
            };
            packed_bytes += with_floats!(&input.floats(t)?, xs => job.pack(xs, &mut out))?;
            if let (Some(c), Some(h)) = (&calibration, hessian) {
                c.release(h);
            }
            packed_weights += t.elements();
            source_bytes += t.range.len();
        } else {
            input.copy_to(t, &mut out)?;
        }
        input.release(t);
        bar.inc(t.range.len() as u64);
    }
    bar.finish_and_clear();
    out.finish()?;
    let damped = if gptq {
        format!(" (damping {damping})")
    } else {
        String::new()
    };
    ui.note(format!(
        "quantized {} tensors ({packed_weights} weights, {source_bytes} -> {packed_bytes} bytes, \
         {:.2} bits per weight) at group size {} with the {} encoder{damped}; copied {} tensors; \
         wrote {} in {:.2} s",
        selected.len(),
        packed_bytes as f64 * 8.0 / packed_weights.max(1) as f64,
        args.group_size,
        args.encoder.name(),
        header.tensors().len() - selected.len(),
        args.output.display(),
        started.elapsed().as_secs_f64(),
    ));
    Ok(())
}

/// One tensor to pack.
struct Job<'a, 'q> {
    input: &'a Input,
    tensor: &'a TensorInfo,
    quantizer: &'a Quantizer<'q>,
    allow_non_finite: bool,
    importance_file: Option<&'a Path>,
    hessian_source: Option<HessianSource<'a>>,
}

/// Where the gptq encoder's Hessian came from, for its errors.
struct HessianSource<'a> {
    /// The calibration file.
    file: &'a Path,
    /// Its `W.hessian` or `W.activations` tensor.
    tensor: &'a str,
    damping: f64,
}

impl Job<'_, '_> {
    /// Packs `values` and writes both tensors; returns their byte count.
    fn pack<T: Element>(&self, values: &[T], out: &mut Output) -> Result<usize, CliError> {
        let name = &self.tensor.name;
        let (rows, cols) = self.tensor.matrix().expect("selected tensors are 2-D");
        if !self.allow_non_finite {
            if let Some((i, v)) = first_non_finite(values) {
                return Err(self.input.bad_tensor(
                    name,
                    format!(
                        "element [{}, {}] is {v} (pass --allow-non-finite to pack it as the \
                         format defines)",
                        i / cols,
                        i % cols
                    ),
                ));
            }
        }
        let packed = self
            .quantizer
            .pack_to_vec(values, rows, cols)
            .map_err(|e| match (e, self.importance_file, &self.hessian_source) {
                (Error::BadImportance { .. }, Some(path), _) => CliError::bad_tensor(path, name, e),
                (Error::BadHessian { .. }, _, Some(h)) => CliError::bad_tensor(
                    h.file,
                    h.tensor,
                    format!("{e} (the Hessian of \"{name}\", damping {})", h.damping),
                ),
                _ => self.input.bad_tensor(name, e),
            })?;
        out.write(&format!("{name}{PACKED_SUFFIX}"), packed.packed())?;
        out.write(
            &format!("{name}{SCALES_SUFFIX}"),
            f32::bytes(packed.scales()),
        )?;
        Ok(packed.packed().len() + 4 * packed.scales().len())
    }
}

/// Refuses to write `output` over the calibration file.
fn check_distinct_calibration(calibration: &Path, output: &Path) -> Result<(), CliError> {
    check_distinct(calibration, output).map_err(|_| {
        CliError::Usage(format!(
            "the output {} is the calibration file",
            output.display()
        ))
    })
}

/// A `--importance` file, its tensors checked against the weights they
/// weigh.
struct Importance {
    input: Input,
}

impl Importance {
    /// Opens `path` and checks every tensor named like a selected weight
    /// `[rows, cols]`: a float tensor `[cols]` or `[n, cols]` with n > 0.
    /// Warns about tensors that weigh no selected weight.
    fn open(
        path: &Path,
        selected: &HashMap<&str, &TensorInfo>,
        ui: &Ui,
    ) -> Result<Importance, CliError> {
        let input = Input::open(path)?;
        for t in input.header().tensors() {
            let Some(weight) = selected.get(t.name.as_str()) else {
                ui.warn(format!(
                    "{}: tensor \"{}\" weighs no tensor being quantized; ignored",
                    path.display(),
                    t.name
                ));
                continue;
            };
            let (_, cols) = weight.matrix().expect("selected tensors are 2-D");
            if FloatType::of(t.dtype).is_none() {
                return Err(input.bad_tensor(
                    &t.name,
                    format!("dtype {} is not F32, F16 or BF16", t.dtype),
                ));
            }
            let fits = match t.shape[..] {
                [c] => c == cols,
                [n, c] => n > 0 && c == cols,
                _ => false,
            };
            if !fits {
                return Err(input.bad_tensor(
                    &t.name,
                    format!(
                        "shape {:?} is neither [{cols}] nor [n, {cols}] with n > 0, as the \
                         weight {:?} needs",
                        t.shape, weight.shape
                    ),
                ));
            }
        }
        Ok(Importance { input })
    }

    /// Whether weight `name` has an importance tensor.
    fn covers(&self, name: &str) -> bool {
        self.input.header().get(name).is_some()
    }

    /// The importance vector of weight `name`: the tensor itself if 1-D,
    /// else the per-column mean square of its rows. The library checks its
    /// values when it packs.
    fn vector(&self, name: &str) -> Result<Option<Vec<f32>>, CliError> {
        let Some(t) = self.input.header().get(name) else {
            return Ok(None);
        };
        let vector = with_floats!(&self.input.floats(t)?, xs => match t.shape[..] {
            [_] => xs.iter().map(|v| v.to_f32()).collect(),
            _ => mean_square(xs, *t.shape.last().expect("checked to be 2-D")),
        });
        self.input.release(t);
        Ok(Some(vector))
    }
}

/// The per-column mean of `x^2` over the `n >= 1` rows of `values`
/// (`[n, cols]`), summed in f64.
fn mean_square<T: Element>(values: &[T], cols: usize) -> Vec<f32> {
    let mut sums = vec![0f64; cols];
    if cols > 0 {
        for row in values.chunks_exact(cols) {
            for (s, v) in sums.iter_mut().zip(row) {
                let v = v.to_f32() as f64;
                *s += v * v;
            }
        }
    }
    let n = (values.len() / cols.max(1)) as f64;
    sums.iter().map(|s| (s / n) as f32).collect()
}
