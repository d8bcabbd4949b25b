//! One layer of a 7B-class model (four 4096 x 4096, two 11008 x 4096 and
//! one 4096 x 11008 matrices, 107 MB packed at g = 32, so weights stream
//! from memory) times activations, at batch 1 and 8, one thread and all:
//! this library in both precisions (on the packed matrices and on their
//! prepared form) against unpack-then-dot, a naive loop,
//! candle-core's Q4_0 `vec_dot` (its Q8_0 activation quantization timed
//! too) and `QMatMul::forward`, and a streaming read of the weight bytes.
//!
//!     cargo bench --bench matmul
//!
//! Prints criterion's lines, then a table of ms per layer, GB/s of weight
//! bytes, GFLOP/s and ratios (also under target/criterion/).

mod common;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use candle_core::quantized::k_quants::{BlockQ4_0, BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use common::peers;
use cortex_q4::{Kernel, Options, PackedMatrix, Precision, PreparedMatrix, Quantizer};
use criterion::{BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;

const G: usize = 32;
/// (rows, cols) of the layer's matrices.
const SHAPES: [(usize, usize); 7] = [
    (4096, 4096),
    (4096, 4096),
    (4096, 4096),
    (4096, 4096),
    (11008, 4096),
    (11008, 4096),
    (4096, 11008),
];

struct Matrix {
    rows: usize,
    cols: usize,
    packed: Vec<u8>,
    scales: Vec<f32>,
    q4_0: Vec<BlockQ4_0>,
    qmatmul: QMatMul,
    /// The same weights in the prepared form.
    prepared: PreparedMatrix,
}

impl Matrix {
    fn view(&self) -> PackedMatrix<'_> {
        PackedMatrix::new(&self.packed, &self.scales, self.rows, self.cols, G).unwrap()
    }
}

fn layer() -> Vec<Matrix> {
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, &(rows, cols))| {
            let w = common::data::random_normal(rows * cols, 0xC0FFEE + i as u64);
            let (packed, scales) = Quantizer::new(G)
                .pack_to_vec(&w, rows, cols)
                .unwrap()
                .into_parts();
            let mut q4_0 = vec![BlockQ4_0::zeros(); rows * cols / 32];
            BlockQ4_0::from_float(&w, &mut q4_0);
            let t = Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap();
            let qmatmul =
                QMatMul::from_qtensor(QTensor::quantize(&t, GgmlDType::Q4_0).unwrap()).unwrap();
            let view = PackedMatrix::new(&packed, &scales, rows, cols, G).unwrap();
            let prepared = PreparedMatrix::new(&view, &Options::default()).unwrap();
            Matrix {
                rows,
                cols,
                packed,
                scales,
                q4_0,
                qmatmul,
                prepared,
            }
        })
        .collect()
}

/// Activations for every input width of the layer, `[batch, cols]`.
fn activations(batch: usize, cols: usize) -> Vec<f32> {
    common::data::random_normal(batch * cols, 0xAC7 + cols as u64)
}

/// This library's product over the layer, on the packed matrices or on
/// their prepared form.
fn cortex(
    layer: &[Matrix],
    xs: &[(usize, Vec<f32>)],
    batch: usize,
    (precision, prepared): (Precision, bool),
    opts: &Options,
    y: &mut [f32],
) {
    for m in layer {
        let x = &xs.iter().find(|(c, _)| *c == m.cols).unwrap().1;
        let y = &mut y[..batch * m.rows];
        if prepared {
            m.prepared.matmul(opts, x, batch, precision, y).unwrap();
        } else {
            m.view().matmul(opts, x, batch, precision, y).unwrap();
        }
    }
}

const PRODUCTS: [((Precision, bool), &str); 4] = [
    ((Precision::Int8, false), "cortex_int8"),
    ((Precision::Exact, false), "cortex_exact"),
    ((Precision::Int8, true), "cortex_prepared_int8"),
    ((Precision::Exact, true), "cortex_prepared_exact"),
];

/// Unpack each matrix into a reused f32 buffer, then f32 dot products.
fn unpack_then_dot(
    layer: &[Matrix],
    xs: &[(usize, Vec<f32>)],
    batch: usize,
    w: &mut [f32],
    y: &mut [f32],
) {
    for m in layer {
        let x = &xs.iter().find(|(c, _)| *c == m.cols).unwrap().1;
        let w = &mut w[..m.rows * m.cols];
        Quantizer::new(G)
            .unpack(&m.packed, &m.scales, m.rows, m.cols, w)
            .unwrap();
        for (r, row) in w.chunks_exact(m.cols).enumerate() {
            for b in 0..batch {
                y[b * m.rows + r] = peers::dot(row, &x[b * m.cols..(b + 1) * m.cols]);
            }
        }
    }
}

/// candle's Q4_0 x Q8_0 dot products, the Q8_0 quantization included.
fn candle_vec_dot(
    layer: &[Matrix],
    xs: &[(usize, Vec<f32>)],
    batch: usize,
    all_threads: bool,
    y: &mut [f32],
) {
    for m in layer {
        let x = &xs.iter().find(|(c, _)| *c == m.cols).unwrap().1;
        let mut q8 = vec![BlockQ8_0::zeros(); batch * m.cols / 32];
        BlockQ8_0::from_float(x, &mut q8);
        let blocks = m.cols / 32;
        let row = |r: usize, out: &mut [f32]| {
            let w = &m.q4_0[r * blocks..(r + 1) * blocks];
            for (b, o) in out.iter_mut().enumerate() {
                *o = BlockQ4_0::vec_dot(m.cols, w, &q8[b * blocks..(b + 1) * blocks]);
            }
        };
        let y = &mut y[..m.rows * batch];
        if all_threads {
            y.par_chunks_mut(batch)
                .enumerate()
                .for_each(|(r, out)| row(r, out));
        } else {
            y.chunks_mut(batch)
                .enumerate()
                .for_each(|(r, out)| row(r, out));
        }
    }
}

