//! Every kind of bad input: one message naming the file (and tensor), the
//! documented exit code, no panic, and no output file, partial or
//! temporary; an existing output is left as it was.

mod common;

use std::path::{Path, PathBuf};

use common::{
    cortex_q4, file_bytes, files_in, raw_file, scratch, weights, write_file, Run, Tensor,
};

const BAD_INPUT: i32 = 1;
const USAGE: i32 = 2;
const IO: i32 = 3;

/// A valid two-tensor checkpoint's tensors.
fn tensors() -> Vec<Tensor> {
    vec![
        Tensor::f32("a.weight", &[2, 8], &weights(2, 8, 1)),
        Tensor::f32("b.weight", &[3, 8], &weights(3, 8, 2)),
    ]
}

/// Writes `bytes` as `in.safetensors` in a fresh directory and quantizes
/// it; asserts that the run failed with `code`, printed one error line
/// naming the input and containing each of `needles`, and left only the
/// input behind.
fn quantize_fails(test: &str, bytes: &[u8], code: i32, needles: &[&str]) -> Run {
    let dir = scratch(test);
    let input = dir.join("in.safetensors");
    std::fs::write(&input, bytes).unwrap();
    let run = cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        dir.join("out.safetensors").as_os_str(),
    ]);
    assert_failed(&run, code, &input, needles);
    assert_eq!(files_in(&dir), ["in.safetensors"]);
    run
}

