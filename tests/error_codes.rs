//! Every code of the README's troubleshooting table, made to happen through
//! the binary the way gpbackup and gprestore run it (local backend, the mock
//! Data Domain, the connection broker): the one stderr line carries
//! `error[CODE]`, the log `[CODE]`, and the table lists exactly the codes the
//! plugin defines.

mod support;

use std::collections::BTreeSet;
use std::process::{Output, Stdio};

use gpbackup_ddboost_plugin::error::Failure;
use support::broker::*;
use support::*;

/// How a failure ended: its exit code, its stderr and the host's log.
struct Seen {
    status: Option<i32>,
    stderr: String,
    log: String,
}

impl Seen {
    fn of(env: &Env, out: Output) -> Seen {
        Seen {
            status: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            log: env.log_text(),
        }
    }
}

/// A code, what makes it happen, and how.
struct Case {
    code: &'static str,
    what: &'static str,
    run: fn() -> Seen,
}

const CASES: &[Case] = &[
    Case {
        code: "DDB-101",
        what: "an unknown command",
        run: usage,
    },
    Case {
        code: "DDB-102",
        what: "a config without its directory",
        run: config,
    },
    Case {
        code: "DDB-103",
        what: "a key with a \"..\" component",
        run: invalid_argument,
    },
    Case {
        code: "DDB-104",
        what: "a restore of an object never stored",
        run: not_found,
    },
    Case {
        code: "DDB-201",
        what: "a wrong password",
        run: login_refused,
    },
    Case {
        code: "DDB-202",
        what: "a host the SDK cannot reach",
        run: unreachable,
    },
    Case {
        code: "DDB-203",
        what: "DD_ERR_CONN_LOST in the middle of a backup's writes",
        run: connection_lost,
    },
    Case {
        code: "DDB-204",
        what: "DD_ERR_STREAM_LIMIT from every open, without waiting",
        run: stream_limit,
    },
    Case {
        code: "DDB-205",
        what: "DD_ERR_NOSPACE from a write",
        run: storage_full,
    },
    Case {
        code: "DDB-206",
        what: "DD_ERR_PERM from the open of a restore",
        run: permission_denied,
    },
    Case {
        code: "DDB-207",
        what: "DD_ERR_IO from a read of a restore",
        run: storage_error,
    },
    Case {
        code: "DDB-208",
        what: "a stored byte changed after the backup",
        run: checksum_mismatch,
    },
    Case {
        code: "DDB-209",
        what: "verify_backup of a backup with a damaged object",
        run: verify_failed,
    },
    Case {
        code: "DDB-301",
        what: "a backup whose standard input is a folder",
        run: local_io,
    },
    Case {
        code: "DDB-302",
        what: "SIGTERM to a restore the broker runs",
        run: interrupted,
    },
    Case {
        code: "DDB-303",
        what: "the broker killed during a backup it runs",
        run: broker_gone,
    },
    Case {
        code: "DDB-399",
        what: "a panic in a write",
        run: internal,
    },
];

const TS: &str = "20250101120000";

fn local() -> Env {
    Env::new(Backend::Local)
}

/// The mock Data Domain with `extra` options and no retried logins.
fn dd(extra: &str) -> Env {
    Env::with_options(
        Backend::DdBoostMock,
        &format!("  retry_max_attempts: 1\n{extra}"),
    )
}

fn restore(env: &Env, name: &str, vars: &[(&str, &str)]) -> Seen {
    let mut cmd = env.command(&["restore_data", env.cfg(), &env.key(TS, name)]);
    cmd.envs(vars.iter().copied()).stdin(Stdio::null());
    Seen::of(env, cmd.output().unwrap())
}

fn backup(env: &Env, name: &str, data: &[u8], vars: &[(&str, &str)]) -> Seen {
    let out = env.run_stdin_env(&["backup_data", env.cfg(), &env.key(TS, name)], data, vars);
    Seen::of(env, out)
}

fn usage() -> Seen {
    let env = local();
    Seen::of(&env, env.run(&["unknown_command"]))
}

fn config() -> Seen {
    let env = local();
    env.write_config("  backend: local\n");
    restore(&env, "obj", &[])
}

