//! The tool on small synthetic checkpoints: what quantize writes is the
//! library's pack of each selected tensor, in the documented layout and
//! alignment, read back by the `safetensors` crate; dequantize gives the
//! library's unpack; inspect reports the library's sizes and quality.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{cortex_q4, f32_bytes, scratch, values_f32, weights, write_file, Tensor};
use cortex_q4::{Element, Encoder, Hessian, Options, PackedMatrixBuf, Quantizer};
use half::{bf16, f16};
use safetensors::SafeTensors;

/// A checkpoint with one tensor of each kind the selection tells apart.
fn checkpoint() -> Vec<Tensor> {
    let ints: Vec<u8> = (0..6i64)
        .flat_map(|i| (i * 1000 - 7).to_le_bytes())
        .collect();
    vec![
        Tensor::f32("layer.0.weight", &[6, 40], &weights(6, 40, 1)),
        Tensor::f32("layer.0.bias", &[6], &weights(1, 6, 2)),
        Tensor::f32("embed_tokens.weight", &[10, 8], &weights(10, 8, 3)),
        Tensor::f32("norm.weight", &[40], &weights(1, 40, 4)),
        Tensor::f16("proj.weight", &[5, 33], &weights(5, 33, 5)),
        Tensor::bf16("head.weight", &[3, 70], &weights(3, 70, 6)),
        Tensor::new("ids", "I64", &[2, 3], ints),
        Tensor::new("mask", "U8", &[7], vec![1, 0, 1, 1, 0, 0, 1]),
        Tensor::f32("conv.weight", &[2, 3, 4], &weights(2, 12, 7)),
        Tensor::new(
            "counts.weight",
            "I32",
            &[1, 3],
            vec![1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0],
        ),
        Tensor::f32("empty.weight", &[0, 5], &[]),
    ]
}

/// What the default selection packs.
const PACKED: [&str; 4] = [
    "layer.0.weight",
    "proj.weight",
    "head.weight",
    "empty.weight",
];

fn encoder(name: &str) -> Encoder<'static> {
    match name {
        "default" => Encoder::AbsMax,
        "signed" => Encoder::Signed,
        "search" => Encoder::Search { importance: None },
        _ => unreachable!(),
    }
}

