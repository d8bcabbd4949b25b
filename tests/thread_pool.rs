//! The library's thread pool (rayon's global pool) starts only for a call
//! that splits its rows over it: calls on the calling thread (the default
//! options) and calls too small to split spawn no thread. The only test in
//! its binary, since it counts the process's threads.
#![cfg(target_os = "linux")]

use cortex_q4::{q4_0, Encoder, Options, Precision, Quantizer};

/// The threads of this process.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn only_calls_that_split_their_rows_start_the_pool() {
    // 2^18 weights: several tasks' worth for a call that may split.
    let (rows, cols, g) = (64, 4096, 32);
    let w: Vec<f32> = (0..rows * cols).map(|i| (i % 31) as f32 - 15.0).collect();
    let x = vec![1f32; cols];
    let mut y = vec![0f32; rows];
    let mut blocks = vec![0u8; rows * cols / 32 * cortex_q4::Q4_0_BLOCK_BYTES];
    let all = Options::default().with_threads(0);
    let before = threads();

    // The default options, on the whole matrix.
    let one = Options::default();
    for encoder in [Encoder::AbsMax, Encoder::Signed] {
        let q = Quantizer::new(g).with_encoder(encoder);
        let packed = q.pack_to_vec(&w, rows, cols).unwrap();
        let _: Vec<f32> = q
            .unpack_to_vec(packed.packed(), packed.scales(), rows, cols)
            .unwrap();
        for precision in [Precision::Exact, Precision::Int8] {
            packed
                .as_matrix()
                .matmul(&one, &x, 1, precision, &mut y)
                .unwrap();
        }
    }
    q4_0::quantize(&one, &w, rows, cols, &mut blocks).unwrap();
    // Every thread, on one row: too small to split.
    let row = Quantizer::new(g)
        .with_options(all)
        .pack_to_vec(&w[..cols], 1, cols)
        .unwrap();
    row.as_matrix()
        .matmul(&all, &x, 1, Precision::Exact, &mut y[..1])
        .unwrap();
    assert_eq!(
        threads(),
        before,
        "a call that does not split started threads"
    );

    // Every thread, on the whole matrix: the pool starts.
    Quantizer::new(g)
        .with_options(all)
        .pack_to_vec(&w, rows, cols)
        .unwrap();
    assert!(threads() > before, "the pool did not start");
}
