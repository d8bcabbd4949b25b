//! The C ABI: a thin layer that only checks and converts, then calls the
//! safe slice API. Each `extern "C"` function is its declaration and docs
//! (cbindgen reads them for the header) and a one-line body that builds a
//! [`call::Call`] and runs it through [`call::checked`], the one place that
//! checks, in the header's order, and that never unwinds into C.

/// The body of an `extern "C"` function that takes pointers: runs `$call`,
/// built from the arguments as they came, through the checked path.
macro_rules! forward {
    ($call:expr) => {
        // SAFETY: the function's `# Safety` asks of its caller what
        // `checked` needs: each pointer NULL or valid for its declared length.
        unsafe { $crate::ffi::call::checked($call) }
    };
}

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
}
