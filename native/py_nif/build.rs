//! Links the NIF against the libpython chosen by `PYO3_PYTHON`.
//!
//! A source build records an rpath to libpython's directory, so the dynamic
//! loader finds it wherever it lives (pyenv, venv base, /usr). A precompiled
//! artifact (`mix py.precompile` sets `PY_NIF_RPATH=origin`) records
//! `$ORIGIN` instead: the builder's paths mean nothing on the user's machine,
//! and the installer puts a `libpython3.X.so.1.0` link to the user's
//! libpython next to the NIF (see docs/packaging.md).
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    match std::env::var("PY_NIF_RPATH").as_deref() {
        Ok("origin") => println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,$ORIGIN"),
        _ => pyo3_build_config::add_libpython_rpath_link_args(),
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PY_NIF_RPATH");
}
