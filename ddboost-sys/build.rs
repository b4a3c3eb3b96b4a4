//! Build script for `ddboost-sys`.
//!
//! Default builds use the bindings checked in at `src/bindings.rs` (generated
//! from the project's own `include/ddp_api.h`) and need nothing beyond the Rust
//! toolchain. When `DDBOOST_SDK_DIR` names a DD Boost SDK, bindgen runs on that
//! SDK's `ddp_api.h` and the crate is compiled against the result instead
//! (`cfg(ddboost_sdk_bindings)`). Either way an error-code name table is
//! generated from the bindings in use, so errors can name every `DD_ERR_*` the
//! header in use declares.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Points at a DD Boost SDK (or any directory holding a `ddp_api.h`).
const SDK_DIR_ENV: &str = "DDBOOST_SDK_DIR";
/// Name of the SDK header.
const HEADER_NAME: &str = "ddp_api.h";
/// Bindings checked in, generated from `include/ddp_api.h`.
const CHECKED_IN_BINDINGS: &str = "src/bindings.rs";
/// How deep the recursive header search goes below `DDBOOST_SDK_DIR`.
const MAX_SEARCH_DEPTH: usize = 6;

fn main() {
    announce_env_knobs();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(ddboost_sdk_bindings)");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bindings_text = match sdk_dir() {
        Some(dir) => generate_from_sdk(&dir, &out_dir),
        None => read_checked_in_bindings(),
    };
    write_code_names(&bindings_text, &out_dir.join("code_names.rs"));
}

/// Every environment variable that changes the output of this script.
fn announce_env_knobs() {
    for var in [
        SDK_DIR_ENV,
        // Read by clang-sys to find libclang.
        "LIBCLANG_PATH",
        "LIBCLANG_STATIC_PATH",
        "CLANG_PATH",
        // Read by bindgen: extra arguments for clang.
        "BINDGEN_EXTRA_CLANG_ARGS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if let Ok(target) = env::var("TARGET") {
        println!("cargo:rerun-if-env-changed=BINDGEN_EXTRA_CLANG_ARGS_{target}");
        println!(
            "cargo:rerun-if-env-changed=BINDGEN_EXTRA_CLANG_ARGS_{}",
            target.replace('-', "_")
        );
    }
}

/// `DDBOOST_SDK_DIR`, if set and not empty.
fn sdk_dir() -> Option<PathBuf> {
    env::var_os(SDK_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Runs bindgen on the SDK's header, writes `OUT_DIR/bindings.rs`, selects it
/// with `cfg(ddboost_sdk_bindings)` and returns its text.
fn generate_from_sdk(dir: &Path, out_dir: &Path) -> String {
    let header = find_header(dir).unwrap_or_else(|msg| fail(&msg));
    println!("cargo:rerun-if-changed={}", header.display());
    load_libclang(&header).unwrap_or_else(|msg| fail(&msg));
    let text = generate_bindings(&header).unwrap_or_else(|msg| fail(&msg));
    let out = out_dir.join("bindings.rs");
    fs::write(&out, &text)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
    println!("cargo:rustc-cfg=ddboost_sdk_bindings");
    println!(
        "cargo:warning=ddboost-sys: generated bindings from {} into {}",
        header.display(),
        out.display()
    );
    text
}

/// Looks for `ddp_api.h` in `DIR/include/`, then `DIR/`, then anywhere below
/// `DIR` (first match in sorted order, so the choice is stable).
fn find_header(dir: &Path) -> Result<PathBuf, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{SDK_DIR_ENV}={} is not a directory; point it at the DD Boost SDK \
             (the directory holding include/{HEADER_NAME}) or unset it to use the \
             checked-in bindings",
            dir.display()
        ));
    }
    let direct = [dir.join("include").join(HEADER_NAME), dir.join(HEADER_NAME)];
    if let Some(found) = direct.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    search_header(dir, MAX_SEARCH_DEPTH).ok_or_else(|| {
        format!(
            "no {HEADER_NAME} found in {SDK_DIR_ENV}={} (looked in {}, {} and every \
             subdirectory up to {MAX_SEARCH_DEPTH} levels deep); point {SDK_DIR_ENV} at \
             the DD Boost SDK or unset it to use the checked-in bindings",
            dir.display(),
            direct[0].display(),
            direct[1].display()
        )
    })
}

