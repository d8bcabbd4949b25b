//! GGML Q4_0 quantization against candle-core's `BlockQ4_0::from_float`
//! (4096 x 4096 random normal), Q4_0 import and export, the encoders'
//! cost (a 256 x 4096 matrix shaped like transformer weights), and the
//! quality report, one thread, in one run.
//!
//!     cargo bench --bench formats
//!
//! Prints criterion's lines, then a table of GB/s (f32 bytes read, or the
//! f32 bytes the blocks hold) and ratios, also written to
//! target/criterion/cortex_q4_formats.md.

mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use candle_core::quantized::k_quants::{BlockQ4_0, GgmlType};
use common::summary::{row, Results};
use common::{data, peers};
use cortex_q4::{q4_0, Encoder, Layout, Options, PackedMatrix, Quantizer, Q4_0_BLOCK_BYTES};
use criterion::{BenchmarkId, Criterion, Throughput};

const COLS: usize = 4096;
const Q4_0_ROWS: usize = 4096;
const ENCODER_ROWS: usize = 256;

fn bench_q4_0(c: &mut Criterion) {
    let w = data::random_normal(Q4_0_ROWS * COLS, 0x5EED_C0DE);
    let blocks_len = Q4_0_ROWS * COLS / 32 * Q4_0_BLOCK_BYTES;
    let mut blocks = vec![1u8; blocks_len];
    let mut theirs = vec![BlockQ4_0::zeros(); Q4_0_ROWS * COLS / 32];
    let mut packed = vec![1u8; Q4_0_ROWS * COLS / 2];
    let mut scales = vec![1f32; Q4_0_ROWS * COLS / 32];
    q4_0::quantize(&Options::default(), &w, Q4_0_ROWS, COLS, &mut blocks).unwrap();
    BlockQ4_0::from_float(&w, &mut theirs);
    assert_eq!(theirs.len() * Q4_0_BLOCK_BYTES, blocks_len);
    for (i, (ours, theirs)) in blocks
        .chunks_exact(Q4_0_BLOCK_BYTES)
        .zip(&theirs)
        .enumerate()
    {
        let mut decoded = [0f32; 32];
        BlockQ4_0::to_float(std::slice::from_ref(theirs), &mut decoded);
        let mut ours_decoded = [0f32; 32];
        let mut one = [0u8; 16];
        let mut scale = [0f32; 1];
        q4_0::import(ours, 1, 32, &mut one, &mut scale).unwrap();
        Quantizer::new(32)
            .unpack(&one, &scale, 1, 32, &mut ours_decoded)
            .unwrap();
        assert_eq!(
            ours_decoded, decoded,
            "block {i}: candle must quantize alike"
        );
        if i > 4096 {
            break;
        }
    }
    let mut group = c.benchmark_group("q4_0");
    group.throughput(Throughput::Bytes((Q4_0_ROWS * COLS * 4) as u64));
    group.bench_function(BenchmarkId::new("read_bw", "all"), |b| {
        b.iter(|| peers::stream_read(black_box(&w)))
    });
    group.bench_function(BenchmarkId::new("cortex_quantize", "32"), |b| {
        b.iter(|| q4_0::quantize(&Options::default(), &w, Q4_0_ROWS, COLS, &mut blocks).unwrap())
    });
    group.bench_function(BenchmarkId::new("candle_from_float", "32"), |b| {
        b.iter(|| BlockQ4_0::from_float(&w, &mut theirs))
    });
    group.bench_function(BenchmarkId::new("cortex_import", "32"), |b| {
        b.iter(|| q4_0::import(&blocks, Q4_0_ROWS, COLS, &mut packed, &mut scales).unwrap())
    });
    let mut back = vec![1u8; blocks_len];
    group.bench_function(BenchmarkId::new("cortex_export", "32"), |b| {
        b.iter(|| q4_0::export(&packed, &scales, Q4_0_ROWS, COLS, &mut back).unwrap())
    });
    group.finish();
}

fn bench_encoders(c: &mut Criterion) {
    let w = data::structured(ENCODER_ROWS, COLS, 0x7EA5_0A11);
    let mut group = c.benchmark_group("encoders");
    group.throughput(Throughput::Bytes((ENCODER_ROWS * COLS * 4) as u64));
    for g in [32, 128] {
        let l = Layout::new(ENCODER_ROWS, COLS, g).unwrap();
        let (mut packed, mut scales) = (vec![1u8; l.packed_len()], vec![1f32; l.scales_len()]);
        let encoders = [
            ("absmax", Encoder::AbsMax),
            ("signed", Encoder::Signed),
            ("search", Encoder::Search { importance: None }),
        ];
        for (name, encoder) in encoders {
            group.bench_function(BenchmarkId::new(name, g), |b| {
                b.iter(|| {
                    Quantizer::new(g)
                        .with_encoder(encoder)
                        .pack(&w, ENCODER_ROWS, COLS, &mut packed, &mut scales)
                        .unwrap()
                })
            });
        }
        group.bench_function(BenchmarkId::new("quality", g), |b| {
            b.iter(|| {
                PackedMatrix::new(&packed, &scales, ENCODER_ROWS, COLS, g)
                    .and_then(|m| m.quality(&w))
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn summary(started: SystemTime) {
    let r = Results::new(started);
    let mut out = String::new();
    let bytes = (Q4_0_ROWS * COLS * 4) as f64;
    let candle = r.ns("q4_0", "candle_from_float", "32");
    let bw = r.ns("q4_0", "read_bw", "all");
    let _ = write!(
        out,
        "### GGML Q4_0, {Q4_0_ROWS} x {COLS}, one thread\n\nGB/s of the f32 matrix the blocks hold; ratios are peer time / this time.\n\n\
         | implementation | g | ms | GB/s | of read_bw | vs candle from_float |\n|---|---|---|---|---|---|\n"
    );
    row(&mut out, "read_bw", "-", bytes, bw, &[bw, candle]);
    for (name, id) in [
        ("cortex quantize", "cortex_quantize"),
        ("candle BlockQ4_0::from_float", "candle_from_float"),
        ("cortex import (blocks to this format)", "cortex_import"),
        ("cortex export (this format to blocks)", "cortex_export"),
    ] {
        row(
            &mut out,
            name,
            "32",
            bytes,
            r.ns("q4_0", id, "32"),
            &[bw, candle],
        );
    }
    let bytes = (ENCODER_ROWS * COLS * 4) as f64;
    let _ = write!(
        out,
        "\n### Encoders, {ENCODER_ROWS} x {COLS} structured, one thread\n\nGB/s of f32 read; ratio: the default encoder's time / this time.\n\n\
         | encoder | g | ms | GB/s | vs absmax |\n|---|---|---|---|---|\n"
    );
    for g in ["32", "128"] {
        let base = r.ns("encoders", "absmax", g);
        for name in ["absmax", "signed", "search", "quality"] {
            row(&mut out, name, g, bytes, r.ns("encoders", name, g), &[base]);
        }
    }
    r.publish("cortex_q4_formats.md", &out);
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_q4_0(&mut c);
    bench_encoders(&mut c);
    c.final_summary();
    summary(started);
}
