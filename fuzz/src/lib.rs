//! What the fuzz targets of the C ABI share: the input reader, the arena
//! every buffer of a call lives in, an independent model of the header's
//! check order, reference results from the header's definitions, and the
//! checks made on every call.

pub mod arena;
pub mod input;
pub mod model;
pub mod reference;
pub mod run;

pub use arena::{Arena, Place, ARENA};
pub use input::{Input, Len};
pub use model::{Buf, Layout, Verdict};
