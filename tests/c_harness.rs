//! Runs the C harness (`c_tests/harness.c`, compiled by build.rs against
//! the committed header) through the C ABI: golden vectors shared with the
//! Rust tests, the layout arithmetic, every bad-input status, the messages,
//! the kernel and thread options, the fused products (plain and on the
//! prepared form), GGML Q4_0 interop,
//! the encoders and the quality report, the calibration Hessian and the
//! error-compensating encoder.

mod common;

use std::ffi::{c_char, c_int, CString};

// Linking the crate provides the `cq4_` symbols the harness calls.
use cortex_q4 as _;

#[link(name = "cq4_c_harness", kind = "static")]
extern "C" {
    fn cq4_harness_golden(path: *const c_char, cases_run: *mut c_int) -> c_int;
    fn cq4_harness_layout() -> c_int;
    fn cq4_harness_bad_input() -> c_int;
    fn cq4_harness_status() -> c_int;
    fn cq4_harness_options() -> c_int;
    fn cq4_harness_matmul() -> c_int;
    fn cq4_harness_prepared() -> c_int;
    fn cq4_harness_q4_0() -> c_int;
    fn cq4_harness_encoders() -> c_int;
    fn cq4_harness_hessian() -> c_int;
}

#[test]
fn c_harness_golden_vectors() {
    let path = CString::new(common::golden_path().to_str().unwrap()).unwrap();
    let mut cases_run: c_int = 0;
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    let failures = unsafe { cq4_harness_golden(path.as_ptr(), &mut cases_run) };
    assert_eq!(failures, 0, "C harness: golden failures (see stderr)");
    assert_eq!(cases_run as usize, common::golden_cases().len());
}

#[test]
fn c_harness_layout() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_layout() }, 0, "see stderr");
}

#[test]
fn c_harness_bad_input() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_bad_input() }, 0, "see stderr");
}

#[test]
fn c_harness_status() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_status() }, 0, "see stderr");
}

#[test]
fn c_harness_options() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_options() }, 0, "see stderr");
}

#[test]
fn c_harness_matmul() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_matmul() }, 0, "see stderr");
}

#[test]
fn c_harness_q4_0() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_q4_0() }, 0, "see stderr");
}

#[test]
fn c_harness_encoders() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_encoders() }, 0, "see stderr");
}

#[test]
fn c_harness_hessian() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_hessian() }, 0, "see stderr");
}

#[test]
fn c_harness_prepared() {
    // SAFETY: the harness function takes no arguments.
    assert_eq!(unsafe { cq4_harness_prepared() }, 0, "see stderr");
}