/// The library's pack of tensor `t` of a synthetic file.
fn library_pack(t: &Tensor, group_size: usize, encoder: Encoder) -> PackedMatrixBuf {
    let q = Quantizer::new(group_size).with_encoder(encoder);
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let halves = t
        .data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    match t.dtype {
        "F32" => q.pack_to_vec(&floats(&t.data), rows, cols),
        "F16" => q.pack_to_vec(&halves.map(f16::from_bits).collect::<Vec<_>>(), rows, cols),
        "BF16" => q.pack_to_vec(&halves.map(bf16::from_bits).collect::<Vec<_>>(), rows, cols),
        _ => unreachable!(),
    }
    .unwrap()
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Checks the alignment guarantee on a file's bytes: data at a multiple of
/// 8, each tensor at a multiple of its element size.
fn assert_aligned(bytes: &[u8]) {
    let (n, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let data_start = 8 + n;
    assert_eq!(data_start % 8, 0, "data begins at {data_start}");
    for (name, info) in meta.tensors() {
        let size = info.dtype.bitsize() / 8;
        let at = data_start + info.data_offsets.0;
        assert_eq!(at % size, 0, "{name} ({:?}) begins at {at}", info.dtype);
    }
}

#[test]
fn quantize_writes_the_library_pack_aligned_and_described() {
    let dir = scratch("quantize_library_pack");
    let input = dir.join("in.safetensors");
    let tensors = checkpoint();
    write_file(&input, &tensors, &[("format", "pt")]);
    for enc in ["default", "signed", "search"] {
        for g in [1usize, 3, 7, 32, 128] {
            let out = dir.join(format!("q-{enc}-{g}.safetensors"));
            cortex_q4([
                "quantize".as_ref(),
                input.as_os_str(),
                out.as_os_str(),
                "-g".as_ref(),
                g.to_string().as_ref(),
                "-e".as_ref(),
                enc.as_ref(),
            ])
            .ok();
            let bytes = std::fs::read(&out).unwrap();
            assert_aligned(&bytes);
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();

            let mut expected_meta: HashMap<String, String> = [
                ("format", "pt".to_string()),
                ("cortex_q4.format", "cortex_q4".into()),
                ("cortex_q4.format_version", "1".into()),
                ("cortex_q4.group_size", g.to_string()),
                ("cortex_q4.encoder", enc.into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let mut expected_names = Vec::new();
            for t in &tensors {
                if !PACKED.contains(&t.name.as_str()) {
                    let view = st.tensor(&t.name).unwrap();
                    assert_eq!(view.dtype().to_string(), t.dtype, "{}", t.name);
                    assert_eq!(view.shape(), t.shape, "{}", t.name);
                    assert_eq!(view.data(), t.data, "{} is copied", t.name);
                    expected_names.push(t.name.clone());
                    continue;
                }
                let lib = library_pack(t, g, encoder(enc));
                let l = lib.layout();
                let q4 = st.tensor(&format!("{}.q4", t.name)).unwrap();
                let scales = st.tensor(&format!("{}.scales", t.name)).unwrap();
                assert_eq!(
                    (q4.dtype(), q4.shape()),
                    (
                        safetensors::Dtype::U8,
                        &[l.rows(), l.packed_row_bytes()][..]
                    )
                );
                assert_eq!(
                    (scales.dtype(), scales.shape()),
                    (safetensors::Dtype::F32, &[l.rows(), l.groups_per_row()][..])
                );
                assert_eq!(q4.data(), lib.packed(), "{} {enc} g={g}", t.name);
                assert_eq!(
                    scales.data(),
                    f32_bytes(lib.scales()),
                    "{} {enc} g={g}",
                    t.name
                );
                expected_meta.insert(
                    format!("cortex_q4.tensor.{}", t.name),
                    format!(
                        "{{\"dtype\":\"{}\",\"shape\":[{},{}],\"importance\":false}}",
                        t.dtype, t.shape[0], t.shape[1]
                    ),
                );
                expected_names.push(format!("{}.q4", t.name));
                expected_names.push(format!("{}.scales", t.name));
            }
            assert_eq!(meta.metadata().as_ref().unwrap(), &expected_meta);
            let mut names = st.names();
            names.sort();
            expected_names.sort();
            assert_eq!(names, expected_names.iter().collect::<Vec<_>>());
        }
    }
}

/// The unpacked values of a restored tensor, as the library gives them.
fn library_unpack(
    lib: &PackedMatrixBuf,
    dtype: &str,
    rows: usize,
    cols: usize,
    g: usize,
) -> Vec<u8> {
    let q = Quantizer::new(g);
    let (p, s) = (lib.packed(), lib.scales());
    match dtype {
        "F32" => f32_bytes(&q.unpack_to_vec::<f32>(p, s, rows, cols).unwrap()),
        "F16" => q
            .unpack_to_vec::<f16>(p, s, rows, cols)
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        "BF16" => q
            .unpack_to_vec::<bf16>(p, s, rows, cols)
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        _ => unreachable!(),
    }
}

#[test]
fn dequantize_restores_names_types_shapes_and_the_library_unpack() {
    let dir = scratch("dequantize_restores");
    let input = dir.join("in.safetensors");
    let tensors = checkpoint();
    write_file(&input, &tensors, &[("format", "pt")]);
    let q = dir.join("q.safetensors");
    cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        q.as_os_str(),
        "-g".as_ref(),
        "7".as_ref(),
        "-e".as_ref(),
        "signed".as_ref(),
    ])
    .ok();
    for dtype in [None, Some("F32"), Some("F16"), Some("BF16")] {
        let out = dir.join(format!("d-{dtype:?}.safetensors"));
        let mut args = vec![
            "dequantize".into(),
            q.clone().into_os_string(),
            out.clone().into_os_string(),
        ];
        if let Some(d) = dtype {
            args.extend(["--dtype".into(), d.to_lowercase().into()]);
        }
        cortex_q4(args).ok();
        let bytes = std::fs::read(&out).unwrap();
        assert_aligned(&bytes);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(
            meta.metadata().as_ref().unwrap(),
            &HashMap::from([("format".to_string(), "pt".to_string())])
        );
        assert_eq!(st.len(), tensors.len());
        for t in &tensors {
            let view = st.tensor(&t.name).unwrap();
            assert_eq!(view.shape(), t.shape, "{}", t.name);
            if !PACKED.contains(&t.name.as_str()) {
                assert_eq!(view.dtype().to_string(), t.dtype);
                assert_eq!(view.data(), t.data, "{} is copied", t.name);
                continue;
            }
            let want = dtype.unwrap_or(t.dtype);
            assert_eq!(view.dtype().to_string(), want, "{}", t.name);
            let lib = library_pack(t, 7, Encoder::Signed);
            assert_eq!(
                view.data(),
                library_unpack(&lib, want, t.shape[0], t.shape[1], 7),
                "{}",
                t.name
            );
        }
    }
}

#[test]
fn include_and_exclude_choose_the_packed_tensors() {
    let dir = scratch("include_exclude");
    let input = dir.join("in.safetensors");
    write_file(&input, &checkpoint(), &[]);
    let packed = |extra: &[&str]| {
        let out = dir.join("q.safetensors");
        let mut args = vec!["quantize", input.to_str().unwrap(), out.to_str().unwrap()];
        args.extend_from_slice(extra);
        cortex_q4(args).ok();
        let bytes = std::fs::read(&out).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<String> = st
            .names()
            .iter()
            .filter_map(|n| n.strip_suffix(".q4").map(String::from))
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        packed(&[]),
        [
            "empty.weight",
            "head.weight",
            "layer.0.weight",
            "proj.weight"
        ]
    );
    // An --include replaces the default selection and its embedding rule.
    assert_eq!(packed(&["--include", "*embed*"]), ["embed_tokens.weight"]);
    assert_eq!(
        packed(&["--exclude", "head.*", "--exclude", "empty.*"]),
        ["layer.0.weight", "proj.weight"]
    );
    // Only 2-D float tensors are packed, whatever matches.
    assert_eq!(
        packed(&["--include", "*", "--exclude", "{layer,proj,head,empty}*"]),
        ["embed_tokens.weight"]
    );
}

#[test]
fn importance_weighs_the_search_per_column() {
    let dir = scratch("importance");
    let input = dir.join("in.safetensors");
    let tensors = checkpoint();
    write_file(&input, &tensors, &[]);
    // Activations [5, 40] (F16) for layer.0, whose columns differ in
    // scale by up to 1000x; a vector [33] for proj.
    let acts: Vec<f32> = (0..5 * 40)
        .map(|i| {
            f16::from_f32(
                ((i % 40) as f32 * 0.37).exp() * 1e-4 * if i % 3 == 0 { -1.0 } else { 1.0 },
            )
            .to_f32()
        })
        .collect();
    let vector: Vec<f32> = (0..33).map(|c| (c % 5) as f32).collect();
    let imp = dir.join("imp.safetensors");
    write_file(
        &imp,
        &[
            Tensor::f16("layer.0.weight", &[5, 40], &acts),
            Tensor::f32("proj.weight", &[33], &vector),
            Tensor::f32("unused.weight", &[3], &[1.0, 2.0, 3.0]),
        ],
        &[],
    );
    let out = dir.join("q.safetensors");
    let run = cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        "-g".as_ref(),
        "8".as_ref(),
        "-e".as_ref(),
        "search".as_ref(),
        "--importance".as_ref(),
        imp.as_os_str(),
    ])
    .ok();
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("\"unused.weight\""),
        "{}",
        run.stderr
    );

    let mean_square: Vec<f32> = (0..40)
        .map(|c| {
            ((0..5)
                .map(|r| (acts[r * 40 + c] as f64).powi(2))
                .sum::<f64>()
                / 5.0) as f32
        })
        .collect();
    let bytes = std::fs::read(&out).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().as_ref().unwrap();
    for (name, weights) in [
        ("layer.0.weight", Some(&mean_square)),
        ("proj.weight", Some(&vector)),
        ("head.weight", None),
    ] {
        let t = tensors.iter().find(|t| t.name == name).unwrap();
        let lib = library_pack(
            t,
            8,
            Encoder::Search {
                importance: weights.map(|w| &w[..]),
            },
        );
        let unweighted = library_pack(t, 8, Encoder::Search { importance: None });
        if weights.is_some() {
            assert_ne!(lib, unweighted, "{name}: the importance changes some scale");
        }
        assert_eq!(
            st.tensor(&format!("{name}.q4")).unwrap().data(),
            lib.packed(),
            "{name}"
        );
        assert_eq!(
            st.tensor(&format!("{name}.scales")).unwrap().data(),
            f32_bytes(lib.scales()),
            "{name}"
        );
        let entry = &meta[&format!("cortex_q4.tensor.{name}")];
        assert!(
            entry.ends_with(&format!("\"importance\":{}}}", weights.is_some())),
            "{entry}"
        );
    }
    let report = cortex_q4(["inspect".as_ref(), out.as_os_str()]).ok().stdout;
    assert!(
        report.contains("encoder search, importance for 2 of 4 tensors"),
        "{report}"
    );
}

