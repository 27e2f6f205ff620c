//! A set of `u128` values kept as disjoint inclusive intervals.
//!
//! IPv4 and IPv6 addresses are both mapped to `u128` (IPv4 as its `u32` value), so one type
//! serves both families; the allocator keeps one set per family and never mixes them. Every
//! operation is `O(log n + k)` in the number of stored intervals `n` (and `k` intervals
//! touched), independent of how many addresses the intervals cover: a /64 costs the same as a
//! /29.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

/// Disjoint, non-adjacent inclusive intervals over `u128`.
///
/// Invariant: for every stored `(start, end)`, `start <= end`, and two stored intervals
/// neither overlap nor touch (`end + 1 < next.start`), so the representation is canonical:
/// two sets with the same members compare equal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntervalSet {
    /// start -> end (inclusive).
    map: BTreeMap<u128, u128>,
    /// Number of members, saturating at `u128::MAX` (only the full `0..=u128::MAX` set,
    /// 2^128 members, does not fit).
    len: u128,
}

fn span(start: u128, end: u128) -> u128 {
    (end - start).saturating_add(1)
}

impl IntervalSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of members (saturating at `u128::MAX`).
    pub fn len(&self) -> u128 {
        self.len
    }

    /// True when the set has no member.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of stored intervals (the cost driver of every operation).
    pub fn intervals(&self) -> usize {
        self.map.len()
    }

    /// The stored intervals in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = RangeInclusive<u128>> + '_ {
        self.map.iter().map(|(&s, &e)| s..=e)
    }

    /// True when `x` is a member.
    pub fn contains(&self, x: u128) -> bool {
        self.map
            .range(..=x)
            .next_back()
            .is_some_and(|(_, &end)| end >= x)
    }

    /// The smallest member.
    pub fn first(&self) -> Option<u128> {
        self.map.first_key_value().map(|(&s, _)| s)
    }

    /// The smallest member `>= x`.
    pub fn first_at_or_after(&self, x: u128) -> Option<u128> {
        if let Some((_, &end)) = self.map.range(..=x).next_back()
            && end >= x
        {
            return Some(x);
        }
        self.map
            .range((std::ops::Bound::Excluded(x), std::ops::Bound::Unbounded))
            .next()
            .map(|(&s, _)| s)
    }

    /// True when some member lies in `start..=end`.
    pub fn intersects(&self, start: u128, end: u128) -> bool {
        debug_assert!(start <= end);
        self.first_at_or_after(start).is_some_and(|x| x <= end)
    }

    /// Adds every value in `start..=end`.
    pub fn insert(&mut self, start: u128, end: u128) {
        assert!(start <= end, "interval start after end");
        let mut new_start = start;
        let mut new_end = end;
        // An interval starting before `start` that overlaps or touches it is absorbed.
        if let Some((&s, &e)) = self.map.range(..start).next_back()
            && e.checked_add(1).is_none_or(|after| after >= start)
        {
            self.map.remove(&s);
            self.len -= span(s, e);
            new_start = s;
            new_end = new_end.max(e);
        }
        // So are intervals starting inside `start..=end+1` (none can start past that and
        // still touch: stored intervals never touch each other).
        let upper = end.saturating_add(1);
        while let Some((&s, &e)) = self.map.range(start..=upper).next() {
            self.map.remove(&s);
            self.len -= span(s, e);
            new_end = new_end.max(e);
        }
        self.map.insert(new_start, new_end);
        self.len = self.len.saturating_add(span(new_start, new_end));
    }

    /// Adds one value.
    pub fn insert_one(&mut self, x: u128) {
        self.insert(x, x);
    }

    /// Removes every value in `start..=end`.
    pub fn remove(&mut self, start: u128, end: u128) {
        assert!(start <= end, "interval start after end");
        // An interval starting before `start` that reaches into it: keep its head (and its
        // tail, if it also reaches past `end`).
        if let Some((&s, &e)) = self.map.range(..start).next_back()
            && e >= start
        {
            self.len -= span(s, e);
            self.map.insert(s, start - 1);
            self.len = self.len.saturating_add(span(s, start - 1));
            if e > end {
                self.map.insert(end + 1, e);
                self.len = self.len.saturating_add(span(end + 1, e));
                return;
            }
        }
        while let Some((&s, &e)) = self.map.range(start..=end).next() {
            self.map.remove(&s);
            self.len -= span(s, e);
            if e > end {
                self.map.insert(end + 1, e);
                self.len = self.len.saturating_add(span(end + 1, e));
                break;
            }
        }
    }

    /// Removes one value.
    pub fn remove_one(&mut self, x: u128) {
        self.remove(x, x);
    }
}

