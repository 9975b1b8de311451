//! OpenVINO's C API (`libopenvino_c`, shipped in the `openvino` wheel), loaded at run time with `dlopen`:
//! the FFI table and the little `floor.rs --infer` needs from it, behind safe types.
//!
//! The functions used are declared here, by hand, from the C headers the wheel itself ships
//! (`openvino/include/openvino/c/*.h` of openvino 2026.4.1: ov_common.h, ov_core.h, ov_compiled_model.h,
//! ov_infer_request.h, ov_tensor.h, ov_shape.h, ov_node.h), which are those of openvinotoolkit/openvino
//! `src/bindings/c/include/openvino/c/`. Only those functions: every one returns an `ov_status_e` (a C
//! enum: `int`, `OK` = 0) that is checked, except the `*_free` ones (void). `libc` (already a
//! dependency) does the `dlopen`: no new crate for three calls.
//!
//! The ABI is not stable across releases: `ov_element_type_e` lost its `UNDEFINED = 0` (older headers
//! have F32 = 5, 2026.4's F32 = 4), so `compile` checks the model's input reports F32 and 4-byte
//! elements, and benches/load.py compares the replies with in-process OpenVINO's.
//!
//! Every `unsafe` block of the infer mode is in this module.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr;

/// `ov_status_e`: `OK` = 0, errors negative (ov_common.h).
type Status = c_int;
/// `ov_element_type_e` (ov_common.h of 2026.4): DYNAMIC = 0, BOOLEAN, BF16, F16, F32, F64, ...
type ElementType = c_uint;
pub const F32: ElementType = 4;

/// `ov_shape_t` (ov_shape.h): `{ int64_t rank; int64_t* dims; }`, passed by value.
#[repr(C)]
struct Shape {
    rank: i64,
    dims: *mut i64,
}

// Opaque handles (`typedef struct ov_core ov_core_t;` and so on).
#[repr(C)]
struct Core([u8; 0]);
#[repr(C)]
struct CompiledModel([u8; 0]);
#[repr(C)]
struct Request([u8; 0]);
#[repr(C)]
struct Tensor([u8; 0]);
#[repr(C)]
struct Port([u8; 0]);

macro_rules! api {
    ($($name:ident: $ty:ty;)*) => {
        /// The C functions used, resolved once by name.
        struct Api {
            $($name: $ty,)*
        }

        impl Api {
            fn load(library: &str) -> Result<Api, String> {
                let path = CString::new(library).map_err(|_| "library path with a NUL byte")?;
                // SAFETY: dlopen with a valid C string; the handle is never closed, so the function
                // pointers below stay valid for the life of the process.
                let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
                if handle.is_null() {
                    // SAFETY: dlerror returns a C string (or null) describing the last dl* failure.
                    let why = unsafe { libc::dlerror() };
                    let why = if why.is_null() {
                        String::new()
                    } else {
                        // SAFETY: non-null, NUL-terminated, read before any other dl* call.
                        unsafe { CStr::from_ptr(why) }.to_string_lossy().into_owned()
                    };
                    return Err(format!("dlopen {library}: {why}"));
                }
                Ok(Api {
                    $($name: {
                        let name = concat!(stringify!($name), "\0");
                        // SAFETY: a valid handle and a NUL-terminated name.
                        let symbol = unsafe { libc::dlsym(handle, name.as_ptr().cast()) };
                        if symbol.is_null() {
                            return Err(format!("{library} has no {}", stringify!($name)));
                        }
                        // SAFETY: the symbol is that C function, whose prototype (in the header named
                        // in the module docs) the type spells out; a data pointer and a function
                        // pointer have the same size on the platforms OpenVINO ships for.
                        unsafe { std::mem::transmute::<*mut c_void, $ty>(symbol) }
                    },)*
                })
            }
        }
    };
}

