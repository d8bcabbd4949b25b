//! Times llama.cpp's ggml Q4_0 product (CPU backend, weights in the
//! CPU_REPACK buffer type) against cortex_q4's fused product and a dense
//! f32 GEMM (the `gemm` crate candle uses), in one process on the same
//! data, after checking every output against an f64 reference.
//!
//! `cargo run --release -p cortex-q4-bench-ggml -- [--quick] [--buft NAME]`
//! (NAME another of ggml's CPU extra buffer types, such as AMX); the table
//! is also written to `target/ggml-bench.md`.

mod ggml;

// The criterion benches' seeded generator, shared rather than copied.
#[allow(dead_code)] // `structured` serves the criterion benches
#[path = "../../benches/common/data.rs"]
mod data;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use cortex_q4::{Kernel, Options, PackedMatrixBuf, Precision, PreparedMatrix, Quantizer};
use gemm::Parallelism;

/// The buffer type llama.cpp loads Q4_0 weights into on AVX2 / AVX-512
/// (on AMX CPUs it tries AMX first).
const REPACK: &str = "CPU_REPACK";
/// Where the measured ggml comes from: the crate pinned in Cargo.toml.
const LLAMA_CPP_SYS: &str = "llama-cpp-sys-2 0.1.161";
/// Q4_0's block; cortex_q4 packs with the same group size.
const GROUP: usize = 32;
/// Outputs compared with the reference, per product.
const SAMPLES: usize = 64;
/// Largest `|y - reference| / sum |w x|` accepted with int8 activations:
/// observed up to 4e-4; an output of the wrong weight row is off by about
/// `sqrt(2 / cols) / 0.64`, 2e-2 to 3.5e-2 for these shapes.
const INT8_TOLERANCE: f64 = 1e-2;
/// The same for f32 products (observed: below 1e-7).
const F32_TOLERANCE: f64 = 1e-4;

/// What one run measures.
struct Plan {
    /// Weight shapes, `(rows, cols)`: output features, then K.
    shapes: &'static [(usize, usize)],
    batches: &'static [usize],
    threads: &'static [usize],
    /// Interleaved rounds: each runs every implementation in turn.
    rounds: usize,
    /// Least time spent timing each implementation per cell.
    seconds: f64,
}

const FULL: Plan = Plan {
    shapes: &[(4096, 4096), (11008, 4096), (4096, 11008)],
    batches: &[1, 8, 32, 128, 512],
    threads: &[1, 2],
    rounds: 5,
    seconds: 0.3,
};

const QUICK: Plan = Plan {
    shapes: &[(4096, 4096)],
    batches: &[1, 32],
    threads: &[1],
    rounds: 3,
    seconds: 0.03,
};

#[derive(Clone, Copy)]
enum Impl {
    Ggml,
    Int8,
    Exact,
    Dense,
}

const IMPLS: [Impl; 4] = [Impl::Ggml, Impl::Int8, Impl::Exact, Impl::Dense];

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Ggml => "ggml",
            Impl::Int8 => "ours int8",
            Impl::Exact => "ours exact",
            Impl::Dense => "dense f32",
        }
    }

    fn tolerance(self) -> f64 {
        match self {
            Impl::Ggml | Impl::Int8 => INT8_TOLERANCE,
            Impl::Exact | Impl::Dense => F32_TOLERANCE,
        }
    }
}

/// Our product, `y = x W^T`, on the prepared form (what an engine that
/// multiplies a matrix more than once holds).
fn ours(
    w: &PreparedMatrix,
    x: &[f32],
    batch: usize,
    precision: Precision,
    threads: usize,
    y: &mut [f32],
) {
    w.matmul(
        &Options::default().with_threads(threads),
        x,
        batch,
        precision,
        y,
    )
    .expect("cortex_q4 matmul");
}

