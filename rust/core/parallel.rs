//! Work sharing in which the calling thread works too.
//!
//! `rayon`'s `par_iter` from a thread outside its pool queues the work, wakes pool threads and blocks the
//! caller until they finish: the core the caller was running on idles while a sleeping one is woken, and
//! when another process holds a core, the task that landed there finishes last. [`for_each`] instead has
//! the caller start on the tasks at once and lets pool threads join while tasks remain; the caller waits
//! only for tasks already started, never for a helper that has not been scheduled yet.

use std::cell::UnsafeCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, Thread};

/// Set in `Shared::state` once the caller has stopped admitting helpers; the other bits count the
/// helpers inside `claim_all`.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// Runs `work` on every task, on the calling thread and on up to `rayon::current_num_threads() - 1` pool
/// threads that join while tasks remain. Returns when every task has run; a panic in any of them is
/// raised again here (after every started task has finished).
pub fn for_each<T: Send>(tasks: Vec<T>, work: impl Fn(T) + Sync) {
    let helpers = rayon::current_num_threads()
        .saturating_sub(1)
        .min(tasks.len().saturating_sub(1));
    if helpers == 0 {
        tasks.into_iter().for_each(work);
        return;
    }
    let slots = Slots(
        tasks
            .into_iter()
            .map(|t| UnsafeCell::new(Some(t)))
            .collect(),
    );
    let run = |i: usize| {
        // SAFETY: `claim_all` hands out each index once, so this is the only access to slot `i`.
        if let Some(task) = unsafe { slots.take(i) } {
            work(task);
        }
    };
    let run: &(dyn Fn(usize) + Sync) = &run;
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        len: slots.0.len(),
        state: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        caller: thread::current(),
        // SAFETY (lifetime erasure): `run` is only called by helpers counted in `state`, and `Close`
        // below does not let this function return (or unwind) before that count is back to zero.
        run: unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync)>(
                run,
            )
        },
    });
    for _ in 0..helpers {
        let shared = Arc::clone(&shared);
        rayon::spawn(move || shared.help());
    }
    let close = Close(&shared);
    shared.claim_all();
    drop(close);
    if shared.panicked.load(Ordering::Relaxed) {
        panic!("parallel::for_each: a task panicked on a pool thread");
    }
}

struct Shared {
    /// The next index to hand out.
    next: AtomicUsize,
    len: usize,
    state: AtomicUsize,
    panicked: AtomicBool,
    caller: Thread,
    run: *const (dyn Fn(usize) + Sync),
}

// SAFETY: `run` points at a `Sync` closure and is only called under the protocol described at `for_each`.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn claim_all(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.len {
                return;
            }
            // SAFETY: the caller is inside `for_each`, or a helper is counted in `state`: `run` is alive.
            unsafe { (*self.run)(i) };
        }
    }

    /// A pool thread's part: join unless the caller has closed, claim tasks, leave.
    fn help(&self) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                return;
            }
            match self.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if panic::catch_unwind(AssertUnwindSafe(|| self.claim_all())).is_err() {
            self.panicked.store(true, Ordering::Relaxed);
        }
        // Release: the caller sees this helper's writes once it sees the count drop.
        if self.state.fetch_sub(1, Ordering::Release) == CLOSED + 1 {
            self.caller.unpark();
        }
    }
}

/// Closes `Shared` to new helpers and waits for the joined ones, on return and on unwind alike.
struct Close<'a>(&'a Shared);

impl Drop for Close<'_> {
    fn drop(&mut self) {
        // Tasks nobody claimed yet (after a panic on this thread) are skipped by any helper still working.
        self.0.next.store(usize::MAX / 2, Ordering::Relaxed);
        self.0.state.fetch_or(CLOSED, Ordering::Relaxed);
        while self.0.state.load(Ordering::Acquire) != CLOSED {
            thread::park();
        }
    }
}

/// Tasks by index, each taken once.
struct Slots<T>(Box<[UnsafeCell<Option<T>>]>);

// SAFETY: a slot is only accessed by the thread that claimed its index; `T: Send` lets it move there.
unsafe impl<T: Send> Sync for Slots<T> {}

impl<T> Slots<T> {
    /// # Safety
    /// No other thread may access slot `i` during or after this call.
    unsafe fn take(&self, i: usize) -> Option<T> {
        unsafe { (*self.0[i].get()).take() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// `make miri` interprets every step: the same tests with fewer and smaller rounds under it.
    const MIRI: bool = cfg!(miri);

    #[test]
    fn runs_every_task_once() {
        let sizes: &[usize] = if MIRI {
            &[0, 1, 2, 3, 20]
        } else {
            &[0, 1, 2, 3, 100, 1000]
        };
        for &n in sizes {
            let hits: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
            for_each((0..n).collect(), |i: usize| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "n = {n}"
            );
        }
    }

    #[test]
    fn writes_through_disjoint_slices_are_visible() {
        let mut data = vec![0u32; if MIRI { 1_000 } else { 10_000 }];
        let chunks: Vec<(usize, &mut [u32])> = data.chunks_mut(97).enumerate().collect();
        for_each(chunks, |(k, chunk)| {
            chunk.iter_mut().for_each(|v| *v = k as u32 + 1)
        });
        for (k, chunk) in data.chunks(97).enumerate() {
            assert!(chunk.iter().all(|&v| v == k as u32 + 1));
        }
    }

    #[test]
    fn a_panicking_task_panics_the_caller_after_the_others() {
        let done = AtomicU64::new(0);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            for_each((0..64).collect(), |i: u32| {
                if i == 40 {
                    panic!("task 40");
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        // Every task either ran or was skipped after the panic; none runs after for_each has returned.
        let seen = done.load(Ordering::Relaxed);
        thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(done.load(Ordering::Relaxed), seen);
    }

    #[test]
    fn many_calls_in_a_row_and_from_several_threads() {
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..if MIRI { 3 } else { 200 } {
                        let sum = AtomicU64::new(0);
                        for_each((1..=50u64).collect(), |i| {
                            sum.fetch_add(i, Ordering::Relaxed);
                        });
                        assert_eq!(sum.load(Ordering::Relaxed), 1275);
                    }
                });
            }
        });
    }
}