api! {
    ov_get_error_info: unsafe extern "C" fn(Status) -> *const c_char;
    ov_get_last_err_msg: unsafe extern "C" fn() -> *const c_char;
    ov_free: unsafe extern "C" fn(*const c_char);
    ov_core_create: unsafe extern "C" fn(*mut *mut Core) -> Status;
    // (core, model_path, device_name, property_args_size, compiled_model, key, value, ...): the size
    // counts the variadic arguments, two per property (ov_core.cpp rejects an odd one).
    ov_core_compile_model_from_file: unsafe extern "C" fn(
        *const Core, *const c_char, *const c_char, usize, *mut *mut CompiledModel, ...
    ) -> Status;
    ov_compiled_model_get_property:
        unsafe extern "C" fn(*const CompiledModel, *const c_char, *mut *mut c_char) -> Status;
    ov_compiled_model_input_by_index:
        unsafe extern "C" fn(*const CompiledModel, usize, *mut *mut Port) -> Status;
    ov_compiled_model_output_by_index:
        unsafe extern "C" fn(*const CompiledModel, usize, *mut *mut Port) -> Status;
    ov_port_get_any_name: unsafe extern "C" fn(*const Port, *mut *mut c_char) -> Status;
    ov_output_const_port_free: unsafe extern "C" fn(*mut Port);
    ov_compiled_model_create_infer_request:
        unsafe extern "C" fn(*const CompiledModel, *mut *mut Request) -> Status;
    ov_infer_request_get_input_tensor_by_index:
        unsafe extern "C" fn(*const Request, usize, *mut *mut Tensor) -> Status;
    ov_infer_request_get_output_tensor_by_index:
        unsafe extern "C" fn(*const Request, usize, *mut *mut Tensor) -> Status;
    ov_infer_request_set_input_tensor_by_index:
        unsafe extern "C" fn(*mut Request, usize, *const Tensor) -> Status;
    ov_infer_request_infer: unsafe extern "C" fn(*mut Request) -> Status;
    ov_tensor_create_from_host_ptr:
        unsafe extern "C" fn(ElementType, Shape, *mut c_void, *mut *mut Tensor) -> Status;
    ov_tensor_get_shape: unsafe extern "C" fn(*const Tensor, *mut Shape) -> Status;
    ov_tensor_get_element_type: unsafe extern "C" fn(*const Tensor, *mut ElementType) -> Status;
    ov_tensor_get_byte_size: unsafe extern "C" fn(*const Tensor, *mut usize) -> Status;
    ov_tensor_data: unsafe extern "C" fn(*const Tensor, *mut *mut c_void) -> Status;
    ov_tensor_free: unsafe extern "C" fn(*mut Tensor);
    ov_shape_free: unsafe extern "C" fn(*mut Shape) -> Status;
}

impl Api {
    /// `Ok` for `OK`, else the status's name and OpenVINO's last error message.
    /// A tensor's host memory and its size in bytes.
    ///
    /// # Safety
    /// `tensor` must be a live tensor handle.
    unsafe fn host_memory(&self, tensor: *mut Tensor) -> Result<(*mut c_void, usize), String> {
        let (mut data, mut size) = (ptr::null_mut(), 0);
        // SAFETY: a live tensor (the caller's promise) and out-pointers.
        self.check(
            unsafe { (self.ov_tensor_data)(tensor, &mut data) },
            "ov_tensor_data",
        )?;
        // SAFETY: as above.
        self.check(
            unsafe { (self.ov_tensor_get_byte_size)(tensor, &mut size) },
            "ov_tensor_get_byte_size",
        )?;
        Ok((data, size))
    }

    fn check(&self, status: Status, what: &str) -> Result<(), String> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: both return NUL-terminated strings (static for the first; the second a copy that
        // is leaked here: errors end the process or the request, and are rare).
        let (info, last) = unsafe {
            (
                (self.ov_get_error_info)(status),
                (self.ov_get_last_err_msg)(),
            )
        };
        let text = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: non-null and NUL-terminated (above).
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        Err(format!(
            "{what}: status {status} ({}) {}",
            text(info),
            text(last)
        ))
    }

