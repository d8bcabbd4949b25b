//! The peer: llama.cpp's ggml, used as llama.cpp uses it for a Q4_0 weight
//! on the CPU. The weight is quantized by `ggml_quantize_chunk` and loaded
//! into one of the CPU backend's extra buffer types (CPU_REPACK, which
//! rewrites Q4_0 into interleaved q4_0_8x8 blocks for its AVX2 / AVX-512
//! GEMM kernels); `ggml_mul_mat` runs in a graph that the CPU backend
//! computes on a persistent thread pool, as llama.cpp's tools attach one.

use std::ffi::{c_char, c_void, CStr};
use std::marker::PhantomData;
use std::ptr;

use llama_cpp_sys_2 as sys;

/// A NUL-terminated string that ggml owns for the life of the process.
fn text(s: *const c_char) -> String {
    assert!(!s.is_null());
    // SAFETY: ggml returns static, NUL-terminated names and values.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// ggml's version and the commit its CMake build found ("unknown" when
/// the sources were not a git checkout, as in a crates.io package).
pub fn version() -> (String, String) {
    // SAFETY: both return static strings.
    unsafe { (text(sys::ggml_version()), text(sys::ggml_commit())) }
}

/// The CPU device, registered in this static build for the process.
fn cpu_device() -> sys::ggml_backend_dev_t {
    // SAFETY: no arguments; null is checked.
    let device = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
    assert!(!device.is_null(), "ggml has no CPU device");
    device
}

/// The CPU backend's registry.
fn cpu_reg() -> sys::ggml_backend_reg_t {
    // SAFETY: a live device.
    unsafe { sys::ggml_backend_dev_backend_reg(cpu_device()) }
}

/// A function the CPU backend exports by name, as llama.cpp reaches its
/// extras.
fn cpu_proc(name: &CStr) -> *mut c_void {
    // SAFETY: a live registry and a NUL-terminated name.
    let f = unsafe { sys::ggml_backend_reg_get_proc_address(cpu_reg(), name.as_ptr()) };
    assert!(!f.is_null(), "the CPU backend exports no {name:?}");
    f
}

/// The CPU backend's build features (`ggml_backend_get_features`), as
/// `NAME` or `NAME=value` when the value is not "1".
pub fn cpu_features() -> Vec<String> {
    // SAFETY: the exported function has this type (ggml-backend.h).
    let get = unsafe {
        std::mem::transmute::<*mut c_void, sys::ggml_backend_get_features_t>(cpu_proc(
            c"ggml_backend_get_features",
        ))
    };
    let mut out = Vec::new();
    // SAFETY: the list ends with a null name; entries are static.
    unsafe {
        let mut p = get.expect("non-null")(cpu_reg());
        while !(*p).name.is_null() {
            let (name, value) = (text((*p).name), text((*p).value));
            out.push(if value == "1" {
                name
            } else {
                format!("{name}={value}")
            });
            p = p.add(1);
        }
    }
    out
}

/// A buffer type of the CPU backend.
#[derive(Clone, Copy)]
pub struct BufferType(sys::ggml_backend_buffer_type_t);

impl BufferType {
    pub fn name(&self) -> String {
        // SAFETY: buffer types are static.
        text(unsafe { sys::ggml_backend_buft_name(self.0) })
    }
}

/// The CPU device's extra buffer types, in the order llama.cpp tries them
/// for a weight (the first that supports the weight's product wins).
pub fn extra_buffer_types() -> Vec<BufferType> {
    // SAFETY: the exported function has this type (ggml-backend.h).
    let get = unsafe {
        std::mem::transmute::<*mut c_void, sys::ggml_backend_dev_get_extra_bufts_t>(cpu_proc(
            c"ggml_backend_dev_get_extra_bufts",
        ))
    };
    let mut out = Vec::new();
    // SAFETY: a null-terminated array of static buffer types.
    unsafe {
        let mut p = get.expect("non-null")(cpu_device());
        while !p.is_null() && !(*p).is_null() {
            out.push(BufferType(*p));
            p = p.add(1);
        }
    }
    out
}

/// The CPU backend with a thread pool of its current size.
pub struct Cpu {
    backend: sys::ggml_backend_t,
    pool: Option<(usize, *mut sys::ggml_threadpool)>,
}

impl Cpu {
    pub fn new() -> Cpu {
        // SAFETY: no arguments; null is checked.
        let backend = unsafe { sys::ggml_backend_cpu_init() };
        assert!(!backend.is_null(), "ggml_backend_cpu_init failed");
        Cpu {
            backend,
            pool: None,
        }
    }

    /// Computes on `n` threads from now on, on a fresh pool of that size.
    pub fn set_threads(&mut self, n: usize) {
        if self.pool.is_some_and(|(m, _)| m == n) {
            return;
        }
        let threads = i32::try_from(n).expect("thread count");
        // SAFETY: default parameters for `threads`; the new pool replaces
        // the old one in the backend (which pauses it) before it is freed.
        unsafe {
            let mut params = sys::ggml_threadpool_params_default(threads);
            let pool = sys::ggml_threadpool_new(&mut params);
            assert!(!pool.is_null(), "ggml_threadpool_new failed");
            sys::ggml_backend_cpu_set_n_threads(self.backend, threads);
            sys::ggml_backend_cpu_set_threadpool(self.backend, pool);
            if let Some((_, old)) = self.pool.replace((n, pool)) {
                sys::ggml_threadpool_free(old);
            }
        }
    }

    /// Stops the pool's workers polling for work, so that they do not
    /// take cores from the next thing timed; the next compute resumes them.
    pub fn pause(&self) {
        if let Some((_, pool)) = self.pool {
            // SAFETY: a live pool; no compute is running on this thread.
            unsafe { sys::ggml_threadpool_pause(pool) };
        }
    }
}

impl Drop for Cpu {
    fn drop(&mut self) {
        // SAFETY: the backend only borrows the pool: free it first.
        unsafe {
            sys::ggml_backend_free(self.backend);
            if let Some((_, pool)) = self.pool {
                sys::ggml_threadpool_free(pool);
            }
        }
    }
}

/// `[rows, cols]` as ggml Q4_0 bytes: per row, `cols / 32` blocks of an f16
/// scale and 16 bytes of nibbles.
pub fn quantize_q4_0(w: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(w.len(), rows * cols);
    assert_eq!(cols % 32, 0, "Q4_0 rows are whole blocks");
    let row_bytes = q4_0_row_bytes(cols);
    let mut q = vec![0u8; rows * row_bytes];
    // SAFETY: `w` holds rows * cols floats and `q` the rows' Q4_0 bytes;
    // no importance matrix.
    let written = unsafe {
        sys::ggml_quantize_chunk(
            sys::GGML_TYPE_Q4_0,
            w.as_ptr(),
            q.as_mut_ptr().cast(),
            0,
            rows as i64,
            cols as i64,
            ptr::null(),
        )
    };
    assert_eq!(written, q.len());
    q
}

fn q4_0_row_bytes(cols: usize) -> usize {
    // SAFETY: a pure size computation.
    unsafe { sys::ggml_row_size(sys::GGML_TYPE_Q4_0, cols as i64) }
}

/// Row `r` of Q4_0 bytes `q` decoded by ggml's own `to_float`
/// (`d * (nibble - 8)`, `d` the block's f16 scale).
pub fn dequantize_q4_0_row(q: &[u8], cols: usize, r: usize) -> Vec<f32> {
    let row_bytes = q4_0_row_bytes(cols);
    let row = &q[r * row_bytes..(r + 1) * row_bytes];
    let mut out = vec![0f32; cols];
    // SAFETY: Q4_0's traits are static and have a `to_float`; `row` holds
    // the blocks of `cols` values and `out` has room for them.
    unsafe {
        let to_float = (*sys::ggml_get_type_traits(sys::GGML_TYPE_Q4_0))
            .to_float
            .expect("Q4_0 decodes");
        to_float(row.as_ptr().cast(), out.as_mut_ptr(), cols as i64);
    }
    out
}

/// A Q4_0 `[rows, cols]` weight in a buffer of the type it was loaded in.
pub struct Weight {
    ctx: *mut sys::ggml_context,
    buffer: sys::ggml_backend_buffer_t,
    tensor: *mut sys::ggml_tensor,
    cols: usize,
}

impl Weight {
    /// Loads Q4_0 bytes `q` (see [`quantize_q4_0`]) into a buffer of `buft`;
    /// a repacking buffer type converts them on the way in.
    pub fn load(q: &[u8], rows: usize, cols: usize, buft: BufferType) -> Weight {
        assert_eq!(q.len(), rows * q4_0_row_bytes(cols));
        // SAFETY: a metadata-only context for one tensor; the buffer is
        // allocated for it and `q` holds exactly its bytes.
        unsafe {
            let ctx = sys::ggml_init(sys::ggml_init_params {
                mem_size: sys::ggml_tensor_overhead(),
                mem_buffer: ptr::null_mut(),
                no_alloc: true,
            });
            assert!(!ctx.is_null(), "ggml_init failed");
            let tensor =
                sys::ggml_new_tensor_2d(ctx, sys::GGML_TYPE_Q4_0, cols as i64, rows as i64);
            let buffer = sys::ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft.0);
            assert!(!buffer.is_null(), "allocating the weight failed");
            sys::ggml_backend_buffer_set_usage(buffer, sys::GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
            sys::ggml_backend_tensor_set(tensor, q.as_ptr().cast(), 0, q.len());
            Weight {
                ctx,
                buffer,
                tensor,
                cols,
            }
        }
    }

    /// The buffer type the weight's buffer reports.
    pub fn buffer_type(&self) -> BufferType {
        // SAFETY: the tensor's buffer is live.
        BufferType(unsafe { sys::ggml_backend_buffer_get_type((*self.tensor).buffer) })
    }

    /// Whether the weight's memory still holds the bytes `q` it was
    /// loaded from: false once a buffer type has repacked them.
    pub fn holds(&self, q: &[u8]) -> bool {
        // SAFETY: the CPU backend's buffer types, extra ones included,
        // allocate process memory (CPU_REPACK takes a plain CPU buffer and
        // only reports "not host" to keep other backends from reading
        // its layout); the tensor's data spans ggml_nbytes bytes.
        unsafe {
            let n = sys::ggml_nbytes(self.tensor);
            n == q.len() && std::slice::from_raw_parts((*self.tensor).data.cast::<u8>(), n) == q
        }
    }
}

impl Drop for Weight {
    fn drop(&mut self) {
        // SAFETY: products borrowing the weight are gone (lifetime).
        unsafe {
            sys::ggml_backend_buffer_free(self.buffer);
            sys::ggml_free(self.ctx);
        }
    }
}

/// The graph `Y = ggml_mul_mat(W, X)`: X `[batch, cols]` f32, Y
/// `[batch, rows]` f32, both in a plain CPU buffer.
pub struct MulMat<'w> {
    ctx: *mut sys::ggml_context,
    buffer: sys::ggml_backend_buffer_t,
    graph: *mut sys::ggml_cgraph,
    x: *mut sys::ggml_tensor,
    y: *mut sys::ggml_tensor,
    _weight: PhantomData<&'w Weight>,
}

