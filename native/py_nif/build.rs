//! Links the NIF against the libpython chosen by `PYO3_PYTHON` and records an
//! rpath to its directory, so the dynamic loader finds it wherever it lives
//! (pyenv, venv base, /usr).
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
