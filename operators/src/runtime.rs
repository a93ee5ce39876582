//! The ONNX Runtime environment: finding the library, loading it once per process, choosing the
//! execution device, and creating sessions.
//!
//! Weir loads ONNX Runtime at run time (`ort`'s `load-dynamic`): the library is the official one
//! from the `onnxruntime` wheel, which `scripts/setup/onnxruntime.sh` puts at
//! `.cache/onnxruntime/libonnxruntime.so.1.31.1`. [`OnnxRuntime::get`] finds it — through
//! `ORT_DYLIB_PATH`, else by searching `.cache/onnxruntime/` from the current directory and from
//! the executable's directory upwards — checks that it exists and loads, and only then hands it to
//! `ort`. `ort` itself would panic on first use when the library is missing; going through this
//! module it never gets the chance: every failure is a [`RuntimeError`] that names the script to
//! run.
//!
//! ```no_run
//! use weir_operators::runtime::{OnnxRuntime, SessionOptions};
//! let runtime = OnnxRuntime::get()?;               // finds and loads the library once
//! let bytes = std::fs::read("models/ctr/ctr_mlp.onnx").unwrap();
//! let (session, device) = runtime.session(&bytes, &SessionOptions::default())?;
//! println!("{} inputs, running on {device}", session.inputs().len());
//! # Ok::<(), weir_operators::runtime::RuntimeError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

/// The library file the setup script provides.
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";
/// Where the setup script puts it, relative to the repository root.
pub const LIBRARY_DIR: &str = ".cache/onnxruntime";
/// What to run when the library is missing.
pub const SETUP_SCRIPT: &str = "scripts/setup/onnxruntime.sh";

/// Why ONNX Runtime, a device or a session is not available.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "the ONNX Runtime library was not found (looked at {looked}); run {SETUP_SCRIPT} from the repository root, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or later"
    )]
    MissingLibrary { looked: String },
    #[error("cannot load the ONNX Runtime library {path}: {reason}; run {SETUP_SCRIPT} to fetch the supported version (1.31.1), or point ORT_DYLIB_PATH at one")]
    LoadFailed { path: PathBuf, reason: String },
    #[error("cannot create the ONNX Runtime environment: {0}")]
    Environment(String),
    #[error("bad device {0:?}: use cpu or cuda:N")]
    BadDevice(String),
    #[error("{0}")]
    DeviceUnavailable(String),
    #[error("ONNX Runtime rejected the model: {0}")]
    BadModel(String),
    #[error("cannot configure the ONNX Runtime session: {0}")]
    Session(String),
}

/// Where the library is looked for: `ORT_DYLIB_PATH` if set, else `.cache/onnxruntime/` in
/// the current directory, the executable's directory, and each of their ancestors.
#[derive(Clone, Debug, Default)]
pub struct LibrarySearch {
    /// An explicit library file (what `ORT_DYLIB_PATH` says).
    pub dylib_path: Option<PathBuf>,
    /// Directories whose ancestors are searched for `.cache/onnxruntime/libonnxruntime.so.1.31.1`.
    pub start_dirs: Vec<PathBuf>,
}

impl LibrarySearch {
    /// The search a process does by default.
    pub fn from_environment() -> Self {
        let dylib_path = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()).map(PathBuf::from);
        let mut start_dirs = Vec::new();
        if let Ok(dir) = std::env::current_dir() {
            start_dirs.push(dir);
        }
        if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_owned)) {
            start_dirs.push(dir);
        }
        LibrarySearch { dylib_path, start_dirs }
    }

    /// The library file to load, checked to exist.
    pub fn locate(&self) -> Result<PathBuf, RuntimeError> {
        if let Some(path) = &self.dylib_path {
            if path.is_file() {
                return Ok(path.clone());
            }
            return Err(RuntimeError::MissingLibrary { looked: format!("ORT_DYLIB_PATH={}", path.display()) });
        }
        let mut looked = Vec::new();
        for start in &self.start_dirs {
            for dir in start.ancestors() {
                let candidate = dir.join(LIBRARY_DIR).join(LIBRARY_FILE);
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
            looked.push(format!("{}/{LIBRARY_FILE} in {} and its parents", LIBRARY_DIR, start.display()));
        }
        if looked.is_empty() {
            looked.push("nowhere: no start directory".into());
        }
        Err(RuntimeError::MissingLibrary { looked: looked.join("; ") })
    }
}