/// Activations `[n, cols]` whose columns differ in scale (up to 8x) and
/// are correlated with their neighbours.
fn activations(n: usize, cols: usize, seed: u64) -> Vec<f32> {
    let x = weights(n, cols, seed);
    (0..n * cols)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            x[i] * (1 + c % 8) as f32 + 0.5 * x[r * cols + (c + 1) % cols]
        })
        .collect()
}

/// `XᵀX` of `x` (`[n, cols]`) as the library sums it in one call.
fn hessian_of<T: Element>(x: &[T], cols: usize) -> Vec<f64> {
    let mut h = Hessian::new(cols).unwrap();
    h.accumulate(&Options::default(), x, x.len() / cols)
        .unwrap();
    h.matrix().to_vec()
}

#[test]
fn gptq_packs_each_weight_against_its_calibration() {
    let dir = scratch("gptq");
    let input = dir.join("in.safetensors");
    let tensors = checkpoint();
    write_file(&input, &tensors, &[("format", "pt")]);
    let round = |x: Vec<f32>, f: fn(f32) -> f32| x.into_iter().map(f).collect::<Vec<f32>>();
    // Each weight's activations, in the dtype they are stored as.
    let layer = activations(50, 40, 11);
    let proj = round(activations(40, 33, 12), |v| f16::from_f32(v).to_f32());
    let head = round(activations(90, 70, 13), |v| bf16::from_f32(v).to_f32());
    let empty: Vec<f64> = activations(3, 5, 14)
        .iter()
        .map(|&v| v as f64 * 1.1)
        .collect();
    let (h_layer, h_proj) = (hessian_of(&layer, 40), hessian_of(&proj, 33));
    let (h_head, h_empty) = (hessian_of(&head, 70), hessian_of(&empty, 5));
    let as_f32 = |h: &[f64]| h.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    // Both kinds of entry in each file, each weight by activations in one
    // and by its Hessian in the other, every dtype the file may hold.
    let file_a = dir.join("a.safetensors");
    write_file(
        &file_a,
        &[
            Tensor::f32("layer.0.weight.activations", &[50, 40], &layer),
            Tensor::f32("proj.weight.hessian", &[33, 33], &as_f32(&h_proj)),
            Tensor::bf16("head.weight.activations", &[90, 70], &head),
            Tensor::f64("empty.weight.hessian", &[5, 5], &h_empty),
            Tensor::f32("norm.weight.activations", &[1, 40], &[1.0; 40]),
        ],
        &[],
    );
    let file_b = dir.join("b.safetensors");
    write_file(
        &file_b,
        &[
            Tensor::f64("layer.0.weight.hessian", &[40, 40], &h_layer),
            Tensor::f16("proj.weight.activations", &[40, 33], &proj),
            Tensor::f64("head.weight.hessian", &[70, 70], &h_head),
            Tensor::f64("empty.weight.activations", &[3, 5], &empty),
        ],
        &[],
    );
    // The Hessian the tool should use for each weight, per file.
    let f32_hessian = |h: &[f64]| as_f32(h).iter().map(|&v| v as f64).collect::<Vec<f64>>();
    let expected_a: HashMap<&str, Vec<f64>> = [
        ("layer.0.weight", h_layer.clone()),
        ("proj.weight", f32_hessian(&h_proj)),
        ("head.weight", h_head.clone()),
        ("empty.weight", h_empty.clone()),
    ]
    .into();
    let expected_b: HashMap<&str, Vec<f64>> = [
        ("layer.0.weight", h_layer.clone()),
        ("proj.weight", h_proj.clone()),
        ("head.weight", h_head.clone()),
        ("empty.weight", h_empty.clone()),
    ]
    .into();

    let mut outputs = Vec::new();
    for (run, calibration, expected, g, damping) in [
        ("a", &file_a, &expected_a, 8usize, None),
        ("b", &file_b, &expected_b, 8, None),
        ("b2", &file_b, &expected_b, 32, Some("0.2")),
    ] {
        let out = dir.join(format!("q-{run}.safetensors"));
        let g_arg = g.to_string();
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "quantize".as_ref(),
            input.as_os_str(),
            out.as_os_str(),
            "-g".as_ref(),
            g_arg.as_ref(),
            "-e".as_ref(),
            "gptq".as_ref(),
            "--calibration".as_ref(),
            calibration.as_os_str(),
        ];
        if let Some(d) = damping {
            args.extend([std::ffi::OsStr::new("--damping"), d.as_ref()]);
        }
        let result = cortex_q4(args).ok();
        let damping_value = damping.map_or(Encoder::DEFAULT_DAMPING, |d| d.parse().unwrap());
        let damping_text = damping.unwrap_or("0.05");
        assert!(
            result
                .stderr
                .contains(&format!("with the gptq encoder (damping {damping_text})")),
            "{}",
            result.stderr
        );
        // The unused activations of a tensor not being quantized.
        assert_eq!(
            result
                .stderr
                .contains("\"norm.weight.activations\" calibrates no tensor"),
            run == "a",
            "{}",
            result.stderr
        );

        let bytes = std::fs::read(&out).unwrap();
        assert_aligned(&bytes);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().as_ref().unwrap();
        assert_eq!(meta["cortex_q4.encoder"], "gptq");
        assert_eq!(meta["cortex_q4.damping"], damping_text);
        for name in PACKED {
            let t = tensors.iter().find(|t| t.name == name).unwrap();
            let encoder = Encoder::ErrorCompensating {
                hessian: &expected[name],
                damping: damping_value,
            };
            let lib = library_pack(t, g, encoder);
            let what = format!("{name}, run {run}");
            assert_eq!(
                st.tensor(&format!("{name}.q4")).unwrap().data(),
                lib.packed(),
                "{what}"
            );
            assert_eq!(
                st.tensor(&format!("{name}.scales")).unwrap().data(),
                f32_bytes(lib.scales()),
                "{what}"
            );
            if name == "layer.0.weight" {
                let plain = library_pack(t, g, Encoder::Search { importance: None });
                assert_ne!(lib, plain, "{what}: the Hessian changes the packing");
            }
        }
        let report = cortex_q4(["inspect".as_ref(), out.as_os_str()]).ok().stdout;
        assert!(
            report.contains(&format!(
                "group size {g}, encoder gptq (damping {damping_text}), importance for 0 of 4 tensors"
            )),
            "{report}"
        );
        outputs.push(out);
    }
    // Activations and the F64 Hessian they sum to give the same bytes.
    let (a, b) = (
        std::fs::read(&outputs[0]).unwrap(),
        std::fs::read(&outputs[1]).unwrap(),
    );
    let (a, b) = (
        SafeTensors::deserialize(&a).unwrap(),
        SafeTensors::deserialize(&b).unwrap(),
    );
    for name in ["layer.0.weight.q4", "head.weight.q4", "head.weight.scales"] {
        assert_eq!(
            a.tensor(name).unwrap().data(),
            b.tensor(name).unwrap().data()
        );
    }
    // Restored like any other quantized file, without the format's keys.
    let restored = dir.join("restored.safetensors");
    cortex_q4([
        "dequantize".as_ref(),
        outputs[0].as_os_str(),
        restored.as_os_str(),
    ])
    .ok();
    let bytes = std::fs::read(&restored).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata().as_ref().unwrap(),
        &HashMap::from([("format".to_string(), "pt".to_string())])
    );
}

