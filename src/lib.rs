//! gpbackup_ddboost_plugin: a storage plugin for gpbackup and gprestore.
//!
//! Layout: `cli` parses argv into a `Command`; `commands` runs it against the
//! `storage::Storage` trait; `storage::*` are the backends; `stream` moves
//! bytes with bounded memory; `config`, `keys`, `offsets` and `integrity`
//! are the parsers and rules; `encryption` decrypts encrypted passwords; `logging` writes the gpAdminLogs file;
//! `signals` undoes unfinished work on SIGINT/SIGTERM/SIGHUP.

pub mod cli;
pub mod commands;
pub mod config;
pub mod encryption;
pub mod error;
pub mod integrity;
pub mod keys;
pub mod logging;
pub mod offsets;
pub mod signals;
pub mod storage;
pub mod stream;
pub mod testing;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use cli::Command;
use error::ErrorKind;

/// The plugin's name: the first word of `--version`, the key name gpbackup
/// uses for it in `.encrypt`, and the log file prefix.
pub const PLUGIN_NAME: &str = "gpbackup_ddboost_plugin";
/// The plugin API version gpbackup checks (at least 0.3.0; the test bench wants 0.4.0).
pub const API_VERSION: &str = "0.5.0";

fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Runs the plugin with `argv` and returns the process exit code.
pub fn run(argv: Vec<OsString>) -> ExitCode {
    let cmd = match cli::parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{PLUGIN_NAME}: {e}");
            return ExitCode::from(2);
        }
    };
    match cmd {
        Command::ApiVersion => return print_stdout(&format!("{API_VERSION}\n")),
        Command::Version => {
            return print_stdout(&format!(
                "{PLUGIN_NAME} version {}\n",
                env!("CARGO_PKG_VERSION")
            ))
        }
        Command::Help => return print_stdout(&cli::help_text()),
        _ => {}
    }
    let name = cmd.name();
    logging::init();
    install_panic_hook(name);
    signals::install();
    match commands::execute(cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            log::info!("{name}: the reader of the output went away; stopping");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{name}: {e}");
            let hint = match logging::log_path() {
                Some(p) => format!(" (log: {})", p.display()),
                None => String::new(),
            };
            eprintln!("{PLUGIN_NAME} {name}: error: {e}{hint}");
            ExitCode::FAILURE
        }
    }
}

/// A panic is a bug: report it as one line on stderr and in the log, not a
/// multi-line trace that callers would splice into their own messages.
fn install_panic_hook(command: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.to_string().replace('\n', " ");
        log::error!("{command}: internal error: {msg}");
        eprintln!("{PLUGIN_NAME} {command}: internal error: {msg}; please report this");
    }));
}
