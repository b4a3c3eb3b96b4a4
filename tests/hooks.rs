//! The setup and cleanup hooks as gpbackup runs them: their storage calls do
//! not grow with the backup (no hook lists a backup folder), and what writers
//! killed with SIGKILL left is still removed, found in the per-host journal
//! of temporaries.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::*;

const TS: &str = "20250301120000";
const NAME: &str = "gpbackup_0_20250301120000";
const KIB: usize = 1 << 10;

/// A `backup_data` of `name` stopped, alive, at pause `point`.
fn writer_stopped_at(env: &Env, name: &str, point: &str) -> Child {
    stopped_at(
        env,
        env.command(&["backup_data", env.cfg(), &env.key(TS, name)]),
        point,
    )
}

/// Runs `cmd` (a backup_data of 300 KiB) until it stops, alive, at pause
/// `point`.
fn stopped_at(env: &Env, cmd: Command, point: &str) -> Child {
    support::stopped_at(env, cmd, point, &bytes(300 * KIB, 9)).0
}

fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn cleanup(env: &Env, scope: &[&str]) {
    let dir = env.backup_dir(TS);
    let mut args = vec!["cleanup_plugin_for_backup", env.cfg(), &dir];
    args.extend_from_slice(scope);
    ok(&env.run(&args));
}

/// The private folder the test's plugin processes keep their journals in.
fn run_dir(env: &Env) -> PathBuf {
    env.tmp
        .path()
        .join(format!("gpbackup_ddboost_plugin-{}", nix::unistd::getuid()))
}

fn journals(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("journal-"))
                .collect()
        })
        .unwrap_or_default()
}

fn writers_killed_at_every_step_leave_nothing_after_the_cleanup(env: &Env) {
    env.backup_data(TS, NAME, &bytes(200 * KIB, 1));
    // Each killed at another step, all at once, beside objects written whole.
    for i in 0..5 {
        env.backup_data(TS, &format!("whole_{i}"), &bytes(KIB * i, i as u64));
    }
    let points = [
        "data-written",
        "record-staged",
        "data-committed",
        "record-committed",
    ];
    let writers: Vec<Child> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = if i == 0 {
                NAME.to_string()
            } else {
                format!("killed_{i}")
            };
            writer_stopped_at(env, &name, p)
        })
        .collect();
    writers.into_iter().for_each(kill9);
    assert!(!env.temporaries().is_empty(), "kill -9 leaves temporaries");
    cleanup(env, &["segment", "0"]);
    assert_eq!(env.temporaries(), Vec::<String>::new());
    // The overwrite killed before its data was in place kept the old object.
    assert_eq!(env.restore_data(TS, NAME), bytes(200 * KIB, 1));
    // No writer is left running: the journal went with the cleanup.
    assert_eq!(journals(&run_dir(env)), Vec::<String>::new());
    // Every other scope of the same backup finds nothing more to do.
    cleanup(env, &["segment_host"]);
    cleanup(env, &["coordinator"]);
    // delete_backup still removes everything.
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
}