/// The loaded ONNX Runtime: one per process, shared by every worker.
#[derive(Clone, Debug)]
pub struct OnnxRuntime {
    env: Environment,
    library: PathBuf,
}

/// The process's runtime once loaded. A failed load is not remembered, so a later call (after
/// the user ran the setup script) can still succeed; a success is final, because `ort` keeps
/// the first library it loaded for the life of the process.
static RUNTIME: Mutex<Option<OnnxRuntime>> = Mutex::new(None);

impl OnnxRuntime {
    /// The process's runtime, loading the library on first use ([`LibrarySearch::from_environment`]).
    pub fn get() -> Result<OnnxRuntime, RuntimeError> {
        Self::get_with(&LibrarySearch::from_environment())
    }

    /// The process's runtime, loading the library found by `search` on first use. Once a library
    /// is loaded, later calls return it whatever `search` says.
    pub fn get_with(search: &LibrarySearch) -> Result<OnnxRuntime, RuntimeError> {
        let mut slot = RUNTIME.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(runtime) = slot.as_ref() {
            return Ok(runtime.clone());
        }
        let library = search.locate()?;
        let builder = ort::init_from(&library).map_err(|error| RuntimeError::LoadFailed { path: library.clone(), reason: error.to_string() })?;
        let env = builder.with_name("weir").with_telemetry(false).build().map_err(|e| RuntimeError::Environment(e.to_string()))?;
        let runtime = OnnxRuntime { env, library };
        *slot = Some(runtime.clone());
        Ok(runtime)
    }

    /// The library file this process loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    pub fn environment(&self) -> &Environment {
        &self.env
    }

    /// Whether this ONNX Runtime build has the CUDA execution provider (the CPU wheel has not).
    pub fn cuda_built(&self) -> bool {
        ep::CUDA::is_available().unwrap_or(false)
    }

    /// A session for the model `bytes` with `options`, and the device it really runs on.
    pub fn session(&self, bytes: &[u8], options: &SessionOptions) -> Result<(Session, ActiveDevice), RuntimeError> {
        let device = self.resolve_device(options)?;
        let session_error = |e: ort::Error<_>| RuntimeError::Session(e.to_string());
        let mut builder = Session::builder(&self.env)
            .map_err(|e| RuntimeError::Session(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(session_error)?
            .with_intra_threads(options.intra_threads.max(1))
            .map_err(session_error)?
            .with_inter_threads(1)
            .map_err(session_error)?
            // Spinning intra-op threads would burn the cores the dataflow workers need.
            .with_intra_op_spinning(false)
            .map_err(session_error)?;
        if let ActiveDevice::Cuda(id) = device {
            let cuda = ep::CUDA::default().with_device_id(id as i32).build().error_on_failure();
            builder = match builder.with_execution_providers([cuda]) {
                Ok(builder) => builder,
                Err(error) if !options.device.strict => {
                    warn_once(&format!("weir: warning: CUDA device {id} could not be used ({error}); scoring on the CPU"));
                    let builder = error.recover();
                    let session = builder_commit(builder, bytes)?;
                    return Ok((session, ActiveDevice::Cpu));
                }
                Err(error) => return Err(RuntimeError::DeviceUnavailable(format!("CUDA device {id} was asked for (strict) but cannot be used: {error}"))),
            };
        }
        Ok((builder_commit(builder, bytes)?, device))
    }

    /// The device a session with `options` will use: the one asked for, or the CPU with a
    /// warning when CUDA is asked for but this ONNX Runtime has no CUDA provider (an error
    /// instead when the request is strict).
    pub fn resolve_device(&self, options: &SessionOptions) -> Result<ActiveDevice, RuntimeError> {
        match options.device.device {
            Device::Cpu => Ok(ActiveDevice::Cpu),
            Device::Cuda(id) if self.cuda_built() => Ok(ActiveDevice::Cuda(id)),
            Device::Cuda(id) => {
                let reason = format!(
                    "CUDA device {id} was asked for, but the ONNX Runtime library {} has no CUDA execution provider (it is the CPU build; a GPU needs the onnxruntime-gpu library of the same version, CUDA 13 and cuDNN 9)",
                    self.library.display()
                );
                if options.device.strict {
                    Err(RuntimeError::DeviceUnavailable(reason))
                } else {
                    warn_once(&format!("weir: warning: {reason}; scoring on the CPU"));
                    Ok(ActiveDevice::Cpu)
                }
            }
        }
    }
}

fn builder_commit(mut builder: ort::session::builder::SessionBuilder, bytes: &[u8]) -> Result<Session, RuntimeError> {
    builder.commit_from_memory(bytes).map_err(|e| RuntimeError::BadModel(e.to_string()))
}

/// Prints a warning once per process (every worker resolves the device; one line is enough).
fn warn_once(message: &str) {
    static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|poison| poison.into_inner());
    if !warned.iter().any(|m| m == message) {
        eprintln!("{message}");
        warned.push(message.to_owned());
    }
}

