//! The one tokio runtime both transports (gRPC and REST) run on: one set of worker threads and one
//! pool of blocking threads (the Python handler threads) for the process.

use std::sync::{Arc, Mutex, Weak};

use tokio::runtime::Runtime;

use crate::grpc::python_thread;

static SHARED: Mutex<Weak<Runtime>> = Mutex::new(Weak::new());

/// The running shared runtime, or a new one with `handler_threads` blocking threads (the first
/// server to ask sets the size; later ones share it).
pub fn shared(handler_threads: usize) -> std::io::Result<Arc<Runtime>> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(runtime) = shared.upgrade() {
        return Ok(runtime);
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("ovms-rs-io")
            .max_blocking_threads(handler_threads.max(1))
            .on_thread_stop(python_thread::unregister)
            .enable_all()
            .build()?,
    );
    *shared = Arc::downgrade(&runtime);
    Ok(runtime)
}

/// Lets go of a server's handle; the last one shuts the runtime down without waiting for its
/// blocking threads (handlers still in Python are abandoned, as the grace period has passed).
pub fn release(runtime: Arc<Runtime>) {
    let _shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(runtime) = Arc::try_unwrap(runtime) {
        runtime.shutdown_background();
    }
}
