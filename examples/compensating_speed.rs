//! Seconds the error-compensating encoder takes on LLaMA-7B-sized
//! matrices: `[4096, 4096]` (attention) and `[11008, 4096]` (MLP up and
//! gate), g = 128, on every thread of the machine, with each kernel this
//! CPU runs (the same bytes, checked) beside the default encoder; also the
//! Hessian's accumulation over 4096 tokens and the factorization alone.
//!
//! ```text
//! cargo run --release --example compensating_speed [ROWS COLS ...]
//! ```
//!
//! The data are synthetic (correlated activations, uniform weights): the
//! time does not depend on the values.

use std::time::Instant;

use cortex_q4::{Encoder, Hessian, Kernel, Options, Quantizer};

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
    let kernels: Vec<Kernel> = Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported() && *k != Kernel::AvxVnni)
        .collect();
    println!(
        "threads: {}; g = 128; Hessian from {tokens} tokens",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let names: Vec<&str> = kernels.iter().map(|k| k.name()).collect();
    println!(
        "| rows x cols | Hessian (s) | factorization (s) | error-compensating, {} (s) | default (s) |",
        names.join(" / ")
    );
    println!("|---|---|---|---|---|");
    for (rows, cols) in shapes {
        let x = noise(1, tokens * cols);
        let start = Instant::now();
        let mut h = Hessian::new(cols)?;
        h.accumulate(&options, &x, tokens)?;
        let accumulate = start.elapsed().as_secs_f64();
        let w = noise(2, rows * cols);
        let q = Quantizer::new(128).with_options(options);
        let gptq = q.with_encoder(Encoder::error_compensating(h.matrix()));
        // A matrix without rows costs the factorization alone.
        let start = Instant::now();
        gptq.pack_to_vec(&w, 0, cols)?;
        let factorization = start.elapsed().as_secs_f64();
        let mut times = Vec::new();
        let mut bytes = None;
        for &kernel in &kernels {
            let start = Instant::now();
            let packed = gptq
                .with_options(options.with_kernel(kernel))
                .pack_to_vec(&w, rows, cols)?;
            times.push(format!("{:.2}", start.elapsed().as_secs_f64()));
            assert!(bytes.get_or_insert_with(|| packed.clone()) == &packed);
        }
        let start = Instant::now();
        q.pack_to_vec(&w, rows, cols)?;
        let default = start.elapsed().as_secs_f64();
        println!(
            "| {rows} x {cols} | {accumulate:.2} | {factorization:.2} | {} | {default:.3} |",
            times.join(" / ")
        );
    }
    Ok(())
}
