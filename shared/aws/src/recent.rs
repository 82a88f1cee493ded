//! Read-your-own-writes for eventually consistent blocking-index and claim reads.
//!
//! The merge handler reads the blocking index and the claims eventually consistently, at half the
//! read units of a strong read. What it could miss is what was written in the last moment.
//!
//! - Writes by this instance are the common case: the previous message of the same batch created
//!   a golden record that this one should join. [`RecentEntries`] remembers the index entries and
//!   claims this process wrote for [`WINDOW`] and lays them over every read.
//! - Writes by other Lambda instances in that moment are the same race as two merges running at
//!   once, which strong reads do not close either. For claims the merge transaction's conditions
//!   close it: a claim written under a stale read fails its condition, the key is marked
//!   [`RecentEntries::suspect`], and the retry reads it strongly.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a written entry is added to lookups: well beyond the usual replication delay of an
/// eventually consistent read (DynamoDB documents "usually within a second").
pub const WINDOW: Duration = Duration::from_secs(10);

/// Entries kept at most (the oldest go first), so a busy instance holds a bounded amount.
const MAX_ENTRIES: usize = 50_000;

/// Index entries written recently, by block (`entity` + stored key) → golden ids.
#[derive(Debug, Default)]
pub struct RecentEntries {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first: (written at, block, golden id).
    order: VecDeque<(Instant, String, String)>,
    by_block: HashMap<String, Vec<String>>,
    /// Claims written (`Some(holder)`) or deleted (`None`) by this process, and claim keys whose
    /// condition failed (read strongly next time), by `entity` + claim key.
    claims: HashMap<String, (Instant, ClaimState)>,
    /// Oldest first: (written at, claim key).
    claim_order: VecDeque<(Instant, String)>,
}

/// What this process knows about a claim key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    /// It wrote this holder (`None`: it deleted the claim).
    Written(Option<String>),
    /// A write conditioned on what it read failed: read it strongly.
    Suspect,
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.order.front() {
            if now.duration_since(*at) < WINDOW && self.order.len() <= MAX_ENTRIES {
                break;
            }
            let Some((_, block, golden)) = self.order.pop_front() else { break };
            self.forget(&block, &golden);
        }
        while let Some((at, _)) = self.claim_order.front() {
            if now.duration_since(*at) < WINDOW && self.claim_order.len() <= MAX_ENTRIES {
                break;
            }
            let Some((at, key)) = self.claim_order.pop_front() else { break };
            // Only if not written again since.
            if self.claims.get(&key).is_some_and(|(written, _)| *written == at) {
                self.claims.remove(&key);
            }
        }
    }

    fn forget(&mut self, block: &str, golden: &str) {
        if let Some(ids) = self.by_block.get_mut(block) {
            if let Some(i) = ids.iter().position(|g| g == golden) {
                ids.swap_remove(i);
            }
            if ids.is_empty() {
                self.by_block.remove(block);
            }
        }
    }
}

fn block(entity: &str, key: &str) -> String {
    format!("{entity}\u{1f}{key}")
}

impl RecentEntries {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A poisoned lock only means another task panicked mid-update; the map stays usable.
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Remembers an entry this process wrote.
    pub fn added(&self, entity: &str, key: &str, golden_id: &str) {
        self.added_at(entity, key, golden_id, Instant::now());
    }

    fn added_at(&self, entity: &str, key: &str, golden_id: &str, now: Instant) {
        self.with(|inner| {
            inner.expire(now);
            let b = block(entity, key);
            let ids = inner.by_block.entry(b.clone()).or_default();
            if !ids.iter().any(|g| g == golden_id) {
                ids.push(golden_id.to_owned());
                inner.order.push_back((now, b, golden_id.to_owned()));
            }
        });
    }

    /// Forgets an entry this process deleted.
    pub fn removed(&self, entity: &str, key: &str, golden_id: &str) {
        self.with(|inner| inner.forget(&block(entity, key), golden_id));
    }

    /// Golden ids written under `key` within the window.
    pub fn under(&self, entity: &str, key: &str) -> Vec<String> {
        self.under_at(entity, key, Instant::now())
    }

    fn under_at(&self, entity: &str, key: &str, now: Instant) -> Vec<String> {
        self.with(|inner| {
            inner.expire(now);
            inner.by_block.get(&block(entity, key)).cloned().unwrap_or_default()
        })
    }

