//! Per-call options: how a call runs, never what it computes.

use crate::error::Error;
use crate::kernels::Kernel;

/// How a call runs. Every choice gives the same bytes.
///
/// ```
/// use cortex_q4::{Kernel, Options};
/// let all_cores = Options::default().with_threads(0);
/// let reference = Options::default().with_kernel(Kernel::Scalar);
/// # let _ = (all_cores, reference);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The kernel family; `None` (the default) is [`Kernel::auto`].
    pub kernel: Option<Kernel>,
    /// Threads of the persistent pool to use: 0 = all of them, 1 (the
    /// default) = the calling thread only.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kernel: None,
            threads: 1,
        }
    }
}

impl Options {
    /// These options with `kernel` forced.
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = Some(kernel);
        self
    }

    /// These options with `threads` threads (0 = all).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The kernel to run, refusing one this CPU lacks.
    pub(crate) fn kernel(&self) -> Result<Kernel, Error> {
        match self.kernel {
            None => Ok(Kernel::auto()),
            Some(kernel) if kernel.is_supported() => Ok(kernel),
            Some(kernel) => Err(Error::UnsupportedKernel { kernel }),
        }
    }
}
