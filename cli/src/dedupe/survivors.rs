//! Which golden record each record ends in after the whole input.

use foldhash::HashMap;

/// The golden record each merged-away one ended in, as the merges reported them: a record's
/// golden record after the whole input is the one it was merged into, or the survivor that
/// record was merged into later (in the batch engine nothing else moves a record). A union-find
/// over interned ids, so the output needs no store reads.
#[derive(Default)]
pub struct Survivors {
    /// Golden id → number (each id held once: at 500k records there are 300k of them).
    numbers: HashMap<Box<str>, u32>,
    /// Per golden record: the one it was merged into (itself while it is active).
    into: Vec<u32>,
}

impl Survivors {
    pub fn number(&mut self, golden_id: &str) -> u32 {
        if let Some(n) = self.numbers.get(golden_id) {
            return *n;
        }
        let n = u32::try_from(self.into.len()).unwrap_or(u32::MAX);
        self.numbers.insert(golden_id.into(), n);
        self.into.push(n);
        n
    }

    pub fn merged(&mut self, survivor: &str, merged: &[String]) {
        let s = self.number(survivor);
        for m in merged {
            let m = self.number(m);
            self.into[m as usize] = s;
        }
    }

    /// The number of the active golden record `golden` ended in.
    pub fn survivor(&mut self, golden: u32) -> u32 {
        let mut root = golden;
        while self.into[root as usize] != root {
            root = self.into[root as usize];
        }
        // Shorten the path for the next records of this golden record.
        let mut at = golden;
        while self.into[at as usize] != root {
            let next = self.into[at as usize];
            self.into[at as usize] = root;
            at = next;
        }
        root
    }

    /// Golden records not merged into another.
    pub fn active(&self) -> usize {
        self.into.iter().enumerate().filter(|(n, into)| *n == **into as usize).count()
    }

    /// Golden ids by number.
    pub fn names(&self) -> Vec<&str> {
        let mut names = vec![""; self.into.len()];
        for (id, n) in &self.numbers {
            names[*n as usize] = id;
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_ends_in_the_survivor_of_every_later_merge() {
        let mut s = Survivors::default();
        let (a, b, c, d) = (s.number("ga"), s.number("gb"), s.number("gc"), s.number("gd"));
        assert_eq!(s.number("ga"), a, "one number per golden record");
        s.merged("gb", &["ga".into()]);
        s.merged("gc", &["gb".into(), "gx".into()]);
        let x = s.number("gx");
        let ended = |s: &mut Survivors, g: u32| {
            let n = s.survivor(g);
            s.names()[n as usize].to_owned()
        };
        assert_eq!(ended(&mut s, a), "gc", "a was merged into b, and b into c");
        assert_eq!(ended(&mut s, b), "gc");
        assert_eq!(ended(&mut s, c), "gc");
        assert_eq!(ended(&mut s, d), "gd", "never merged");
        assert_eq!(ended(&mut s, x), "gc");
        assert_eq!(s.active(), 2, "gc and gd");
        s.merged("gd", &["gc".into()]);
        assert_eq!(ended(&mut s, a), "gd", "a shortened path still follows a later merge");
        assert_eq!(s.active(), 1);
    }
}
