//! Where the time went, through the binary: each object's summary line
//! splits its time, the cleanup hook logs the host's summary and writes the
//! metrics file that node_exporter's textfile collector serves unchanged and
//! `promtool check metrics` accepts. The Prometheus tools are Debian's
//! `prometheus` (promtool) and `prometheus-node-exporter`; a test that needs
//! one skips, saying so, where it is missing.

mod support;

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::broker::{World, TS};
use support::*;

const PROM: &str = "gpbackup_ddboost_plugin_backup.prom";

/// The tool `name` on the PATH, or None after printing that it is skipped.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        println!("skipped: {name} not installed (Debian package {package})");
    }
    found
}

fn metrics_dir(w: &World) -> PathBuf {
    let dir = w.env.tmp.path().join("textfile");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A world whose metrics go to its `textfile` folder.
fn world(extra: &str) -> World {
    world_at(extra, None)
}

/// A world whose metrics go to its `textfile` folder, and whose broker's
/// storage answers each call after `latency_ms`, when given.
fn world_at(extra: &str, latency_ms: Option<&str>) -> World {
    let tmp_world = World::new(extra);
    let dir = metrics_dir(&tmp_world);
    let options = format!(
        "{}  broker_idle_seconds: 60\n{extra}  metrics_textfile_dir: {}\n",
        tmp_world.env.backend_options(),
        dir.display()
    );
    tmp_world.env.write_config(&options);
    // Starts the connection broker: the objects go through it.
    let mut setup = tmp_world.cmd(&[
        "setup_plugin_for_backup",
        tmp_world.env.cfg(),
        &tmp_world.env.backup_dir(TS),
        "segment_host",
    ]);
    if let Some(ms) = latency_ms {
        setup.env("DDBOOST_MOCK_LATENCY_MS", ms);
    }
    ok(&setup.stdin(Stdio::null()).output().unwrap());
    tmp_world
}

/// Backs up `n` objects of growing sizes; their bytes in all.
fn back_up(w: &World, n: usize) -> u64 {
    let mut total = 0;
    for i in 0..n {
        let data = bytes(1000 * (i + 1), i as u64);
        ok(&w.backup(&format!("gpbackup_0_{TS}_{i}"), &data));
        total += data.len() as u64;
    }
    total
}

fn value(text: &str, metric: &str, label: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(metric) && l.contains(label) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {metric} with {label} in:\n{text}"))
}

#[test]
fn the_cleanup_hook_sums_up_the_backup_and_writes_metrics() {
    let w = world("");
    let total = back_up(&w, 6);
    w.hook("cleanup_plugin_for_backup");
    let log = w.env.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("backup_data backups/") && l.contains("storage calls"))
        .unwrap_or_else(|| panic!("no object's summary line with its split in:\n{log}"));
    assert!(
        line.contains("input/output") && line.contains("plugin"),
        "{line}"
    );
    assert!(
        !log.contains("works directly"),
        "not through the broker: {log}"
    );
    let summary = log
        .lines()
        .find(|l| l.contains("backup 20250101120000 on this host: 6 objects"))
        .unwrap_or_else(|| panic!("no host summary in:\n{log}"));
    assert!(summary.contains(&format!("{total} bytes")), "{summary}");
    assert!(log.contains("slowest objects: gpbackup_0_"), "{log}");
    let file = metrics_dir(&w).join(PROM);
    let mode = std::fs::symlink_metadata(&file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(value(&text, "gpbackup_ddboost_objects_total", TS), 6.0);
    assert_eq!(
        value(&text, "gpbackup_ddboost_bytes_total", TS),
        total as f64
    );
    let calls = value(&text, "gpbackup_ddboost_storage_call_seconds_count", TS);
    assert!(calls >= 6.0, "{text}");
    assert_eq!(
        value(
            &text,
            "gpbackup_ddboost_storage_call_seconds_bucket",
            "+Inf"
        ),
        calls
    );
    // One object after another: one lane, whose time (from the first
    // object's start to the last one's end) is the objects' parts and the
    // time between them.
    assert_eq!(value(&text, "gpbackup_ddboost_lanes{", TS), 1.0, "{text}");
    assert!(summary.contains("on 1 lanes"), "{summary}");
    let parts: f64 = ["io", "storage", "stream_wait", "connection_wait", "plugin"]
        .iter()
        .map(|p| {
            value(
                &text,
                "gpbackup_ddboost_object_seconds_total",
                &format!("part=\"{p}\""),
            )
        })
        .sum();
    let between = value(&text, "gpbackup_ddboost_between_objects_seconds_total", TS);
    let elapsed = value(&text, "gpbackup_ddboost_elapsed_seconds", TS);
    assert!(between > 0.0, "{text}");
    assert!((parts + between - elapsed).abs() < 0.01, "{text}");
    // Taken: a second hook finds nothing and leaves the file as it was.
    w.hook("cleanup_plugin_for_backup");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    if let Some(promtool) = tool("promtool", "prometheus") {
        promtool_accepts(&promtool, &file);
    }
}

/// Per-table `backup_data` processes, more at once than the broker has
/// connections, on a storage that answers each call after 30 ms: each
/// object's request met the broker's one connection in use (its own), some
/// met requests waiting and waited; the host's summary and the metrics say
/// so. Without the broker there are no broker series and no connection
/// waits.
#[test]
fn the_brokers_connections_in_use_and_requests_waiting() {
    const AT_ONCE: usize = 6;
    let w = world_at("  broker_connections: 1\n", Some("30"));
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..AT_ONCE)
            .map(|i| {
                let w = &w;
                s.spawn(move || w.backup(&format!("gpbackup_0_{TS}_{i}"), &bytes(2000, i as u64)))
            })
            .collect();
        for run in runs {
            ok(&run.join().unwrap());
        }
    });
    w.hook("cleanup_plugin_for_backup");
    let log = w.env.log_text();
    assert!(!log.contains("works directly"), "{log}");
    let file = metrics_dir(&w).join(PROM);
    let text = std::fs::read_to_string(&file).unwrap();
    let metric = |name: &str| value(&text, &format!("gpbackup_ddboost_{name}{{"), TS);
    assert_eq!(metric("broker_requests_total"), AT_ONCE as f64, "{text}");
    assert_eq!(metric("broker_connections_in_use_max"), 1.0, "{text}");
    assert_eq!(metric("broker_connections_in_use_mean"), 1.0, "{text}");
    let waiting = metric("broker_requests_waiting_max");
    assert!((1.0..AT_ONCE as f64).contains(&waiting), "{text}");
    assert!(metric("broker_requests_waiting_mean") > 0.0, "{text}");
    // They waited for the one connection together.
    assert!((2.0..=AT_ONCE as f64).contains(&metric("lanes")), "{text}");
    let waited = value(
        &text,
        "gpbackup_ddboost_object_seconds_total",
        "part=\"connection_wait\"",
    );
    // At least one call's latency: the one connection was busy with it.
    assert!(waited >= 0.03, "{text}");
    let summary = log
        .lines()
        .find(|l| l.contains("connection broker: 6 objects took a connection"))
        .unwrap_or_else(|| panic!("no broker line in the host summary:\n{log}"));
    assert!(
        summary.contains("connections in use as they did: at most 1, 1.0 on average"),
        "{summary}"
    );
    if let Some(promtool) = tool("promtool", "prometheus") {
        promtool_accepts(&promtool, &file);
    }

    let off = world("  broker: off\n");
    back_up(&off, 2);
    off.hook("cleanup_plugin_for_backup");
    let text = std::fs::read_to_string(metrics_dir(&off).join(PROM)).unwrap();
    assert_eq!(value(&text, "gpbackup_ddboost_objects_total", TS), 2.0);
    assert!(!text.contains("gpbackup_ddboost_broker_"), "{text}");
    assert_eq!(
        value(
            &text,
            "gpbackup_ddboost_object_seconds_total",
            "part=\"connection_wait\""
        ),
        0.0
    );
    assert!(
        !off.env.log_text().contains("connection broker: "),
        "{}",
        off.env.log_text()
    );
}

