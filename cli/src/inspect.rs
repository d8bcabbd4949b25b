//! `cortex-q4 inspect`: one line per tensor (shape, type, bits per weight,
//! bytes) and totals; with `--against`, the error of each quantized tensor
//! against the original (the library's [`Quality`]) and whether every
//! other tensor is unchanged.

use std::io::Write;
use std::path::Path;

use cortex_q4::{Element, PackedMatrix, Quality};

use crate::cli::InspectArgs;
use crate::dequantize::open_quantized;
use crate::error::CliError;
use crate::format::{QuantizedFile, QuantizedTensor, FORMAT_KEY};
use crate::input::{Float, Input};
use crate::{with_floats, Ui};

/// What `--against` found for one tensor.
enum Check {
    NotAsked,
    /// A quantized tensor's error, and `sum original^2` (f64).
    Quality(Quality, f64),
    /// Whether a stored tensor equals the original's bytes.
    Unchanged(bool),
}

struct Row {
    name: String,
    shape: Vec<usize>,
    ty: String,
    quantized: bool,
    bytes: usize,
    elements: usize,
    check: Check,
}

/// Runs `inspect` as the module says, printing to `out`.
pub fn run(args: &InspectArgs, ui: &Ui, out: &mut impl Write) -> Result<(), CliError> {
    let file = Input::open(&args.file)?;
    let header = file.header();
    let quantized = if header.metadata().contains_key(FORMAT_KEY) {
        Some(open_quantized(&file)?)
    } else {
        None
    };
    let original = args.against.as_deref().map(Input::open).transpose()?;

    let mut rows = Vec::new();
    for q in quantized.iter().flat_map(|q| &q.tensors) {
        rows.push(Row {
            name: q.name.clone(),
            shape: vec![q.layout.rows(), q.layout.cols()],
            ty: format!("Q4({})", q.dtype.dtype()),
            quantized: true,
            bytes: q.packed.range.len() + q.scales.range.len(),
            elements: q.layout.elements(),
            check: Check::NotAsked,
        });
    }
    let is_part = |name: &str| quantized.as_ref().is_some_and(|q| q.holds_part(name));
    for t in header.tensors().iter().filter(|t| !is_part(&t.name)) {
        rows.push(Row {
            name: t.name.clone(),
            shape: t.shape.clone(),
            ty: t.dtype.name().to_string(),
            quantized: false,
            bytes: t.range.len(),
            elements: t.elements(),
            check: Check::NotAsked,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));

    if let Some(original) = &original {
        compare(&file, quantized.as_ref(), original, &mut rows, ui)?;
    }
    match print(&args.file, &file, quantized.as_ref(), &rows, out) {
        // A reader that stopped reading (`| head`) wanted no more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.map_err(|e| CliError::io(Path::new("stdout"), "cannot write", e)),
    }
}

/// Fills in each row's check against `original`, which must hold exactly
/// the tensors of `file` as they were before quantizing.
fn compare(
    file: &Input,
    quantized: Option<&QuantizedFile>,
    original: &Input,
    rows: &mut [Row],
    ui: &Ui,
) -> Result<(), CliError> {
    for t in original.header().tensors() {
        if rows.binary_search_by(|r| r.name.cmp(&t.name)).is_err() {
            return Err(file.bad_tensor(
                &t.name,
                format!("is missing ({} has it)", original.path().display()),
            ));
        }
    }
    let total: usize = rows.iter().map(|r| r.bytes).sum();
    let bar = ui.progress(total as u64);
    for row in rows.iter_mut() {
        bar.set_message(row.name.clone());
        let Some(o) = original.header().get(&row.name) else {
            return Err(original.bad_tensor(
                &row.name,
                format!("is missing ({} has it)", file.path().display()),
            ));
        };
        let q = quantized.and_then(|q| q.tensors.iter().find(|q| q.name == row.name));
        let expected = match q {
            Some(q) => (q.dtype.dtype(), row.shape.as_slice()),
            None => (
                file.header().get(&row.name).expect("a row").dtype,
                &row.shape[..],
            ),
        };
        if (o.dtype, o.shape.as_slice()) != expected {
            return Err(original.bad_tensor(
                &row.name,
                format!(
                    "is {} {:?}, but {} holds {} {:?}",
                    o.dtype,
                    o.shape,
                    file.path().display(),
                    expected.0,
                    expected.1
                ),
            ));
        }
        row.check = match q {
            Some(q) => {
                let group_size = quantized.expect("q is in it").group_size;
                with_floats!(&original.floats(o)?, xs => quality(file, q, group_size, xs))?
            }
            None => {
                let stored = file.header().get(&row.name).expect("a row");
                Check::Unchanged(file.same_bytes(stored, original, o))
            }
        };
        original.release(o);
        bar.inc(row.bytes as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// The error of quantized tensor `q` of `file` against `original`.
fn quality<T: Element>(
    file: &Input,
    q: &QuantizedTensor,
    group_size: usize,
    original: &[T],
) -> Result<Check, CliError> {
    let scales = f32::values(file.bytes(&q.scales));
    let l = &q.layout;
    let matrix = PackedMatrix::new(
        file.bytes(&q.packed),
        &scales,
        l.rows(),
        l.cols(),
        group_size,
    )
    .map_err(|e| file.bad_tensor(&q.name, e))?;
    let quality = matrix
        .quality(original)
        .map_err(|e| file.bad_tensor(&q.name, e))?;
    let signal = original.iter().map(|w| (w.to_f32() as f64).powi(2)).sum();
    file.release(&q.packed);
    file.release(&q.scales);
    Ok(Check::Quality(quality, signal))
}

fn bits(bytes: usize, elements: usize) -> String {
    if elements == 0 {
        "-".into()
    } else {
        format!("{:.3}", bytes as f64 * 8.0 / elements as f64)
    }
}

/// `[384,1536]`: one word, like every column.
fn shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(","))
}

/// The quality columns: RMSE, max error, relative error, SNR in dB.
fn quality_columns(rmse: f64, max: f64, relative: f64, snr_db: f64) -> String {
    format!("{rmse:>11.4e} {max:>11.4e} {relative:>9.5} {snr_db:>8.2}")
}

fn print(
    path: &Path,
    file: &Input,
    quantized: Option<&QuantizedFile>,
    rows: &[Row],
    out: &mut impl Write,
) -> std::io::Result<()> {
    let header = file.header();
    match quantized {
        Some(q) => {
            let weighed = q.tensors.iter().filter(|t| t.importance).count();
            let damping = q
                .damping
                .as_ref()
                .map_or(String::new(), |d| format!(" (damping {d})"));
            writeln!(
                out,
                "{}: cortex_q4 format {}, group size {}, encoder {}{damping}, importance for {weighed} of {} tensors",
                path.display(),
                crate::format::VERSION,
                q.group_size,
                q.encoder,
                q.tensors.len()
            )?
        }
        None => writeln!(out, "{}: safetensors, not quantized", path.display())?,
    }
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
    let shape_w = rows
        .iter()
        .map(|r| shape(&r.shape).len())
        .max()
        .unwrap_or(0)
        .max(5);
    let compared = rows.iter().any(|r| !matches!(r.check, Check::NotAsked));
    write!(
        out,
        "{:name_w$} {:shape_w$} {:10} {:>7} {:>12}",
        "tensor", "shape", "type", "bits/w", "bytes"
    )?;
    if compared {
        write!(
            out,
            " {:>11} {:>11} {:>9} {:>8}",
            "rmse", "max_err", "rel_err", "snr_db"
        )?;
    }
    writeln!(out)?;

    let (mut qn, mut qw, mut qb, mut on, mut ow, mut ob) = (0, 0, 0, 0, 0, 0);
    let (mut error2, mut signal2, mut max) = (0f64, 0f64, 0f64);
    for r in rows {
        write!(
            out,
            "{:name_w$} {:shape_w$} {:10} {:>7} {:>12}",
            r.name,
            shape(&r.shape),
            r.ty,
            bits(r.bytes, r.elements),
            r.bytes
        )?;
        match &r.check {
            Check::NotAsked => {}
            Check::Quality(q, signal) => {
                write!(
                    out,
                    " {}",
                    quality_columns(q.rmse, q.max_abs_error, q.relative_frobenius, q.snr_db)
                )?;
                error2 += q.rmse * q.rmse * r.elements as f64;
                signal2 += signal;
                max = if q.max_abs_error > max || q.max_abs_error.is_nan() {
                    q.max_abs_error
                } else {
                    max
                };
            }
            Check::Unchanged(same) => {
                write!(out, " {}", if *same { "unchanged" } else { "CHANGED" })?
            }
        }
        writeln!(out)?;
        if r.quantized {
            (qn, qw, qb) = (qn + 1, qw + r.elements, qb + r.bytes);
        } else {
            (on, ow, ob) = (on + 1, ow + r.elements, ob + r.bytes);
        }
    }
    if compared && qn > 0 {
        // The library's conventions for an exact packing.
        let (relative, snr) = if error2 == 0.0 {
            (0.0, f64::INFINITY)
        } else {
            ((error2 / signal2).sqrt(), 10.0 * (signal2 / error2).log10())
        };
        writeln!(
            out,
            "{:name_w$} {:shape_w$} {:10} {:>7} {:>12} {}",
            "all quantized",
            "",
            "",
            bits(qb, qw),
            qb,
            quality_columns((error2 / qw as f64).sqrt(), max, relative, snr)
        )?;
    }
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    writeln!(
        out,
        "quantized: {qn} tensors, {qw} weights, {qb} bytes ({:.2} MiB), {} bits per weight",
        mib(qb),
        bits(qb, qw)
    )?;
    writeln!(
        out,
        "stored as is: {on} tensors, {ow} values, {ob} bytes ({:.2} MiB)",
        mib(ob)
    )?;
    let len = file.file_len();
    writeln!(
        out,
        "file: {len} bytes ({:.2} MiB), header {} bytes",
        mib(len),
        header.data_start()
    )
}
