//! Many threads calling pack, unpack, the encoders and the products at
//! once, on shared inputs and disjoint outputs, with the library's pool on
//! (`threads = 0`) and off: every result must equal the one a lone call
//! gives, whatever else runs beside it. The matrix is large enough that
//! calls on the pool split their rows into tasks (over 2^16 weights, more
//! rows than a task's least); under Miri, which interprets every
//! instruction, a small one checks the same calls without the pool.

use std::sync::Barrier;
use std::thread;

use cortex_q4::{Encoder, Options, Precision, Quantizer};

const ROWS: usize = if cfg!(miri) { 16 } else { 64 };
const COLS: usize = if cfg!(miri) { 64 } else { 2048 };
const G: usize = 32;
const CALLERS: usize = 8;
const ROUNDS: usize = 2;

fn weights() -> Vec<f32> {
    (0..ROWS * COLS)
        .map(|i| ((i * 7919 % 2003) as f32 - 1001.0) / 97.0)
        .collect()
}

/// What one caller computes: the bytes and scales of every encoder, the
/// unpacked floats, and both products, as bit patterns.
fn work(w: &[f32], importance: &[f32], x: &[f32], options: Options) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let encoders = [
        Encoder::AbsMax,
        Encoder::Signed,
        Encoder::Search {
            importance: Some(importance),
        },
    ];
    for encoder in encoders {
        let q = Quantizer::new(G)
            .with_encoder(encoder)
            .with_options(options);
        let packed = q.pack_to_vec(w, ROWS, COLS).unwrap();
        out.push(packed.packed().iter().map(|&b| u32::from(b)).collect());
        out.push(packed.scales().iter().map(|s| s.to_bits()).collect());
        let unpacked: Vec<f32> = q
            .unpack_to_vec(packed.packed(), packed.scales(), ROWS, COLS)
            .unwrap();
        out.push(unpacked.iter().map(|v| v.to_bits()).collect());
        for precision in [Precision::Exact, Precision::Int8] {
            let mut y = vec![0f32; 2 * ROWS];
            let m = packed.as_matrix();
            m.matmul(&options, x, 2, precision, &mut y).unwrap();
            out.push(y.iter().map(|v| v.to_bits()).collect());
        }
    }
    out
}

#[test]
fn concurrent_callers_get_what_a_lone_call_gets() {
    let w = weights();
    let importance: Vec<f32> = (0..COLS).map(|c| (c % 5) as f32 + 0.5).collect();
    let x: Vec<f32> = (0..2 * COLS)
        .map(|i| ((i % 13) as f32 - 6.0) / 3.0)
        .collect();
    let lone = work(&w, &importance, &x, Options::default());
    // Every result is the same for any thread count, so one reference
    // serves the callers on the pool and those on their own thread.
    assert_eq!(
        lone,
        work(&w, &importance, &x, Options::default().with_threads(0))
    );
    let start = Barrier::new(CALLERS);
    thread::scope(|s| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (w, importance, x, start) = (&w, &importance, &x, &start);
                s.spawn(move || {
                    let options = Options::default().with_threads(if i % 2 == 0 { 0 } else { 1 });
                    start.wait();
                    (0..ROUNDS)
                        .map(|_| work(w, importance, x, options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for caller in callers {
            for result in caller.join().unwrap() {
                assert!(result == lone, "a concurrent call differed from a lone one");
            }
        }
    });
}

/// A pointer that threads share to write disjoint elements, as an engine
/// shares one output buffer between its own threads.
#[derive(Clone, Copy)]
struct Shared(*mut f32);

// SAFETY: each thread writes only the elements of its own row range.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

#[test]
fn threads_filling_one_output_through_the_c_abi_match_one_call() {
    use cortex_q4::ffi::{cq4_matmul_f32, cq4_matmul_rows_f32, cq4_matrix, cq4_status};
    let w = weights();
    let packed = Quantizer::new(G).pack_to_vec(&w, ROWS, COLS).unwrap();
    // Each thread makes its own descriptor of the shared bytes, as an
    // engine's threads would.
    let descriptor = || cq4_matrix {
        packed: packed.packed().as_ptr(),
        packed_len: packed.packed().len(),
        scales: packed.scales().as_ptr(),
        scales_len: packed.scales().len(),
        rows: ROWS,
        cols: COLS,
        group_size: G,
    };
    let m = descriptor();
    let batch = 3;
    let x: Vec<f32> = (0..batch * COLS)
        .map(|i| ((i % 29) as f32 - 14.0) / 7.0)
        .collect();
    for precision in [0u32, 1] {
        let mut whole = vec![0f32; batch * ROWS];
        // SAFETY: every buffer is valid for the length passed.
        let st = unsafe {
            cq4_matmul_f32(
                &m,
                x.as_ptr(),
                x.len(),
                batch,
                precision,
                whole.as_mut_ptr(),
                whole.len(),
                std::ptr::null(),
            )
        };
        assert_eq!(st, cq4_status::CQ4_OK);
        let mut split = vec![f32::NAN; batch * ROWS];
        let out = Shared(split.as_mut_ptr());
        let (descriptor, x) = (&descriptor, &x);
        thread::scope(|s| {
            for t in 0..CALLERS {
                let (r0, r1) = (t * ROWS / CALLERS, (t + 1) * ROWS / CALLERS);
                s.spawn(move || {
                    let (out, m) = (out, descriptor());
                    // SAFETY: `out + r0` is valid for the rest of the
                    // buffer; this thread writes only rows [r0, r1) of
                    // each activation row, which no other thread writes.
                    let st = unsafe {
                        cq4_matmul_rows_f32(
                            &m,
                            x.as_ptr(),
                            x.len(),
                            batch,
                            precision,
                            r0,
                            r1,
                            out.0.add(r0),
                            batch * ROWS - r0,
                            ROWS,
                            std::ptr::null(),
                        )
                    };
                    assert_eq!(st, cq4_status::CQ4_OK);
                });
            }
        });
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&split), bits(&whole), "precision id {precision}");
    }
}
