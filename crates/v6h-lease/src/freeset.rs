//! A set of free `u128` indices kept as disjoint, non-adjacent inclusive intervals.
//!
//! Every operation is O(log n) in the number of intervals (which is at most the number of taken
//! indices plus one), and the free count is kept so exhaustion is detected in O(1).

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};

/// Free indices as `start -> end` (inclusive) intervals, with a running count.
#[derive(Debug, Clone, Default)]
pub struct FreeSet {
    runs: BTreeMap<u128, u128>,
    count: u128,
}

impl FreeSet {
    /// A set holding every index in `0..=last`.
    pub fn full(last: u128) -> Self {
        let mut runs = BTreeMap::new();
        runs.insert(0, last);
        FreeSet {
            runs,
            count: last.saturating_add(1),
        }
    }

    /// How many indices are free (saturates at `u128::MAX`).
    pub fn count(&self) -> u128 {
        self.count
    }

    /// Whether index `i` is free.
    pub fn contains(&self, i: u128) -> bool {
        self.run_containing(i).is_some()
    }

    fn run_containing(&self, i: u128) -> Option<(u128, u128)> {
        let (&s, &e) = self.runs.range(..=i).next_back()?;
        (i <= e).then_some((s, e))
    }

    /// Takes index `i` if it is free; returns whether it was.
    pub fn take(&mut self, i: u128) -> bool {
        // One search finds the run and shortens it in place; only a run starting at `i` is
        // removed, and only a run reaching past `i` adds its tail.
        let Some((&s, end)) = self.runs.range_mut(..=i).next_back() else {
            return false;
        };
        let e = *end;
        if i > e {
            return false;
        }
        if s < i {
            *end = i - 1;
        } else {
            self.runs.remove(&s);
        }
        if i < e {
            self.runs.insert(i + 1, e);
        }
        self.count -= 1;
        true
    }

    /// `hint` if free, else the first free index after it, else the first free index; nothing
    /// is taken.
    pub fn peek_near(&self, hint: u128) -> Option<u128> {
        if self.contains(hint) {
            return Some(hint);
        }
        self.runs
            .range((Excluded(hint), Unbounded))
            .next()
            .or_else(|| self.runs.iter().next())
            .map(|(&s, _)| s)
    }

    /// Takes `hint` if free, else the first free index after it, else the first free index.
    pub fn take_near(&mut self, hint: u128) -> Option<u128> {
        if self.take(hint) {
            return Some(hint);
        }
        let next = self
            .runs
            .range((Excluded(hint), Unbounded))
            .next()
            .or_else(|| self.runs.iter().next())
            .map(|(&s, _)| s)?;
        self.take(next);
        Some(next)
    }

    /// Removes every index in `a..=b` (used for exclusions); returns how many were free.
    pub fn remove_range(&mut self, a: u128, b: u128) -> u128 {
        if a > b {
            return 0;
        }
        let mut removed = 0u128;
        // The run that starts before `a` may overlap.
        if let Some((s, e)) = self.run_containing(a)
            && s < a
        {
            self.runs.insert(s, a - 1);
            self.runs.insert(a, e);
        }
        let starts: Vec<u128> = self
            .runs
            .range((Included(a), Included(b)))
            .map(|(&s, _)| s)
            .collect();
        for s in starts {
            let Some(e) = self.runs.remove(&s) else {
                continue;
            };
            if e > b {
                self.runs.insert(b + 1, e);
                removed += b - s + 1;
            } else {
                removed += e - s + 1;
            }
        }
        self.count -= removed;
        removed
    }

    /// Returns index `i` to the set, merging with neighbours; returns false if it was free.
    pub fn give(&mut self, i: u128) -> bool {
        if self.contains(i) {
            return false;
        }
        let mut start = i;
        let mut end = i;
        if i > 0
            && let Some((s, e)) = self.run_containing(i - 1)
        {
            self.runs.remove(&s);
            start = s;
            debug_assert_eq!(e, i - 1);
        }
        if i < u128::MAX
            && let Some(e) = self.runs.remove(&(i + 1))
        {
            end = e;
        }
        self.runs.insert(start, end);
        self.count += 1;
        true
    }

    /// The free runs, in order (for tests and diagnostics).
    pub fn runs(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.runs.iter().map(|(&s, &e)| (s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn take_give_merge() {
        let mut f = FreeSet::full(9);
        assert!(f.take(5));
        assert!(!f.take(5));
        assert_eq!(f.count(), 9);
        assert_eq!(f.runs().collect::<Vec<_>>(), vec![(0, 4), (6, 9)]);
        assert!(f.give(5));
        assert_eq!(f.runs().collect::<Vec<_>>(), vec![(0, 9)]);
        assert_eq!(f.remove_range(2, 7), 6);
        assert_eq!(f.runs().collect::<Vec<_>>(), vec![(0, 1), (8, 9)]);
        assert_eq!(f.take_near(3), Some(8));
        assert_eq!(f.take_near(9), Some(9));
        assert_eq!(f.take_near(9), Some(0));
        assert_eq!(f.take_near(0), Some(1));
        assert_eq!(f.take_near(0), None);
        assert_eq!(f.count(), 0);
    }

    proptest! {
        /// The interval set behaves exactly like a plain set of indices.
        #[test]
        fn matches_model(ops in proptest::collection::vec((0u8..4, 0u128..64, 0u128..8), 0..200)) {
            let mut f = FreeSet::full(63);
            let mut model: BTreeSet<u128> = (0..64).collect();
            for (op, i, w) in ops {
                match op {
                    0 => prop_assert_eq!(f.take(i), model.remove(&i)),
                    1 => prop_assert_eq!(f.give(i), model.insert(i)),
                    2 => {
                        let got = f.take_near(i);
                        let want = model.range(i..).next().or_else(|| model.iter().next()).copied();
                        prop_assert_eq!(got, want);
                        if let Some(x) = want { model.remove(&x); }
                    }
                    _ => {
                        let b = (i + w).min(63);
                        let n = (i..=b).filter(|x| model.remove(x)).count() as u128;
                        prop_assert_eq!(f.remove_range(i, b), n);
                    }
                }
                prop_assert_eq!(f.count(), model.len() as u128);
                let flat: Vec<u128> = f.runs().flat_map(|(s, e)| s..=e).collect();
                prop_assert_eq!(flat, model.iter().copied().collect::<Vec<_>>());
                let runs: Vec<_> = f.runs().collect();
                for w in runs.windows(2) { prop_assert!(w[0].1 + 1 < w[1].0); }
            }
        }
    }
}