fn promtool_accepts(promtool: &Path, file: &Path) {
    promtool_passes(promtool, "metrics", file);
}

/// `promtool check <what>` passes on `file` (metrics on standard input,
/// rules as a file).
fn promtool_passes(promtool: &Path, what: &str, file: &Path) {
    let mut cmd = Command::new(promtool);
    cmd.args(["check", what]);
    match what {
        "metrics" => cmd.stdin(std::fs::File::open(file).unwrap()),
        _ => cmd.arg(file),
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "promtool check {what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_metrics_folder_that_is_a_link_or_missing_is_one_warning() {
    for bad in ["link", "missing", "file"] {
        let w = World::new("");
        let target = w.env.tmp.path().join("real");
        std::fs::create_dir_all(&target).unwrap();
        let dir = w.env.tmp.path().join(bad);
        match bad {
            "link" => std::os::unix::fs::symlink(&target, &dir).unwrap(),
            "file" => std::fs::write(&dir, "x").unwrap(),
            _ => {}
        }
        let options = format!(
            "{}  metrics_textfile_dir: {}\n",
            w.env.backend_options(),
            dir.display()
        );
        w.env.write_config(&options);
        back_up(&w, 2);
        w.hook("cleanup_plugin_for_backup");
        let log = w.env.log_text();
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("metrics not written"))
            .collect();
        assert_eq!(warnings.len(), 1, "{bad}: {log}");
        assert!(
            !target.join(PROM).exists(),
            "{bad}: written through the link"
        );
        assert!(!log.contains(DD_PASSWORD));
    }
}