fn assert_failed(run: &Run, code: i32, file: &Path, needles: &[&str]) {
    assert_eq!(run.code, code, "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one message: {}", run.stderr);
    assert!(lines[0].starts_with("cortex-q4: error: "), "{}", run.stderr);
    assert!(
        lines[0].contains(&file.display().to_string()),
        "names {}: {}",
        file.display(),
        run.stderr
    );
    for n in needles {
        assert!(lines[0].contains(n), "mentions {n}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("panicked"));
}

/// A header entry with explicit fields.
fn entry(name: &str, dtype: &str, shape: &str, begin: usize, end: usize) -> String {
    format!(
        "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}"
    )
}

#[test]
fn truncated_files() {
    let good = file_bytes(&tensors(), &[]);
    quantize_fails("empty", &[], BAD_INPUT, &["0 bytes is too short"]);
    quantize_fails("seven", &good[..7], BAD_INPUT, &["too short"]);
    // Cut inside the header: its length runs past the end.
    quantize_fails(
        "in_header",
        &good[..20],
        BAD_INPUT,
        &["header length", "runs past the end"],
    );
    // Cut inside the data: the last tensor reaches past it.
    quantize_fails(
        "in_data",
        &good[..good.len() - 4],
        BAD_INPUT,
        &["tensor \"b.weight\"", "reach past", "truncated"],
    );
}

#[test]
fn header_length_past_the_end_or_over_the_limit() {
    let mut bytes = file_bytes(&tensors(), &[]);
    let len = bytes.len() as u64;
    bytes[..8].copy_from_slice(&len.to_le_bytes());
    quantize_fails("past_end", &bytes, BAD_INPUT, &["runs past the end"]);
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    quantize_fails("huge", &bytes, BAD_INPUT, &["over the limit"]);
}

#[test]
fn malformed_headers() {
    let data = [0u8; 8];
    let e = entry("w", "F32", "[1,2]", 0, 8);
    quantize_fails(
        "not_json",
        &raw_file(&format!("{{{e}"), &data),
        BAD_INPUT,
        &["malformed header"],
    );
    quantize_fails(
        "not_object",
        &raw_file("[1,2]", &data),
        BAD_INPUT,
        &["malformed header"],
    );
    quantize_fails(
        "bad_entry",
        &raw_file("{\"w\":{\"dtype\":\"F32\"}}", &data),
        BAD_INPUT,
        &["malformed header", "\"w\"", "missing field"],
    );
    quantize_fails(
        "negative",
        &raw_file(&entry("w", "F32", "[1,-2]", 0, 8), &data),
        BAD_INPUT,
        &["malformed header", "\"w\""],
    );
    let mut not_utf8 = raw_file(&format!("{{{e}}}"), &data);
    not_utf8[10] = 0xFF;
    quantize_fails("not_utf8", &not_utf8, BAD_INPUT, &["not UTF-8"]);
    quantize_fails(
        "bad_metadata",
        &raw_file(&format!("{{\"__metadata__\":{{\"k\":1}},{e}}}"), &data),
        BAD_INPUT,
        &["malformed header", "__metadata__"],
    );
}

#[test]
fn duplicate_keys() {
    let data = [0u8; 16];
    let a = entry("w", "F32", "[1,2]", 0, 8);
    let b = entry("w", "F32", "[1,2]", 8, 16);
    quantize_fails(
        "tensor",
        &raw_file(&format!("{{{a},{b}}}"), &data),
        BAD_INPUT,
        &["duplicate key \"w\""],
    );
    let m = "\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}";
    let v = entry("v", "F32", "[2,2]", 0, 16);
    quantize_fails(
        "metadata",
        &raw_file(&format!("{{{m},{v}}}"), &data),
        BAD_INPUT,
        &["duplicate key \"k\"", "__metadata__"],
    );
    let twice = "\"__metadata__\":{}";
    quantize_fails(
        "metadata_twice",
        &raw_file(&format!("{{{twice},{twice},{v}}}"), &data),
        BAD_INPUT,
        &["duplicate key \"__metadata__\""],
    );
    let field =
        "\"v\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}";
    quantize_fails(
        "field",
        &raw_file(&format!("{{{field}}}"), &data),
        BAD_INPUT,
        &["\"v\"", "duplicate field"],
    );
}

#[test]
fn offsets_out_of_range_reversed_overlapping_or_leaving_gaps() {
    let data = [0u8; 16];
    let file = |entries: &[String]| raw_file(&format!("{{{}}}", entries.join(",")), &data);
    quantize_fails(
        "out_of_range",
        &file(&[entry("w", "F32", "[2,2]", 8, 24)]),
        BAD_INPUT,
        &["tensor \"w\"", "reach past the 16 bytes"],
    );
    quantize_fails(
        "reversed",
        &file(&[entry("w", "F32", "[0]", 8, 4)]),
        BAD_INPUT,
        &["tensor \"w\"", "reversed"],
    );
    quantize_fails(
        "overlap",
        &file(&[
            entry("a", "F32", "[3]", 0, 12),
            entry("b", "F32", "[2]", 8, 16),
        ]),
        BAD_INPUT,
        &["tensors \"a\" and \"b\" overlap"],
    );
    quantize_fails(
        "gap",
        &file(&[
            entry("a", "F32", "[1]", 0, 4),
            entry("b", "F32", "[2]", 8, 16),
        ]),
        BAD_INPUT,
        &["bytes 4..8", "no tensor"],
    );
    quantize_fails(
        "trailing",
        &file(&[entry("a", "F32", "[2]", 0, 8)]),
        BAD_INPUT,
        &["bytes 8..16", "no tensor"],
    );
}

#[test]
fn dtype_shape_and_byte_count_mismatches() {
    let data = [0u8; 16];
    let file = |e: String| raw_file(&format!("{{{e}}}"), &data);
    quantize_fails(
        "byte_count",
        &file(entry("w", "F32", "[2,3]", 0, 16)),
        BAD_INPUT,
        &["tensor \"w\"", "hold 16 bytes", "F32 [2, 3] takes 24"],
    );
    quantize_fails(
        "unknown_dtype",
        &file(entry("w", "F5", "[4]", 0, 16)),
        BAD_INPUT,
        &["tensor \"w\"", "unsupported dtype \"F5\""],
    );
    let huge = format!("[{},{}]", u64::MAX, u64::MAX);
    quantize_fails(
        "overflow",
        &file(entry("w", "U8", &huge, 0, 16)),
        BAD_INPUT,
        &["tensor \"w\"", "overflows"],
    );
}

#[test]
fn non_finite_weights_are_refused_unless_allowed() {
    let dir = scratch("non_finite");
    let input = dir.join("in.safetensors");
    let out = dir.join("out.safetensors");
    std::fs::write(&out, b"an older output").unwrap();
    for (bad, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut t = tensors();
        // The second tensor in the file, so the first is already written
        // when the run fails.
        let mut values = weights(3, 8, 2);
        values[8 + 5] = bad;
        t[1] = Tensor::f32("b.weight", &[3, 8], &values);
        write_file(&input, &t, &[]);
        let run = cortex_q4(["quantize".as_ref(), input.as_os_str(), out.as_os_str()]);
        assert_failed(
            &run,
            BAD_INPUT,
            &input,
            &[
                "tensor \"b.weight\"",
                &format!("element [1, 5] is {shown}"),
                "--allow-non-finite",
            ],
        );
        assert_eq!(files_in(&dir), ["in.safetensors", "out.safetensors"]);
        assert_eq!(std::fs::read(&out).unwrap(), b"an older output");
    }
    // Allowed: packed as the format defines (the library's bytes).
    let run = cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "--allow-non-finite".as_ref(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let q = dir.join("out.safetensors");
    let bytes = std::fs::read(&q).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let scales = common::values_f32(&st.tensor("b.weight.scales").unwrap());
    assert_eq!(
        scales[1],
        f32::INFINITY,
        "a group holding -inf gets scale inf"
    );

    // Dequantizing non-finite scales is refused the same way, after the
    // other tensors are written.
    let d = dir.join("d.safetensors");
    let run = cortex_q4(["dequantize".as_ref(), q.as_os_str(), d.as_os_str()]);
    assert_failed(
        &run,
        BAD_INPUT,
        &q,
        &[
            "tensor \"b.weight.scales\"",
            "scale [1, 0] is inf",
            "--allow-non-finite",
        ],
    );
    assert!(!d.exists());
    let run = cortex_q4([
        "dequantize".as_ref(),
        q.as_os_str(),
        d.as_os_str(),
        "--allow-non-finite".as_ref(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn importance_tensors_of_the_wrong_shape_type_or_values() {
    let dir = scratch("importance");
    let input = dir.join("in.safetensors");
    write_file(&input, &tensors(), &[]);
    let imp = dir.join("imp.safetensors");
    let out = dir.join("out.safetensors");
    let cases: [(Tensor, &[&str]); 6] = [
        (
            Tensor::f32("b.weight", &[2, 2, 8], &[1.0; 32]),
            &["neither [8] nor [n, 8]"],
        ),
        (
            Tensor::f32("b.weight", &[4, 7], &[1.0; 28]),
            &["[4, 7]", "neither [8] nor [n, 8]"],
        ),
        (Tensor::f32("b.weight", &[0, 8], &[]), &["with n > 0"]),
        (
            Tensor::new("b.weight", "I32", &[8], vec![0; 32]),
            &["dtype I32 is not F32, F16 or BF16"],
        ),
        (
            Tensor::f32("b.weight", &[8], &[1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0]),
            &["importance[3] is negative or not finite"],
        ),
        (
            Tensor::f32(
                "b.weight",
                &[1, 8],
                &[1.0, f32::NAN, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            ),
            &["importance[1]"],
        ),
    ];
    for (t, needles) in cases {
        write_file(&imp, &[t], &[]);
        let run = cortex_q4([
            "quantize".as_ref(),
            input.as_os_str(),
            out.as_os_str(),
            "-e".as_ref(),
            "search".as_ref(),
            "--importance".as_ref(),
            imp.as_os_str(),
        ]);
        let mut all = vec!["tensor \"b.weight\""];
        all.extend_from_slice(needles);
        assert_failed(&run, BAD_INPUT, &imp, &all);
        assert_eq!(files_in(&dir), ["imp.safetensors", "in.safetensors"]);
    }
}

/// A valid calibration entry for `a.weight` ([2, 8]), the first of every
/// calibration file below.
fn a_activations() -> Tensor {
    Tensor::f32("a.weight.activations", &[16, 8], &weights(16, 8, 3))
}

/// Quantizes `tensors()` with `-e gptq` against a calibration file of
/// `a_activations()` and `entries`, with `extra` arguments; asserts that it
/// failed with `code` naming the calibration file and each of `needles`,
/// and wrote nothing.
fn gptq_fails(test: &str, entries: &[Tensor], extra: &[&str], code: i32, needles: &[&str]) {
    let dir = scratch(test);
    let input = dir.join("in.safetensors");
    write_file(&input, &tensors(), &[]);
    let calibration = dir.join("cal.safetensors");
    let mut all = vec![a_activations()];
    all.extend_from_slice(entries);
    write_file(&calibration, &all, &[]);
    let mut args = vec![
        "quantize",
        input.to_str().unwrap(),
        "out.safetensors",
        "-e",
        "gptq",
        "--calibration",
        calibration.to_str().unwrap(),
    ];
    let out = dir.join("out.safetensors");
    args[2] = out.to_str().unwrap();
    args.extend_from_slice(extra);
    let run = cortex_q4(args);
    assert_failed(&run, code, &calibration, needles);
    assert_eq!(files_in(&dir), ["cal.safetensors", "in.safetensors"]);
}

#[test]
fn calibration_entries_missing_doubled_or_of_the_wrong_shape_or_type() {
    let b = "tensor \"b.weight\"";
    let hessian = "tensor \"b.weight.hessian\"";
    let acts = "tensor \"b.weight.activations\"";
    gptq_fails(
        "cal_missing",
        &[Tensor::f32("b.weight.scales", &[8, 8], &[1.0; 64])],
        &[],
        BAD_INPUT,
        &[
            b,
            "no calibration",
            "neither \"b.weight.hessian\" nor \"b.weight.activations\"",
            "pass --exclude \"b.weight\" to leave the weight unquantized",
        ],
    );
    gptq_fails(
        "cal_both",
        &[
            Tensor::f64("b.weight.hessian", &[8, 8], &[0.0; 64]),
            Tensor::f32("b.weight.activations", &[1, 8], &[1.0; 8]),
        ],
        &[],
        BAD_INPUT,
        &[b, "both \"b.weight.hessian\" and \"b.weight.activations\""],
    );
    let shapes: [(Tensor, &[&str]); 8] = [
        (
            Tensor::f64("b.weight.hessian", &[8, 7], &[0.0; 56]),
            &[hessian, "shape [8, 7] is not [8, 8]", "\"b.weight\" [3, 8]"],
        ),
        (
            Tensor::f64("b.weight.hessian", &[64], &[0.0; 64]),
            &[hessian, "shape [64] is not [8, 8]"],
        ),
        (
            Tensor::f16("b.weight.hessian", &[8, 8], &[0.0; 64]),
            &[hessian, "dtype F16 is not F64 or F32"],
        ),
        (
            Tensor::new("b.weight.hessian", "I64", &[8, 8], vec![0; 512]),
            &[hessian, "dtype I64 is not F64 or F32"],
        ),
        (
            Tensor::f32("b.weight.activations", &[4, 7], &[1.0; 28]),
            &[acts, "shape [4, 7] is not [n, 8] with n > 0", "[3, 8]"],
        ),
        (
            Tensor::f32("b.weight.activations", &[0, 8], &[]),
            &[acts, "shape [0, 8] is not [n, 8] with n > 0"],
        ),
        (
            Tensor::f32("b.weight.activations", &[2, 2, 8], &[1.0; 32]),
            &[acts, "shape [2, 2, 8] is not [n, 8]"],
        ),
        (
            Tensor::new("b.weight.activations", "I32", &[1, 8], vec![0; 32]),
            &[acts, "dtype I32 is not F32, F16, BF16 or F64"],
        ),
    ];
    for (i, (t, needles)) in shapes.into_iter().enumerate() {
        gptq_fails(&format!("cal_shape_{i}"), &[t], &[], BAD_INPUT, needles);
    }
    // Leaving the weight out makes the same file usable.
    let dir = scratch("cal_exclude");
    let input = dir.join("in.safetensors");
    write_file(&input, &tensors(), &[]);
    let calibration = dir.join("cal.safetensors");
    write_file(&calibration, &[a_activations()], &[]);
    let out = dir.join("out.safetensors");
    cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "-e".as_ref(),
        "gptq".as_ref(),
        "--calibration".as_ref(),
        calibration.as_os_str(),
        "--exclude".as_ref(),
        "b.weight".as_ref(),
    ])
    .ok();
}

#[test]
fn calibration_values_that_give_no_usable_hessian() {
    let acts = "tensor \"b.weight.activations\"";
    let hessian = "tensor \"b.weight.hessian\"";
    let mut x = weights(3, 8, 4);
    x[8 + 2] = f32::NAN;
    gptq_fails(
        "cal_nan",
        &[Tensor::f32("b.weight.activations", &[3, 8], &x)],
        &[],
        BAD_INPUT,
        &[acts, "element [1, 2] is NaN as f32"],
    );
    let mut x: Vec<f64> = weights(2, 8, 5).iter().map(|&v| v as f64).collect();
    x[5] = 1e300;
    gptq_fails(
        "cal_f64_overflow",
        &[Tensor::f64("b.weight.activations", &[2, 8], &x)],
        &[],
        BAD_INPUT,
        &[acts, "element [0, 5] is inf as f32"],
    );
    // A column no activation reaches, without damping.
    let mut x = weights(16, 8, 6);
    for r in 0..16 {
        x[r * 8 + 3] = 0.0;
    }
    gptq_fails(
        "cal_dead_column",
        &[Tensor::bf16("b.weight.activations", &[16, 8], &x)],
        &["--damping", "0"],
        BAD_INPUT,
        &[
            acts,
            "Hessian[3][3]",
            "not positive definite",
            "the Hessian of \"b.weight\", damping 0)",
        ],
    );
    let identity = |edit: fn(&mut [f64])| {
        let mut h: Vec<f64> = (0..64)
            .map(|i| if i % 9 == 0 { 1.0 } else { 0.0 })
            .collect();
        edit(&mut h);
        Tensor::f64("b.weight.hessian", &[8, 8], &h)
    };
    for (i, (t, at)) in [
        (identity(|h| h[8 * 2 + 5] = 0.5), "Hessian[2][5]"),
        (identity(|h| h[9 * 4] = -1.0), "Hessian[4][4]"),
        (identity(|h| h[1] = f64::NAN), "Hessian[0][1]"),
    ]
    .into_iter()
    .enumerate()
    {
        gptq_fails(
            &format!("cal_hessian_{i}"),
            &[t],
            &[],
            BAD_INPUT,
            &[hessian, at, "the Hessian of \"b.weight\", damping 0.05)"],
        );
    }
}

#[test]
fn calibration_files_that_cannot_be_read() {
    let dir = scratch("cal_files");
    let input = dir.join("in.safetensors");
    write_file(&input, &tensors(), &[]);
    let out = dir.join("out.safetensors");
    let quantize = |calibration: &Path| {
        cortex_q4([
            "quantize".as_ref(),
            input.as_os_str(),
            out.as_os_str(),
            "-e".as_ref(),
            "gptq".as_ref(),
            "--calibration".as_ref(),
            calibration.as_os_str(),
        ])
    };
    let missing = dir.join("missing.safetensors");
    assert_failed(&quantize(&missing), IO, &missing, &["cannot open"]);
    let truncated = dir.join("truncated.safetensors");
    let bytes = file_bytes(&[a_activations()], &[]);
    std::fs::write(&truncated, &bytes[..bytes.len() - 4]).unwrap();
    assert_failed(
        &quantize(&truncated),
        BAD_INPUT,
        &truncated,
        &["tensor \"a.weight.activations\"", "truncated"],
    );
    assert_eq!(files_in(&dir), ["in.safetensors", "truncated.safetensors"]);
}

#[test]
fn outputs_that_cannot_be_written() {
    let dir = scratch("unwritable");
    let input = dir.join("in.safetensors");
    write_file(&input, &tensors(), &[]);
    for out in [
        dir.join("missing").join("out.safetensors"),
        input.join("out.safetensors"),
    ] {
        let run = cortex_q4(["quantize".as_ref(), input.as_os_str(), out.as_os_str()]);
        assert_failed(&run, IO, &out, &["cannot create the output"]);
    }
    // A directory in the output's place: written, then not renamed.
    let taken = dir.join("taken");
    std::fs::create_dir(&taken).unwrap();
    let run = cortex_q4(["quantize".as_ref(), input.as_os_str(), taken.as_os_str()]);
    assert_failed(&run, IO, &taken, &["cannot write the output"]);
    assert_eq!(files_in(&dir), ["in.safetensors", "taken"]);
    assert!(files_in(&taken).is_empty());
    // An input that cannot be read.
    let missing = dir.join("nope.safetensors");
    let run = cortex_q4([
        "quantize".as_ref(),
        missing.as_os_str(),
        dir.join("o").as_os_str(),
    ]);
    assert_failed(&run, IO, &missing, &["cannot open"]);
}

#[test]
fn usage_errors() {
    let dir = scratch("usage");
    let input = dir.join("in.safetensors");
    write_file(&input, &tensors(), &[]);
    let out = dir.join("out.safetensors");
    let quantize = |extra: &[&str], target: &PathBuf| {
        let mut args = vec![
            "quantize",
            input.to_str().unwrap(),
            target.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cortex_q4(args)
    };
    for extra in [
        &["-g", "0"][..],
        &["-g", "1048577"],
        &["-e", "best"],
        &["--threads", "0"],
        &["--bogus"],
    ] {
        let run = quantize(extra, &out);
        assert_eq!(run.code, USAGE, "{extra:?}: {run:?}");
    }
    let run = quantize(&["--importance", input.to_str().unwrap()], &out);
    assert_eq!(run.code, USAGE);
    assert!(
        run.stderr
            .contains("--importance is only used by --encoder search"),
        "{}",
        run.stderr
    );
    // The gptq encoder's arguments: the calibration file it needs and only
    // it takes, a damping that is finite and >= 0.
    let cal = input.to_str().unwrap();
    for (extra, needle) in [
        (&["-e", "gptq"][..], "--encoder gptq needs --calibration"),
        (
            &["--calibration", cal],
            "--calibration is only used by --encoder gptq",
        ),
        (
            &["-e", "search", "--calibration", cal],
            "--calibration is only used by --encoder gptq",
        ),
        (
            &["--damping", "0.1"],
            "--damping is only used by --encoder gptq",
        ),
        (
            &["-e", "signed", "--damping", "0"],
            "--damping is only used by --encoder gptq",
        ),
        (
            &["-e", "gptq", "--calibration", cal, "--damping", "-0.5"],
            "finite and >= 0",
        ),
        (
            &["-e", "gptq", "--calibration", cal, "--damping", "NaN"],
            "finite and >= 0",
        ),
        (
            &["-e", "gptq", "--calibration", cal, "--damping", "inf"],
            "finite and >= 0",
        ),
        (
            &["-e", "gptq", "--calibration", cal, "--damping", "1e400"],
            "finite and >= 0",
        ),
        (
            &["-e", "gptq", "--calibration", cal, "--damping", "much"],
            "invalid value 'much' for '--damping <X>'",
        ),
        (
            &["-e", "gptq", "--calibration", cal, "--importance", cal],
            "--importance is only used by --encoder search",
        ),
    ] {
        let run = quantize(extra, &out);
        assert_eq!(run.code, USAGE, "{extra:?}: {run:?}");
        assert!(run.stderr.contains(needle), "{extra:?}: {}", run.stderr);
    }
    // The calibration file as the output.
    let cal_file = dir.join("cal.safetensors");
    write_file(&cal_file, &[], &[]);
    let run = quantize(
        &["-e", "gptq", "--calibration", cal_file.to_str().unwrap()],
        &cal_file,
    );
    assert_eq!(run.code, USAGE);
    assert!(
        run.stderr.contains("is the calibration file"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(&cal_file).unwrap();
    let run = quantize(&["--include", "a[.weight"], &out);
    assert_eq!(run.code, USAGE);
    assert!(
        run.stderr.contains("bad pattern \"a[.weight\""),
        "{}",
        run.stderr
    );
    // The input as its own output, by another path.
    let same = dir.join(".").join("in.safetensors");
    let run = quantize(&[], &same);
    assert_eq!(run.code, USAGE);
    assert!(run.stderr.contains("is the input file"), "{}", run.stderr);
    assert_eq!(files_in(&dir), ["in.safetensors"]);
}

#[test]
fn nothing_to_quantize_name_collisions_and_quantizing_twice() {
    let dir = scratch("selection");
    let input = dir.join("in.safetensors");
    let out = dir.join("out.safetensors");
    write_file(&input, &[Tensor::f32("norm.weight", &[8], &[1.0; 8])], &[]);
    let run = cortex_q4(["quantize".as_ref(), input.as_os_str(), out.as_os_str()]);
    assert_failed(&run, BAD_INPUT, &input, &["no tensor to quantize"]);

    let mut t = tensors();
    t.push(Tensor::new("a.weight.q4", "U8", &[3], vec![1, 2, 3]));
    write_file(&input, &t, &[]);
    let run = cortex_q4(["quantize".as_ref(), input.as_os_str(), out.as_os_str()]);
    assert_failed(
        &run,
        BAD_INPUT,
        &input,
        &[
            "tensor \"a.weight.q4\"",
            "both a tensor of the input and the packed form",
        ],
    );

    write_file(&input, &tensors(), &[]);
    cortex_q4(["quantize".as_ref(), input.as_os_str(), out.as_os_str()]).ok();
    let again = dir.join("again.safetensors");
    let run = cortex_q4(["quantize".as_ref(), out.as_os_str(), again.as_os_str()]);
    assert_failed(
        &run,
        BAD_INPUT,
        &out,
        &["already a cortex_q4 checkpoint", "\"cortex_q4.encoder\""],
    );
    assert_eq!(files_in(&dir), ["in.safetensors", "out.safetensors"]);
    // Any key of the format's, even without the others, would be read
    // as the format's.
    write_file(&input, &tensors(), &[("cortex_q4.tensor.x", "{}")]);
    let run = cortex_q4(["quantize".as_ref(), input.as_os_str(), again.as_os_str()]);
    assert_failed(
        &run,
        BAD_INPUT,
        &input,
        &["already a cortex_q4 checkpoint", "\"cortex_q4.tensor.x\""],
    );
}

/// A cortex_q4 file for [`tensors`] at g = 4, with `edit` applied to its
/// metadata and tensors.
fn quantized_file(edit: impl FnOnce(&mut Vec<(String, String)>, &mut Vec<Tensor>)) -> Vec<u8> {
    let entry =
        |shape: &str| format!("{{\"dtype\":\"F32\",\"shape\":{shape},\"importance\":false}}");
    let mut meta: Vec<(String, String)> = [
        ("cortex_q4.format", "cortex_q4".to_string()),
        ("cortex_q4.format_version", "1".into()),
        ("cortex_q4.group_size", "4".into()),
        ("cortex_q4.encoder", "default".into()),
        ("cortex_q4.tensor.a.weight", entry("[2,8]")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut tensors = vec![
        Tensor::f32("a.weight.scales", &[2, 2], &[1.0; 4]),
        Tensor::new("a.weight.q4", "U8", &[2, 4], vec![0x88; 8]),
        Tensor::f32("b.weight", &[3, 8], &weights(3, 8, 2)),
    ];
    edit(&mut meta, &mut tensors);
    let meta: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    file_bytes(&tensors, &meta)
}

#[test]
fn dequantize_refuses_inconsistent_cortex_q4_files() {
    let dir = scratch("dequantize_bad");
    let input = dir.join("in.safetensors");
    let out = dir.join("out.safetensors");
    let set = |meta: &mut Vec<(String, String)>, key: &str, value: &str| {
        meta.retain(|(k, _)| k != key);
        meta.push((key.to_string(), value.to_string()));
    };
    type Edit = Box<dyn FnOnce(&mut Vec<(String, String)>, &mut Vec<Tensor>)>;
    let cases: Vec<(Edit, Vec<&str>)> = vec![
        (Box::new(|_, _| {}), vec![]),
        (
            Box::new(move |m, _| m.retain(|(k, _)| k == "x")),
            vec!["not a cortex_q4 checkpoint"],
        ),
        (
            Box::new(move |m, _| set(m, "cortex_q4.format_version", "2")),
            vec!["cortex_q4.format_version \"2\" is not supported"],
        ),
        (
            Box::new(move |m, _| set(m, "cortex_q4.group_size", "0")),
            vec!["tensor \"a.weight\"", "group size 0"],
        ),
        (
            Box::new(move |m, _| set(m, "cortex_q4.group_size", "four")),
            vec!["cortex_q4.group_size \"four\""],
        ),
        (
            Box::new(move |m, _| m.retain(|(k, _)| k != "cortex_q4.encoder")),
            vec!["no \"cortex_q4.encoder\""],
        ),
        (
            Box::new(move |m, _| {
                set(
                    m,
                    "cortex_q4.tensor.a.weight",
                    "{\"dtype\":\"I8\",\"shape\":[2,8],\"importance\":false}",
                )
            }),
            vec!["tensor \"a.weight\"", "dtype \"I8\""],
        ),
        (
            Box::new(move |m, _| set(m, "cortex_q4.tensor.a.weight", "{\"shape\":[2,8]}")),
            vec!["tensor \"a.weight\"", "missing field"],
        ),
        (
            Box::new(move |m, _| {
                set(
                    m,
                    "cortex_q4.tensor.a.weight",
                    "{\"dtype\":\"F32\",\"shape\":[16],\"importance\":false}",
                )
            }),
            vec!["tensor \"a.weight\""],
        ),
        (
            Box::new(|_, t| {
                t.remove(0);
            }),
            vec!["tensor \"a.weight\"", "\"a.weight.scales\" is missing"],
        ),
        (
            Box::new(|_, t| t[1] = Tensor::new("a.weight.q4", "U8", &[16], vec![0x88; 16])),
            vec!["tensor \"a.weight.q4\"", "U8 [16] should be U8 [2, 4]"],
        ),
        (
            Box::new(|_, t| t[1] = Tensor::new("a.weight.q4", "U8", &[2, 5], vec![0x88; 10])),
            vec!["tensor \"a.weight.q4\"", "should be U8 [2, 4]"],
        ),
        (
            Box::new(|_, t| t[0] = Tensor::f16("a.weight.scales", &[2, 2], &[1.0; 4])),
            vec![
                "tensor \"a.weight.scales\"",
                "F16 [2, 2] should be F32 [2, 2]",
            ],
        ),
        (
            Box::new(|_, t| t.push(Tensor::f32("a.weight", &[1], &[0.0]))),
            vec!["tensor \"a.weight\"", "both quantized and stored"],
        ),
    ];
    for (edit, needles) in cases {
        std::fs::write(&input, quantized_file(edit)).unwrap();
        let run = cortex_q4(["dequantize".as_ref(), input.as_os_str(), out.as_os_str()]);
        if needles.is_empty() {
            // The unedited file is fine: the cases below fail by their edit.
            assert_eq!(run.code, 0, "{}", run.stderr);
            std::fs::remove_file(&out).unwrap();
            continue;
        }
        assert_failed(&run, BAD_INPUT, &input, &needles);
        assert_eq!(files_in(&dir), ["in.safetensors"]);
        // inspect reads the file with the same checks.
        let run = cortex_q4(["inspect".as_ref(), input.as_os_str()]);
        if needles[0] != "not a cortex_q4 checkpoint" {
            assert_failed(&run, BAD_INPUT, &input, &needles);
        }
    }
}

#[test]
fn inspect_against_a_file_that_does_not_match() {
    let dir = scratch("inspect_mismatch");
    let input = dir.join("in.safetensors");
    write_file(&input, &tensors(), &[]);
    let q = dir.join("q.safetensors");
    cortex_q4(["quantize".as_ref(), input.as_os_str(), q.as_os_str()]).ok();
    let other = dir.join("other.safetensors");
    let inspect = || {
        cortex_q4([
            "inspect".as_ref(),
            q.as_os_str(),
            "--against".as_ref(),
            other.as_os_str(),
        ])
    };

    write_file(
        &other,
        &[
            tensors()[0].clone(),
            Tensor::f32("b.weight", &[4, 6], &weights(4, 6, 2)),
        ],
        &[],
    );
    assert_failed(
        &inspect(),
        BAD_INPUT,
        &other,
        &["tensor \"b.weight\"", "is F32 [4, 6]", "F32 [3, 8]"],
    );
    write_file(
        &other,
        &[
            tensors()[0].clone(),
            Tensor::f16("b.weight", &[3, 8], &weights(3, 8, 2)),
        ],
        &[],
    );
    assert_failed(
        &inspect(),
        BAD_INPUT,
        &other,
        &["tensor \"b.weight\"", "is F16 [3, 8]"],
    );
    write_file(&other, &tensors()[..1], &[]);
    assert_failed(
        &inspect(),
        BAD_INPUT,
        &other,
        &["tensor \"b.weight\": is missing"],
    );
    let mut extra = tensors();
    extra.push(Tensor::f32("c", &[1], &[0.0]));
    write_file(&other, &extra, &[]);
    assert_failed(&inspect(), BAD_INPUT, &q, &["tensor \"c\": is missing"]);
}

#[test]
fn narrowing_that_overflows_is_refused_unless_allowed() {
    // 1e6 restores exactly in f32 and bf16, and past f16's 65504.
    let dir = scratch("narrowing");
    let input = dir.join("in.safetensors");
    let q = dir.join("q.safetensors");
    let d = dir.join("d.safetensors");
    write_file(&input, &[Tensor::f32("a.weight", &[2, 8], &[1e6; 16])], &[]);
    let run = cortex_q4(["quantize".as_ref(), input.as_os_str(), q.as_os_str()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dequantize = |dtype: &str, extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "dequantize".as_ref(),
            q.as_os_str(),
            d.as_os_str(),
            "--dtype".as_ref(),
            dtype.as_ref(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        cortex_q4(args)
    };
    let run = dequantize("f16", &[]);
    assert_failed(
        &run,
        BAD_INPUT,
        &q,
        &[
            "tensor \"a.weight\"",
            "element [0, 0] restores to inf in F16",
            "--allow-non-finite",
        ],
    );
    assert!(!d.exists());
    for (dtype, extra) in [
        ("f16", &["--allow-non-finite"][..]),
        ("bf16", &[]),
        ("f32", &[]),
    ] {
        let run = dequantize(dtype, extra);
        assert_eq!(run.code, 0, "{dtype}: {}", run.stderr);
    }
}