#[test]
fn help_names_the_gptq_encoder_and_its_default_damping() {
    let help = cortex_q4(["quantize", "--help"]).ok().stdout;
    for needle in [
        "gptq:    error-compensating (GPTQ, arXiv:2210.17323)".to_string(),
        "--calibration <CAL.safetensors>".into(),
        format!("[default: {}]", Encoder::DEFAULT_DAMPING),
    ] {
        assert!(help.contains(&needle), "{needle}: {help}");
    }
}

/// The columns of `inspect`'s line for tensor `name`.
fn line<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name} in\n{stdout}"));
    line.split_whitespace().collect()
}

fn close(printed: &str, value: f64, what: &str) {
    let p: f64 = printed.parse().unwrap();
    assert!(
        (p - value).abs() <= 1e-3 * value.abs() + 1e-12,
        "{what}: printed {printed}, library {value}"
    );
}

#[test]
fn inspect_reports_sizes_and_the_library_quality() {
    let dir = scratch("inspect");
    let input = dir.join("in.safetensors");
    let tensors = checkpoint();
    write_file(&input, &tensors, &[]);
    let q = dir.join("q.safetensors");
    cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        q.as_os_str(),
        "-g".as_ref(),
        "16".as_ref(),
    ])
    .ok();

    let plain = cortex_q4(["inspect".as_ref(), q.as_os_str()]).ok().stdout;
    assert!(
        plain.contains("cortex_q4 format 1, group size 16, encoder default"),
        "{plain}"
    );
    let against = cortex_q4([
        "inspect".as_ref(),
        q.as_os_str(),
        "--against".as_ref(),
        input.as_os_str(),
    ])
    .ok()
    .stdout;
    let (mut error2, mut signal2, mut weights, mut bytes) = (0f64, 0f64, 0usize, 0usize);
    for t in &tensors {
        if !PACKED.contains(&t.name.as_str()) {
            let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
            let bits = format!(
                "{:.3}",
                t.data.len() as f64 * 8.0 / t.shape.iter().product::<usize>() as f64
            );
            let size = t.data.len().to_string();
            let shape = format!("[{}]", dims.join(","));
            assert_eq!(line(&plain, &t.name)[1..], [&shape, t.dtype, &bits, &size]);
            assert_eq!(line(&against, &t.name)[5], "unchanged", "{}", t.name);
            continue;
        }
        let (rows, ncols) = (t.shape[0], t.shape[1]);
        let lib = library_pack(t, 16, Encoder::AbsMax);
        let size = lib.packed().len() + 4 * lib.scales().len();
        let cols = line(&plain, &t.name);
        let bits = if rows == 0 {
            "-".to_string()
        } else {
            format!("{:.3}", size as f64 * 8.0 / (rows * ncols) as f64)
        };
        assert_eq!(
            cols[1..5],
            [
                &format!("[{rows},{ncols}]"),
                &format!("Q4({})", t.dtype),
                &bits,
                &size.to_string()
            ]
        );
        if rows == 0 {
            continue;
        }
        let original: Vec<f32> = match t.dtype {
            "F32" => floats(&t.data),
            "F16" => t
                .data
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => t
                .data
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        };
        let quality = lib.as_matrix().quality(&original).unwrap();
        let cols = line(&against, &t.name);
        close(cols[5], quality.rmse, "rmse");
        close(cols[6], quality.max_abs_error, "max error");
        close(cols[7], quality.relative_frobenius, "relative error");
        close(cols[8], quality.snr_db, "snr");
        // Totals from the unpacked values, summed here.
        let unpacked: Vec<f32> = Quantizer::new(16)
            .unpack_to_vec(lib.packed(), lib.scales(), rows, ncols)
            .unwrap();
        for (w, u) in original.iter().zip(&unpacked) {
            error2 += (*w as f64 - *u as f64).powi(2);
            signal2 += (*w as f64).powi(2);
        }
        weights += rows * ncols;
        bytes += size;
    }
    let total = against
        .lines()
        .find(|l| l.starts_with("all quantized"))
        .unwrap();
    let cols: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(cols[3], bytes.to_string());
    close(cols[4], (error2 / weights as f64).sqrt(), "total rmse");
    close(cols[6], (error2 / signal2).sqrt(), "total relative error");
    close(cols[7], 10.0 * (signal2 / error2).log10(), "total snr");

    // A stored tensor that differs from the original's is reported.
    let mut changed = tensors.clone();
    changed[3].data[0] ^= 1;
    let other = dir.join("changed.safetensors");
    write_file(&other, &changed, &[]);
    let against = cortex_q4([
        "inspect".as_ref(),
        q.as_os_str(),
        "--against".as_ref(),
        other.as_os_str(),
    ])
    .ok()
    .stdout;
    assert_eq!(line(&against, "norm.weight")[5], "CHANGED");
    assert_eq!(line(&against, "layer.0.bias")[5], "unchanged");
}

