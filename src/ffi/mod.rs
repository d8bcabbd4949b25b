//! The C ABI: a thin layer that only checks and converts, then calls the
//! safe slice API. Each `extern "C"` function is its declaration and docs
//! (cbindgen reads them for the header) and a one-line body that builds a
//! call (`call::Call`, its fields declared once with `call_kind!`) and runs
//! it through `call::checked`, the one place that checks, in the header's
//! order, and that never unwinds into C.

/// The body of an `extern "C"` function that takes pointers: runs `$call`,
/// built from the arguments as they came, through the checked path.
macro_rules! forward {
    ($call:expr) => {
        // SAFETY: the function's `# Safety` asks of its caller what
        // `checked` needs: each pointer NULL or valid for its declared length.
        unsafe { $crate::ffi::call::checked($call) }
    };
}

#[macro_use]
mod call;
mod encoders;
mod matmul;
mod options;
mod pack_unpack;
mod q4_0;
mod quality;
mod status;
mod version;

pub use encoders::*;
pub use matmul::*;
pub use options::*;
pub use pack_unpack::*;
pub use q4_0::*;
pub use quality::*;
pub use status::*;
pub use version::*;

use std::panic::{self, AssertUnwindSafe};

/// Runs the body of an `extern "C"` function, turning a panic (a library
/// bug) into `CQ4_ERR_INTERNAL` instead of unwinding across the boundary.
fn guard(body: impl FnOnce() -> Result<(), cq4_status>) -> cq4_status {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => cq4_status::CQ4_OK,
        Ok(Err(status)) => status,
        Err(_) => cq4_status::CQ4_ERR_INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let status = guard(|| panic!("a bug"));
        assert_eq!(status, cq4_status::CQ4_ERR_INTERNAL);
        assert_eq!(
            guard(|| Err(cq4_status::CQ4_ERR_NULL_POINTER)),
            cq4_status::CQ4_ERR_NULL_POINTER
        );
        assert_eq!(guard(|| Ok(())), cq4_status::CQ4_OK);
    }

    /// The name a top-level line of the header declares, if any.
    fn declared(line: &str) -> Option<&str> {
        let skip = [' ', '*', '/', '}', '#'];
        let name = if let Some(define) = line.strip_prefix("#define ") {
            define.split_whitespace().next()
        } else if line.starts_with(skip) || line.is_empty() || line.starts_with("extern ") {
            None
        } else if let Some((head, _)) = line.split_once('(') {
            head.rsplit([' ', '*']).next()
        } else {
            // `typedef struct NAME {` or `typedef struct NAME NAME;`
            line.trim_end_matches([' ', '{', ';']).rsplit(' ').next()
        };
        name.or_else(|| line.strip_prefix("} ")?.strip_suffix(';'))
    }

    #[test]
    fn the_header_declares_cq4_items_only() {
        let header = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/include/cortex_q4.h"));
        let names: Vec<&str> = header.lines().filter_map(declared).collect();
        assert!(names.contains(&"cq4_pack_f32") && names.contains(&"cq4_layout"));
        for name in names {
            assert!(
                name.starts_with("cq4_") || name.starts_with("CQ4_") || name == "CORTEX_Q4_H",
                "the header declares {name}: exclude it in cbindgen.toml"
            );
        }
    }
}