impl FromIterator<RangeInclusive<u128>> for IntervalSet {
    fn from_iter<I: IntoIterator<Item = RangeInclusive<u128>>>(iter: I) -> Self {
        let mut set = IntervalSet::new();
        for r in iter {
            set.insert(*r.start(), *r.end());
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn members(set: &IntervalSet) -> BTreeSet<u128> {
        set.iter().flatten().collect()
    }

    #[test]
    fn insert_merges_overlapping_and_adjacent() {
        let mut s = IntervalSet::new();
        s.insert(10, 20);
        s.insert(30, 40);
        assert_eq!(s.intervals(), 2);
        s.insert(21, 29); // touches both sides
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![10..=40]);
        assert_eq!(s.len(), 31);
        s.insert(5, 12);
        s.insert(39, 45);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![5..=45]);
        assert_eq!(s.len(), 41);
    }

    #[test]
    fn remove_splits_and_trims() {
        let mut s = IntervalSet::new();
        s.insert(0, 100);
        s.remove(10, 19);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0..=9, 20..=100]);
        s.remove(0, 0);
        s.remove(100, 200);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1..=9, 20..=99]);
        assert_eq!(s.len(), 9 + 80);
        s.remove(5, 50);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1..=4, 51..=99]);
        s.remove(0, 1000);
        assert!(s.is_empty());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn lookups() {
        let s: IntervalSet = [5..=9, 20..=20, 30..=40].into_iter().collect();
        assert_eq!(s.first(), Some(5));
        assert_eq!(s.first_at_or_after(0), Some(5));
        assert_eq!(s.first_at_or_after(7), Some(7));
        assert_eq!(s.first_at_or_after(10), Some(20));
        assert_eq!(s.first_at_or_after(21), Some(30));
        assert_eq!(s.first_at_or_after(41), None);
        assert!(s.contains(20) && !s.contains(21) && s.contains(40) && !s.contains(4));
        assert!(s.intersects(10, 20) && !s.intersects(10, 19) && !s.intersects(41, 50));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut s = IntervalSet::new();
        s.insert(0, u128::MAX);
        assert_eq!(s.len(), u128::MAX, "2^128 saturates");
        s.remove_one(u128::MAX);
        s.remove_one(0);
        assert_eq!(s.len(), u128::MAX - 1);
        assert_eq!(s.first(), Some(1));
        s.insert_one(u128::MAX);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1..=u128::MAX]);
        // A /64's worth of addresses is one interval.
        let mut v6 = IntervalSet::new();
        let base = 0x2001_0db8_u128 << 96;
        v6.insert(base, base + u64::MAX as u128);
        assert_eq!(v6.len(), 1u128 << 64);
        v6.remove_one(base);
        assert_eq!(v6.first(), Some(base + 1));
        assert_eq!(v6.intervals(), 1);
    }

    proptest! {
        /// The interval set behaves exactly like a `BTreeSet` of its members.
        #[test]
        fn matches_btreeset(ops in proptest::collection::vec((any::<bool>(), 0u128..64, 0u128..8), 0..64)) {
            let mut s = IntervalSet::new();
            let mut model = BTreeSet::new();
            for (add, start, width) in ops {
                let end = start + width;
                if add {
                    s.insert(start, end);
                    model.extend(start..=end);
                } else {
                    s.remove(start, end);
                    for x in start..=end { model.remove(&x); }
                }
                prop_assert_eq!(&members(&s), &model);
                prop_assert_eq!(s.len(), model.len() as u128);
                // canonical: no touching intervals
                let v: Vec<_> = s.iter().collect();
                for w in v.windows(2) {
                    prop_assert!(*w[0].end() + 1 < *w[1].start());
                }
                for probe in 0u128..80 {
                    prop_assert_eq!(s.contains(probe), model.contains(&probe));
                    prop_assert_eq!(s.first_at_or_after(probe), model.range(probe..).next().copied());
                }
            }
        }
    }
}
