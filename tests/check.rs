//! `check <config> [--no-write]` through the binary, on the local backend
//! and against the mock Data Domain.

mod support;

use std::process::Output;

use support::*;

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The step lines that start with `tag` (PASS, WARN, FAIL).
fn tagged(out: &Output, tag: &str) -> Vec<String> {
    lines(out)
        .into_iter()
        .filter(|l| l.starts_with(tag))
        .collect()
}

fn check(env: &Env, cfg: &str, extra: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut args = vec!["check", cfg];
    args.extend_from_slice(extra);
    env.run_stdin_env(&args, b"", vars)
}

#[test]
fn local_backend_passes_and_leaves_nothing() {
    let env = Env::new(Backend::Local);
    let out = check(&env, env.cfg(), &[], &[]);
    ok(&out);
    let text = lines(&out).join("\n");
    for step in [
        "PASS  config",
        "PASS  directory",
        "PASS  free space",
        "PASS  write and fsync",
        "PASS  probe write",
        "PASS  probe list",
        "PASS  probe read and verify",
        "PASS  probe delete",
    ] {
        assert!(text.contains(step), "{step} missing:\n{text}");
    }
    assert!(text.ends_with("check passed: 8 steps"), "{text}");
    assert_eq!(walk(&env.store), vec![], "check left something behind");
}

#[test]
fn no_write_writes_nothing() {
    let env = Env::new(Backend::Local);
    let out = check(&env, env.cfg(), &["--no-write"], &[]);
    ok(&out);
    assert!(tagged(&out, "PASS  probe").is_empty());
    assert_eq!(tagged(&out, "WARN  probe").len(), 1);
    assert_eq!(walk(&env.store), vec![]);
}

#[test]
fn missing_mount_fails_with_one_stderr_line() {
    let env = Env::new(Backend::Local);
    let cfg = env.other_config(
        "nomount.yaml",
        &format!(
            "  backend: local\n  directory: {}/not-mounted\n",
            env.tmp.path().display()
        ),
    );
    let out = check(&env, cfg.to_str().unwrap(), &[], &[]);
    let err = fails(&out);
    assert!(err.contains("not-mounted"), "{err}");
    let failed = tagged(&out, "FAIL");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].starts_with("FAIL  directory"), "{failed:?}");
}

#[test]
fn config_problems_and_unknown_options_are_listed() {
    let env = Env::with_options(Backend::Local, "  usernme: x\n");
    let out = check(&env, env.cfg(), &["--no-write"], &[]);
    ok(&out);
    let warned = tagged(&out, "WARN  config");
    assert!(warned.iter().any(|w| w.contains("usernme")), "{warned:?}");
    let bad = env.other_config("bad.yaml", "  backend: local\n");
    let out = check(&env, bad.to_str().unwrap(), &[], &[]);
    fails(&out);
    assert!(tagged(&out, "FAIL  config")[0].contains("\"directory\" is required"));
}

#[test]
fn mock_data_domain_passes_and_leaves_nothing() {
    let env = Env::new(Backend::DdBoostMock);
    let out = check(&env, env.cfg(), &[], &[]);
    ok(&out);
    let text = lines(&out).join("\n");
    for step in [
        "PASS  DD Boost SDK: loaded from",
        "PASS  connect: dd-primary as gpbackup",
        "PASS  stream counts",
        "PASS  free space",
        "PASS  probe read and verify",
        "PASS  probe delete",
        // A plain-text password spreads with the config.
        "WARN  option password",
    ] {
        assert!(text.contains(step), "{step} missing:\n{text}");
    }
    assert!(
        !env.raw_snapshot().iter().any(|(p, _)| p.contains("probe")),
        "{:?}",
        env.raw_snapshot()
    );
}