/// A free port on the loopback interface.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    use std::io::Write;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

#[test]
fn node_exporter_serves_the_metrics_unchanged() {
    let Some(exporter) = tool("prometheus-node-exporter", "prometheus-node-exporter") else {
        return;
    };
    let w = world("");
    let dir = metrics_dir(&w);
    let total = back_up(&w, 4);
    w.hook("cleanup_plugin_for_backup");
    let written = std::fs::read_to_string(dir.join(PROM)).unwrap();
    let port = free_port();
    let _running = Exporter(
        Command::new(exporter)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--collector.textfile.directory={}", dir.display()))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let served = loop {
        match scrape(port) {
            Some(t) if t.contains("gpbackup_ddboost_objects_total") => break t,
            _ if Instant::now() > deadline => panic!("node_exporter did not serve the metrics"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(
        served.lines().any(|l| l == "node_textfile_scrape_error 0"),
        "{served}"
    );
    assert_eq!(value(&served, "gpbackup_ddboost_objects_total", TS), 4.0);
    assert_eq!(
        value(&served, "gpbackup_ddboost_bytes_total", TS),
        total as f64
    );
    // Every sample written is served with the same value.
    for line in written.lines().filter(|l| !l.starts_with('#')) {
        let (series, v) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        let got = served
            .lines()
            .filter(|l| l.starts_with(name))
            .find(|l| same_series(l, series))
            .unwrap_or_else(|| panic!("{series} not served:\n{served}"));
        let got: f64 = got.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(got, v.parse::<f64>().unwrap(), "{series}");
    }
}

/// Whether the served `line` is the written `series` (labels may come in
/// another order).
fn same_series(line: &str, series: &str) -> bool {
    let labels = |s: &str| -> Vec<String> {
        let mut l: Vec<String> = s
            .split_once('{')
            .map(|(_, rest)| rest.trim_end_matches(|c| c != '}').trim_end_matches('}'))
            .unwrap_or("")
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    let (served, _) = line.rsplit_once(' ').unwrap();
    served.split('{').next() == series.split('{').next() && labels(served) == labels(series)
}

#[test]
fn list_backups_gives_the_storage_side_metrics() {
    let env = Env::new(Backend::Local);
    let ts = "20250102030405";
    let mut total = 0;
    for i in 0..3 {
        let data = bytes(500 * (i + 1), i as u64);
        env.backup_data(ts, &format!("gpbackup_0_{ts}_{i}"), &data);
        total += data.len();
    }
    let key = env.key(ts, &format!("gpbackup_{ts}_config.yaml"));
    let config = PathBuf::from(&key);
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "status: Success\nsingledatafile: false\n").unwrap();
    ok(&env.run(&["backup_file", env.cfg(), key.as_str()]));
    let list = || {
        let out = env.run(&["list_backups", env.cfg(), "--format", "openmetrics"]);
        ok(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let before = list();
    let label = format!("backup=\"{ts}\"");
    assert_eq!(
        value(&before, "gpbackup_ddboost_backup_objects", &label),
        4.0
    );
    let config_len = std::fs::metadata(&config).unwrap().len() as f64;
    assert_eq!(
        value(&before, "gpbackup_ddboost_backup_size_bytes", &label),
        total as f64 + config_len
    );
    assert_eq!(
        value(&before, "gpbackup_ddboost_backup_complete", &label),
        1.0
    );
    assert!(
        !before.contains("gpbackup_ddboost_backup_last_verify_ok{"),
        "{before}"
    );
    let verified = env.run(&["verify_backup", env.cfg(), ts, "--allow-unrecorded"]);
    let after = list();
    let passed = if verified.status.success() { 1.0 } else { 0.0 };
    assert_eq!(
        value(&after, "gpbackup_ddboost_backup_last_verify_ok", &label),
        passed
    );
    let at = value(
        &after,
        "gpbackup_ddboost_backup_last_verify_timestamp_seconds",
        &label,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - at).abs() < 120.0, "{after}");
    if let Some(promtool) = tool("promtool", "prometheus") {
        let file = env.tmp.path().join("storage.prom");
        std::fs::write(&file, &after).unwrap();
        promtool_accepts(&promtool, &file);
    }
}

/// Every PromQL expression of the Grafana dashboard, with its variables
/// given values.
fn dashboard_exprs() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging/grafana/gpbackup_ddboost_plugin.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for panel in doc["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let e = target["expr"].as_str().unwrap();
            exprs.push(e.replace("$host", ".*"));
        }
    }
    assert!(exprs.len() >= 8);
    exprs
}

#[test]
fn the_dashboards_expressions_pass_promtool_and_name_written_metrics() {
    // The names the plugin writes: the hook's and list_backups'.
    let env = Env::new(Backend::Local);
    env.backup_data(TS, &format!("gpbackup_0_{TS}_1"), b"x");
    let out = env.run(&["list_backups", env.cfg(), "--format", "openmetrics"]);
    ok(&out);
    let mut written = String::from_utf8(out.stdout).unwrap();
    let mut summary = gpbackup_ddboost_plugin::observe::host::Summary::default();
    summary.failures.insert("storage".into(), 1);
    summary.counts.broker = gpbackup_ddboost_plugin::process::metrics::BrokerSeen::one(1, 0);
    written.push_str(&gpbackup_ddboost_plugin::observe::textfile::render(
        &summary, "h", TS, "backup",
    ));
    let exprs = dashboard_exprs();
    for e in &exprs {
        for name in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if name.starts_with("gpbackup_ddboost_") {
                assert!(
                    written
                        .lines()
                        .any(|l| l.starts_with(name) || l.starts_with(&format!("# TYPE {name} "))),
                    "the dashboard's {name} is not written"
                );
            }
        }
    }
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        let quoted = serde_json::to_string(e).unwrap();
        rules.push_str(&format!(
            "      - record: dashboard:expr{i}\n        expr: {quoted}\n"
        ));
    }
    let file = env.tmp.path().join("dashboard.rules.yml");
    std::fs::write(&file, rules).unwrap();
    promtool_passes(&promtool, "rules", &file);
}