fn a_running_writer_keeps_its_temporary(env: &Env) {
    let writer = writer_stopped_at(env, NAME, "data-written");
    let left = env.temporaries();
    assert_eq!(left.len(), 1, "{left:?}");
    cleanup(env, &["segment", "0"]);
    assert_eq!(
        env.temporaries(),
        left,
        "a live writer's temporary was removed"
    );
    kill9(writer);
    cleanup(env, &["segment", "0"]);
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

fn a_temporary_only_a_listing_would_find_is_left_to_delete_backup(env: &Env) {
    // No writer of this host journaled it (another host's, or a build
    // without the journal): the hooks never list the folder.
    env.backup_data(TS, NAME, b"rows");
    let foreign = format!("backups/{}/{TS}/.{NAME}.tmp-otherhost-1234-abcx0", &TS[..8]);
    env.put_raw(&foreign, b"partial");
    cleanup(env, &["segment", "0"]);
    assert_eq!(env.temporaries(), vec![foreign]);
    ok(&env.run(&["delete_backup", env.cfg(), TS]));
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

per_backend!(
    local,
    super::Backend::Local,
    [
        writers_killed_at_every_step_leave_nothing_after_the_cleanup,
        a_running_writer_keeps_its_temporary,
        a_temporary_only_a_listing_would_find_is_left_to_delete_backup,
    ]
);
per_backend!(
    ddboost_mock,
    super::Backend::DdBoostMock,
    [
        writers_killed_at_every_step_leave_nothing_after_the_cleanup,
        a_running_writer_keeps_its_temporary,
        a_temporary_only_a_listing_would_find_is_left_to_delete_backup,
    ]
);

/// Each hook in each scope, as gpbackup and gprestore run them, with the
/// appliance calls it made.
fn hook_calls(env: &Env, trace: &Path) -> Vec<(String, Vec<String>)> {
    let dir = env.backup_dir(TS);
    let vars = [("DDBOOST_MOCK_TRACE", trace.to_str().unwrap())];
    let mut out = Vec::new();
    for hook in [
        "setup_plugin_for_backup",
        "setup_plugin_for_restore",
        "cleanup_plugin_for_restore",
        "cleanup_plugin_for_backup",
    ] {
        for scope in [&["coordinator"][..], &["segment_host"], &["segment", "0"]] {
            let mut args = vec![hook, env.cfg(), &dir];
            args.extend_from_slice(scope);
            ok(&env.run_stdin_env(&args, b"", &vars));
            out.push((format!("{hook} {scope:?}"), taken_appliance_calls(trace)));
        }
    }
    out
}

#[test]
fn hook_calls_do_not_grow_with_the_backup() {
    let env = Env::new(Backend::DdBoostMock);
    let trace = env.tmp.path().join("trace");
    let mut seen = Vec::new();
    let mut rounds = Vec::new();
    for objects in [2, 24] {
        for i in seen.len()..objects {
            let data = if i % 4 == 0 {
                vec![]
            } else {
                bytes(i * KIB, i as u64)
            };
            env.backup_data(TS, &format!("gpbackup_0_{TS}_{i}"), &data);
            seen.push(i);
        }
        env.backup_data(TS, &format!("gpbackup_{TS}_config.yaml"), b"config");
        // One writer killed with kill -9: the cleanup removes its temporary.
        kill9(writer_stopped_at(&env, NAME, "data-written"));
        let calls = hook_calls(&env, &trace);
        let of = |hook: &str| {
            calls
                .iter()
                .filter(|(h, _)| h.starts_with(hook))
                .map(|(_, c)| c.clone())
                .collect::<Vec<_>>()
        };
        for (hook, c) in &calls {
            assert!(
                !c.iter().any(|op| op.contains("dir") && op != "mkdir"),
                "{hook} lists a folder: {c:?}"
            );
        }
        // The first cleanup scope removes the stale temporary, with one
        // delete; the others find the journal gone and connect to nothing.
        assert_eq!(
            of("cleanup_plugin_for_backup"),
            [vec!["connect", "unlink", "disconnect"], vec![], vec![]],
            "{objects} objects"
        );
        assert!(of("cleanup_plugin_for_restore")
            .iter()
            .all(|c| c.is_empty()));
        assert!(env.temporaries().is_empty());
        // Setup for restore: one open of the backup's config, coordinator only.
        let restore = of("setup_plugin_for_restore");
        assert_eq!(
            restore[0],
            ["connect", "open", "read", "close", "disconnect"],
            "{objects} objects"
        );
        assert_eq!(restore[1], ["connect", "disconnect"]);
        assert_eq!(restore[2], ["connect", "disconnect"]);
        rounds.push(calls);
    }
    // Every hook in every scope, the same calls at 2 and at 24 objects.
    assert_eq!(rounds[0], rounds[1]);
    assert!(
        !env.log_text().contains("not found in"),
        "{}",
        env.log_text()
    );
}

#[test]
fn setup_for_restore_warns_when_the_backup_has_no_config() {
    let env = Env::new(Backend::Local);
    env.backup_data(TS, NAME, b"rows");
    let dir = env.backup_dir(TS);
    ok(&env.run(&["setup_plugin_for_restore", env.cfg(), &dir, "coordinator"]));
    let log = env.log_text();
    assert!(
        log.contains(&format!("backup {TS} not found in")) && log.contains("[WARNING]"),
        "{log}"
    );
}

#[test]
fn journal_is_found_whatever_home_and_tmpdir_say() {
    // The plugin's own folder in /tmp, as in production: the writer runs
    // with one environment (the postmaster's), the hook with another (ssh).
    let env = Env::new(Backend::Local);
    let writer_tmp = env.tmp.path().join("writer-tmp");
    let hook_tmp = env.tmp.path().join("hook-tmp");
    std::fs::create_dir_all(&writer_tmp).unwrap();
    std::fs::create_dir_all(&hook_tmp).unwrap();
    let mut writer = env.command(&["backup_data", env.cfg(), &env.key(TS, NAME)]);
    writer
        .env_remove("GPBACKUP_DDBOOST_PLUGIN_RUN_DIR")
        .env("TMPDIR", &writer_tmp)
        .env("HOME", &writer_tmp);
    let child = stopped_at(&env, writer, "data-written");
    kill9(child);
    assert_eq!(env.temporaries().len(), 1);
    let dir = env.backup_dir(TS);
    let out = env
        .command(&["cleanup_plugin_for_backup", env.cfg(), &dir, "segment_host"])
        .env_remove("GPBACKUP_DDBOOST_PLUGIN_RUN_DIR")
        .env("TMPDIR", &hook_tmp)
        .env("HOME", &hook_tmp)
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

#[test]
fn a_folder_others_can_write_is_not_used_and_the_cleanup_lists_instead() {
    let env = Env::new(Backend::Local);
    let dir = run_dir(&env);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    env.backup_data(TS, "whole", b"rows");
    kill9(writer_stopped_at(&env, NAME, "data-written"));
    assert_eq!(
        journals(&dir),
        Vec::<String>::new(),
        "journal in an unsafe folder"
    );
    assert_eq!(env.temporaries().len(), 1);
    cleanup(&env, &["segment", "0"]);
    assert_eq!(env.temporaries(), Vec::<String>::new());
    let log = env.log_text();
    assert!(log.contains("temporaries are not journaled"), "{log}");
}

#[test]
fn a_journal_that_cannot_be_written_fails_the_write_before_it_starts() {
    let env = Env::new(Backend::Local);
    env.backup_data(TS, "whole", b"rows");
    let dir = run_dir(&env);
    let journal = journals(&dir);
    assert_eq!(journal.len(), 1, "{journal:?}");
    // Something that is not the user's regular file at the journal's name.
    let path = dir.join(&journal[0]);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let out = env.run_stdin(&["backup_data", env.cfg(), &env.key(TS, NAME)], b"rows");
    let err = fails(&out);
    assert!(err.contains("journal of temporaries"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        env.get_raw(&format!("backups/{}/{TS}/{NAME}", &TS[..8])),
        None
    );
    assert_eq!(env.temporaries(), Vec::<String>::new());
}

#[test]
fn cleanup_hooks_of_every_scope_at_once_remove_each_temporary_once() {
    let env = Env::new(Backend::DdBoostMock);
    for i in 0..3 {
        kill9(writer_stopped_at(
            &env,
            &format!("killed_{i}"),
            "data-written",
        ));
    }
    assert_eq!(env.temporaries().len(), 3);
    // As gpbackup runs them: every segment's hooks of a phase in parallel.
    let dir = env.backup_dir(TS);
    let hooks: Vec<Child> = [
        &["coordinator"][..],
        &["segment_host", "0"],
        &["segment_host", "1"],
        &["segment", "0"],
        &["segment", "1"],
    ]
    .iter()
    .map(|scope| {
        let mut args = vec!["cleanup_plugin_for_backup", env.cfg(), &dir];
        args.extend_from_slice(scope);
        env.command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    })
    .collect();
    for h in hooks {
        ok(&h.wait_with_output().unwrap());
    }
    assert_eq!(env.temporaries(), Vec::<String>::new());
    assert_eq!(journals(&run_dir(&env)), Vec::<String>::new());
    let removed = env
        .log_text()
        .matches("left by a writer that is gone")
        .count();
    assert_eq!(removed, 3, "{}", env.log_text());
}

/// What a killed gpbackup left in the private folder (its facts file and
/// journal, a line per object) goes once nothing changed it for a week: the
/// next backup's or restore's setup hook removes it. Anything newer, a
/// journal a writer is beginning with (its lock held), other files, and
/// links and folders of such names stay.
#[test]
fn setup_hooks_remove_what_killed_runs_left_a_week_ago() {
    let env = Env::new(Backend::Local);
    env.backup_data(TS, "whole", b"rows");
    let dir = run_dir(&env);
    let week_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 86_400 + 600);
    let aged = |name: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{name}\n")).unwrap();
        let f = std::fs::File::options().append(true).open(&path).unwrap();
        f.set_modified(week_ago).unwrap();
        path
    };
    let old_facts = aged("facts-backup-20250101120000-00000000000000aa");
    let old_restore = aged("facts-restore-20250101120000-00000000000000aa");
    let old_journal = aged("journal-20250101120000-00000000000000aa");
    let locked = aged("journal-20250102120000-00000000000000aa");
    let other = aged("verified-00000000000000aa");
    let fresh = dir.join("facts-backup-20250301120000-00000000000000aa");
    std::fs::write(&fresh, "fresh\n").unwrap();
    // A link to a file elsewhere, as old.
    let target = env.tmp.path().join("precious");
    std::fs::write(&target, "precious\n").unwrap();
    std::fs::File::options()
        .append(true)
        .open(&target)
        .unwrap()
        .set_modified(week_ago)
        .unwrap();
    let link = dir.join("facts-backup-20250104120000-link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let folder = dir.join("journal-folder");
    std::fs::create_dir(&folder).unwrap();
    let held = nix::fcntl::Flock::lock(
        std::fs::File::open(&locked).unwrap(),
        nix::fcntl::FlockArg::LockShared,
    )
    .unwrap();

    let backup_dir = env.backup_dir(TS);
    ok(&env.run(&[
        "setup_plugin_for_backup",
        env.cfg(),
        &backup_dir,
        "coordinator",
    ]));
    for gone in [&old_facts, &old_restore, &old_journal] {
        assert!(!gone.exists(), "{} left", gone.display());
    }
    for kept in [&locked, &other, &fresh, &folder, &target] {
        assert!(kept.exists(), "{} removed", kept.display());
    }
    assert!(
        link.symlink_metadata().is_ok(),
        "a link is not this user's file: left"
    );
    let log = env.log_text();
    assert!(
        log.contains("removed 3 files of backups and restores whose cleanup hook never ran, unchanged for 7 days: facts-backup-20250101120000-00000000000000aa, facts-restore-20250101120000-00000000000000aa, journal-20250101120000-00000000000000aa"),
        "{log}"
    );
    // Once its writer has begun, the restore's setup hook takes it.
    drop(held);
    ok(&env.run(&[
        "setup_plugin_for_restore",
        env.cfg(),
        &backup_dir,
        "segment",
        "0",
    ]));
    assert!(!locked.exists());
    assert!(target.exists() && other.exists() && fresh.exists());
}