    /// A string the library allocated, copied and freed.
    fn take_string(&self, p: *mut c_char) -> String {
        // SAFETY: `p` came from an OpenVINO call documented to allocate it (ov_free releases it).
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        // SAFETY: freed once, by the library that allocated it.
        unsafe { (self.ov_free)(p) };
        s
    }

    fn port_name(
        &self,
        compiled: *const CompiledModel,
        output: bool,
        index: usize,
    ) -> Result<String, String> {
        let mut port = ptr::null_mut();
        let by_index = if output {
            self.ov_compiled_model_output_by_index
        } else {
            self.ov_compiled_model_input_by_index
        };
        // SAFETY: a live compiled model and an out-pointer.
        self.check(
            unsafe { by_index(compiled, index, &mut port) },
            "port by index",
        )?;
        let mut name = ptr::null_mut();
        // SAFETY: the port just returned.
        let named = self.check(
            unsafe { (self.ov_port_get_any_name)(port, &mut name) },
            "port name",
        );
        // SAFETY: freed once, after its last use.
        unsafe { (self.ov_output_const_port_free)(port) };
        named?;
        Ok(self.take_string(name))
    }

    /// A tensor's element type, shape and byte size.
    fn describe(&self, tensor: *const Tensor) -> Result<(ElementType, Vec<usize>, usize), String> {
        let mut ty = 0;
        // SAFETY: a live tensor and out-pointers.
        self.check(
            unsafe { (self.ov_tensor_get_element_type)(tensor, &mut ty) },
            "element type",
        )?;
        let mut shape = Shape {
            rank: 0,
            dims: ptr::null_mut(),
        };
        // SAFETY: as above; the call allocates `shape.dims`, freed below.
        self.check(
            unsafe { (self.ov_tensor_get_shape)(tensor, &mut shape) },
            "tensor shape",
        )?;
        let dims = if shape.dims.is_null() {
            Vec::new()
        } else {
            // SAFETY: `rank` dims were written by the call above.
            unsafe { std::slice::from_raw_parts(shape.dims, shape.rank as usize) }
                .iter()
                .map(|&d| d as usize)
                .collect()
        };
        // SAFETY: the shape the library allocated, freed once.
        self.check(unsafe { (self.ov_shape_free)(&mut shape) }, "shape free")?;
        let mut size = 0;
        // SAFETY: a live tensor and an out-pointer.
        self.check(
            unsafe { (self.ov_tensor_get_byte_size)(tensor, &mut size) },
            "byte size",
        )?;
        Ok((ty, dims, size))
    }
}

/// What `compile` reports about the model, for checking requests and writing replies.
pub struct ModelInfo {
    pub input_name: String,
    pub input_shape: Vec<usize>,
    pub input_type: u32,
    pub input_bytes: usize,
    pub output_name: String,
    pub output_shape: Vec<usize>,
    pub output_type: u32,
    /// The compiled model's INFERENCE_NUM_THREADS and PERFORMANCE_HINT, as OpenVINO reports them.
    pub threads: String,
    pub hint: String,
}

/// One infer request of the compiled model (which, like the core, lives until the process exits).
pub struct InferRequest {
    api: &'static Api,
    request: *mut Request,
}

// SAFETY: an OpenVINO infer request may be used from any thread, one call at a time; `&mut self` on
// every use (and the pool handing each to one thread at a time) guarantees the latter.
unsafe impl Send for InferRequest {}

