//! One Python thread state per handler thread, for the thread's whole life.
//!
//! `Python::attach` on a thread the interpreter does not know creates a thread state and deletes it again
//! when it returns: per request, an allocation, a 16 KiB frame-stack mmap + munmap, the interpreter's
//! thread-list lock twice, and fresh thread-locals for everything in Python that caches per thread.
//! Registering a blocking thread once, the first time it runs a handler, turns every later attach into a
//! plain GIL acquire. The state goes when tokio retires the thread (`on_thread_stop`).

use std::cell::Cell;

use pyo3::ffi;

thread_local! {
    /// This thread's registration: the GIL state to release and the (detached) thread state.
    static REGISTERED: Cell<Option<(ffi::PyGILState_STATE, *mut ffi::PyThreadState)>> =
        const { Cell::new(None) };
}

/// Gives this thread a Python thread state that outlives the calls it makes (a no-op after the first
/// call on the thread). Call without holding the GIL.
pub fn register() {
    if REGISTERED.get().is_some() {
        return;
    }
    // SAFETY: the interpreter is running (a handler is about to be called), this thread does not hold
    // the GIL, and Ensure followed by SaveThread leaves the GIL released with the state kept for later
    // PyGILState_Ensure calls on this thread (PyO3's attach).
    let registration = unsafe {
        let gil_state = ffi::PyGILState_Ensure();
        (gil_state, ffi::PyEval_SaveThread())
    };
    REGISTERED.set(Some(registration));
}

/// Deletes the thread state `register` made (tokio's `on_thread_stop`). Skipped once the interpreter
/// is finalizing: it owns the states then, and taking the GIL would end the thread.
pub fn unregister() {
    let Some((gil_state, thread_state)) = REGISTERED.take() else {
        return;
    };
    // SAFETY: the pair came from `register` on this thread, which holds no GIL now (tokio runs this
    // hook outside any task).
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            ffi::PyEval_RestoreThread(thread_state);
            ffi::PyGILState_Release(gil_state);
        }
    }
}