fn invalid_argument() -> Seen {
    let env = local();
    let key = format!("{}/../obj", env.backup_dir(TS));
    Seen::of(&env, env.run(&["restore_data", env.cfg(), &key]))
}

fn not_found() -> Seen {
    restore(&local(), "never_stored", &[])
}

fn login_refused() -> Seen {
    let env = dd("");
    env.write_config(&env.backend_options().replace(DD_PASSWORD, "wrong-Pa55word"));
    backup(&env, "obj", b"data", &[])
}

fn unreachable() -> Seen {
    let env = dd("");
    let opts = env.backend_options().replace("dd-primary", "dd-nowhere");
    env.write_config(&format!("{opts}  retry_max_attempts: 1\n"));
    restore(&env, "obj", &[])
}

fn connection_lost() -> Seen {
    let faults = "write:after_bytes=1048576:err=DD_ERR_CONN_LOST";
    let vars = [("DDBOOST_MOCK_FAULTS", faults)];
    backup(&dd(""), "obj", &bytes(3 << 20, 1), &vars)
}

fn stream_limit() -> Seen {
    let env = dd("  stream_wait_seconds: 0\n");
    let vars = [("DDBOOST_MOCK_FAULTS", "open:err=DD_ERR_STREAM_LIMIT")];
    backup(&env, "obj", b"data", &vars)
}

fn storage_full() -> Seen {
    let vars = [("DDBOOST_MOCK_FAULTS", "write:nth=2:err=DD_ERR_NOSPACE")];
    backup(&dd(""), "obj", &bytes(3 << 20, 2), &vars)
}

fn permission_denied() -> Seen {
    let env = dd("");
    env.backup_data(TS, "obj", b"data");
    restore(
        &env,
        "obj",
        &[("DDBOOST_MOCK_FAULTS", "open:err=DD_ERR_PERM")],
    )
}

fn storage_error() -> Seen {
    let env = dd("");
    env.backup_data(TS, "obj", &bytes(3 << 20, 3));
    restore(
        &env,
        "obj",
        &[("DDBOOST_MOCK_FAULTS", "read:err=DD_ERR_IO")],
    )
}

fn checksum_mismatch() -> Seen {
    let env = local();
    env.backup_data(TS, "obj", &bytes(100_000, 4));
    env.corrupt(TS, "obj");
    restore(&env, "obj", &[])
}

fn verify_failed() -> Seen {
    let env = local();
    env.backup_data(TS, "obj", &bytes(100_000, 7));
    env.corrupt(TS, "obj");
    Seen::of(&env, env.run(&["verify_backup", env.cfg(), TS]))
}

fn local_io() -> Seen {
    let env = local();
    let mut cmd = env.command(&["backup_data", env.cfg(), &env.key(TS, "obj")]);
    let folder = std::fs::File::open(env.tmp.path()).unwrap();
    Seen::of(&env, cmd.stdin(folder).output().unwrap())
}

/// A backup working directly and a restore the broker runs are signalled:
/// each exits 128 + 15 with no line, and the log has the code of each.
fn interrupted() -> Seen {
    let direct = signalled_backup();
    let broker = signalled_restore();
    let both = direct.status == broker.status && direct.stderr == broker.stderr;
    let code = "[DDB-302] ";
    let logged = direct.log.contains(&format!("{code}received SIGTERM"))
        && broker
            .log
            .contains(&format!("{code}restore_data: interrupted"));
    Seen {
        status: direct.status.filter(|_| both && logged),
        ..direct
    }
}

/// An overwrite by a backup_data without a broker, signalled at a pause
/// point before its commit.
fn signalled_backup() -> Seen {
    let env = local();
    env.backup_data(TS, "obj", b"old");
    let cmd = env.command(&["backup_data", env.cfg(), &env.key(TS, "obj")]);
    let (child, _) = stopped_at(&env, cmd, "data-written", &bytes(3 << 20, 8));
    kill(child.id() as i32, "TERM");
    let (status, stderr) = stderr_of(child);
    Seen {
        status: status.code(),
        stderr,
        log: env.log_text(),
    }
}

