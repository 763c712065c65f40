//! The CUDA backend (cargo feature `cuda`): `kernels/epoch.cu` compiled at run time by NVRTC
//! through cudarc, which loads the CUDA libraries dynamically, so the crate builds and its
//! tests run on machines with no CUDA at all. PTX is cached per kernel source, target
//! architecture and NVRTC version, in the process and on disk (`$ICQ_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/icq/ptx`, else `~/.cache/icq/ptx`), so a sweep — and the next one —
//! compiles each variant once.
//!
//! Without the feature the backend still exists and says it was left out.

use super::device::KernelShape;
#[cfg(not(feature = "cuda"))]
use crate::error::{Error, Result};

/// The kernel source NVRTC compiles for `shape`: defines, Philox, the epoch kernel (the
/// include resolved).
pub fn cuda_source(shape: KernelShape) -> String {
    let philox = include_str!("../../kernels/philox.cuh").replace("#pragma once", "");
    let epoch = include_str!("../../kernels/epoch.cu").replace("#include \"philox.cuh\"", "");
    format!(
        "#define ICQ_WIDTH {}\n#define ICQ_ACTIONS {}\n{}{philox}\n{epoch}",
        shape.width.max(1),
        shape.actions.max(1),
        if shape.f16 { "#define ICQ_F16\n" } else { "" },
    )
}

#[cfg(feature = "cuda")]
pub use enabled::*;