/// Dense `y = x W^T` in f32 (`w` row-major `[rows, cols]`).
fn dense(w: &[f32], x: &[f32], batch: usize, threads: usize, y: &mut [f32]) {
    let cols = x.len() / batch;
    let rows = w.len() / cols;
    assert!(w.len() == rows * cols && x.len() == batch * cols && y.len() == batch * rows);
    let parallelism = match threads {
        1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    };
    // SAFETY: the strides describe x as [batch, cols], W^T (from W
    // [rows, cols]) as [cols, rows] and y as [batch, rows], and the
    // slices hold exactly those; y is only written (read_dst false).
    unsafe {
        gemm::gemm(
            batch,
            rows,
            cols,
            y.as_mut_ptr(),
            1,
            rows as isize,
            false,
            x.as_ptr(),
            1,
            cols as isize,
            w.as_ptr(),
            cols as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// One weight, as each side holds it.
struct Weights {
    rows: usize,
    cols: usize,
    f32: Vec<f32>,
    q4_0: Vec<u8>,
    ggml: ggml::Weight,
    ours: PackedMatrixBuf,
    /// `ours` in the prepared form the products read.
    prepared: PreparedMatrix,
}

impl Weights {
    fn new(rows: usize, cols: usize, seed: u64, buft: ggml::BufferType) -> Result<Self, String> {
        let f32 = data::random_normal(rows * cols, seed);
        let q4_0 = ggml::quantize_q4_0(&f32, rows, cols);
        let ggml = ggml::Weight::load(&q4_0, rows, cols, buft);
        let held_in = ggml.buffer_type().name();
        if held_in != buft.name() || ggml.holds(&q4_0) {
            return Err(format!(
                "{rows} x {cols}: ggml's weight is in {held_in}, bytes converted: {}",
                !ggml.holds(&q4_0)
            ));
        }
        let ours = Quantizer::new(GROUP)
            .pack_to_vec(&f32, rows, cols)
            .map_err(|e| e.to_string())?;
        let prepared = PreparedMatrix::new(&ours.as_matrix(), &Options::default().with_threads(0))
            .map_err(|e| e.to_string())?;
        Ok(Weights {
            rows,
            cols,
            f32,
            q4_0,
            ggml,
            ours,
            prepared,
        })
    }

    /// Row `r` as `which` multiplies it: ggml's Q4_0 decoding, our unpack,
    /// or the f32 original.
    fn row(&self, which: Impl, r: usize) -> Vec<f32> {
        match which {
            Impl::Ggml => ggml::dequantize_q4_0_row(&self.q4_0, self.cols, r),
            Impl::Int8 | Impl::Exact => {
                let l = self.ours.layout();
                let (bytes, groups) = (l.packed_row_bytes(), l.groups_per_row());
                Quantizer::new(GROUP)
                    .unpack_to_vec(
                        &self.ours.packed()[r * bytes..(r + 1) * bytes],
                        &self.ours.scales()[r * groups..(r + 1) * groups],
                        1,
                        self.cols,
                    )
                    .expect("our unpack")
            }
            Impl::Dense => self.f32[r * self.cols..(r + 1) * self.cols].to_vec(),
        }
    }
}

/// One (weights, batch, threads) cell: its inputs and every side's output.
struct Cell<'w, 'c> {
    w: &'w Weights,
    cpu: &'c ggml::Cpu,
    product: ggml::MulMat<'w>,
    x: &'w [f32],
    batch: usize,
    threads: usize,
    y: [Vec<f32>; 3],
}

impl Cell<'_, '_> {
    fn run(&mut self, which: Impl) {
        let (x, batch, threads, ours_w) = (self.x, self.batch, self.threads, &self.w.prepared);
        match which {
            Impl::Ggml => self.product.compute(self.cpu),
            Impl::Int8 => ours(ours_w, x, batch, Precision::Int8, threads, &mut self.y[0]),
            Impl::Exact => ours(ours_w, x, batch, Precision::Exact, threads, &mut self.y[1]),
            Impl::Dense => dense(&self.w.f32, x, batch, threads, &mut self.y[2]),
        }
    }

    /// Lets `which`'s idle threads stop before the next side runs.
    fn rest(&self, which: Impl) {
        if let Impl::Ggml = which {
            self.cpu.pause();
        }
    }

    fn output(&self, which: Impl) -> Vec<f32> {
        match which {
            Impl::Ggml => self.product.y(),
            Impl::Int8 => self.y[0].clone(),
            Impl::Exact => self.y[1].clone(),
            Impl::Dense => self.y[2].clone(),
        }
    }

    /// Largest `|y - reference| / sum |w x|` of `which`'s last output over
    /// sampled outputs, the reference summed in f64 from the weights
    /// `which` multiplies.
    fn error(&self, which: Impl) -> f64 {
        let (rows, cols) = (self.w.rows, self.w.cols);
        let y = self.output(which);
        (0..SAMPLES)
            .map(|i| {
                // Spread over rows and batch, the last row first.
                let (b, r) = ((i * 7) % self.batch, (i * 0x9E37_79B9 + rows - 1) % rows);
                let w = self.w.row(which, r);
                let x = &self.x[b * cols..(b + 1) * cols];
                let (dot, abs) = w.iter().zip(x).fold((0f64, 0f64), |(d, a), (&w, &x)| {
                    let p = f64::from(w) * f64::from(x);
                    (d + p, a + p.abs())
                });
                (f64::from(y[b * rows + r]) - dot).abs() / abs
            })
            .fold(0.0, f64::max)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds per call of each implementation: one untimed and one
/// sizing call each, then `rounds` rounds that run each in turn for about
/// `seconds / rounds`, timing every call.
fn measure(cell: &mut Cell, plan: &Plan) -> [f64; 4] {
    let calls = IMPLS.map(|which| {
        cell.run(which);
        let start = Instant::now();
        cell.run(which);
        let once = start.elapsed().as_secs_f64();
        cell.rest(which);
        ((plan.seconds / plan.rounds as f64 / once).ceil() as usize).max(1)
    });
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..plan.rounds {
        for (k, which) in IMPLS.into_iter().enumerate() {
            for _ in 0..calls[k] {
                let start = Instant::now();
                cell.run(which);
                times[k].push(start.elapsed().as_secs_f64());
            }
            cell.rest(which);
        }
    }
    times.map(median)
}

/// The measured ggml and what it was built with.
fn header(plan: &Plan, buft: &str) -> Result<String, String> {
    let (version, commit) = ggml::version();
    let features = ggml::cpu_features();
    let extras: Vec<String> = ggml::extra_buffer_types()
        .iter()
        .map(|b| b.name())
        .collect();
    let mut h = String::new();
    let _ = writeln!(
        h,
        "# cortex_q4 against llama.cpp's ggml, Q4_0 `Y = X W^T`\n"
    );
    let _ = writeln!(
        h,
        "- llama.cpp: {LLAMA_CPP_SYS} (ggml {version}, build commit {commit})"
    );
    let _ = writeln!(h, "- ggml CPU backend features: {}", features.join(" "));
    let _ = writeln!(
        h,
        "- ggml CPU extra buffer types, in llama.cpp's order: {}; weights timed in {buft}",
        extras.join(", ")
    );
    #[cfg(target_arch = "x86_64")]
    {
        let missing: Vec<&str> = [
            ("AVX2", is_x86_feature_detected!("avx2")),
            ("AVX512", is_x86_feature_detected!("avx512f")),
            ("AVX512_VNNI", is_x86_feature_detected!("avx512vnni")),
        ]
        .into_iter()
        .filter(|&(name, cpu)| cpu && !features.iter().any(|f| f == name))
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            let _ = writeln!(
                h,
                "- **ggml was built without {} that this CPU has** (see .cargo/config.toml)",
                missing.join(", ")
            );
        }
    }
    let _ = writeln!(
        h,
        "- cortex_q4: group size {GROUP}, kernel {}, `PreparedMatrix::matmul` (the prepared form) int8 and exact",
        Kernel::auto().name()
    );
    let _ = writeln!(
        h,
        "- dense: gemm 0.19 f32, the unquantized weights; random normal data, fixed seed"
    );
    let _ = writeln!(
        h,
        "- median ms per call: {} interleaved rounds, about {} s per implementation and cell",
        plan.rounds, plan.seconds
    );
    if !extras.iter().any(|e| e == buft) {
        return Err(format!("{h}\nggml has no {buft} buffer type"));
    }
    Ok(h)
}

fn gflops(batch: usize, rows: usize, cols: usize, seconds: f64) -> f64 {
    2.0 * (batch * rows * cols) as f64 / seconds / 1e9
}

fn run(plan: &Plan, buft: &str) -> Result<String, String> {
    let mut report = header(plan, buft)?;
    eprint!("{report}");
    let buft = *ggml::extra_buffer_types()
        .iter()
        .find(|b| b.name() == buft)
        .expect("checked by header");
    let mut cpu = ggml::Cpu::new();
    // rows: (threads, shape, batch, median seconds per implementation)
    let mut results = Vec::new();
    for (s, &(rows, cols)) in plan.shapes.iter().enumerate() {
        let w = Weights::new(rows, cols, 0x5EED_0000 + s as u64, buft)?;
        let line = format!(
            "- {rows} x {cols}: ggml weight in {}, its bytes converted\n",
            w.ggml.buffer_type().name()
        );
        eprint!("{line}");
        report.push_str(&line);
        for &batch in plan.batches {
            let x = data::random_normal(batch * cols, 0xAC7 + batch as u64);
            let mut product = ggml::MulMat::new(&w.ggml, batch);
            product.set_x(&x);
            for &threads in plan.threads {
                cpu.set_threads(threads);
                let mut cell = Cell {
                    w: &w,
                    cpu: &cpu,
                    product,
                    x: &x,
                    batch,
                    threads,
                    y: [(); 3].map(|_| vec![0f32; batch * rows]),
                };
                let mut errors = Vec::new();
                for which in IMPLS {
                    cell.run(which);
                    cell.rest(which);
                    let error = cell.error(which);
                    errors.push(format!("{} {error:.1e}", which.name()));
                    if error.is_nan() || error > which.tolerance() {
                        return Err(format!(
                            "{rows} x {cols}, B {batch}, {threads} thread(s): {} is off by \
                             {error:.2e} of sum |w x| (tolerance {:.0e})",
                            which.name(),
                            which.tolerance()
                        ));
                    }
                }
                let t = measure(&mut cell, plan);
                eprintln!(
                    "{rows} x {cols}, B {batch}, {threads} thread(s): ms {:.3} / {:.3} / {:.3} / {:.3}; \
                     max error / sum |w x|: {}",
                    t[0] * 1e3,
                    t[1] * 1e3,
                    t[2] * 1e3,
                    t[3] * 1e3,
                    errors.join(", ")
                );
                results.push((threads, rows, cols, batch, t));
                product = cell.product;
            }
        }
    }
    for &threads in plan.threads {
        let _ = writeln!(
            report,
            "\n## {threads} thread{}\n",
            if threads == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            report,
            "| rows x cols | B | ggml ms | ours int8 ms | ours exact ms | dense f32 ms \
             | int8 speedup (ggml / int8) | exact vs dense (dense / exact) \
             | GFLOP/s ggml / int8 / exact / dense |"
        );
        let _ = writeln!(report, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for (_, rows, cols, batch, t) in results.iter().filter(|r| r.0 == threads) {
            let g = t.map(|s| gflops(*batch, *rows, *cols, s));
            let _ = writeln!(
                report,
                "| {rows} x {cols} | {batch} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2}x | {:.2}x \
                 | {:.0} / {:.0} / {:.0} / {:.0} |",
                t[0] * 1e3,
                t[1] * 1e3,
                t[2] * 1e3,
                t[3] * 1e3,
                t[0] / t[1],
                t[3] / t[2],
                g[0],
                g[1],
                g[2],
                g[3]
            );
        }
    }
    Ok(report)
}

fn main() -> ExitCode {
    let (mut plan, mut buft) = (&FULL, REPACK.to_string());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (
            arg.as_str(),
            if arg == "--buft" { args.next() } else { None },
        ) {
            ("--quick", _) => plan = &QUICK,
            ("--buft", Some(name)) => buft = name,
            _ => {
                eprintln!("usage: cortex-q4-bench-ggml [--quick] [--buft NAME]");
                return ExitCode::from(2);
            }
        }
    }
    match run(plan, &buft) {
        Ok(report) => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            let path = target.join("ggml-bench.md");
            println!("\n{report}");
            match std::fs::write(&path, &report) {
                Ok(()) => eprintln!("written to {}", path.display()),
                Err(e) => eprintln!("could not write {}: {e}", path.display()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
