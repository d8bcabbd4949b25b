//! Exact-mode products meet the bound the header and README state,
//! `|y - ref| <= (4 sqrt(cols) + 4) * 2^-24 * sum |x * w|`, against an
//! f64 product of the unpacked weights, on long rows and on data whose
//! rounding errors do not cancel (every `x * w` positive), for every kernel
//! this CPU runs and for group sizes with and without SIMD fast paths.

use cortex_q4::{Kernel, Options, PackedMatrix, Precision, Quantizer};

const U: f64 = 1.0 / (1u64 << 24) as f64;

fn kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

/// One weight row (packed with the default encoder) and `batch` activation
/// rows; returns, per kernel, the largest `error / bound` over the outputs.
fn worst_ratios(cols: usize, g: usize, w: &[f32], x: &[f32]) -> Vec<(Kernel, f64)> {
    let batch = x.len() / cols;
    let q = Quantizer::new(g);
    let (packed, scales) = q.pack_to_vec(w, 1, cols).unwrap().into_parts();
    // The reference: the unpacked weights, widened, times x in f64.
    let unpacked: Vec<f64> = q.unpack_to_vec(&packed, &scales, 1, cols).unwrap();
    let reference: Vec<(f64, f64)> = (0..batch)
        .map(|b| {
            let xs = &x[b * cols..(b + 1) * cols];
            xs.iter()
                .zip(&unpacked)
                .fold((0.0, 0.0), |(s, a), (&xv, &wv)| {
                    let t = xv as f64 * wv;
                    (s + t, a + t.abs())
                })
        })
        .collect();
    let bound = (4.0 * (cols as f64).sqrt() + 4.0) * U;
    let m = PackedMatrix::new(&packed, &scales, 1, cols, g).unwrap();
    kernels()
        .into_iter()
        .map(|kernel| {
            let opts = Options::default().with_kernel(kernel).with_threads(1);
            let mut y = vec![f32::NAN; batch];
            m.matmul(&opts, x, batch, Precision::Exact, &mut y).unwrap();
            let worst = y
                .iter()
                .zip(&reference)
                .map(|(&got, &(want, abs))| (got as f64 - want).abs() / (bound * abs))
                .fold(0f64, f64::max);
            (kernel, worst)
        })
        .collect()
}

/// Positive weights and activations, column by column.
type Pattern = fn(usize) -> (f32, f32);

const PATTERNS: [(&str, Pattern); 5] = [
    // Three weight levels, x = 1.
    ("thirds", |c| (1e-3 * (1 + c % 3) as f32, 1.0)),
    // One weight value: the same addend again and again.
    ("tenths", |_| (0.1, 1.0)),
    // Activations over ten binades, weights over one.
    ("spread", |c| {
        let x = (2f32).powi((c * 5 % 11) as i32 - 5) * (1.0 + (c % 7) as f32 / 8.0);
        (0.05 + (c * 37 % 101) as f32 / 100.0, x)
    }),
    // Growing weights within each group, activations near 1.
    ("ramp", |c| {
        (1.0 + (c % 29) as f32, 1.0 + (c % 5) as f32 / 3.0)
    }),
    // Pseudo-random, all positive.
    ("hashed", |c| {
        let h = |s: u64| {
            let v = (c as u64 ^ s).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            ((v >> 40) as f32 / (1u64 << 24) as f32) + 1e-3
        };
        (h(0x1234), h(0xABCD) * 3.0)
    }),
];

/// The case that showed the scalar twin's sequential sum past the bound:
/// g = 100 has no SIMD fast path, so every kernel runs the scalar twin.
#[test]
fn scalar_twin_meets_the_bound_on_a_long_row() {
    let (cols, g) = (4608, 100);
    let w: Vec<f32> = (0..cols).map(|c| 1e-3 * (1 + c % 3) as f32).collect();
    let x = vec![1f32; cols];
    for (kernel, ratio) in worst_ratios(cols, g, &w, &x) {
        assert!(ratio <= 1.0, "{}: error / bound = {ratio}", kernel.name());
    }
}

/// Long rows (ragged tails included), every pattern, group sizes with fast
/// paths (32, 64, 128, 48) and without (100, 7), one activation row and two
/// (the kernels' single-row and tiled paths differ).
#[test]
fn every_kernel_meets_the_bound_on_long_rows() {
    let mut worst: Vec<(Kernel, f64, String)> = kernels()
        .into_iter()
        .map(|k| (k, 0.0, String::new()))
        .collect();
    for cols in [4608, 16_411, 65_536, 65_613, 262_177] {
        for g in [32, 64, 128, 100, 48, 7] {
            for (name, pattern) in PATTERNS {
                let (w, x0): (Vec<f32>, Vec<f32>) = (0..cols).map(pattern).unzip();
                // The second activation row: the first reversed.
                let x: Vec<f32> = x0.iter().chain(x0.iter().rev()).copied().collect();
                for x in [&x0[..], &x[..]] {
                    let batch = x.len() / cols;
                    for (i, (kernel, ratio)) in worst_ratios(cols, g, &w, x).into_iter().enumerate()
                    {
                        let case = format!("cols {cols} g {g} {name} batch {batch}");
                        assert!(
                            ratio <= 1.0,
                            "{} {case}: error / bound = {ratio}",
                            kernel.name()
                        );
                        if ratio > worst[i].1 {
                            worst[i] = (kernel, ratio, case);
                        }
                    }
                }
            }
        }
    }
    for (kernel, ratio, case) in worst {
        eprintln!("{}: worst error / bound {ratio:.4} ({case})", kernel.name());
    }
}
