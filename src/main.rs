//! `gpbackup_ddboost_plugin`: the executable gpbackup and gprestore run on every host.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    gpbackup_ddboost_plugin::app::run(std::env::args_os().collect())
}
