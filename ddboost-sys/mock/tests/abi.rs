//! Compiles a C program against `ddboost-sys/include/ddp_api.h`, links it to the built
//! `libddboost_mock.so` and runs it.

use std::path::PathBuf;
use std::process::Command;

fn lib_dir() -> PathBuf {
    // tests run from <target>/<profile>/deps/; the cdylib is in <target>/<profile>/.
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

#[test]
fn c_program_against_the_header() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let include = manifest.join("../include");
    let src = manifest.join("tests/c/abi_test.c");
    let libdir = lib_dir();
    assert!(
        libdir.join("libddboost_mock.so").is_file(),
        "cdylib not built in {}",
        libdir.display()
    );
    let work = tempfile::tempdir().unwrap();
    let exe = work.path().join("abi_test");
    let out = Command::new("gcc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", libdir.display()))
        .arg("-lddboost_mock")
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .output()
        .expect("gcc");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let root = work.path().join("systems");
    ddboost_mock::admin::create_system(&root, "abi-host", "ddboost", "secret", None).unwrap();
    let run = Command::new(&exe)
        .arg("abi-host")
        .env("DDBOOST_MOCK_ROOT", &root)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "abi test failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("abi ok"));

    // Without DDBOOST_MOCK_ROOT the connection fails with a clear message.
    let run = Command::new(&exe)
        .arg("abi-host")
        .env_remove("DDBOOST_MOCK_ROOT")
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("DDBOOST_MOCK_ROOT is not set"));
}

#[test]
fn every_header_function_is_exported() {
    let header = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include/ddp_api.h"),
    )
    .unwrap();
    let names: Vec<&str> = header
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ddp_"))
        .filter(|w| header.contains(&format!("{w}(")))
        .collect();
    assert!(names.len() >= 27, "{names:?}");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(lib_dir().join("libddboost_mock.so"))
        .output()
        .unwrap();
    let syms = String::from_utf8_lossy(&out.stdout);
    for n in names {
        assert!(
            syms.lines().any(|l| l.ends_with(&format!(" T {n}"))),
            "{n} not exported"
        );
    }
}
