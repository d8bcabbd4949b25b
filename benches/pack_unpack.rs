//! Pack and unpack of a 4096 x 4096 random-normal f32 matrix: every kernel
//! of this library against its peers and the memory limits, in one run.
//!
//!     cargo bench --bench pack_unpack
//!
//! (`--features candle` adds the rows of this library's candle API.)
//!
//! Prints criterion's lines, then a table of GB/s (f32 bytes touched) and
//! ratios, and f16 / bf16 against f32 at g = 32, also written to
//! target/criterion/cortex_q4_pack_unpack.md.

mod common;

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use candle_core::quantized::k_quants::{BlockQ4_0, GgmlType};
use candle_core::{Device, Tensor};
use common::peers;
use cortex_q4::{Element, Kernel, Layout, Options, Quantizer};
use criterion::{BenchmarkId, Criterion, Throughput};
use half::{bf16, f16};

const ROWS: usize = 4096;
const COLS: usize = 4096;
const GROUP_SIZES: [usize; 3] = [32, 64, 128];
const F32_BYTES: u64 = (ROWS * COLS * 4) as u64;

struct Data {
    weights: Vec<f32>,
    tensor: Tensor,
}

fn kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

/// `w` packed at g = 32, as the tensors the candle API gives (and takes):
/// with the `candle` feature by that API, else by the slice API.
fn packed_tensors(w: &[f32]) -> (Tensor, Tensor) {
    #[cfg(feature = "candle")]
    let (p, s) = {
        let t = Tensor::from_vec(w.to_vec(), (ROWS, COLS), &Device::Cpu).unwrap();
        cortex_q4::pack_4bit_symmetric(&t, 32).unwrap()
    };
    #[cfg(not(feature = "candle"))]
    let (p, s) = {
        let packed = Quantizer::new(32).pack_to_vec(w, ROWS, COLS).unwrap();
        let l = *packed.layout();
        let (p, s) = packed.into_parts();
        (
            Tensor::from_vec(p, (ROWS, l.packed_row_bytes()), &Device::Cpu).unwrap(),
            Tensor::from_vec(s, (ROWS, l.groups_per_row()), &Device::Cpu).unwrap(),
        )
    };
    (p, s)
}

