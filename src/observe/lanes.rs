//! The most objects in flight at once on a host: the lanes its callers ran
//! (segments x `--jobs`), as the objects show them. Read from the facts
//! file, whose lines are written as objects end, in bounded memory.

use std::collections::VecDeque;

/// How many recent object ends are kept. The most in flight at once is
/// found just before some object's end; an end older than this many ends is
/// dropped (objects still in flight across that many ends are counted at
/// the newer ones).
const RECENT: usize = 1 << 16;

/// The most objects in flight at once, from objects added in the order they
/// ended (nearly: a line written late only misses the ends just before it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MostAtOnce {
    /// Recent ends (ms) and the objects found in flight just before each.
    recent: VecDeque<(u64, u32)>,
    /// The most found just before any end so far.
    most: u32,
}

impl MostAtOnce {
    /// Adds an object that ran from `start_ms` to `end_ms`.
    pub fn add(&mut self, start_ms: u64, end_ms: u64) {
        // It was in flight just before each recent end in (start, end].
        for (end, n) in self.recent.iter_mut().rev() {
            if *end <= start_ms {
                break;
            }
            if *end <= end_ms {
                *n = n.saturating_add(1);
                self.most = self.most.max(*n);
            }
        }
        self.recent.push_back((end_ms, 1));
        self.most = self.most.max(1);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// The most objects in flight at once so far.
    pub fn most(&self) -> u64 {
        u64::from(self.most)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn most(objects: &[(u64, u64)]) -> u64 {
        let mut m = MostAtOnce::default();
        for &(start, end) in objects {
            m.add(start, end);
        }
        m.most()
    }

    #[test]
    fn lanes_one_object_after_another() {
        // Three lanes, each running objects back to back (the next starts
        // as the last ends), added in the order they ended.
        let mut objects = Vec::new();
        for i in 0..100u64 {
            for lane in 0..3u64 {
                let start = i * 10 + lane;
                objects.push((start, start + 10));
            }
        }
        objects.sort_by_key(|o| o.1);
        assert_eq!(most(&objects), 3);
        assert_eq!(most(&[]), 0);
        assert_eq!(most(&[(5, 5)]), 1);
    }

    #[test]
    fn a_long_object_beside_short_ones() {
        // One object the whole time, two lanes of short ones beside it,
        // and one moment with a third short one.
        let mut objects = vec![(0, 10_000)];
        for i in 0..1000u64 {
            objects.push((i * 10, i * 10 + 10));
            objects.push((i * 10 + 5, i * 10 + 9));
        }
        objects.push((4_005, 4_008));
        objects.sort_by_key(|o| o.1);
        assert_eq!(most(&objects), 4);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut m = MostAtOnce::default();
        for i in 0..(RECENT as u64 * 3) {
            m.add(i * 2, i * 2 + 3);
        }
        assert_eq!(m.recent.len(), RECENT);
        assert_eq!(m.most(), 2);
    }
}