#[cfg(feature = "cuda")]
mod enabled {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, OnceLock};

    use cudarc::driver::{
        CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
    };
    use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

    use super::cuda_source;
    use crate::backend::device::{
        f16_bits, from_f16_bits, gather_counters, gather_q, gather_states, Chunk, DeviceModel,
        Dispatch, EpochParams, KernelShape,
    };
    use crate::backend::{Backend, Counters, QTables};
    use crate::error::{Error, Result};
    use crate::io::write_atomically;
    use crate::learn::plan::BatchPlan;

    /// Threads per block of the epoch kernel.
    pub const BLOCK: u32 = 128;

    // SAFETY: `Dispatch` and `EpochParams` are `#[repr(C)]`, made only of 4-byte scalars, and
    // mirrored field for field by the structs of the same names in kernels/epoch.cu (checked
    // by a test), so passing a `Dispatch` by value and an array of `EpochParams` by pointer has
    // the layout the kernel reads.
    unsafe impl DeviceRepr for Dispatch {}
    // SAFETY: as above.
    unsafe impl DeviceRepr for EpochParams {}

    /// Whether NVRTC can be loaded on this machine.
    pub fn nvrtc_available() -> bool {
        // SAFETY: only probes for the shared library; nothing is called through it.
        unsafe { cudarc::nvrtc::sys::is_culib_present() }
    }

    fn ptx_cache() -> &'static Mutex<HashMap<String, String>> {
        static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
        CACHE.get_or_init(|| Mutex::new(HashMap::new()))
    }

    /// The NVRTC version, as "major.minor".
    fn nvrtc_version() -> String {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: NVRTC is loaded (checked by the caller); the call writes two ints.
        unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
        format!("{major}.{minor}")
    }

    /// Where compiled PTX is kept between processes (none when no folder can be named).
    pub fn ptx_cache_dir() -> Option<PathBuf> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("ICQ_CACHE_DIR")
            .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("icq").join("ptx")))
            .or_else(|| var("HOME").map(|d| d.join(".cache").join("icq").join("ptx")))
    }

    /// FNV-1a, 64 bits: names a cache file (the file itself holds the whole key, checked on
    /// every read, so a collision can only cost a recompile).
    fn fnv1a(text: &str) -> u64 {
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// The cached PTX of `key` in `dir`, if a file there holds exactly that key and a whole
    /// PTX (its closing line is there).
    fn read_cached(dir: &Path, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(cache_file(dir, key)).ok()?;
        let (stored, rest) = text.split_once(CACHE_SEPARATOR)?;
        let ptx = rest.strip_suffix(CACHE_END)?;
        (stored == key).then(|| ptx.to_string())
    }

    /// Stores the PTX of `key` in `dir` (atomically; a cache that cannot be written is only
    /// slower, so failures are ignored).
    fn write_cached(dir: &Path, key: &str, ptx: &str) {
        if std::fs::create_dir_all(dir).is_ok() {
            let body = format!("{key}{CACHE_SEPARATOR}{ptx}{CACHE_END}");
            let _ = write_atomically(&cache_file(dir, key), body.as_bytes());
        }
    }

    /// Separates a cache file's key (arch, NVRTC version, source) from its PTX.
    const CACHE_SEPARATOR: &str = "\n// ---- icq: PTX below ----\n";
    /// Closes a cache file: a file without it was cut short and is not used.
    const CACHE_END: &str = "\n// ---- icq: end of PTX ----\n";

    /// PTX of the epoch kernel for `shape` (compiled once per source, `arch` and NVRTC
    /// version, then cached in the process and in [`ptx_cache_dir`]); NVRTC failures carry
    /// the compiler log.
    pub fn compile_epoch(shape: KernelShape, arch: Option<&'static str>) -> Result<String> {
        compile_epoch_in(shape, arch, ptx_cache_dir().as_deref())
    }

    /// [`compile_epoch`] with the on-disk cache in `dir` (none: the process's cache only).
    pub fn compile_epoch_in(
        shape: KernelShape,
        arch: Option<&'static str>,
        dir: Option<&Path>,
    ) -> Result<String> {
        if !nvrtc_available() {
            return Err(Error::BackendUnavailable(
                "NVRTC (libnvrtc) cannot be loaded".into(),
            ));
        }
        let key = cache_key(shape, arch);
        let memo = format!("{dir:?}\n{key}");
        if let Some(ptx) = ptx_cache().lock().expect("PTX cache").get(&memo) {
            return Ok(ptx.clone());
        }
        let text = match dir.and_then(|d| read_cached(d, &key)) {
            Some(ptx) => ptx,
            None => {
                let opts = CompileOptions {
                    arch,
                    name: Some("epoch.cu".into()),
                    ..Default::default()
                };
                let ptx =
                    compile_ptx_with_opts(cuda_source(shape), opts).map_err(|e| Error::Shader {
                        name: "kernels/epoch.cu (epochs)".into(),
                        message: e.to_string(),
                    })?;
                let text = ptx.to_src();
                if let Some(d) = dir {
                    write_cached(d, &key, &text);
                }
                text
            }
        };
        ptx_cache()
            .lock()
            .expect("PTX cache")
            .insert(memo, text.clone());
        Ok(text)
    }

    /// The file in `dir` that caches the PTX of `shape` and `arch`.
    pub fn ptx_cache_file(dir: &Path, shape: KernelShape, arch: Option<&str>) -> PathBuf {
        cache_file(dir, &cache_key(shape, arch))
    }

    fn cache_file(dir: &Path, key: &str) -> PathBuf {
        dir.join(format!("{:016x}.ptx", fnv1a(key)))
    }

    /// What a cached PTX depends on: the target, the compiler and the source.
    fn cache_key(shape: KernelShape, arch: Option<&str>) -> String {
        format!(
            "// arch {}, NVRTC {}\n{}",
            arch.unwrap_or("default"),
            nvrtc_version(),
            cuda_source(shape)
        )
    }

    /// The device memory's peak bandwidth in bytes/s: two transfers per memory clock over
    /// the whole bus (`None` where the driver reports no clock or width).
    fn memory_bandwidth(ctx: &CudaContext) -> Option<f64> {
        use cudarc::driver::sys::CUdevice_attribute as A;
        let khz = ctx
            .attribute(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)
            .ok()?;
        let bits = ctx
            .attribute(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)
            .ok()?;
        (khz > 0 && bits > 0).then(|| 2.0 * f64::from(khz) * 1e3 * f64::from(bits) / 8.0)
    }

    fn driver(e: cudarc::driver::DriverError) -> Error {
        Error::Gpu(format!("CUDA: {e}"))
    }

    /// The CUDA backend on device 0.
    pub struct Cuda {
        ctx: Arc<CudaContext>,
        stream: Arc<CudaStream>,
        name: String,
        peak_bandwidth: Option<f64>,
        functions: Mutex<HashMap<KernelShape, CudaFunction>>,
    }

    /// A batch on a CUDA device.
    pub struct CudaBatch {
        batch: BatchPlan,
        chunk: Chunk,
        groups: CudaSlice<EpochParams>,
        function: CudaFunction,
        words: CudaSlice<u32>,
        values: CudaSlice<f32>,
        inst: CudaSlice<u32>,
        params: DeviceParams,
        epoch: u32,
    }

    /// Parameters as the kernel stores them.
    enum DeviceParams {
        F32(CudaSlice<f32>),
        /// IEEE binary16 bits.
        F16(CudaSlice<u16>),
    }

    impl Cuda {
        /// Opens device 0 (the driver and NVRTC are loaded dynamically).
        pub fn new() -> Result<Self> {
            if !nvrtc_available() {
                return Err(Error::BackendUnavailable(
                    "NVRTC (libnvrtc) cannot be loaded".into(),
                ));
            }
            // SAFETY: only probes for the driver library.
            if !unsafe { cudarc::driver::sys::is_culib_present() } {
                return Err(Error::BackendUnavailable(
                    "the CUDA driver (libcuda) cannot be loaded".into(),
                ));
            }
            let ctx = CudaContext::new(0).map_err(driver)?;
            let name = ctx.name().map_err(driver)?;
            let stream = ctx.default_stream();
            let peak_bandwidth = memory_bandwidth(&ctx);
            Ok(Self {
                ctx,
                stream,
                name,
                peak_bandwidth,
                functions: Mutex::new(HashMap::new()),
            })
        }

        fn function(&self, shape: KernelShape) -> Result<CudaFunction> {
            let mut cache = self.functions.lock().expect("function cache");
            if let Some(f) = cache.get(&shape) {
                return Ok(f.clone());
            }
            let ptx = compile_epoch(shape, None)?;
            // A cached PTX the driver rejects is compiled afresh, once, bypassing the cache.
            let module = match self.ctx.load_module(Ptx::from_src(ptx)) {
                Ok(m) => m,
                Err(_) => {
                    let fresh = compile_epoch_in(shape, None, None)?;
                    self.ctx.load_module(Ptx::from_src(fresh)).map_err(driver)?
                }
            };
            let f = module.load_function("epochs").map_err(driver)?;
            cache.insert(shape, f.clone());
            Ok(f)
        }
    }

    impl Backend for Cuda {
        type Batch = CudaBatch;

        fn name(&self) -> &'static str {
            "cuda"
        }

        fn device(&self) -> String {
            self.name.clone()
        }

        fn upload(&self, batch: &BatchPlan) -> Result<CudaBatch> {
            let packed = DeviceModel::new(batch);
            let shape = packed.uniform_shape()?;
            let function = self.function(shape)?;
            let chunk = Chunk::new(batch, &packed, 0, batch.instances())?;
            let (inst, params) = chunk.initial(batch);
            let s = &self.stream;
            Ok(CudaBatch {
                batch: batch.clone(),
                groups: s.clone_htod(&chunk.groups).map_err(driver)?,
                chunk,
                function,
                words: s.clone_htod(&packed.words).map_err(driver)?,
                values: s.clone_htod(&packed.values).map_err(driver)?,
                inst: s.clone_htod(&inst).map_err(driver)?,
                params: if shape.f16 {
                    DeviceParams::F16(s.clone_htod(&f16_bits(&params)).map_err(driver)?)
                } else {
                    DeviceParams::F32(s.clone_htod(&params).map_err(driver)?)
                },
                epoch: 0,
            })
        }

        fn advance(&self, batch: &mut CudaBatch, epochs: u32) -> Result<()> {
            let blocks = batch.chunk.len.div_ceil(BLOCK);
            for n in crate::backend::device::launches(epochs) {
                let d = batch.chunk.dispatch(n, batch.epoch);
                let mut launch = self.stream.launch_builder(&batch.function);
                // Arguments in the order of `epochs` in kernels/epoch.cu: (Dispatch D,
                // const EpochParams* G, const unsigned* MU, const float* MF, unsigned* INST,
                // icq_param* PARAMS), icq_param being float, or unsigned short under ICQ_F16
                // (the function was compiled for the batch's storage).
                launch
                    .arg(&d)
                    .arg(&batch.groups)
                    .arg(&batch.words)
                    .arg(&batch.values)
                    .arg(&mut batch.inst);
                match &mut batch.params {
                    DeviceParams::F32(p) => launch.arg(p),
                    DeviceParams::F16(p) => launch.arg(p),
                };
                let config = LaunchConfig {
                    grid_dim: (blocks, 1, 1),
                    block_dim: (BLOCK, 1, 1),
                    shared_mem_bytes: 0,
                };
                // SAFETY: the argument list matches the kernel's signature above, the group
                // table has `d.groups` entries whose offsets lie inside the packed model and the
                // chunk's record and parameter buffers, and the kernel guards every thread
                // index against `d.instances`.
                unsafe { launch.launch(config) }.map_err(driver)?;
                batch.epoch += n;
            }
            Ok(())
        }

        fn read_q(&self, batch: &CudaBatch) -> Result<Vec<QTables>> {
            let minor: Vec<f32> = match &batch.params {
                DeviceParams::F32(p) => self.stream.clone_dtoh(p).map_err(driver)?,
                DeviceParams::F16(p) => from_f16_bits(&self.stream.clone_dtoh(p).map_err(driver)?),
            };
            Ok(gather_q(&batch.batch, [(&batch.chunk, minor)]))
        }

        fn counters(&self, batch: &CudaBatch) -> Result<Vec<Counters>> {
            let words: Vec<u32> = self.stream.clone_dtoh(&batch.inst).map_err(driver)?;
            Ok(gather_counters(&batch.batch, [(&batch.chunk, words)]))
        }

        fn states(&self, batch: &CudaBatch) -> Result<Vec<Vec<u32>>> {
            let words: Vec<u32> = self.stream.clone_dtoh(&batch.inst).map_err(driver)?;
            Ok(gather_states(&batch.batch, [(&batch.chunk, words)]))
        }

        fn sync(&self) -> Result<()> {
            self.stream.synchronize().map_err(driver)
        }

        fn peak_bandwidth(&self) -> Option<f64> {
            self.peak_bandwidth
        }
    }
}

/// The CUDA backend of a build without the `cuda` feature: it only says so.
#[cfg(not(feature = "cuda"))]
pub struct Cuda;

#[cfg(not(feature = "cuda"))]
impl Cuda {
    /// Always [`Error::BackendUnavailable`].
    pub fn new() -> Result<Self> {
        Err(Error::BackendUnavailable(
            "built without the cuda feature".into(),
        ))
    }
}

/// Whether NVRTC can be loaded (always false without the `cuda` feature).
#[cfg(not(feature = "cuda"))]
pub fn nvrtc_available() -> bool {
    false
}
