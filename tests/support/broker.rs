//! A world with a connection broker, for the tests of the broker through
//! the binary: the mock Data Domain, its call trace, and the broker's
//! process ids as its log shows them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

pub const TS: &str = "20250101120000";

/// An environment whose broker is stopped (or killed) when the test ends.
pub struct World {
    pub env: Env,
    pub trace: PathBuf,
    pub faults: Option<String>,
}

impl World {
    pub fn new(extra: &str) -> World {
        // An idle time that outlives every test unless it sets its own.
        let idle = if extra.contains("broker_idle_seconds") {
            ""
        } else {
            "  broker_idle_seconds: 60\n"
        };
        let env = Env::with_options(Backend::DdBoostMock, &format!("{idle}{extra}"));
        let trace = env.tmp.path().join("trace");
        World {
            env,
            trace,
            faults: None,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(args);
        c.env("DDBOOST_MOCK_TRACE", &self.trace);
        if let Some(f) = &self.faults {
            c.env("GPBACKUP_DDBOOST_PLUGIN_FAULTS", f);
        }
        c
    }

    /// `args` started with its standard streams piped.
    pub fn spawn(&self, args: &[&str]) -> Child {
        spawn_piped(self.cmd(args))
    }

    pub fn hook(&self, hook: &str) -> std::process::Output {
        self.hook_with(hook, self.env.cfg())
    }

    /// `hook` in scope segment_host with the config at `config`.
    pub fn hook_with(&self, hook: &str, config: &str) -> std::process::Output {
        let dir = self.env.backup_dir(TS);
        let out = self
            .cmd(&[hook, config, &dir, "segment_host"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ok(&out);
        out
    }

    pub fn key(&self, name: &str) -> String {
        self.env.key(TS, name)
    }

    pub fn backup(&self, name: &str, data: &[u8]) -> std::process::Output {
        feed(
            self.cmd(&["backup_data", self.env.cfg(), &self.key(name)]),
            data,
        )
    }

    pub fn restore(&self, name: &str) -> std::process::Output {
        self.cmd(&["restore_data", self.env.cfg(), &self.key(name)])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A backup_data left running with its stdin open, paused at `point`.
    pub fn paused_backup(&self, name: &str, point: &str, data: &[u8]) -> (Child, PathBuf) {
        let cmd = self.cmd(&["backup_data", self.env.cfg(), &self.key(name)]);
        stopped_at(&self.env, cmd, point, data)
    }

    /// Whether a file `name` is in the backup's folder on the storage.
    pub fn stored(&self, name: &str) -> bool {
        let suffix = format!("/{TS}/{name}");
        self.env
            .raw_snapshot()
            .iter()
            .any(|(p, _)| p.ends_with(&suffix))
    }

    /// Backs up every object, then restores each and checks its bytes.
    pub fn round_trip(&self, objects: &[(String, Vec<u8>)]) {
        for (name, data) in objects {
            ok(&self.backup(name, data));
        }
        for (name, data) in objects {
            let out = self.restore(name);
            ok(&out);
            assert_eq!(&out.stdout, data, "{name}");
        }
    }

    /// The process ids of the brokers this environment started.
    pub fn brokers(&self) -> Vec<i32> {
        self.env
            .log_text()
            .lines()
            .filter(|l| l.contains("connection broker: serving"))
            .filter_map(|l| {
                let head = l.split("-[").next()?;
                head.rsplit(':').next()?.parse().ok()
            })
            .collect()
    }

    pub fn connects(&self) -> usize {
        self.calls("connect")
    }

    /// The calls `op` of every process in the trace so far.
    pub fn calls(&self, op: &str) -> usize {
        let start = format!("op={op} ");
        std::fs::read_to_string(&self.trace)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with(&start))
            .count()
    }

    pub fn socket(&self) -> Option<PathBuf> {
        let dir = self
            .env
            .tmp
            .path()
            .join(format!("gpbackup_ddboost_plugin-{}", nix_uid()));
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "sock"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let dir = self.env.backup_dir(TS);
        let _ = self
            .cmd(&[
                "cleanup_plugin_for_backup",
                self.env.cfg(),
                &dir,
                "segment_host",
            ])
            .stdin(Stdio::null())
            .output();
        for pid in self.brokers() {
            if alive(pid) {
                kill(pid, "KILL");
            }
        }
    }
}

pub fn nix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

pub fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // A zombie is gone for our purposes.
    !stat.is_empty() && !stat.contains(") Z ")
}

pub fn kill(pid: i32, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

pub fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let started = Instant::now();
    while !cond() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stderr_of(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
