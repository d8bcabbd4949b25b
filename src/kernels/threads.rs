//! How rows are shared out over rayon's persistent pool.

/// Below this many elements a task is not worth a thread hand-off.
const MIN_TASK_ELEMENTS: usize = 1 << 16;

/// Tasks per thread when a call may use the whole pool: smaller tasks let
/// rayon's work stealing even out threads that the system slows down
/// (one task per thread leaves the whole call waiting on the slowest).
const TASKS_PER_THREAD: usize = 4;

/// Rows per task for a call asking for `threads` threads (0 = every thread
/// of the pool, 1 = the calling thread only). A call that asks for fewer
/// threads than the pool has gets one task per thread at most, so that it
/// never occupies more threads than it asked for; one that may use the
/// whole pool gets a few tasks per thread. A result `>= rows` means "run
/// on the calling thread".
pub(crate) fn rows_per_task(rows: usize, cols: usize, threads: usize) -> usize {
    let min_rows = MIN_TASK_ELEMENTS.div_ceil(cols.max(1));
    // Asking rayon for the pool's size starts the pool: a call that runs
    // on the calling thread whatever its size must not spawn its threads.
    if threads == 1 || min_rows >= rows {
        return rows.max(min_rows);
    }
    let pool = rayon::current_num_threads();
    let wanted = if threads == 0 { pool } else { threads };
    let tasks = if pool > 1 && wanted >= pool {
        pool * TASKS_PER_THREAD
    } else {
        wanted
    };
    rows.div_ceil(tasks.max(1)).max(min_rows)
}