/// Loads the library, compiles `model_xml` for CPU with PERFORMANCE_HINT=LATENCY (and
/// INFERENCE_NUM_THREADS=`threads` unless 0), and creates `nireq` infer requests from that one compiled
/// model. Single-input single-output models only.
pub fn compile(
    library: &str,
    model_xml: &str,
    nireq: usize,
    threads: usize,
) -> Result<(ModelInfo, Vec<InferRequest>), String> {
    let api: &'static Api = Box::leak(Box::new(Api::load(library)?));
    let mut core = ptr::null_mut();
    // SAFETY: an out-pointer.
    api.check(unsafe { (api.ov_core_create)(&mut core) }, "ov_core_create")?;
    let path = CString::new(model_xml).map_err(|_| "model path with a NUL byte")?;
    let threads_value = CString::new(threads.to_string()).expect("digits");
    let mut compiled = ptr::null_mut();
    // SAFETY: live core, NUL-terminated strings; the size (2 or 4) is the number of variadic arguments
    // that follow the out-pointer, each a `char*`, as GET_PROPERTY_FROM_ARGS_LIST reads them.
    let status = unsafe {
        if threads == 0 {
            (api.ov_core_compile_model_from_file)(
                core,
                path.as_ptr(),
                c"CPU".as_ptr(),
                2,
                &mut compiled,
                c"PERFORMANCE_HINT".as_ptr(),
                c"LATENCY".as_ptr(),
            )
        } else {
            (api.ov_core_compile_model_from_file)(
                core,
                path.as_ptr(),
                c"CPU".as_ptr(),
                4,
                &mut compiled,
                c"PERFORMANCE_HINT".as_ptr(),
                c"LATENCY".as_ptr(),
                c"INFERENCE_NUM_THREADS".as_ptr(),
                threads_value.as_ptr(),
            )
        }
    };
    api.check(status, "ov_core_compile_model_from_file")?;
    let property = |key: &CStr| -> Result<String, String> {
        let mut value = ptr::null_mut();
        // SAFETY: a live compiled model, a NUL-terminated key, an out-pointer.
        api.check(
            unsafe { (api.ov_compiled_model_get_property)(compiled, key.as_ptr(), &mut value) },
            "ov_compiled_model_get_property",
        )?;
        Ok(api.take_string(value))
    };
    let mut requests = Vec::with_capacity(nireq.max(1));
    for _ in 0..nireq.max(1) {
        let mut request = ptr::null_mut();
        // SAFETY: a live compiled model and an out-pointer.
        api.check(
            unsafe { (api.ov_compiled_model_create_infer_request)(compiled, &mut request) },
            "ov_compiled_model_create_infer_request",
        )?;
        requests.push(InferRequest { api, request });
    }
    let first = requests[0].request;
    let tensor = |output: bool| -> Result<(ElementType, Vec<usize>, usize), String> {
        let mut t = ptr::null_mut();
        let get = if output {
            api.ov_infer_request_get_output_tensor_by_index
        } else {
            api.ov_infer_request_get_input_tensor_by_index
        };
        // SAFETY: a live request and an out-pointer.
        api.check(unsafe { get(first, 0, &mut t) }, "get tensor by index")?;
        let described = api.describe(t);
        // SAFETY: the wrapper the call returned, freed once (the request keeps its own reference).
        unsafe { (api.ov_tensor_free)(t) };
        described
    };
    let (input_type, input_shape, input_bytes) = tensor(false)?;
    let (output_type, output_shape, _) = tensor(true)?;
    let info = ModelInfo {
        input_name: api.port_name(compiled, false, 0)?,
        input_shape,
        input_type,
        input_bytes,
        output_name: api.port_name(compiled, true, 0)?,
        output_shape,
        output_type,
        threads: property(c"INFERENCE_NUM_THREADS")?,
        hint: property(c"PERFORMANCE_HINT")?,
    };
    Ok((info, requests))
}

