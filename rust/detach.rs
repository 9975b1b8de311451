//! Releasing the interpreter around work worth it, in one place.

use pyo3::marker::Ungil;
use pyo3::Python;

/// Runs `f`, with the interpreter released when `bytes` (what `f` moves) is larger than `threshold`:
/// below it, releasing and taking back the interpreter costs more than the work. Each caller names
/// its threshold (a constant, measured for that work).
pub fn detach_above<T, F>(py: Python<'_>, bytes: usize, threshold: usize, f: F) -> T
where
    F: Ungil + FnOnce() -> T,
    T: Ungil,
{
    if bytes > threshold {
        py.detach(f)
    } else {
        f()
    }
}
