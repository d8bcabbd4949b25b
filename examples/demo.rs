//! Packs a random-normal 4096 x 4096 f32 matrix at g = 32, unpacks it, and
//! prints sizes, compression ratio, reconstruction error and throughput;
//! multiplies a vector by the packed matrix in both precisions; then
//! compares the encoders on a matrix shaped like transformer weights.
//!
//!     cargo run --release --example demo

use std::time::Instant;

use cortex_q4::{Encoder, Options, PackedMatrix, Precision, Quantizer};

#[path = "../benches/common/data.rs"]
mod data;

const ROWS: usize = 4096;
const COLS: usize = 4096;
const GROUP_SIZE: usize = 32;

/// Runs `f` a few times and returns the best time in seconds.
fn best_of(mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), cortex_q4::Error> {
    let quantizer = Quantizer::new(GROUP_SIZE);
    let layout = quantizer.layout(ROWS, COLS)?;
    let weights = data::random_normal(layout.elements(), 0x5EED_C0DE);
    // Outputs are pre-touched so that page faults are not timed.
    let mut packed = vec![1u8; layout.packed_len()];
    let mut scales = vec![1f32; layout.scales_len()];
    let mut restored = vec![1f32; layout.elements()];

    let pack_s = best_of(|| {
        quantizer
            .pack(&weights, ROWS, COLS, &mut packed, &mut scales)
            .unwrap();
    });
    let unpack_s = best_of(|| {
        quantizer
            .unpack(&packed, &scales, ROWS, COLS, &mut restored)
            .unwrap();
    });

    let q = PackedMatrix::new(&packed, &scales, ROWS, COLS, GROUP_SIZE)?.quality(&weights)?;
    let n = layout.elements() as f64;
    let f32_bytes = n * 4.0;
    let q4_bytes = (layout.packed_len() + 4 * layout.scales_len()) as f64;
    let gb = |bytes: f64, s: f64| bytes / s / 1e9;

    println!("cortex_q4 {} demo", env!("CARGO_PKG_VERSION"));
    println!("matrix            {ROWS} x {COLS} f32, random normal, g = {GROUP_SIZE}");
    println!("f32 size          {:.1} MiB", f32_bytes / (1 << 20) as f64);
    println!(
        "packed size       {:.1} MiB ({} bytes + {} scales)",
        q4_bytes / (1 << 20) as f64,
        layout.packed_len(),
        layout.scales_len()
    );
    println!(
        "compression       {:.2}x vs f32 ({:.2} bits per weight)",
        f32_bytes / q4_bytes,
        q4_bytes * 8.0 / n
    );
    println!("RMSE              {:.5}", q.rmse);
    println!("max abs error     {:.5}", q.max_abs_error);
    println!("SNR               {:.2} dB", q.snr_db);
    println!(
        "pack              {:.2} ms, {:.2} GB/s of f32 read",
        pack_s * 1e3,
        gb(f32_bytes, pack_s)
    );
    println!(
        "unpack            {:.2} ms, {:.2} GB/s of f32 written",
        unpack_s * 1e3,
        gb(f32_bytes, unpack_s)
    );
    products(&packed, &scales, &restored)?;
    compare_encoders()
}

/// `y = W x` with the packed matrix in both precisions, timed on one
/// thread, and each result's worst error against an f64 product of the
/// unpacked weights, relative to `sum |w x|` of that output.
fn products(packed: &[u8], scales: &[f32], unpacked: &[f32]) -> Result<(), cortex_q4::Error> {
    let w = PackedMatrix::new(packed, scales, ROWS, COLS, GROUP_SIZE)?;
    let x = data::random_normal(COLS, 0xAC71_7A7E);
    let one_thread = Options::default().with_threads(1);
    let bytes = (packed.len() + 4 * scales.len()) as f64;
    println!(
        "
y = W x with the packed matrix, one activation row, one thread"
    );
    println!("(10 MiB of weights, so they stay in cache between runs):");
    for (precision, name) in [(Precision::Exact, "exact"), (Precision::Int8, "int8")] {
        let mut y = vec![0f32; ROWS];
        let seconds = best_of(|| w.matmul(&one_thread, &x, 1, precision, &mut y).unwrap());
        let worst = unpacked
            .chunks_exact(COLS)
            .zip(&y)
            .map(|(row, &got)| {
                let terms = row.iter().zip(&x).map(|(&w, &x)| w as f64 * x as f64);
                let (sum, abs) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
                (got as f64 - sum).abs() / abs
            })
            .fold(0.0, f64::max);
        println!(
            "{name:<17} {:.3} ms, {:.1} GB/s of weights, worst error {worst:.1e} of sum |w x|",
            seconds * 1e3,
            bytes / seconds / 1e9
        );
    }
    Ok(())
}

/// RMSE of each encoder (same layout, same decoder) on a structured
/// matrix, relative to the default, and its packing time on all threads.
fn compare_encoders() -> Result<(), cortex_q4::Error> {
    const ROWS: usize = 512;
    let weights = data::structured(ROWS, COLS, 0x7EA5_0A11);
    let all_threads = Options::default().with_threads(0);
    println!("\nencoders on a {ROWS} x {COLS} matrix shaped like transformer weights");
    println!("(heavy tails, per-row scales, outlier columns); all threads:");
    println!("| g | absmax / 7 RMSE | signed | search | search time |");
    println!("|---|---|---|---|---|");
    for g in [32, 64, 128] {
        let quantizer = Quantizer::new(g).with_options(all_threads);
        let layout = quantizer.layout(ROWS, COLS)?;
        let mut packed = vec![0u8; layout.packed_len()];
        let mut scales = vec![0f32; layout.scales_len()];
        let mut rmse = |encoder: Encoder| -> Result<(f64, f64), cortex_q4::Error> {
            let t = Instant::now();
            quantizer
                .with_encoder(encoder)
                .pack(&weights, ROWS, COLS, &mut packed, &mut scales)?;
            let seconds = t.elapsed().as_secs_f64();
            let w = PackedMatrix::new(&packed, &scales, ROWS, COLS, g)?;
            Ok((w.quality(&weights)?.rmse, seconds))
        };
        let (base, _) = rmse(Encoder::AbsMax)?;
        let (signed, _) = rmse(Encoder::Signed)?;
        let (search, seconds) = rmse(Encoder::Search { importance: None })?;
        let change = |r: f64| (r / base - 1.0) * 100.0;
        println!(
            "| {g} | {base:.6} | {:+.1}% | {:+.1}% | {:.0} ms |",
            change(signed),
            change(search),
            seconds * 1e3
        );
    }
    Ok(())
}