/// Depth-first search for `ddp_api.h` below `dir`, in sorted order.
fn search_header(dir: &Path, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    if let Some(found) = entries
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == HEADER_NAME) && p.is_file())
    {
        return Some(found.clone());
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| search_header(p, depth - 1))
}

/// Loads libclang (bindgen is built with clang-sys's `runtime` feature, so
/// libclang is found now, not at link time) and explains how to get it.
fn load_libclang(header: &Path) -> Result<(), String> {
    if clang_sys::is_loaded() {
        return Ok(());
    }
    clang_sys::load().map_err(|e| {
        format!(
            "libclang is needed to generate bindings from {} ({SDK_DIR_ENV} is set) but \
             could not be loaded: {e}. Install it (Debian/Ubuntu: apt-get install \
             libclang-dev; RHEL: dnf install clang-devel) or set LIBCLANG_PATH to the \
             directory holding libclang.so; or unset {SDK_DIR_ENV} to use the \
             checked-in bindings",
            header.display()
        )
    })
}

/// The bindgen configuration, shared by every path that generates bindings
/// (including `scripts/regen-ddboost-bindings.sh`, which goes through here).
fn bindgen_builder(header: &Path) -> bindgen::Builder {
    let include_dir = header.parent().unwrap_or(Path::new("."));
    bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", include_dir.display()))
        // Load libDDBoost.so at run time (libloading) instead of linking it.
        .dynamic_library_name("DdBoost")
        // Keep one Result per symbol; `Library::load` checks the required ones.
        .dynamic_link_require_all(false)
        .allowlist_function("ddp_.*")
        .allowlist_type("ddp_.*|dd_.*")
        .allowlist_var("DD_.*|DDP_.*")
        // Enum constants keep their C names (DDP_SEV_INFO, not ddp_severity_DDP_SEV_INFO),
        // whether the header spells a name as a #define or an enum member.
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_default(true)
        .derive_debug(true)
        // Layout tests would pin struct sizes of one header on one target; the
        // Rust code never depends on sizes.
        .layout_tests(false)
        .generate_comments(false)
        .formatter(bindgen::Formatter::Prettyplease)
}

/// Runs bindgen on `header` and returns the Rust source.
fn generate_bindings(header: &Path) -> Result<String, String> {
    let bindings = bindgen_builder(header)
        .generate()
        .map_err(|e| format!("bindgen failed on {}: {e}", header.display()))?;
    Ok(bindings.to_string())
}

/// The checked-in bindings, used when no SDK is configured.
fn read_checked_in_bindings() -> String {
    println!("cargo:rerun-if-changed={CHECKED_IN_BINDINGS}");
    fs::read_to_string(CHECKED_IN_BINDINGS)
        .unwrap_or_else(|e| fail(&format!("cannot read {CHECKED_IN_BINDINGS}: {e}")))
}

/// Names of the return codes declared by the bindings: `DD_OK` and every
/// `DD_ERR_*` integer constant, in declaration order with `DD_OK` first.
fn error_code_names(bindings: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in bindings.lines() {
        let Some(rest) = line.trim_start().strip_prefix("pub const ") else {
            continue;
        };
        let Some((name, rest)) = rest.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let ty = rest.split('=').next().unwrap_or("").trim();
        let is_code = name == "DD_OK" || name.starts_with("DD_ERR_");
        let is_integer = !ty.is_empty() && !ty.starts_with(['&', '*', '[']);
        if is_code && is_integer && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    // DD_OK and DD_ERR_NONE share a value; the first listed wins the lookup.
    names.sort_by_key(|n| n != "DD_OK");
    names
}

/// Writes `CODE_NAMES: &[(i64, &str)]` built from the constants' names (never
/// their values, which only the header knows).
fn write_code_names(bindings: &str, out: &Path) {
    let mut src = String::from(
        "// Generated by build.rs from the bindings in use.\n\
         pub(crate) static CODE_NAMES: &[(i64, &str)] = &[\n",
    );
    for name in error_code_names(bindings) {
        src.push_str(&format!("    (crate::raw::{name} as i64, \"{name}\"),\n"));
    }
    src.push_str("];\n");
    fs::write(out, src).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
}

/// Stops the build with one clear message.
fn fail(msg: &str) -> ! {
    eprintln!("error: ddboost-sys: {msg}");
    std::process::exit(1);
}
