//! The reads of a download: whole blocks, each read once however many
//! ranges it serves.

use std::ops::Range;

/// The reads that serve `ranges`: whole `unit`-sized blocks of the object,
/// each read once however many ranges it serves; blocks no range touches
/// are not read.
#[derive(Clone)]
pub(super) struct Plan<'a> {
    pub(super) ranges: &'a [Range<u64>],
    pub(super) i: usize,
    pub(super) pos: u64,
    pub(super) unit: u64,
    pub(super) size: u64,
}

impl<'a> Plan<'a> {
    /// The reads of `unit` bytes that serve `ranges` of an object of `size`.
    pub(super) fn new(ranges: &'a [Range<u64>], unit: u64, size: u64) -> Plan<'a> {
        Plan {
            ranges,
            i: 0,
            pos: 0,
            unit,
            size,
        }
    }
}

impl Iterator for Plan<'_> {
    /// (offset, length, slices of the read to output)
    type Item = (u64, usize, Vec<Range<usize>>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let r = self.ranges.get(self.i)?;
            let start = r.start.max(self.pos);
            if start < r.end {
                self.pos = start;
                break;
            }
            self.i += 1;
        }
        let b0 = self.pos / self.unit * self.unit;
        let bend = (b0 + self.unit).min(self.size);
        let mut slices = Vec::new();
        while let Some(r) = self.ranges.get(self.i) {
            let s = r.start.max(self.pos);
            if s >= bend {
                break;
            }
            let e = r.end.min(bend);
            if s < e {
                slices.push((s - b0) as usize..(e - b0) as usize);
            }
            if r.end <= bend {
                self.i += 1;
            } else {
                break;
            }
        }
        self.pos = bend;
        Some((b0, (bend - b0) as usize, slices))
    }
}