#[test]
fn a_failed_restore_is_counted_by_its_kind() {
    let w = world("");
    back_up(&w, 2);
    w.hook("cleanup_plugin_for_backup");
    ok(&w.restore(&format!("gpbackup_0_{TS}_0")));
    let missing = w.restore("gpbackup_0_missing");
    fails(&missing);
    w.hook("cleanup_plugin_for_restore");
    let text =
        std::fs::read_to_string(metrics_dir(&w).join("gpbackup_ddboost_plugin_restore.prom"))
            .unwrap();
    assert_eq!(value(&text, "gpbackup_ddboost_objects_total", TS), 1.0);
    assert_eq!(
        value(
            &text,
            "gpbackup_ddboost_failures_total",
            "kind=\"not_found\""
        ),
        1.0
    );
    let log = w.env.log_text();
    assert!(log.contains("failures by kind: not_found 1"), "{log}");
}

/// A plugin process (`broker: off`) counts in its object's line every call
/// it makes to the storage, those after its data is in place (the record's
/// publication, the logout) too: gpbackup waits for the process's exit, so
/// the object's time runs to there.
#[test]
fn a_plugin_process_counts_its_calls_up_to_its_exit() {
    let w = World::new("  broker: off\n");
    ok(&w.backup(&format!("gpbackup_0_{TS}_1"), &bytes(5000, 1)));
    let made = taken_appliance_calls(&w.trace);
    let log = w.env.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("backup_data backups/"))
        .unwrap_or_else(|| panic!("no summary line in:\n{log}"));
    let counted: usize = line
        .rsplit("; ")
        .next()
        .and_then(|t| t.strip_suffix(" storage calls)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no call count in {line}"));
    assert_eq!(
        made.last().map(String::as_str),
        Some("disconnect"),
        "{made:?}"
    );
    assert_eq!(counted, made.len(), "{line}\n{made:?}");
}
