//! Build metadata for `--help` and the log: the git commit and the build date.
//! `--version` itself prints only the package version, as gpbackup requires.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-env-changed=GPBACKUP_DDBOOST_PLUGIN_BUILD_ID");
    let commit = std::env::var("GPBACKUP_DDBOOST_PLUGIN_BUILD_ID")
        .ok()
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PLUGIN_BUILD_COMMIT={commit}");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=PLUGIN_BUILD_TARGET={target}");
}

fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}