#[test]
fn quiet_and_threads_change_nothing_written() {
    let dir = scratch("quiet_threads");
    let input = dir.join("in.safetensors");
    write_file(&input, &checkpoint(), &[]);
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let loud = cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        a.as_os_str(),
        "-e".as_ref(),
        "search".as_ref(),
    ])
    .ok();
    assert!(
        loud.stderr.starts_with("quantized 4 tensors"),
        "{}",
        loud.stderr
    );
    let quiet = cortex_q4([
        "quantize".as_ref(),
        input.as_os_str(),
        b.as_os_str(),
        "-e".as_ref(),
        "search".as_ref(),
        "--threads".as_ref(),
        "1".as_ref(),
        "--quiet".as_ref(),
    ])
    .ok();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn f16_values_round_trip_through_the_library() {
    // The restored F16 tensor equals the library's unpack of its pack:
    // checked above per dtype; here the values are also close to the
    // original's, so the pack is of the right data.
    let dir = scratch("close_values");
    let input = dir.join("in.safetensors");
    let values = weights(4, 64, 9);
    write_file(&input, &[Tensor::f16("w.weight", &[4, 64], &values)], &[]);
    let (q, d) = (dir.join("q.safetensors"), dir.join("d.safetensors"));
    cortex_q4(["quantize".as_ref(), input.as_os_str(), q.as_os_str()]).ok();
    cortex_q4(["dequantize".as_ref(), q.as_os_str(), d.as_os_str()]).ok();
    let bytes = std::fs::read(Path::new(&d)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let restored = values_f32(&st.tensor("w.weight").unwrap());
    for (chunk_o, chunk_r) in values.chunks(32).zip(restored.chunks(32)) {
        let max = chunk_o
            .iter()
            .fold(0f32, |m, v| m.max(f16::from_f32(*v).to_f32().abs()));
        for (o, r) in chunk_o.iter().zip(chunk_r) {
            // Half a step of max / 7, plus f16 rounding.
            assert!(
                (o - r).abs() <= max / 14.0 * 1.01 + 1e-3 * o.abs(),
                "{o} vs {r}"
            );
        }
    }
}

#[test]
fn inspect_stops_quietly_when_its_reader_does() {
    let dir = scratch("inspect_pipe");
    let input = dir.join("in.safetensors");
    write_file(&input, &checkpoint(), &[]);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cortex-q4"))
        .args(["inspect".as_ref(), input.as_os_str()])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