fn bench_pack(c: &mut Criterion, data: &Data) {
    let w = &data.weights;
    let mut group = c.benchmark_group("pack_1t");
    group.throughput(Throughput::Bytes(F32_BYTES));
    group.bench_function(BenchmarkId::new("read_bw", "all"), |b| {
        b.iter(|| peers::stream_read(black_box(w)))
    });
    for g in GROUP_SIZES {
        let l = Layout::new(ROWS, COLS, g).unwrap();
        let mut packed = vec![1u8; l.packed_len()];
        let mut scales = vec![1f32; l.scales_len()];
        let want = Quantizer::new(g)
            .with_options(Options::default().with_kernel(Kernel::Scalar))
            .pack_to_vec(w, ROWS, COLS)
            .unwrap();
        for kernel in kernels() {
            let opts = Options::default().with_kernel(kernel);
            group.bench_function(
                BenchmarkId::new(format!("cortex_{}", kernel.name()), g),
                |b| {
                    b.iter(|| {
                        Quantizer::new(g)
                            .with_options(opts)
                            .pack(w, ROWS, COLS, &mut packed, &mut scales)
                            .unwrap()
                    })
                },
            );
        }
        peers::naive_pack(w, ROWS, COLS, g, &mut packed, &mut scales);
        assert_eq!(
            (&packed[..], &scales[..]),
            (want.packed(), want.scales()),
            "the naive peer must compute the format"
        );
        group.bench_function(BenchmarkId::new("naive", g), |b| {
            b.iter(|| peers::naive_pack(w, ROWS, COLS, g, &mut packed, &mut scales))
        });
    }
    let (sp, ss) = peers::seed_style_pack(&data.tensor, 32).unwrap();
    let (p, s) = packed_tensors(w);
    assert_eq!(
        p.flatten_all().unwrap().to_vec1::<u8>().unwrap(),
        sp.flatten_all().unwrap().to_vec1::<u8>().unwrap()
    );
    assert_eq!(
        s.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        ss.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    );
    #[cfg(feature = "candle")]
    group.bench_function(BenchmarkId::new("candle_api", 32), |b| {
        b.iter(|| cortex_q4::pack_4bit_symmetric(&data.tensor, 32).unwrap())
    });
    group.bench_function(BenchmarkId::new("slice_to_vec", 32), |b| {
        b.iter(|| Quantizer::new(32).pack_to_vec(w, ROWS, COLS).unwrap())
    });
    group.bench_function(BenchmarkId::new("seed_style", 32), |b| {
        b.iter(|| peers::seed_style_pack(&data.tensor, 32).unwrap())
    });
    let mut blocks = vec![BlockQ4_0::zeros(); ROWS * COLS / 32];
    group.bench_function(BenchmarkId::new("candle_q4_0", 32), |b| {
        b.iter(|| BlockQ4_0::from_float(w, &mut blocks))
    });
    group.finish();

    let mut group = c.benchmark_group("pack_allt");
    group.throughput(Throughput::Bytes(F32_BYTES));
    group.bench_function(BenchmarkId::new("read_bw", "all"), |b| {
        b.iter(|| peers::stream_read_all(black_box(w)))
    });
    let all = Options::default().with_threads(0);
    for g in GROUP_SIZES {
        let l = Layout::new(ROWS, COLS, g).unwrap();
        let mut packed = vec![1u8; l.packed_len()];
        let mut scales = vec![1f32; l.scales_len()];
        group.bench_function(BenchmarkId::new("cortex_auto", g), |b| {
            b.iter(|| {
                Quantizer::new(g)
                    .with_options(all)
                    .pack(w, ROWS, COLS, &mut packed, &mut scales)
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn bench_unpack(c: &mut Criterion, data: &Data) {
    let mut dst = vec![1f32; ROWS * COLS];
    let mut group = c.benchmark_group("unpack_1t");
    group.throughput(Throughput::Bytes(F32_BYTES));
    group.bench_function(BenchmarkId::new("write_bw", "all"), |b| {
        b.iter(|| peers::stream_write(&mut dst, 0.5))
    });
    group.bench_function(BenchmarkId::new("write_bw_nt", "all"), |b| {
        b.iter(|| peers::stream_write_nt(&mut dst, 0.5))
    });
    for g in GROUP_SIZES {
        let (packed, scales) = Quantizer::new(g)
            .pack_to_vec(&data.weights, ROWS, COLS)
            .unwrap()
            .into_parts();
        let want: Vec<f32> = Quantizer::new(g)
            .with_options(Options::default().with_kernel(Kernel::Scalar))
            .unpack_to_vec(&packed, &scales, ROWS, COLS)
            .unwrap();
        for kernel in kernels() {
            let opts = Options::default().with_kernel(kernel);
            group.bench_function(
                BenchmarkId::new(format!("cortex_{}", kernel.name()), g),
                |b| {
                    b.iter(|| {
                        Quantizer::new(g)
                            .with_options(opts)
                            .unpack(&packed, &scales, ROWS, COLS, &mut dst)
                            .unwrap()
                    })
                },
            );
        }
        peers::naive_unpack(&packed, &scales, ROWS, COLS, g, &mut dst);
        assert_eq!(dst, want, "the naive peer must compute the format");
        group.bench_function(BenchmarkId::new("naive", g), |b| {
            b.iter(|| peers::naive_unpack(&packed, &scales, ROWS, COLS, g, &mut dst))
        });
    }
    let (p, s) = packed_tensors(&data.weights);
    #[cfg(feature = "candle")]
    group.bench_function(BenchmarkId::new("candle_api", 32), |b| {
        b.iter(|| cortex_q4::unpack_4bit_symmetric(&p, &s, (ROWS, COLS), 32).unwrap())
    });
    let (packed, scales) = Quantizer::new(32)
        .pack_to_vec(&data.weights, ROWS, COLS)
        .unwrap()
        .into_parts();
    group.bench_function(BenchmarkId::new("slice_to_vec", 32), |b| {
        b.iter(|| {
            Quantizer::new(32)
                .unpack_to_vec::<f32>(&packed, &scales, ROWS, COLS)
                .unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("seed_style", 32), |b| {
        b.iter(|| peers::seed_style_unpack(&p, &s, ROWS, COLS, 32).unwrap())
    });
    let mut blocks = vec![BlockQ4_0::zeros(); ROWS * COLS / 32];
    BlockQ4_0::from_float(&data.weights, &mut blocks);
    group.bench_function(BenchmarkId::new("candle_q4_0", 32), |b| {
        b.iter(|| BlockQ4_0::to_float(&blocks, &mut dst))
    });
    group.finish();

    let mut group = c.benchmark_group("unpack_allt");
    group.throughput(Throughput::Bytes(F32_BYTES));
    group.bench_function(BenchmarkId::new("write_bw", "all"), |b| {
        b.iter(|| peers::stream_write_all(&mut dst, 0.5))
    });
    group.bench_function(BenchmarkId::new("write_bw_nt", "all"), |b| {
        b.iter(|| peers::stream_write_nt_all(&mut dst, 0.5))
    });
    let all = Options::default().with_threads(0);
    for g in GROUP_SIZES {
        let (packed, scales) = Quantizer::new(g)
            .pack_to_vec(&data.weights, ROWS, COLS)
            .unwrap()
            .into_parts();
        group.bench_function(BenchmarkId::new("cortex_auto", g), |b| {
            b.iter(|| {
                Quantizer::new(g)
                    .with_options(all)
                    .unpack(&packed, &scales, ROWS, COLS, &mut dst)
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// Pack and unpack of the same matrix as f16 or bf16 at g = 32, one
/// thread, every kernel: `<name>_pack_1t` / `<name>_unpack_1t`, functions
/// `cortex_<kernel>`, beside the f32 numbers of `pack_1t` / `unpack_1t`.
fn bench_half<T: Element>(c: &mut Criterion, name: &str, weights: &[f32]) {
    const G: usize = 32;
    let src: Vec<T> = weights.iter().map(|&w| T::from_f32(w)).collect();
    let l = Layout::new(ROWS, COLS, G).unwrap();
    let (mut packed, mut scales) = (vec![1u8; l.packed_len()], vec![1f32; l.scales_len()]);
    let mut group = c.benchmark_group(format!("{name}_pack_1t"));
    group.throughput(Throughput::Elements((ROWS * COLS) as u64));
    for kernel in kernels() {
        let opts = Options::default().with_kernel(kernel);
        group.bench_function(
            BenchmarkId::new(format!("cortex_{}", kernel.name()), G),
            |b| {
                b.iter(|| {
                    Quantizer::new(G)
                        .with_options(opts)
                        .pack(&src, ROWS, COLS, &mut packed, &mut scales)
                        .unwrap()
                })
            },
        );
    }
    group.finish();

    let mut dst = src;
    let mut group = c.benchmark_group(format!("{name}_unpack_1t"));
    group.throughput(Throughput::Elements((ROWS * COLS) as u64));
    for kernel in kernels() {
        let opts = Options::default().with_kernel(kernel);
        group.bench_function(
            BenchmarkId::new(format!("cortex_{}", kernel.name()), G),
            |b| {
                b.iter(|| {
                    Quantizer::new(G)
                        .with_options(opts)
                        .unpack(&packed, &scales, ROWS, COLS, &mut dst)
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

fn main() {
    let started = SystemTime::now();
    let weights = common::data::random_normal(ROWS * COLS, 0x5EED_C0DE);
    let tensor = Tensor::from_vec(weights.clone(), (ROWS, COLS), &Device::Cpu).unwrap();
    let data = Data { weights, tensor };
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_pack(&mut c, &data);
    bench_unpack(&mut c, &data);
    bench_half::<f16>(&mut c, "f16", &data.weights);
    bench_half::<bf16>(&mut c, "bf16", &data.weights);
    c.final_summary();
    common::summary::pack_unpack(started);
}
