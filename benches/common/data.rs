//! Test data with a fixed seed (xorshift64* and Box-Muller), shared by the
//! benches and the demo so both measure the same matrices.

/// `n` standard-normal f32 values from `seed`.
pub fn random_normal(n: usize, mut seed: u64) -> Vec<f32> {
    let mut uniform = move || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        ((seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect()
}

/// A `[rows, cols]` matrix shaped like transformer weights: heavy-tailed
/// values (a normal times a log-normal), a scale per row, and every 97th
/// column an outlier channel eight times larger.
pub fn structured(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let z = random_normal(2 * rows * cols + rows, seed);
    let (values, rest) = z.split_at(rows * cols);
    let (tails, row_scales) = rest.split_at(rows * cols);
    (0..rows * cols)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            let channel = if c % 97 == 0 { 8.0 } else { 1.0 };
            values[i] * (0.6 * tails[i]).exp() * (0.3 * row_scales[r]).exp() * channel * 0.02
        })
        .collect()
}