/// A restore waiting for the broker's only connection, which a paused
/// write holds, is signalled: the broker logs the request it stopped.
fn signalled_restore() -> Seen {
    let w = World::new("  broker_connections: 1\n  logger_verbosity: verbose\n");
    w.hook("setup_plugin_for_backup");
    // An overwrite stops before its commit, with its record staged.
    ok(&w.backup("held", &bytes(10_000, 5)));
    let (writer, _) = w.paused_backup("held", "record-staged", &bytes(30_000, 5));
    let reader = w.spawn(&["restore_data", w.env.cfg(), &w.key("held")]);
    wait_for(
        || w.env.log_text().contains("restore_data: starting"),
        "the restore to wait for the connection",
    );
    kill(reader.id() as i32, "TERM");
    let (status, stderr) = stderr_of(reader);
    wait_for(
        || {
            let log = w.env.log_text();
            log.contains("[DDB-302] restore_data: interrupted")
        },
        "the broker to log the cancelled restore",
    );
    kill(writer.id() as i32, "TERM");
    stderr_of(writer);
    Seen {
        status: status.code(),
        stderr,
        log: w.env.log_text(),
    }
}

fn broker_gone() -> Seen {
    let w = World::new("");
    w.hook("setup_plugin_for_backup");
    ok(&w.backup("obj", &bytes(10_000, 6)));
    let (child, _) = w.paused_backup("obj", "record-staged", &bytes(30_000, 6));
    kill(w.brokers()[0], "KILL");
    let (status, stderr) = stderr_of(child);
    Seen {
        status: status.code(),
        stderr,
        log: w.env.log_text(),
    }
}

fn internal() -> Seen {
    let vars = [("GPBACKUP_DDBOOST_PLUGIN_FAULTS", "write:err=panic")];
    backup(&local(), "obj", b"data", &vars)
}

/// What is wrong with how `case` ended, if anything.
fn check(case: &Case, seen: &Seen) -> Option<String> {
    let code = case.code;
    let (want_status, want_line) = match code {
        "DDB-101" => (Some(2), format!("gpbackup_ddboost_plugin: error[{code}]: ")),
        "DDB-302" => (Some(128 + 15), String::new()),
        "DDB-399" => (Some(1), format!(": internal error[{code}]")),
        _ => (Some(1), format!(": error[{code}]: ")),
    };
    let line = seen.stderr.trim_end();
    let told = if want_line.is_empty() {
        line.is_empty()
    } else {
        line.lines().count() == 1
            && line.starts_with("gpbackup_ddboost_plugin")
            && line.contains(&want_line)
    };
    // Usage is told before the log is opened.
    let logged = code == "DDB-101" || seen.log.contains(&format!("[{code}] "));
    let secret = seen.stderr.contains(DD_PASSWORD) || seen.log.contains(DD_PASSWORD);
    if seen.status == want_status && told && logged && !secret {
        None
    } else {
        Some(format!(
            "{code} ({}): exit {:?}, stderr {:?}, logged {logged}, secret shown {secret}",
            case.what, seen.status, seen.stderr
        ))
    }
}

#[test]
fn each_code_happens_through_the_binary() {
    let covered: BTreeSet<&str> = CASES.iter().map(|c| c.code).collect();
    let defined: BTreeSet<&str> = Failure::ALL.iter().map(|f| f.code()).collect();
    assert_eq!(covered, defined, "a case for every code");
    assert_eq!(covered.len(), CASES.len(), "one case per code");
    let wrong: Vec<String> = CASES
        .iter()
        .filter_map(|case| check(case, &(case.run)()))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The codes in the first column of the README's troubleshooting table.
fn readme_codes() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Troubleshooting\n")
        .nth(1)
        .expect("a Troubleshooting section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `DDB-"))
        .map(|rest| format!("DDB-{}", rest.split('`').next().unwrap()))
        .collect()
}

#[test]
fn the_readme_lists_exactly_the_codes_defined() {
    let listed = readme_codes();
    let defined: Vec<String> = Failure::ALL.iter().map(|f| f.code().to_string()).collect();
    assert_eq!(listed, defined, "README troubleshooting table, in order");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for f in Failure::ALL {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", f.code())))
            .unwrap();
        assert!(row.contains(&format!("`{}`", f.name())), "{row}");
    }
}
