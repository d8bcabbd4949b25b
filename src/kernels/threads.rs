//! How rows are shared out over rayon's persistent pool.

/// Below this many elements a task is not worth a thread hand-off.
const MIN_TASK_ELEMENTS: usize = 1 << 16;

/// Rows per task for a call asking for `threads` threads (0 = every thread
/// of the pool, 1 = the calling thread only). One task per thread at most,
/// so a call never occupies more threads than it asked for; a result
/// `>= rows` means "run on the calling thread".
pub(crate) fn rows_per_task(rows: usize, cols: usize, threads: usize) -> usize {
    let threads = match threads {
        0 => rayon::current_num_threads(),
        n => n,
    };
    let min_rows = MIN_TASK_ELEMENTS.div_ceil(cols.max(1));
    rows.div_ceil(threads.max(1)).max(min_rows).max(1)
}
