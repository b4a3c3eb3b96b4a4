//! The offsets file of `restore_data_subset`: `N s1 e1 s2 e2 ... sN eN`.
//!
//! ASCII decimal, split on any whitespace, half-open 64-bit ranges [s, e).
//! Ranges may be empty, must be in file order and must not overlap; adjacent
//! ranges are merged into one read.

use std::ops::Range;

use crate::error::{Error, Result};

/// Parses and checks the ranges (all but the object size).
pub fn parse(text: &str) -> Result<Vec<Range<u64>>> {
    let mut tokens = text.split_ascii_whitespace();
    let bad = |why: String| Error::invalid(format!("invalid offsets: {why}"));
    let count_tok = tokens
        .next()
        .ok_or_else(|| bad("the file is empty; expected \"N s1 e1 ... sN eN\"".into()))?;
    let count = number(count_tok).ok_or_else(|| {
        bad(format!(
            "range count \"{}\" is not a number",
            shown(count_tok)
        ))
    })?;
    let nums: Vec<&str> = tokens.collect();
    if (nums.len() as u64) != count.saturating_mul(2) {
        return Err(bad(format!(
            "the range count says {count} ranges but {} numbers follow (expected {})",
            nums.len(),
            count.saturating_mul(2)
        )));
    }
    let mut ranges = Vec::with_capacity(nums.len() / 2);
    let mut prev_end = 0u64;
    for (i, pair) in nums.chunks(2).enumerate() {
        let start = number(pair[0]).ok_or_else(|| {
            bad(format!(
                "range {} start \"{}\" is not a number",
                i + 1,
                shown(pair[0])
            ))
        })?;
        let end = number(pair[1]).ok_or_else(|| {
            bad(format!(
                "range {} end \"{}\" is not a number",
                i + 1,
                shown(pair[1])
            ))
        })?;
        if end < start {
            return Err(bad(format!(
                "range {} ends ({end}) before it starts ({start})",
                i + 1
            )));
        }
        if start < prev_end {
            return Err(bad(format!(
                "range {} starts at {start}, before the previous range ends at {prev_end} (ranges must be in order and not overlap)",
                i + 1
            )));
        }
        prev_end = end;
        ranges.push(start..end);
    }
    Ok(ranges)
}

/// Checks that every range lies within an object of `size` bytes.
pub fn check_within(ranges: &[Range<u64>], size: u64, object: &str) -> Result<()> {
    match ranges.last() {
        Some(r) if r.end > size => Err(Error::invalid(format!(
            "invalid offsets: range end {} is beyond the end of {object} ({size} bytes)",
            r.end
        ))),
        _ => Ok(()),
    }
}

/// Merges adjacent ranges and drops empty ones; order is kept.
pub fn merge(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges.iter().filter(|r| r.start < r.end) {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r.clone()),
        }
    }
    out
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn shown(s: &str) -> String {
    s.chars()
        .take(24)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bench_examples() {
        assert_eq!(parse("1 3 10").unwrap(), vec![3..10]);
        assert_eq!(parse("1 900000 900001\n").unwrap(), vec![900000..900001]);
        assert_eq!(
            parse("2 0 700000 900000 900001").unwrap(),
            vec![0..700000, 900000..900001]
        );
    }

    #[test]
    fn whitespace_and_empty_ranges() {
        assert_eq!(
            parse(" 3\t0 5\n5 5\r\n5 9 ").unwrap(),
            vec![0..5, 5..5, 5..9]
        );
        assert_eq!(merge(&parse("3 0 5 5 5 5 9").unwrap()), vec![0..9]);
        assert_eq!(merge(&[0..2, 4..4, 4..6, 7..8]), vec![0..2, 4..6, 7..8]);
        assert_eq!(parse("0").unwrap(), vec![]);
    }

    #[test]
    fn rejects() {
        for t in [
            "",
            "x",
            "1 3",
            "1 3 10 11",
            "2 0 5",
            "1 10 3",
            "2 0 10 5 20",
            "2 5 10 0 3",
            "1 -1 5",
            "1 +1 5",
            "1 1.5 3",
            "1 0 18446744073709551616",
        ] {
            assert!(parse(t).is_err(), "{t:?} accepted");
        }
    }

    #[test]
    fn within() {
        let r = parse("1 0 10").unwrap();
        assert!(check_within(&r, 10, "o").is_ok());
        assert!(check_within(&r, 9, "o").is_err());
        assert!(check_within(&[], 0, "o").is_ok());
    }

    proptest! {
        #[test]
        fn merge_keeps_bytes(cuts in proptest::collection::vec(0u64..1000, 0..20)) {
            let mut c = cuts.clone();
            c.sort();
            let ranges: Vec<Range<u64>> = c.chunks(2).filter(|p| p.len() == 2).map(|p| p[0]..p[1]).collect();
            let text = format!("{} {}", ranges.len(), ranges.iter().map(|r| format!("{} {}", r.start, r.end)).collect::<Vec<_>>().join(" "));
            let parsed = parse(&text).unwrap();
            prop_assert_eq!(&parsed, &ranges);
            let total: u64 = ranges.iter().map(|r| r.end - r.start).sum();
            let merged = merge(&parsed);
            prop_assert_eq!(merged.iter().map(|r| r.end - r.start).sum::<u64>(), total);
            for w in merged.windows(2) { prop_assert!(w[0].end < w[1].start); }
        }

        #[test]
        fn never_panics(s in ".{0,60}") { let _ = parse(&s); }
    }
}
