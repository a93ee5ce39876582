//! A missing or broken ONNX Runtime library is a typed error that names the setup script —
//! never a panic — and the process can still load the right library afterwards.
//!
//! Its own test binary (one process, one test): `ort` keeps the first library it loads for
//! the life of the process, so this must run before anything else loads one.

use std::path::PathBuf;

use weir::operators::runtime::{LibrarySearch, OnnxRuntime, RuntimeError, SETUP_SCRIPT};
use weir::operators::score::{OnnxModel, PreparedModel, ScoreConfig, ScoreError};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn missing_and_broken_libraries_are_errors_that_say_what_to_run() {
    let dir = tempfile::tempdir().unwrap();

    // Nothing at ORT_DYLIB_PATH, and nothing in the search path.
    let missing = LibrarySearch { dylib_path: Some(dir.path().join("libonnxruntime.so")), start_dirs: vec![] };
    let error = OnnxRuntime::get_with(&missing).unwrap_err();
    assert!(matches!(error, RuntimeError::MissingLibrary { .. }), "{error:?}");
    assert!(error.to_string().contains(SETUP_SCRIPT), "{error}");
    let nowhere = LibrarySearch { dylib_path: None, start_dirs: vec![dir.path().to_owned()] };
    assert!(matches!(OnnxRuntime::get_with(&nowhere), Err(RuntimeError::MissingLibrary { .. })));

    // A file that is not a shared library.
    let fake = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, b"\x7fELF but not really").unwrap();
    let error = OnnxRuntime::get_with(&LibrarySearch { dylib_path: Some(fake.clone()), start_dirs: vec![] }).unwrap_err();
    assert!(matches!(error, RuntimeError::LoadFailed { .. }), "{error:?}");
    assert!(error.to_string().contains(SETUP_SCRIPT) && error.to_string().contains(&fake.display().to_string()), "{error}");

    // A shared library that is not ONNX Runtime (no OrtGetApiBase).
    let libc = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"].into_iter().map(PathBuf::from).find(|p| p.exists());
    if let Some(libm) = libc {
        let error = OnnxRuntime::get_with(&LibrarySearch { dylib_path: Some(libm), start_dirs: vec![] }).unwrap_err();
        assert!(matches!(error, RuntimeError::LoadFailed { .. }), "{error:?}");
        assert!(error.to_string().contains("OrtGetApiBase"), "{error}");
    }

    let model = OnnxModel::from_file(format!("{ROOT}/models/ctr/ctr_mlp.onnx")).unwrap();

    // After all that, the real library still loads.
    let real = LibrarySearch { dylib_path: None, start_dirs: vec![PathBuf::from(ROOT)] };
    let runtime = OnnxRuntime::get_with(&real).unwrap_or_else(|e| panic!("{e} (run {SETUP_SCRIPT})"));
    assert!(runtime.library().ends_with("libonnxruntime.so.1.31.1"));
    // ...and scoring works through it: a mapping that fills nothing is told what the model needs.
    #[derive(Clone)]
    struct Nothing;
    impl weir::operators::score::ScoreMapping<u8> for Nothing {
        type Output = ();
        fn inputs(&self) -> Vec<weir::operators::score::TensorSpec> {
            vec![]
        }
        fn outputs(&self) -> Vec<weir::operators::score::TensorSpec> {
            vec![]
        }
        fn fill(&self, _: &weir::prelude::Timed<u8>, _: &mut weir::operators::score::RowWriter<'_>) -> Result<(), String> {
            Ok(())
        }
        fn emit(&self, _: weir::prelude::Timed<u8>, _: &weir::operators::score::ScoreRow<'_>) {}
    }
    let error = PreparedModel::prepare(&model, &Nothing, &ScoreConfig::default()).unwrap_err();
    assert!(matches!(error, ScoreError::Mismatch { .. }), "{error:?}");
}
