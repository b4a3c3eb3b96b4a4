//! Temporary names that say which process wrote them, so a later run can
//! tell a temporary whose writer is gone (killed with SIGKILL, or the host
//! restarted) from one still being written.

/// A unique temporary name for `name` in the same folder:
/// `.<name>.tmp-<host>-<pid>-<nonce>`. The host and process id let a later
/// run tell whether the writer is gone (see [`is_stale_temp`]). While a
/// write is journaled (`process::journal`), the name is recorded before it is
/// returned, so before the caller creates the temporary.
pub fn temp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let temp = format!(
        ".{name}.tmp-{}-{}-{nanos:x}x{n}",
        host_tag(),
        std::process::id()
    );
    super::journal::note(&temp);
    temp
}

/// This host's name as it appears in temporary names: only `[A-Za-z0-9._]`.
pub fn host_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        host.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    })
}

/// For a file name made by [`temp_name`]: the object's name, and the host and
/// process id of its writer.
pub fn temp_owner(file_name: &str) -> Option<(&str, &str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (object, tail) = rest.rsplit_once(".tmp-")?;
    let mut it = tail.rsplitn(3, '-');
    let _nonce = it.next()?;
    let pid = it.next()?.parse().ok()?;
    let host = it.next()?;
    Some((object, host, pid))
}

/// Whether the temporary `file_name` was left by a writer on this host that
/// is no longer running (killed with SIGKILL, or the host restarted).
pub fn is_stale_temp(file_name: &str) -> bool {
    match temp_owner(file_name) {
        Some((_, host, pid)) if host == host_tag() => !super::alive(pid),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_host_and_pid() {
        let t = temp_name("gpbackup_0_20250101120000");
        let (object, host, pid) = temp_owner(&t).unwrap();
        assert_eq!(object, "gpbackup_0_20250101120000");
        assert_eq!(host, host_tag());
        assert_eq!(pid, std::process::id());
        assert!(!is_stale_temp(&t), "this process is alive");
        let dead = format!(".obj.tmp-{}-{}-abcx1", host_tag(), i32::MAX);
        assert!(is_stale_temp(&dead));
        let elsewhere = format!(".obj.tmp-otherhost-{}-abcx1", i32::MAX);
        assert!(
            !is_stale_temp(&elsewhere),
            "another host's writer may be alive"
        );
        assert!(temp_owner(".obj.checksum").is_none());
        assert!(!is_stale_temp("obj"));
    }
}
