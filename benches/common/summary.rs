//! Reads criterion's estimates back and prints GB/s and ratios as a
//! markdown table (also written under target/criterion/).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use cortex_q4::Kernel;

/// Median times of this run's benchmarks, in nanoseconds.
pub struct Results {
    dir: PathBuf,
    since: SystemTime,
}

impl Results {
    pub fn new(since: SystemTime) -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        Results {
            dir: target.join("criterion"),
            since,
        }
    }

    /// The median of `group/function/param`, if it ran in this process.
    pub fn ns(&self, group: &str, function: &str, param: &str) -> Option<f64> {
        let path = self
            .dir
            .join(group)
            .join(function)
            .join(param)
            .join("new/estimates.json");
        let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
        if modified < self.since {
            return None;
        }
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        json["median"]["point_estimate"].as_f64()
    }

    /// Writes `text` beside criterion's reports and prints it.
    pub fn publish(&self, name: &str, text: &str) {
        let _ = std::fs::write(self.dir.join(name), text);
        println!("\n{text}");
    }
}

pub fn ratio(num: Option<f64>, den: Option<f64>) -> String {
    match (num, den) {
        (Some(n), Some(d)) => format!("{:.2}x", n / d),
        _ => "-".into(),
    }
}

/// One table row: time, GB/s, then `reference time / this time` for each
/// reference (above 1 means faster than the reference).
pub fn row(
    out: &mut String,
    name: &str,
    g: &str,
    bytes: f64,
    t: Option<f64>,
    refs: &[Option<f64>],
) {
    let Some(t) = t else { return };
    let _ = write!(out, "| {name} | {g} | {:.2} | {:.2} |", t / 1e6, bytes / t);
    for r in refs {
        let _ = write!(out, " {} |", ratio(*r, Some(t)));
    }
    out.push('\n');
}

/// The table of `benches/pack_unpack.rs`.
pub fn pack_unpack(started: SystemTime) {
    let r = Results::new(started);
    let bytes = (4096 * 4096 * 4) as f64;
    let auto = format!("cortex_{}", Kernel::auto().name());
    let mut out = String::from("4096 x 4096 f32, random normal; GB/s of f32 read (pack) or written (unpack); ratios are peer time / this time.\n");
    for (op, limit) in [("pack", "read_bw"), ("unpack", "write_bw")] {
        let one = format!("{op}_1t");
        let all = format!("{op}_allt");
        let bw = r.ns(&one, limit, "all");
        let candle = r.ns(&one, "candle_q4_0", "32");
        let seed = r.ns(&one, "seed_style", "32");
        let _ = write!(
            out,
            "\n### {op}, one thread\n\n| implementation | g | ms | GB/s | of {limit} | vs candle Q4_0 | vs naive (same g) | vs seed-style |\n|---|---|---|---|---|---|---|---|\n"
        );
        row(&mut out, limit, "-", bytes, bw, &[bw, candle, None, seed]);
        // Large unpacks write around the cache: their limit without reads
        // for ownership, beside the plain fill.
        let nt = r.ns(&one, "write_bw_nt", "all");
        row(
            &mut out,
            "write_bw_nt",
            "-",
            bytes,
            nt,
            &[bw, None, None, None],
        );
        for g in ["32", "64", "128"] {
            let naive = r.ns(&one, "naive", g);
            for kernel in Kernel::ALL.map(|k| format!("cortex_{}", k.name())) {
                row(
                    &mut out,
                    &kernel,
                    g,
                    bytes,
                    r.ns(&one, &kernel, g),
                    &[bw, candle, naive, seed],
                );
            }
            row(
                &mut out,
                "naive",
                g,
                bytes,
                naive,
                &[bw, candle, naive, seed],
            );
        }
        let api = r.ns(&one, "candle_api", "32");
        let to_vec = r.ns(&one, "slice_to_vec", "32");
        let naive32 = r.ns(&one, "naive", "32");
        let peers = [bw, candle, naive32, seed];
        // Without the `candle` feature the candle API is not benched.
        if api.is_some() {
            row(&mut out, "cortex candle API", "32", bytes, api, &peers);
        }
        row(
            &mut out,
            "cortex slice API, allocating",
            "32",
            bytes,
            to_vec,
            &peers,
        );
        row(&mut out, "seed-style", "32", bytes, seed, &peers);
        row(&mut out, "candle BlockQ4_0", "32", bytes, candle, &peers);
        if api.is_some() {
            let _ = writeln!(
                out,
                "\ncandle API time / slice API time at g = 32: {} against the allocating \
                 slice call, {} against {auto} into a pre-touched buffer.",
                ratio(api, to_vec),
                ratio(api, r.ns(&one, &auto, "32")),
            );
        }

        let bw_all = r.ns(&all, limit, "all");
        let _ = write!(
            out,
            "\n### {op}, all threads\n\n| implementation | g | ms | GB/s | of all-threads {limit} | vs {auto} one thread |\n|---|---|---|---|---|---|\n"
        );
        row(&mut out, limit, "-", bytes, bw_all, &[bw_all, None]);
        let nt_all = r.ns(&all, "write_bw_nt", "all");
        row(&mut out, "write_bw_nt", "-", bytes, nt_all, &[bw_all, None]);
        for g in ["32", "64", "128"] {
            row(
                &mut out,
                "cortex_auto",
                g,
                bytes,
                r.ns(&all, "cortex_auto", g),
                &[bw_all, r.ns(&one, &auto, g)],
            );
        }
    }
    half_vs_f32(&r, &mut out);
    r.publish("cortex_q4_pack_unpack.md", &out);
}