impl InferRequest {
    /// Infers on `input` (an f32 tensor of `shape`, wrapped without a copy) and hands the first output's
    /// bytes to `read`.
    ///
    /// `input` must hold the model's input bytes; OpenVINO reads it during this call only (the request
    /// keeps a reference to the wrapper, but the next call replaces it before any inference).
    pub fn infer<R>(
        &mut self,
        input: &mut [u8],
        shape: &[usize],
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, String> {
        let api = self.api;
        let mut dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let expected: usize = shape.iter().product::<usize>() * 4;
        if input.len() != expected {
            return Err(format!("input of {} bytes for {expected}", input.len()));
        }
        // The shape is read (copied into the tensor) by the call, so it may point at our own dims.
        let shape = Shape {
            rank: dims.len() as i64,
            dims: dims.as_mut_ptr(),
        };
        let mut tensor = ptr::null_mut();
        // SAFETY: `input` is valid for `expected` bytes (checked) for the whole call; the tensor does
        // not own it.
        api.check(
            unsafe {
                (api.ov_tensor_create_from_host_ptr)(
                    F32,
                    shape,
                    input.as_mut_ptr().cast(),
                    &mut tensor,
                )
            },
            "ov_tensor_create_from_host_ptr",
        )?;
        // SAFETY: a live request and tensor; the request is ours alone (&mut self).
        let ran = api
            .check(
                unsafe {
                    (api.ov_infer_request_set_input_tensor_by_index)(self.request, 0, tensor)
                },
                "ov_infer_request_set_input_tensor_by_index",
            )
            // SAFETY: as above.
            .and_then(|()| {
                api.check(
                    unsafe { (api.ov_infer_request_infer)(self.request) },
                    "ov_infer_request_infer",
                )
            });
        // SAFETY: our wrapper, freed once; the request holds its own reference to the tensor.
        unsafe { (api.ov_tensor_free)(tensor) };
        ran?;
        self.read_output(read)
    }

    /// As [`InferRequest::infer`], but `input` is copied into the request's own input tensor (the
    /// one OpenVINO allocated) instead of being wrapped: to measure what wrapping saves or costs.
    pub fn infer_copying<R>(
        &mut self,
        input: &[u8],
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, String> {
        let api = self.api;
        let mut tensor = ptr::null_mut();
        // SAFETY: a live request and an out-pointer.
        api.check(
            unsafe {
                (api.ov_infer_request_get_input_tensor_by_index)(self.request, 0, &mut tensor)
            },
            "ov_infer_request_get_input_tensor_by_index",
        )?;
        // SAFETY: a live tensor.
        let copied = unsafe { api.host_memory(tensor) }.and_then(|(data, size)| {
            if size != input.len() {
                return Err(format!("input of {} bytes for {size}", input.len()));
            }
            // SAFETY: the request's input memory, `size` bytes (checked equal to `input`'s), not
            // used by OpenVINO between inferences; `input` is ours, so they cannot overlap.
            unsafe { ptr::copy_nonoverlapping(input.as_ptr(), data.cast::<u8>(), size) };
            Ok(())
        });
        // SAFETY: our wrapper, freed once; the request keeps the tensor.
        unsafe { (api.ov_tensor_free)(tensor) };
        copied?;
        // SAFETY: a live request, ours alone (&mut self).
        api.check(
            unsafe { (api.ov_infer_request_infer)(self.request) },
            "ov_infer_request_infer",
        )?;
        self.read_output(read)
    }

    /// Hands the first output's bytes to `read`.
    fn read_output<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> Result<R, String> {
        let api = self.api;
        let mut output = ptr::null_mut();
        // SAFETY: a live request and an out-pointer.
        api.check(
            unsafe {
                (api.ov_infer_request_get_output_tensor_by_index)(self.request, 0, &mut output)
            },
            "ov_infer_request_get_output_tensor_by_index",
        )?;
        // SAFETY: a live tensor.
        let result = unsafe { api.host_memory(output) }.map(|(data, size)| {
            // SAFETY: the output tensor's host memory, `size` bytes, owned by the request and not
            // written until its next inference (which needs &mut self).
            read(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
        });
        // SAFETY: our wrapper, freed once, after the last read of its data.
        unsafe { (api.ov_tensor_free)(output) };
        result
    }
}
