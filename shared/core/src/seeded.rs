//! A seeded pseudo-random sequence for the unit tests' generated inputs (xorshift64): the same
//! inputs on every run, no dependency.

pub(crate) struct Seeded(u64);

impl Seeded {
    /// A sequence from a non-zero seed.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number below `n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
