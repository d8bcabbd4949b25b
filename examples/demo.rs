//! Packs a random-normal 4096 x 4096 f32 matrix at g = 32, unpacks it, and
//! prints sizes, compression ratio, reconstruction error and throughput.
//!
//!     cargo run --release --example demo

use std::time::Instant;

use cortex_q4::{pack, unpack, Layout};

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
    let layout = Layout::new(ROWS, COLS, GROUP_SIZE)?;
    let weights = data::random_normal(layout.elements, 0x5EED_C0DE);
    // Outputs are pre-touched so that page faults are not timed.
    let mut packed = vec![1u8; layout.packed_len];
    let mut scales = vec![1f32; layout.scales_len];
    let mut restored = vec![1f32; layout.elements];

    let pack_s = best_of(|| {
        pack(&weights, ROWS, COLS, GROUP_SIZE, &mut packed, &mut scales).unwrap();
    });
    let unpack_s = best_of(|| {
        unpack(&packed, &scales, ROWS, COLS, GROUP_SIZE, &mut restored).unwrap();
    });

    let (mut sq_err, mut sq_sig, mut max_err) = (0f64, 0f64, 0f32);
    for (w, r) in weights.iter().zip(&restored) {
        let e = (w - r).abs();
        max_err = max_err.max(e);
        sq_err += (e as f64).powi(2);
        sq_sig += (*w as f64).powi(2);
    }
    let n = layout.elements as f64;
    let f32_bytes = n * 4.0;
    let q4_bytes = (layout.packed_len + 4 * layout.scales_len) as f64;
    let gb = |bytes: f64, s: f64| bytes / s / 1e9;

    println!("cortex_q4 {} demo", env!("CARGO_PKG_VERSION"));
    println!("matrix            {ROWS} x {COLS} f32, random normal, g = {GROUP_SIZE}");
    println!("f32 size          {:.1} MiB", f32_bytes / (1 << 20) as f64);
    println!(
        "packed size       {:.1} MiB ({} bytes + {} scales)",
        q4_bytes / (1 << 20) as f64,
        layout.packed_len,
        layout.scales_len
    );
    println!(
        "compression       {:.2}x vs f32 ({:.2} bits per weight)",
        f32_bytes / q4_bytes,
        q4_bytes * 8.0 / n
    );
    println!("RMSE              {:.5}", (sq_err / n).sqrt());
    println!("max abs error     {max_err:.5}");
    println!(
        "SNR               {:.2} dB",
        10.0 * (sq_sig / sq_err).log10()
    );
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
    Ok(())
}