fn candle_qmatmul(layer: &[Matrix], xs: &[(usize, Tensor)]) {
    for m in layer {
        let x = &xs.iter().find(|(c, _)| *c == m.cols).unwrap().1;
        black_box(m.qmatmul.forward(x).unwrap());
    }
}

fn naive(layer: &[Matrix], xs: &[(usize, Vec<f32>)], y: &mut [f32]) {
    for m in layer {
        let x = &xs.iter().find(|(c, _)| *c == m.cols).unwrap().1;
        peers::naive_matvec(&m.packed, &m.scales, m.rows, m.cols, G, x, &mut y[..m.rows]);
    }
}

fn weight_bytes(layer: &[Matrix]) -> u64 {
    layer
        .iter()
        .map(|m| (m.packed.len() + 4 * m.scales.len()) as u64)
        .sum()
}

fn main() {
    let started = SystemTime::now();
    let layer = layer();
    let bytes = weight_bytes(&layer);
    let max_rows = SHAPES.iter().map(|s| s.0).max().unwrap();
    let max_weights = SHAPES.iter().map(|s| s.0 * s.1).max().unwrap();
    let mut w = vec![1f32; max_weights];
    // The peers must compute the same products as this library.
    {
        let xs: Vec<(usize, Vec<f32>)> = [4096, 11008]
            .map(|cols| (cols, activations(1, cols)))
            .into();
        let (mut a, mut b, mut n) = (
            vec![0f32; max_rows],
            vec![0f32; max_rows],
            vec![0f32; max_rows],
        );
        cortex(
            &layer[..1],
            &xs,
            1,
            (Precision::Exact, false),
            &Options::default(),
            &mut a,
        );
        unpack_then_dot(&layer[..1], &xs, 1, &mut w, &mut b);
        naive(&layer[..1], &xs, &mut n);
        for i in 0..layer[0].rows {
            assert!(
                (a[i] - b[i]).abs() <= 1e-3 * (1.0 + a[i].abs())
                    && (a[i] - n[i]).abs() <= 1e-3 * (1.0 + a[i].abs())
            );
        }
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    for batch in [1, 8] {
        let xs: Vec<(usize, Vec<f32>)> = [4096, 11008]
            .map(|cols| (cols, activations(batch, cols)))
            .into();
        let xt: Vec<(usize, Tensor)> = xs
            .iter()
            .map(|(cols, x)| {
                (
                    *cols,
                    Tensor::from_vec(x.clone(), (batch, *cols), &Device::Cpu).unwrap(),
                )
            })
            .collect();
        let mut y = vec![1f32; batch * max_rows];
        for (threads, label) in [(1, "1t"), (0, "allt")] {
            let mut group = c.benchmark_group(format!("layer_b{batch}_{label}"));
            group.throughput(Throughput::Bytes(bytes));
            let opts = Options::default().with_threads(threads);
            group.bench_function(BenchmarkId::new("read_bw", "all"), |b| {
                b.iter(|| {
                    layer
                        .iter()
                        .map(|m| {
                            let s = if threads == 1 {
                                peers::stream_read_bytes(&m.packed)
                            } else {
                                peers::stream_read_bytes_all(&m.packed)
                            };
                            s + if threads == 1 {
                                peers::stream_read(&m.scales)
                            } else {
                                peers::stream_read_all(&m.scales)
                            }
                        })
                        .sum::<f32>()
                })
            });
            for (product, name) in PRODUCTS {
                group.bench_function(BenchmarkId::new(name, Kernel::auto().name()), |b| {
                    b.iter(|| cortex(&layer, &xs, batch, product, &opts, &mut y))
                });
            }
            // What a CPU without AVX-512 runs, on this one.
            #[cfg(target_arch = "x86_64")]
            if threads == 1 && batch == 1 && Kernel::auto() == Kernel::Avx512 {
                let avx2 = opts.with_kernel(Kernel::Avx2);
                for (product, name) in PRODUCTS {
                    group.bench_function(BenchmarkId::new(name, "avx2"), |b| {
                        b.iter(|| cortex(&layer, &xs, batch, product, &avx2, &mut y))
                    });
                }
            }
            group.bench_function(BenchmarkId::new("candle_vec_dot", "q8_0"), |b| {
                b.iter(|| candle_vec_dot(&layer, &xs, batch, threads != 1, &mut y))
            });
            if threads == 1 {
                group.bench_function(BenchmarkId::new("unpack_then_dot", "f32"), |b| {
                    b.iter(|| unpack_then_dot(&layer, &xs, batch, &mut w, &mut y))
                });
                if batch == 1 {
                    group.bench_function(BenchmarkId::new("naive", "scalar"), |b| {
                        b.iter(|| naive(&layer, &xs, &mut y))
                    });
                }
            } else {
                group.bench_function(BenchmarkId::new("candle_qmatmul", "forward"), |b| {
                    b.iter(|| candle_qmatmul(&layer, &xt))
                });
            }
            group.finish();
        }
    }
    c.final_summary();
    common::summary::matmul(
        started,
        bytes,
        SHAPES.iter().map(|s| (s.0 * s.1) as f64).sum(),
    );
}
