//! The program: parse the command line, run the command, map the outcome
//! to the exit code and the one stderr line callers expect.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use crate::about::API_VERSION;
use crate::broker;
use crate::commands;
use crate::error::{self, ErrorKind};
use crate::process::outcome::{self, Outcome};
use crate::process::{descriptors, logging, malloc, signals};
use crate::protocol::args::{self as cli, Command};

fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Runs the plugin with `argv` and returns the process exit code: 0 on
/// success, 2 for a wrong command or argument count, 1 for anything else,
/// always with exactly one line on stderr when it fails.
pub fn run(argv: Vec<OsString>) -> ExitCode {
    crate::process::metrics::note_process_start();
    let parsed = match cli::parse(&argv) {
        Ok(p) => p,
        Err(e) if e.kind() == ErrorKind::Usage => {
            eprintln!("{}", outcome::early_line(&e));
            return ExitCode::from(2);
        }
        Err(e) => {
            // A bad key, timestamp or folder: the command is known.
            let name = argv
                .get(1)
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            logging::init();
            return tell(outcome::failed(&name, &e));
        }
    };
    let name = parsed.name;
    match parsed.command {
        Command::ApiVersion => return print_stdout(&format!("{API_VERSION}\n")),
        Command::Version => return print_stdout(&cli::version_text()),
        Command::Help => return print_stdout(&cli::help_text()),
        // Many threads at once: the allocator tuned for them.
        Command::ListDirectory { .. }
        | Command::ListBackups { .. }
        | Command::VerifyBackup { .. }
        | Command::DeleteBackup { .. }
        | Command::DeleteDirectory { .. }
        | Command::DeleteReplica { .. }
        | Command::ReplicateBackup { .. } => malloc::run_tuned(&argv),
        _ => {}
    }
    // The broker, before it opens anything: every descriptor above 2 is
    // its starter's, and it outlives its starter.
    let inherited = match &parsed.command {
        Command::Broker { .. } => descriptors::close_inherited(),
        _ => 0,
    };
    logging::init();
    install_panic_hook(name);
    let command = parsed.command;
    let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_command(name, command, inherited)
    }))
    .unwrap_or_else(|panic| outcome::of(name, Err(panic)));
    tell(told)
}

/// Runs the parsed `command`: the broker itself, or a command the broker
/// runs when one serves its config, or the command here.
fn run_command(name: &'static str, command: Command, inherited: usize) -> Outcome {
    if let Command::Broker { config } = &command {
        if inherited > 0 {
            log::info!("connection broker: closed {inherited} descriptor(s) its starter left open");
        }
        return outcome::of(name, Ok(broker::server::run(config)));
    }
    // With a connection broker on this host, it runs the command.
    if let Some(told) = broker::client::run(name, &command) {
        return told;
    }
    signals::install();
    let result = broker::around_hook(&command, || commands::execute(name, command.clone()));
    outcome::of(name, Ok(result))
}

/// Prints the outcome's one stderr line, if any, and gives its exit code.
fn tell(told: Outcome) -> ExitCode {
    if let Some(line) = told.line {
        eprintln!("{line}");
    }
    ExitCode::from(told.code)
}

/// A panic is a bug: logged as one line (not a multi-line trace that
/// callers would splice into their own messages); the command's outcome
/// tells it on stderr, once.
fn install_panic_hook(command: &'static str) {
    std::panic::set_hook(Box::new(move |info| outcome::note_panic(command, info)));
}