impl<'w> MulMat<'w> {
    pub fn new(weight: &'w Weight, batch: usize) -> MulMat<'w> {
        // SAFETY: a metadata-only context for two tensors and a graph;
        // the weight outlives the graph that reads it (lifetime).
        unsafe {
            let ctx = sys::ggml_init(sys::ggml_init_params {
                mem_size: 2 * sys::ggml_tensor_overhead() + sys::ggml_graph_overhead(),
                mem_buffer: ptr::null_mut(),
                no_alloc: true,
            });
            assert!(!ctx.is_null(), "ggml_init failed");
            let x =
                sys::ggml_new_tensor_2d(ctx, sys::GGML_TYPE_F32, weight.cols as i64, batch as i64);
            let y = sys::ggml_mul_mat(ctx, weight.tensor, x);
            let graph = sys::ggml_new_graph(ctx);
            sys::ggml_build_forward_expand(graph, y);
            let buffer = sys::ggml_backend_alloc_ctx_tensors_from_buft(
                ctx,
                sys::ggml_backend_cpu_buffer_type(),
            );
            assert!(!buffer.is_null(), "allocating the activations failed");
            MulMat {
                ctx,
                buffer,
                graph,
                x,
                y,
                _weight: PhantomData,
            }
        }
    }

    /// Copies the activations in (once, before timing: llama.cpp's
    /// activations are already in place).
    pub fn set_x(&mut self, x: &[f32]) {
        // SAFETY: x's tensor holds exactly batch * cols floats.
        unsafe {
            assert_eq!(sys::ggml_nbytes(self.x), std::mem::size_of_val(x));
            sys::ggml_backend_tensor_set(self.x, x.as_ptr().cast(), 0, std::mem::size_of_val(x));
        }
    }

    pub fn compute(&mut self, cpu: &Cpu) {
        // SAFETY: the graph's tensors are allocated; the backend is live.
        let status = unsafe { sys::ggml_backend_graph_compute(cpu.backend, self.graph) };
        assert_eq!(
            status,
            sys::GGML_STATUS_SUCCESS,
            "ggml graph compute failed"
        );
    }

    /// Y, `[batch, rows]` row-major.
    pub fn y(&self) -> Vec<f32> {
        // SAFETY: y's tensor holds batch * rows floats.
        unsafe {
            let n = sys::ggml_nbytes(self.y);
            let mut out = vec![0f32; n / 4];
            sys::ggml_backend_tensor_get(self.y, out.as_mut_ptr().cast(), 0, n);
            out
        }
    }
}

impl Drop for MulMat<'_> {
    fn drop(&mut self) {
        // SAFETY: nothing computes any more.
        unsafe {
            sys::ggml_backend_buffer_free(self.buffer);
            sys::ggml_free(self.ctx);
        }
    }
}