#[test]
fn wrong_password_and_unknown_host_fail_at_connect() {
    let env = Env::new(Backend::DdBoostMock);
    let wrong = env.other_config(
        "wrong.yaml",
        &env.dd_options("dd-primary", "gpdb/backups")
            .replace(DD_PASSWORD, "not-the-password"),
    );
    let out = check(&env, wrong.to_str().unwrap(), &[], &[]);
    let err = fails(&out);
    assert!(
        err.contains("connect") && err.contains("DD_ERR_AUTH"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");
    assert!(tagged(&out, "FAIL")[0].starts_with("FAIL  connect"));
    let unknown = env.other_config(
        "unknown.yaml",
        &format!(
            "{}  retry_max_attempts: 1\n",
            env.dd_options("no-such-host", "gpdb/backups")
        ),
    );
    let out = check(&env, unknown.to_str().unwrap(), &[], &[]);
    let err = fails(&out);
    assert!(err.contains("no-such-host"), "{err}");
}

#[test]
fn missing_library_fails_at_the_sdk_step() {
    let env = Env::new(Backend::DdBoostMock);
    let cfg = env.other_config(
        "nolib.yaml",
        &env.dd_options("dd-primary", "gpdb/backups").replace(
            &mock().lib.display().to_string(),
            "/nonexistent/libDDBoost.so",
        ),
    );
    let out = check(&env, cfg.to_str().unwrap(), &[], &[]);
    fails(&out);
    assert!(tagged(&out, "FAIL")[0].starts_with("FAIL  DD Boost SDK"));
}

#[test]
fn replication_checks_the_remote_system_too() {
    let env = Env::new(Backend::DdBoostMock);
    create_system(&env.dd_root(), "dd-replica");
    let remote = format!(
        "  remote_hostname: dd-replica\n  remote_username: {DD_USER}\n  remote_password: {DD_PASSWORD}\n  remote_storage_unit: {DD_SU}\n  remote_directory: gpdb/replica\n  replication: on\n"
    );
    let cfg = env.other_config(
        "repl.yaml",
        &format!("{}{remote}", env.dd_options("dd-primary", "gpdb/backups")),
    );
    let out = check(&env, cfg.to_str().unwrap(), &[], &[]);
    ok(&out);
    let text = lines(&out).join("\n");
    for step in [
        "PASS  connect remote: dd-replica",
        "PASS  replica stream counts",
        "PASS  replica probe read and verify",
    ] {
        assert!(text.contains(step), "{step} missing:\n{text}");
    }
    // The replica down: the check fails there.
    let down = cfg.to_str().unwrap().replace("repl.yaml", "down.yaml");
    std::fs::write(
        &down,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("dd-replica", "dd-gone")
            .replace(
                "replication: on",
                "replication: on\n  retry_max_attempts: 1",
            ),
    )
    .unwrap();
    let out = check(&env, &down, &[], &[]);
    fails(&out);
    assert!(tagged(&out, "FAIL")[0].starts_with("FAIL  connect remote"));
}

#[test]
fn check_is_listed_in_help() {
    let env = Env::new(Backend::Local);
    let out = env.run(&["--help"]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("check <CONFIG> [--no-write]"));
}

#[test]
fn a_misspelt_option_is_named_with_its_nearest_known_name() {
    let env = Env::new(Backend::DdBoostMock);
    let cfg = env.other_config(
        "typo.yaml",
        &env.dd_options("dd-primary", "gpdb/backups")
            .replace("username:", "usernme:"),
    );
    let out = env.run_stdin(
        &[
            "backup_data",
            cfg.to_str().unwrap(),
            &env.key("20250101120000", "obj"),
        ],
        b"x",
    );
    let err = fails(&out);
    assert!(err.contains("\"username\" is required"), "{err}");
    assert!(
        err.contains("option \"usernme\" is unknown; did you mean \"username\"?"),
        "{err}"
    );
}

/// An SDK whose `ddp_stat` fills the size at another place than this build
/// declares: the probe's size comes back wrong, and check says to build
/// against the vendor header.
#[test]
fn a_wrong_stat_size_stops_with_the_vendor_header_advice() {
    let env = Env::new(Backend::DdBoostMock);
    let out = check(
        &env,
        env.cfg(),
        &[],
        &[("DDBOOST_MOCK_STAT_SIZE_DELTA", "8")],
    );
    let err = fails(&out);
    assert!(err.contains("DDBOOST_SDK_DIR"), "{err}");
    let failed = tagged(&out, "FAIL");
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("FAIL  probe") && l.contains("bytes for a 2101251-byte probe")),
        "{failed:?}"
    );
    // Nothing is left behind even then.
    assert!(
        !env.raw_snapshot().iter().any(|(p, _)| p.contains("probe")),
        "{:?}",
        env.raw_snapshot()
    );
}