    /// Adds the remembered entries of `key` to what a read returned, without duplicates; returns
    /// how many it added.
    pub fn complete(&self, entity: &str, key: &str, read: &mut Vec<String>) -> usize {
        let mut added = 0;
        for g in self.under(entity, key) {
            if !read.contains(&g) {
                read.push(g);
                added += 1;
            }
        }
        added
    }

    /// Remembers a claim this process wrote (`None`: deleted).
    pub fn claimed(&self, entity: &str, key: &str, holder: Option<&str>) {
        self.claim_state(entity, key, ClaimState::Written(holder.map(str::to_owned)), Instant::now());
    }

    /// Marks a claim key whose conditional write failed: the next read of it is strong.
    pub fn suspect(&self, entity: &str, key: &str) {
        self.claim_state(entity, key, ClaimState::Suspect, Instant::now());
    }

    fn claim_state(&self, entity: &str, key: &str, state: ClaimState, now: Instant) {
        self.with(|inner| {
            inner.expire(now);
            let key = block(entity, key);
            inner.claim_order.push_back((now, key.clone()));
            inner.claims.insert(key, (now, state));
        });
    }

    /// What this process knows about a claim key within the window.
    pub fn claim(&self, entity: &str, key: &str) -> Option<ClaimState> {
        self.claim_at(entity, key, Instant::now())
    }

    fn claim_at(&self, entity: &str, key: &str, now: Instant) -> Option<ClaimState> {
        self.with(|inner| {
            inner.expire(now);
            inner.claims.get(&block(entity, key)).map(|(_, s)| s.clone())
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.with(|inner| inner.order.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_recent_entries_of_the_same_block_only() {
        let r = RecentEntries::default();
        r.added("customer", "email=ab", "g1");
        r.added("customer", "email=ab", "g1");
        r.added("customer", "email=cd", "g2");
        r.added("product", "email=ab", "g3");
        let mut read = vec!["g0".to_owned()];
        assert_eq!(r.complete("customer", "email=ab", &mut read), 1);
        assert_eq!(read, ["g0", "g1"]);
        let mut read = vec!["g1".to_owned()];
        assert_eq!(r.complete("customer", "email=ab", &mut read), 0, "already read");
        assert_eq!(r.under("customer", "email=xx"), Vec::<String>::new());
    }

    #[test]
    fn forgets_deleted_and_expired_entries() {
        let r = RecentEntries::default();
        let t0 = Instant::now();
        r.added_at("customer", "k", "g1", t0);
        r.added_at("customer", "k", "g2", t0 + Duration::from_secs(5));
        r.removed("customer", "k", "g2");
        assert_eq!(r.under_at("customer", "k", t0 + Duration::from_secs(6)), ["g1"]);
        assert!(r.under_at("customer", "k", t0 + WINDOW).is_empty(), "expired after the window");
        assert_eq!(r.len(), 1, "g2's slot waits for its own expiry");
        assert!(r.under_at("customer", "k", t0 + Duration::from_secs(5) + WINDOW).is_empty());
        assert_eq!(r.len(), 0, "expired entries are dropped, not only hidden");
    }

    #[test]
    fn remembers_claims_written_deleted_and_suspect() {
        let r = RecentEntries::default();
        let t0 = Instant::now();
        r.claim_state("customer", "email=ab", ClaimState::Written(Some("g1".into())), t0);
        r.claim_state("customer", "phone=cd", ClaimState::Written(None), t0);
        r.claim_state("customer", "email=ab", ClaimState::Suspect, t0 + Duration::from_secs(1));
        assert_eq!(r.claim_at("customer", "email=ab", t0 + Duration::from_secs(2)), Some(ClaimState::Suspect));
        assert_eq!(r.claim_at("customer", "phone=cd", t0), Some(ClaimState::Written(None)));
        assert_eq!(r.claim_at("product", "email=ab", t0), None);
        assert_eq!(r.claim_at("customer", "phone=cd", t0 + WINDOW), None, "expired");
    }

    #[test]
    fn holds_a_bounded_number_of_entries() {
        let r = RecentEntries::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            r.added_at("customer", &format!("k{i}"), "g", t0);
        }
        r.added_at("customer", "last", "g", t0);
        assert!(r.len() <= MAX_ENTRIES + 1);
        assert!(r.under_at("customer", "k0", t0).is_empty(), "the oldest went first");
        assert_eq!(r.under_at("customer", "last", t0), ["g"]);
    }
}