/// f16 and bf16 against f32 at g = 32, one thread, kernel by kernel; a
/// ratio above 1 means the 16-bit type takes longer.
fn half_vs_f32(r: &Results, out: &mut String) {
    let _ = write!(
        out,
        "
### f16 and bf16 against f32, one thread, g = 32

| type | kernel | pack ms | / f32 pack | unpack ms | / f32 unpack |
|---|---|---|---|---|---|
"
    );
    let ms = |t: Option<f64>| t.map_or("-".into(), |t| format!("{:.2}", t / 1e6));
    for ty in ["f32", "f16", "bf16"] {
        for kernel in Kernel::ALL.map(|k| format!("cortex_{}", k.name())) {
            let time = |op: &str, ty: &str| {
                let group = if ty == "f32" {
                    format!("{op}_1t")
                } else {
                    format!("{ty}_{op}_1t")
                };
                r.ns(&group, &kernel, "32")
            };
            let (pack, unpack) = (time("pack", ty), time("unpack", ty));
            if pack.is_none() && unpack.is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "| {ty} | {kernel} | {} | {} | {} | {} |",
                ms(pack),
                ratio(pack, time("pack", "f32")),
                ms(unpack),
                ratio(unpack, time("unpack", "f32")),
            );
        }
    }
}

/// The table of `benches/matmul.rs`: one layer of `weights` weights held in
/// `bytes` bytes.
pub fn matmul(started: SystemTime, bytes: u64, weights: f64) {
    let r = Results::new(started);
    let auto = Kernel::auto().name();
    let mut out = format!(
        "One 7B-class layer: {weights:.0} weights, {:.1} MB packed at g = 32; GB/s of weight bytes; ratios are peer time / this time.\n",
        bytes as f64 / 1e6
    );
    for batch in [1, 8] {
        for (label, threads) in [("1t", "one thread"), ("allt", "all threads")] {
            let group = format!("layer_b{batch}_{label}");
            let t = |f: &str, p: &str| r.ns(&group, f, p);
            let bw = t("read_bw", "all");
            let refs = [
                bw,
                t("candle_vec_dot", "q8_0"),
                t("candle_qmatmul", "forward"),
                t("unpack_then_dot", "f32"),
            ];
            let _ = write!(
                out,
                "\n### batch {batch}, {threads}\n\n| implementation | ms per layer | GB/s | GFLOP/s | of read_bw | vs candle vec_dot | vs candle QMatMul | vs unpack-then-dot |\n|---|---|---|---|---|---|---|---|\n"
            );
            let rows = [
                ("read_bw", "read_bw", "all"),
                ("cortex int8", "cortex_int8", auto),
                ("cortex exact", "cortex_exact", auto),
                ("cortex int8, prepared", "cortex_prepared_int8", auto),
                ("cortex exact, prepared", "cortex_prepared_exact", auto),
                ("cortex int8, AVX2 kernel", "cortex_int8", "avx2"),
                ("cortex exact, AVX2 kernel", "cortex_exact", "avx2"),
                (
                    "cortex int8, prepared, AVX2 kernel",
                    "cortex_prepared_int8",
                    "avx2",
                ),
                (
                    "cortex exact, prepared, AVX2 kernel",
                    "cortex_prepared_exact",
                    "avx2",
                ),
                ("unpack then f32 dot", "unpack_then_dot", "f32"),
                ("naive scalar loop", "naive", "scalar"),
                (
                    "candle Q4_0 vec_dot (+ Q8_0 of x)",
                    "candle_vec_dot",
                    "q8_0",
                ),
                ("candle QMatMul::forward", "candle_qmatmul", "forward"),
            ];
            for (name, f, p) in rows {
                // On a CPU without AVX-512 the AVX2 kernels are the auto rows.
                let repeated = p == "avx2" && p == auto;
                let Some(ns) = t(f, p).filter(|_| !repeated) else {
                    continue;
                };
                let _ = write!(
                    out,
                    "| {name} | {:.2} | {:.2} | {:.1} |",
                    ns / 1e6,
                    bytes as f64 / ns,
                    2.0 * weights * batch as f64 / ns
                );
                for reference in refs {
                    let _ = write!(out, " {} |", ratio(reference, Some(ns)));
                }
                out.push('\n');
            }
        }
    }
    r.publish("cortex_q4_matmul.md", &out);
}
