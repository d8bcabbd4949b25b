//! Seconds the error-compensating encoder takes on LLaMA-7B-sized
//! matrices: `[4096, 4096]` (attention) and `[11008, 4096]` (MLP up and
//! gate), g = 128, on every thread of the machine, beside the default
//! encoder; also the Hessian's accumulation over 4096 tokens.
//!
//! ```text
//! cargo run --release --example compensating_speed [ROWS COLS ...]
//! ```
//!
//! The data are synthetic (correlated activations, uniform weights): the
//! time does not depend on the values.

use std::time::Instant;

use cortex_q4::{Encoder, Hessian, Options, Quantizer};

fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn main() -> Result<(), cortex_q4::Error> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("ROWS COLS ... as integers"))
        .collect();
    let shapes: Vec<(usize, usize)> = if args.is_empty() {
        vec![(4096, 4096), (11008, 4096)]
    } else {
        args.chunks_exact(2).map(|c| (c[0], c[1])).collect()
    };
    let options = Options::default().with_threads(0);
    let tokens = 4096;
    println!(
        "threads: {}; g = 128; Hessian from {tokens} tokens",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| rows x cols | Hessian (s) | error-compensating (s) | default (s) |");
    println!("|---|---|---|---|");
    for (rows, cols) in shapes {
        let x = noise(1, tokens * cols);
        let start = Instant::now();
        let mut h = Hessian::new(cols)?;
        h.accumulate(&options, &x, tokens)?;
        let accumulate = start.elapsed().as_secs_f64();
        let w = noise(2, rows * cols);
        let q = Quantizer::new(128).with_options(options);
        let start = Instant::now();
        let compensated = q
            .with_encoder(Encoder::error_compensating(h.matrix()))
            .pack_to_vec(&w, rows, cols)?;
        let gptq = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let plain = q.pack_to_vec(&w, rows, cols)?;
        let default = start.elapsed().as_secs_f64();
        assert_eq!(compensated.packed().len(), plain.packed().len());
        println!("| {rows} x {cols} | {accumulate:.2} | {gptq:.2} | {default:.3} |");
    }
    Ok(())
}
