//! The verdict of each backup a verification involves.

use std::collections::BTreeMap;

use crate::backups::manifest::{Manifest, ProblemKind};

use super::objects::{Line, Status};

/// Verdicts, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Verdict {
    Complete,
    Unverified,
    Damaged,
    Incomplete,
    Failed,
}

impl Verdict {
    pub(super) fn word(self) -> &'static str {
        match self {
            Verdict::Complete => "COMPLETE",
            Verdict::Unverified => "UNVERIFIED",
            Verdict::Damaged => "DAMAGED",
            Verdict::Incomplete => "INCOMPLETE",
            Verdict::Failed => "FAILED",
        }
    }
}

/// One backup's verdict and why.
pub(super) struct BackupVerdict {
    pub(super) ts: String,
    pub(super) verdict: Verdict,
    pub(super) reasons: Vec<String>,
    pub(super) objects: usize,
}

/// The verdict of each backup involved: the earlier backups of the restore
/// plan, then the backup itself (whose verdict includes theirs).
pub(super) fn verdicts(m: &Manifest, lines: &[Line], allow_unrecorded: bool) -> Vec<BackupVerdict> {
    let mut out: Vec<BackupVerdict> = Vec::new();
    let mut by_backup: BTreeMap<&str, Vec<&Line>> = BTreeMap::new();
    for l in lines {
        by_backup.entry(l.backup.as_str()).or_default().push(l);
    }
    for b in m.backups() {
        let mine = by_backup.get(b.as_str()).cloned().unwrap_or_default();
        let n = |s: Status| mine.iter().filter(|l| l.status == s).count();
        let named = mine.iter().filter(|l| l.status.is_named()).count();
        let mut v = BackupVerdict {
            ts: b.clone(),
            verdict: Verdict::Complete,
            reasons: Vec::new(),
            objects: named,
        };
        let worse = |v: &mut BackupVerdict, to: Verdict, why: String| {
            v.verdict = v.verdict.max(to);
            v.reasons.push(why);
        };
        for p in m.problems.iter().filter(|p| p.backup == b) {
            let to = match p.kind {
                ProblemKind::NotSuccess => Verdict::Failed,
                ProblemKind::NoTeardown | ProblemKind::Underivable => Verdict::Incomplete,
                ProblemKind::Unreadable => Verdict::Damaged,
            };
            worse(&mut v, to, p.text.clone());
        }
        if n(Status::Missing) > 0 {
            worse(
                &mut v,
                Verdict::Incomplete,
                format!("{} of {named} objects missing", n(Status::Missing)),
            );
        }
        if n(Status::Failed) > 0 {
            worse(
                &mut v,
                Verdict::Damaged,
                format!("{} objects failed verification", n(Status::Failed)),
            );
        }
        if n(Status::Unrecorded) > 0 {
            let to = if allow_unrecorded {
                Verdict::Complete
            } else {
                Verdict::Unverified
            };
            worse(
                &mut v,
                to,
                format!(
                    "{} objects have no checksum record (--allow-unrecorded accepts them)",
                    n(Status::Unrecorded)
                ),
            );
        }
        if b == m.ts {
            for e in &out {
                if e.verdict > Verdict::Complete {
                    let why = format!(
                        "earlier backup {} of its restore plan is {}",
                        e.ts,
                        e.verdict.word()
                    );
                    worse(&mut v, e.verdict.min(Verdict::Incomplete), why);
                }
            }
        }
        out.push(v);
    }
    out
}

pub(super) fn verdict_text(v: &BackupVerdict, ts: &str) -> String {
    let what = if v.ts == ts {
        format!("{} objects", v.objects)
    } else {
        format!("{} objects a restore of {ts} opens", v.objects)
    };
    if v.reasons.is_empty() {
        format!(
            "BACKUP {} {}: {what}, all present and verified",
            v.ts,
            v.verdict.word()
        )
    } else {
        format!(
            "BACKUP {} {}: {}",
            v.ts,
            v.verdict.word(),
            v.reasons.join("; ")
        )
    }
}
