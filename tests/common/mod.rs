//! Helpers shared by the integration tests: the golden-vector reader.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

/// Path of the golden vectors shared with the C harness.
pub fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cases.txt")
}

/// One golden case: `input` is empty for decoder-only cases.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub is_pack: bool,
    pub rows: usize,
    pub cols: usize,
    pub group_size: usize,
    pub input: Vec<f32>,
    pub packed: Vec<u8>,
    pub scales: Vec<f32>,
    pub unpacked: Vec<f32>,
}

fn f32s(tokens: &[&str]) -> Vec<f32> {
    tokens
        .iter()
        .map(|t| f32::from_bits(u32::from_str_radix(t, 16).expect("hex f32 bits")))
        .collect()
}

/// Reads every case of the golden file.
pub fn golden_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(golden_path()).expect("golden file is readable");
    let mut cases = Vec::new();
    let mut case: Option<Case> = None;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        match tokens[0] {
            kind @ ("pack" | "unpack") => {
                let num = |i: usize| tokens[i].parse::<usize>().expect("shape number");
                case = Some(Case {
                    name: tokens[1].to_string(),
                    is_pack: kind == "pack",
                    rows: num(2),
                    cols: num(3),
                    group_size: num(4),
                    input: Vec::new(),
                    packed: Vec::new(),
                    scales: Vec::new(),
                    unpacked: Vec::new(),
                });
            }
            key => {
                let c = case.as_mut().expect("a field inside a case");
                let values = &tokens[1..];
                match key {
                    "input" => c.input = f32s(values),
                    "packed" => {
                        c.packed = values
                            .iter()
                            .map(|t| u8::from_str_radix(t, 16).expect("hex byte"))
                            .collect()
                    }
                    "scales" => c.scales = f32s(values),
                    "unpacked" => c.unpacked = f32s(values),
                    "end" => cases.push(case.take().unwrap()),
                    other => panic!("unknown golden key {other}"),
                }
            }
        }
    }
    assert!(case.is_none(), "unterminated golden case");
    cases
}

/// Looks a case up by name.
pub fn golden_case(name: &str) -> Case {
    golden_cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no golden case {name}"))
}

/// Bit patterns, so that -0.0 differs from 0.0.
pub fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Bitwise equality where any NaN equals any NaN.
pub fn assert_same_floats(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan());
        assert!(
            same,
            "{what}[{i}]: got {g:e} ({:#010x}), want {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Cases for a proptest block that asks for `n`: `PROPTEST_CASES`, where
/// set, overrides it as it does proptest's default (Miri runs only a few).
pub fn proptest_cases(n: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n)
}

/// The smallest subnormal f32, 2^-149: a rounding in the subnormal range
/// errs by at most half of it, whatever the relative bound says.
pub const SUBNORMAL: f64 = 1.401298464324817e-45;