/// An execution device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    #[default]
    Cpu,
    /// A CUDA GPU by index.
    Cuda(u32),
}

impl FromStr for Device {
    type Err = RuntimeError;
    fn from_str(text: &str) -> Result<Self, RuntimeError> {
        match text.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|id| id.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| RuntimeError::BadDevice(other.to_owned())),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(id) => write!(f, "cuda:{id}"),
        }
    }
}

/// The device asked for, and whether falling back to the CPU is an error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceRequest {
    pub device: Device,
    /// Fail instead of falling back to the CPU when the device cannot be used.
    pub strict: bool,
}

impl DeviceRequest {
    pub fn cpu() -> Self {
        DeviceRequest::default()
    }
    pub fn cuda(id: u32) -> Self {
        DeviceRequest { device: Device::Cuda(id), strict: false }
    }
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }
}

/// The device a session actually runs on.
pub type ActiveDevice = Device;

/// How sessions are configured.
#[derive(Clone, Copy, Debug)]
pub struct SessionOptions {
    /// Threads ONNX Runtime may use inside one `run` (per session; each worker has its own).
    pub intra_threads: usize,
    pub device: DeviceRequest,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { intra_threads: 1, device: DeviceRequest::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda:1".parse::<Device>().unwrap(), Device::Cuda(1));
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert!(matches!("gpu".parse::<Device>(), Err(RuntimeError::BadDevice(_))));
        assert!(matches!("cuda:x".parse::<Device>(), Err(RuntimeError::BadDevice(_))));
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
    }

    #[test]
    fn a_missing_library_names_the_setup_script() {
        let empty = tempfile::tempdir().unwrap();
        let search = LibrarySearch { dylib_path: None, start_dirs: vec![empty.path().to_owned()] };
        let message = search.locate().unwrap_err().to_string();
        assert!(message.contains(SETUP_SCRIPT), "{message}");
        let explicit = LibrarySearch { dylib_path: Some(empty.path().join("nope.so")), start_dirs: vec![] };
        let message = explicit.locate().unwrap_err().to_string();
        assert!(message.contains("ORT_DYLIB_PATH") && message.contains(SETUP_SCRIPT), "{message}");
    }

    #[test]
    fn finds_the_library_in_an_ancestor() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(LIBRARY_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(LIBRARY_FILE), b"not really a library").unwrap();
        let deep = root.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        let search = LibrarySearch { dylib_path: None, start_dirs: vec![deep] };
        assert_eq!(search.locate().unwrap(), dir.join(LIBRARY_FILE));
    }
}
