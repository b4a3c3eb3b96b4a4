//! `packaging/install.sh`, the install on every host of a cluster, run against
//! stand-ins for the cluster tools: `gpsync`, `gpscp` and `gpssh` scripts put
//! first on PATH that work on fake hosts, each a folder (host `sdw1` keeps
//! `/x/y` at `<root>/sdw1/x/y`). gpssh runs its command on each host with the
//! Greenplum home replaced by that host's copy of it and prints the output the
//! way the real one does (`[sdw1] line`, names padded to the longest).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PLUGIN: &str = env!("CARGO_BIN_EXE_gpbackup_ddboost_plugin");
const VERSION: &str = env!("CARGO_PKG_VERSION");
const INSTALL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/install.sh");
const HOSTS: &[&str] = &["cdw", "sdw1", "sdw2"];

/// Settings shared by the stand-ins: the hosts' root, the Greenplum home they
/// rewrite, the log of their calls, and the environment knobs that make a host
/// fail: FAKE_COPY_SKIP (the copy does not arrive, and the tool says nothing),
/// FAKE_COPY_FAIL (the tool reports an error for the host), FAKE_SSH_DOWN
/// (gpssh cannot log in).
const COMMON: &str = r#"
log_call() { printf '%s\n' "${0##*/} $*" >>"$FAKE_LOG"; }
in_list() { [[ ,$1, == *,$2,* ]]; }
read_hosts() {
  hosts=()
  local h
  while read -r h || [[ -n $h ]]; do
    [[ -z $h || $h == \#* ]] && continue
    hosts+=("$h")
  done <"$1"
}
"#;

/// gpsync (Greenplum 7) and gpscp (Greenplum 6): `TOOL -f HOSTFILE SRC... =:DEST`.
const COPY_TOOL: &str = r#"
log_call "$@"
hostfile="" args=()
while (($#)); do
  case $1 in
    -f) hostfile=$2; shift 2 ;;
    -J | -p | -u | -h) shift 2 ;;
    -*) shift ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ -n $hostfile && ${#args[@]} -ge 2 ]] || { echo "usage: ${0##*/} -f hostfile src... =:dest" >&2; exit 2; }
dest=${args[-1]}
unset 'args[-1]'
[[ $dest == =:* ]] || { echo "${0##*/}: destination must start with =:" >&2; exit 2; }
read_hosts "$hostfile"
status=0
for h in "${hosts[@]}"; do
  if in_list "${FAKE_COPY_FAIL-}" "$h"; then
    echo "[ERROR $h] exit 1, cmd - copy to $h: connection refused"
    status=1
    continue
  fi
  in_list "${FAKE_COPY_SKIP-}" "$h" && continue
  # Like scp and rsync, cp fails when the destination folder is missing.
  cp "${args[@]}" "$FAKE_ROOT/$h${dest#=:}" || status=1
done
exit $status
"#;

/// gpssh: `gpssh -f HOSTFILE [-e] [-v] COMMAND...`.
const SSH_TOOL: &str = r#"
log_call "$@"
hostfile="" echo_cmd=0
while (($#)); do
  case $1 in
    -f) hostfile=$2; shift 2 ;;
    -e) echo_cmd=1; shift ;;
    -u | -d | -t) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
[[ -n $hostfile ]] || { echo "Error: please specify at least one of -h or -f args, but not both"; exit 1; }
cmd="$*"
read_hosts "$hostfile"
up=()
for h in "${hosts[@]}"; do
  if in_list "${FAKE_SSH_DOWN-}" "$h"; then
    echo "[ERROR] unable to login to $h"
    echo "hint: use gpssh-exkeys to setup public-key authentication between hosts"
  else
    up+=("$h")
  fi
done
width=0
for h in "${up[@]}"; do ((${#h} > width)) && width=${#h}; done
for h in "${up[@]}"; do
  here=${cmd//"$FAKE_GPHOME"/"$FAKE_ROOT/$h$FAKE_GPHOME"}
  out=$(bash -c "$here" 2>&1 </dev/null)
  ((echo_cmd)) && printf "[%${width}s] %s\n" "$h" "$cmd"
  if [[ -z $out ]]; then
    printf "[%${width}s]\n" "$h"
  else
    while IFS= read -r line; do printf "[%${width}s] %s\n" "$h" "$line"; done <<<"$out"
  fi
done
"#;

fn write_executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in plugin that answers `--version` like the real one.
fn fake_plugin(path: &Path, version: &str) {
    write_executable(
        path,
        &format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && echo 'gpbackup_ddboost_plugin version {version}'\n"
        ),
    );
}

/// A cluster of fake hosts, the coordinator's Greenplum home, and the tools.
struct Cluster {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    fakebin: PathBuf,
    root: PathBuf,
    gphome: PathBuf,
    hostfile: PathBuf,
    log: PathBuf,
    /// The plugin to install: a stand-in answering the current version.
    plugin: PathBuf,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Hosts `hosts`, each with `<GPHOME>/bin` and `<GPHOME>/lib`, and the
    /// named stand-in tools on PATH.
    fn new(hosts: &[&str], tools: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let fakebin = dir.join("fakebin");
        let root = dir.join("hosts");
        let gphome = dir.join("gphome");
        fs::create_dir_all(&fakebin).unwrap();
        fs::create_dir_all(gphome.join("bin")).unwrap();
        for h in hosts {
            let home = host_path(&root, h, &gphome);
            fs::create_dir_all(home.join("bin")).unwrap();
            fs::create_dir_all(home.join("lib")).unwrap();
        }
        for tool in tools {
            let body = match *tool {
                "gpsync" | "gpscp" => COPY_TOOL,
                "gpssh" => SSH_TOOL,
                other => panic!("no stand-in for {other}"),
            };
            write_executable(
                &fakebin.join(tool),
                &format!("#!/usr/bin/env bash\nset -u\n{COMMON}\n{body}"),
            );
        }
        let hostfile = dir.join("hostfile");
        let mut text = String::from("# the cluster\n\n");
        for h in hosts {
            text.push_str(&format!("  {h}  \n"));
        }
        fs::write(&hostfile, text).unwrap();
        let plugin = dir.join("new-plugin");
        fake_plugin(&plugin, VERSION);
        Cluster {
            log: dir.join("calls.log"),
            _tmp: tmp,
            dir,
            fakebin,
            root,
            gphome,
            hostfile,
            plugin,
            env: Vec::new(),
        }
    }

    /// The standard cluster: three hosts, every tool.
    fn standard() -> Cluster {
        Cluster::new(HOSTS, &["gpsync", "gpscp", "gpssh"])
    }

    fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// Runs `script` (install.sh or a copy of it) with `args`.
    fn run_script(&self, script: &Path, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.fakebin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(script)
            .args(args)
            .env("PATH", path)
            .env("GPHOME", &self.gphome)
            .env("HOME", &self.dir)
            .env("FAKE_ROOT", &self.root)
            .env("FAKE_GPHOME", &self.gphome)
            .env("FAKE_LOG", &self.log)
            .env_remove("FAKE_COPY_SKIP")
            .env_remove("FAKE_COPY_FAIL")
            .env_remove("FAKE_SSH_DOWN");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Runs packaging/install.sh with `-f <hostfile>` and `args`.
    fn install(&self, args: &[&str]) -> Output {
        let mut all = vec!["-f", self.hostfile.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run_script(Path::new(INSTALL), &all)
    }

    /// Installs the stand-in plugin with `args`.
    fn install_plugin(&self, args: &[&str]) -> Output {
        let mut all = vec!["--binary", self.plugin.to_str().unwrap()];
        all.extend_from_slice(args);
        self.install(&all)
    }

    /// `path` below GPHOME on `host`.
    fn on_host(&self, host: &str, path: &str) -> PathBuf {
        host_path(&self.root, host, &self.gphome).join(path)
    }

    /// Puts a plugin answering `version` on `host`.
    fn put_old_plugin(&self, host: &str, version: &str) {
        fake_plugin(&self.on_host(host, "bin/gpbackup_ddboost_plugin"), version);
    }

    fn calls(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every file below the hosts' root, with its bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                }
                out.insert(path.clone(), fs::read(&path).unwrap_or_default());
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root, &mut out);
        out
    }

    /// Files whose name shows a copy that was never renamed into place.
    fn leftovers(&self) -> Vec<PathBuf> {
        self.snapshot()
            .into_keys()
            .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".new-"))
            .collect()
    }
}

/// Where `gphome` of `host` lives in the fake cluster.
fn host_path(root: &Path, host: &str, gphome: &Path) -> PathBuf {
    root.join(host).join(gphome.strip_prefix("/").unwrap())
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[track_caller]
fn assert_status(out: &Output, code: i32) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn installs_the_plugin_on_every_host_with_gpsync_when_present() {
    let c = Cluster::standard();
    // The coordinator runs an older plugin; the install replaces it.
    c.put_old_plugin("cdw", "0.0.1");
    let out = c.install(&["--binary", PLUGIN]);
    assert_status(&out, 0);
    let (stdout, _) = text(&out);
    let want = fs::read(PLUGIN).unwrap();
    for h in HOSTS {
        let installed = c.on_host(h, "bin/gpbackup_ddboost_plugin");
        assert!(fs::read(&installed).unwrap() == want, "{h} has other bytes");
        assert_eq!(mode(&installed), 0o755, "{h}");
        assert!(!c.on_host(h, "lib/libDDBoost.so").exists(), "{h}");
    }
    assert!(
        stdout.contains(&format!(
            "ok on 3 host(s): cdw sdw1 sdw2: gpbackup_ddboost_plugin version {VERSION}"
        )),
        "{stdout}"
    );
    let calls = c.calls();
    assert!(calls.contains("gpsync -f "), "{calls}");
    assert!(!calls.contains("gpscp"), "{calls}");
    assert!(calls.contains("gpssh -f "), "{calls}");
    assert_eq!(c.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn uses_gpscp_when_gpsync_is_absent_and_installs_the_plugin_beside_the_script() {
    let c = Cluster::new(HOSTS, &["gpscp", "gpssh"]);
    // The tarball's layout: install.sh beside the plugin, no --binary.
    let unpacked = c.dir.join("gpbackup_ddboost_plugin-x-linux-x86_64");
    fs::create_dir(&unpacked).unwrap();
    fs::copy(INSTALL, unpacked.join("install.sh")).unwrap();
    fs::copy(&c.plugin, unpacked.join("gpbackup_ddboost_plugin")).unwrap();
    let hostfile = c.hostfile.to_str().unwrap();
    let out = c.run_script(&unpacked.join("install.sh"), &["-f", hostfile]);
    assert_status(&out, 0);
    for h in HOSTS {
        let installed = c.on_host(h, "bin/gpbackup_ddboost_plugin");
        assert_eq!(fs::read(installed).unwrap(), fs::read(&c.plugin).unwrap());
    }
    let calls = c.calls();
    assert!(calls.contains("gpscp -f "), "{calls}");
    assert!(!calls.contains("gpsync"), "{calls}");
}

#[test]
fn copies_the_ddboost_library_only_when_given() {
    let c = Cluster::standard();
    assert_status(&c.install_plugin(&[]), 0);
    for h in HOSTS {
        assert!(!c.on_host(h, "lib/libDDBoost.so").exists(), "{h}");
    }
    assert_eq!(c.calls().matches("gpsync ").count(), 1, "{}", c.calls());

    let lib = c.dir.join("libDDBoost.so.7.7.0");
    fs::write(&lib, b"\x7fELF a DD Boost SDK stand-in").unwrap();
    let out = c.install_plugin(&["--ddboost-lib", lib.to_str().unwrap()]);
    assert_status(&out, 0);
    for h in HOSTS {
        let installed = c.on_host(h, "lib/libDDBoost.so");
        assert_eq!(
            fs::read(&installed).unwrap(),
            fs::read(&lib).unwrap(),
            "{h}"
        );
    }
    assert_eq!(c.calls().matches("gpsync ").count(), 3, "{}", c.calls());
    let (stdout, _) = text(&out);
    assert!(stdout.contains("libDDBoost.so cksum"), "{stdout}");
    assert_eq!(c.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn reports_hosts_that_run_another_version_and_fails() {
    let mut c = Cluster::new(&["cdw", "sdw1", "sdw2", "sdw3"], &["gpsync", "gpssh"]);
    // The copies to sdw2 and sdw3 do not arrive: sdw2 keeps an old plugin,
    // sdw3 has none.
    c.put_old_plugin("sdw2", "0.0.1");
    c.set_env("FAKE_COPY_SKIP", "sdw2,sdw3");
    let out = c.install_plugin(&[]);
    assert_status(&out, 1);
    let (stdout, stderr) = text(&out);
    assert!(
        stderr.contains("sdw2 differs: gpbackup_ddboost_plugin version 0.0.1"),
        "{stderr}"
    );
    assert!(stderr.contains("sdw3 differs: "), "{stderr}");
    assert!(stderr.contains("No such file"), "{stderr}");
    assert!(!stderr.contains("cdw differs"), "{stderr}");
    assert!(stdout.contains("ok on 2 host(s): cdw sdw1"), "{stdout}");
    assert!(stderr.contains("the install is incomplete"), "{stderr}");
}

#[test]
fn reports_a_library_that_differs_on_a_host() {
    let mut c = Cluster::standard();
    let lib = c.dir.join("libDDBoost.so");
    fs::write(&lib, b"new library").unwrap();
    fs::write(c.on_host("sdw1", "lib/libDDBoost.so"), b"old library").unwrap();
    c.set_env("FAKE_COPY_SKIP", "sdw1");
    c.put_old_plugin("sdw1", VERSION);
    let out = c.install_plugin(&["--ddboost-lib", lib.to_str().unwrap()]);
    assert_status(&out, 1);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("sdw1: "), "{stderr}");
    assert!(stderr.contains("libDDBoost.so differs from"), "{stderr}");
}

#[test]
fn dry_run_prints_the_commands_and_changes_nothing() {
    let c = Cluster::standard();
    c.put_old_plugin("sdw1", "0.0.1");
    let lib = c.dir.join("libDDBoost.so");
    fs::write(&lib, b"library").unwrap();
    let before = c.snapshot();
    let out = c.install_plugin(&["--dry-run", "--ddboost-lib", lib.to_str().unwrap()]);
    assert_status(&out, 0);
    assert_eq!(c.snapshot(), before);
    assert_eq!(c.calls(), "", "no tool may run");
    let (stdout, _) = text(&out);
    let commands: Vec<&str> = stdout.lines().filter(|l| l.starts_with("+ ")).collect();
    assert_eq!(commands.len(), 3, "{stdout}");
    assert!(commands[0].contains("/gpsync -f "), "{stdout}");
    assert!(
        commands[0].contains("/bin/.gpbackup_ddboost_plugin.new-"),
        "{stdout}"
    );
    assert!(commands[1].contains("/lib/.libDDBoost.so.new-"), "{stdout}");
    assert!(commands[2].contains("/gpssh -f "), "{stdout}");
    assert!(commands[2].contains("--version"), "{stdout}");
    assert!(stdout.contains("nothing was changed"), "{stdout}");
}

#[test]
fn a_missing_host_file_is_a_clear_error() {
    let c = Cluster::standard();
    let missing = c.dir.join("no-such-hostfile");
    let out = c.run_script(
        Path::new(INSTALL),
        &[
            "-f",
            missing.to_str().unwrap(),
            "--binary",
            c.plugin.to_str().unwrap(),
        ],
    );
    assert_status(&out, 2);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!("host file {} does not exist", missing.display())),
        "{stderr}"
    );

    let out = c.run_script(
        Path::new(INSTALL),
        &["--binary", c.plugin.to_str().unwrap()],
    );
    assert_status(&out, 2);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("Usage:"), "{stderr}");
    assert!(
        stderr.contains("no host file: give one with -f HOSTFILE"),
        "{stderr}"
    );

    let empty = c.dir.join("empty-hostfile");
    fs::write(&empty, "# nobody\n\n").unwrap();
    let out = c.run_script(
        Path::new(INSTALL),
        &[
            "-f",
            empty.to_str().unwrap(),
            "--binary",
            c.plugin.to_str().unwrap(),
        ],
    );
    assert_status(&out, 2);
    assert!(text(&out).1.contains("lists no host"), "{}", text(&out).1);
    assert_eq!(c.calls(), "");
}

#[test]
fn no_copy_tool_is_a_clear_error() {
    let c = Cluster::new(HOSTS, &["gpssh"]);
    let out = c.install_plugin(&[]);
    assert_status(&out, 2);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("neither gpsync (Greenplum 7, Cloudberry) nor gpscp (Greenplum 6)"),
        "{stderr}"
    );
    assert_eq!(c.calls(), "");
}

#[test]
fn a_missing_binary_is_a_clear_error() {
    let c = Cluster::standard();
    let missing = c.dir.join("no-such-plugin");
    let out = c.install(&["--binary", missing.to_str().unwrap()]);
    assert_status(&out, 2);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains(&format!("binary {} does not exist", missing.display())),
        "{stderr}"
    );
    // Without --binary the plugin must be beside the script; it is not in packaging/.
    let out = c.install(&[]);
    assert_status(&out, 2);
    assert!(
        text(&out)
            .1
            .contains("no gpbackup_ddboost_plugin beside this script"),
        "{}",
        text(&out).1
    );
    // A file that is not the plugin.
    let other = c.dir.join("not-the-plugin");
    write_executable(&other, "#!/bin/sh\necho hello\n");
    let out = c.install(&["--binary", other.to_str().unwrap()]);
    assert_status(&out, 2);
    assert!(
        text(&out).1.contains("is it the plugin?"),
        "{}",
        text(&out).1
    );
    assert_eq!(c.calls(), "");
}

#[test]
fn a_failed_copy_installs_nothing_and_removes_the_copies() {
    let mut c = Cluster::standard();
    for h in HOSTS {
        c.put_old_plugin(h, "0.0.1");
    }
    c.set_env("FAKE_COPY_FAIL", "sdw2");
    let out = c.install_plugin(&[]);
    assert_status(&out, 1);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("gpsync failed: nothing was installed"),
        "{stderr}"
    );
    for h in HOSTS {
        let installed = c.on_host(h, "bin/gpbackup_ddboost_plugin");
        let out = Command::new(installed).arg("--version").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "gpbackup_ddboost_plugin version 0.0.1",
            "{h}"
        );
    }
    assert_eq!(c.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn a_host_gpssh_cannot_reach_is_reported() {
    let mut c = Cluster::standard();
    c.set_env("FAKE_SSH_DOWN", "sdw2");
    let out = c.install_plugin(&[]);
    assert_status(&out, 1);
    let (stdout, stderr) = text(&out);
    assert!(
        stderr.contains("sdw2: cannot log in with gpssh"),
        "{stderr}"
    );
    assert!(stdout.contains("ok on 2 host(s): cdw sdw1"), "{stdout}");
}

#[test]
fn gphome_comes_from_the_option_or_the_environment() {
    let mut c = Cluster::standard();
    c.set_env("GPHOME", "");
    let out = c.install_plugin(&[]);
    assert_status(&out, 2);
    assert!(
        text(&out).1.contains("GPHOME is not set"),
        "{}",
        text(&out).1
    );
    let gphome = c.gphome.to_str().unwrap().to_string();
    assert_status(&c.install_plugin(&["--gphome", &gphome]), 0);
    assert!(c.on_host("sdw2", "bin/gpbackup_ddboost_plugin").exists());
}
