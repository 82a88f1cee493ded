//! Fellegi-Sunter parameters learned from data: `u` (the chance two records of *different*
//! entities agree at a level) from random pairs, `m` (the same for records of *one* entity) by
//! expectation-maximisation over the pairs blocking brings together, with `u` held fixed — the
//! usual practice (Splink, fastLink). Pure: the caller reads the records; `mdm train` writes the
//! result into a schema file.

use crate::blocking::keys_of;
use crate::record::{Slot, SourceRecord};
use crate::schema::EntitySchema;
use std::collections::HashMap;

/// An attribute comparison in a pair: its level (`0..levels`, then `levels` for disagreement),
/// or [`MISSING`] when either side has no value.
pub type Gamma = Vec<u8>;

/// A comparison where a side has no value: neutral, left out of every estimate.
pub const MISSING: u8 = u8::MAX;

/// Smallest probability written: log2(m/u) stays finite.
const FLOOR: f64 = 1e-6;

/// Learned parameters, per attribute in schema order: `m` and `u` per agreement level (the
/// disagreement level's share is what is left), as the schema format holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimates {
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
    /// The share of blocked pairs that EM takes for matches.
    pub match_share: f64,
    pub random_pairs: u64,
    pub blocked_pairs: u64,
    pub iterations: usize,
    /// Per `matching.groups` entry: the weight of full agreement on the group's members taken
    /// together (see [`group_caps`]), written as the group's `max_weight`.
    pub group_caps: Vec<f64>,
}

/// splitmix64: the sampling of random pairs is the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The comparison vector of two records (straight reading; swaps are not tried).
pub fn gamma(schema: &EntitySchema, a: &[Slot<'_>], b: &[Slot<'_>]) -> Gamma {
    schema
        .attributes
        .iter()
        .zip(a.iter().zip(b))
        .map(|(def, (x, y))| match (x.value, y.value) {
            (Some(va), Some(vb)) => {
                let levels = def.comparator.m.len();
                let c = def.comparator.compare(va, vb, x.valid && y.valid);
                c.level.map_or(levels, |l| l.min(levels)) as u8
            }
            _ => MISSING,
        })
        .collect()
}

/// Level frequencies among comparisons with both values present, per attribute: the agreement
/// levels' shares (disagreement is the rest); the schema's own `u` for an attribute no pair holds
/// on both sides.
fn shares(schema: &EntitySchema, counts: &[Vec<f64>]) -> Vec<Vec<f64>> {
    schema
        .attributes
        .iter()
        .zip(counts)
        .map(|(def, c)| {
            let total: f64 = c.iter().sum();
            if total == 0.0 {
                return def.comparator.u.clone();
            }
            (0..def.comparator.m.len()).map(|l| (c[l] / total).max(FLOOR)).collect()
        })
        .collect()
}

/// `u` from `samples` random pairs of records (a splitmix64 stream from `seed`; a pair of one
/// record with itself is skipped). Among random pairs almost none are matches, so their
/// agreement rates are the `u` probabilities.
pub fn estimate_u(schema: &EntitySchema, records: &[SourceRecord], samples: u64, seed: u64) -> Vec<Vec<f64>> {
    let levels: Vec<usize> = schema.attributes.iter().map(|a| a.comparator.m.len()).collect();
    let mut counts: Vec<Vec<f64>> = levels.iter().map(|&n| vec![0.0; n + 1]).collect();
    let n = records.len() as u64;
    if n < 2 {
        return shares(schema, &counts);
    }
    let slots: Vec<Vec<Slot<'_>>> = records.iter().map(|r| r.slots(schema)).collect();
    let mut rng = SplitMix(seed);
    let mut next = || rng.next_u64();
    for _ in 0..samples {
        let (i, j) = ((next() % n) as usize, (next() % n) as usize);
        if i == j {
            continue;
        }
        for (a, g) in gamma(schema, &slots[i], &slots[j]).into_iter().enumerate() {
            if g != MISSING {
                counts[a][g as usize] += 1.0;
            }
        }
    }
    shares(schema, &counts)
}

/// One EM session per blocking key name, as Splink runs one per blocking rule: the comparison
/// vectors of the pairs that share a key of that name in a block of at most the key's limit,
/// counted by vector, with the key's own attributes left out (treated as missing): within the
/// key's blocks they agree by construction, so they say nothing about `m`.
pub struct Session {
    pub key: &'static str,
    pub patterns: HashMap<Gamma, u64>,
    pub pairs: u64,
}

/// The attribute positions a key name is made of (`a.t+b.t.unordered` → a, b).
fn key_attributes(schema: &EntitySchema, name: &str) -> Vec<usize> {
    name.split('+')
        .filter_map(|part| part.split('.').next())
        .filter_map(|a| schema.attributes.iter().position(|d| d.name == a))
        .collect()
}

pub fn blocked_sessions(schema: &EntitySchema, records: &[SourceRecord]) -> Vec<Session> {
    let mut keyed: Vec<(&'static str, [u8; 16], u32)> = Vec::new();
    let mut limits: HashMap<&'static str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for k in keys_of(schema, r) {
            keyed.push((k.name(), k.digest, i as u32));
            limits.insert(k.name(), k.max_block_size().unwrap_or(schema.matching.max_block_size));
        }
    }
    keyed.sort_unstable();
    let slots: Vec<Vec<Slot<'_>>> = records.iter().map(|r| r.slots(schema)).collect();
    let mut sessions = Vec::new();
    for by_name in keyed.chunk_by(|a, b| a.0 == b.0) {
        let name = by_name[0].0;
        let limit = limits.get(name).copied().unwrap_or(schema.matching.max_block_size);
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for block in by_name.chunk_by(|a, b| a.1 == b.1) {
            if block.len() < 2 || block.len() > limit {
                continue;
            }
            for (x, a) in block.iter().enumerate() {
                for b in &block[x + 1..] {
                    pairs.push((a.2.min(b.2), a.2.max(b.2)));
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let own = key_attributes(schema, name);
        let mut patterns: HashMap<Gamma, u64> = HashMap::new();
        for &(a, b) in &pairs {
            let mut g = gamma(schema, &slots[a as usize], &slots[b as usize]);
            for &i in &own {
                g[i] = MISSING;
            }
            *patterns.entry(g).or_default() += 1;
        }
        sessions.push(Session { key: name, patterns, pairs: pairs.len() as u64 });
    }
    sessions
}

/// Expectation-maximisation of `m` and the match share over counted comparison vectors, `u`
/// fixed. Starts from `m0` (the schema's current `m`) and `share0`; stops after `iterations` or
/// when no `m` moves by more than 1e-6.
pub fn em(
    patterns: &HashMap<Gamma, u64>,
    u: &[Vec<f64>],
    m0: &[Vec<f64>],
    share0: f64,
    iterations: usize,
) -> (Vec<Vec<f64>>, f64, usize) {
    let full = |p: &[f64]| -> Vec<f64> {
        let rest = (1.0 - p.iter().sum::<f64>()).max(FLOOR);
        p.iter().copied().chain([rest]).collect()
    };
    let u_full: Vec<Vec<f64>> = u.iter().map(|x| full(x)).collect();
    let mut m: Vec<Vec<f64>> = m0.to_vec();
    let mut share = share0.clamp(FLOOR, 1.0 - FLOOR);
    let mut done = 0;
    for it in 0..iterations {
        done = it + 1;
        let m_full: Vec<Vec<f64>> = m.iter().map(|x| full(x)).collect();
        let mut num: Vec<Vec<f64>> = m_full.iter().map(|x| vec![0.0; x.len()]).collect();
        let (mut matched, mut total) = (0.0, 0.0);
        for (g, &count) in patterns {
            let (mut pm, mut pu) = (share, 1.0 - share);
            for (a, &l) in g.iter().enumerate() {
                if l != MISSING {
                    pm *= m_full[a][l as usize];
                    pu *= u_full[a][l as usize];
                }
            }
            let w = if pm + pu > 0.0 { pm / (pm + pu) } else { 0.0 };
            let c = count as f64;
            matched += w * c;
            total += c;
            for (a, &l) in g.iter().enumerate() {
                if l != MISSING {
                    num[a][l as usize] += w * c;
                }
            }
        }
        let next: Vec<Vec<f64>> = num
            .iter()
            .zip(&m)
            .map(|(n, old)| {
                let t: f64 = n.iter().sum();
                if t <= 0.0 {
                    return old.clone();
                }
                n[..old.len()].iter().map(|x| (x / t).max(FLOOR)).collect()
            })
            .collect();
        share = if total > 0.0 { (matched / total).clamp(FLOOR, 1.0 - FLOOR) } else { share };
        let moved = next.iter().flatten().zip(m.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        m = next;
        if moved < 1e-6 {
            break;
        }
    }
    (m, share, done)
}

/// The weight of a correlated group's full agreement, measured jointly: log2 of the chance that a
/// match agrees exactly on every member (the product of the members' exact `m`: corruption strikes
/// fields independently) over the chance that a random pair does, among random pairs that hold
/// every member on both sides. That chance is counted, not multiplied — a postcode, its town and
/// its state agree together — but never taken below the product of the members' exact `u`
/// (correlation only raises joint agreement; below that the sample cannot see). Random pairs hold a
/// few true matches (`match_rate` of them), which agree on everything far more often than
/// non-matches: their expected share is taken off the count. Never below 0.
pub fn group_caps(
    schema: &EntitySchema,
    records: &[SourceRecord],
    m: &[Vec<f64>],
    u: &[Vec<f64>],
    match_rate: f64,
    samples: u64,
    seed: u64,
) -> Vec<f64> {
    let groups = &schema.layout().groups;
    let n = records.len() as u64;
    let mut agree = vec![0u64; groups.len()];
    let mut seen = vec![0u64; groups.len()];
    if n >= 2 {
        let slots: Vec<Vec<Slot<'_>>> = records.iter().map(|r| r.slots(schema)).collect();
        let mut rng = SplitMix(seed ^ 0x0005_EED0_F6A0);
        let mut next = || rng.next_u64();
        for _ in 0..samples {
            let (i, j) = ((next() % n) as usize, (next() % n) as usize);
            if i == j {
                continue;
            }
            for (g, members) in groups.iter().enumerate() {
                let both: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&a| slots[i][a].value.is_some() && slots[j][a].value.is_some())
                    .collect();
                if both.len() < 2 {
                    continue;
                }
                seen[g] += 1;
                agree[g] += u64::from(both.iter().all(|&a| slots[i][a].value == slots[j][a].value));
            }
        }
    }
    groups
        .iter()
        .enumerate()
        .map(|(g, members)| {
            let exact = |p: &[Vec<f64>], a: usize| p[a].first().copied().unwrap_or(1.0);
            let m_all: f64 = members.iter().map(|&a| exact(m, a)).product();
            let independent: f64 = members.iter().map(|&a| exact(u, a)).product();
            let counted = if seen[g] > 0 { agree[g] as f64 / seen[g] as f64 - match_rate * m_all } else { 0.0 };
            let u_all = counted.max(independent).max(FLOOR * FLOOR);
            (m_all / u_all).log2().max(0.0)
        })
        .collect()
}

/// `u` from random pairs, then `m` by EM in one session per blocking key name; an attribute's
/// `m` is the mean over the sessions that estimate it (weighted by the pairs in which it has a
/// value), the schema's own `m` where none does.
pub fn train(schema: &EntitySchema, records: &[SourceRecord], random_pairs: u64, seed: u64) -> Estimates {
    let u = estimate_u(schema, records, random_pairs, seed);
    let m0: Vec<Vec<f64>> = schema.attributes.iter().map(|a| a.comparator.m.clone()).collect();
    let mut sum: Vec<Vec<f64>> = m0.iter().map(|m| vec![0.0; m.len()]).collect();
    let mut weight = vec![0.0f64; m0.len()];
    let (mut blocked_pairs, mut iterations, mut matched, mut total) = (0, 0, 0.0, 0.0);
    for session in blocked_sessions(schema, records) {
        if session.pairs < 100 {
            continue;
        }
        let (m, share, it) = em(&session.patterns, &u, &m0, 0.5, 100);
        blocked_pairs += session.pairs;
        iterations = iterations.max(it);
        matched += share * session.pairs as f64;
        total += session.pairs as f64;
        let own = key_attributes(schema, session.key);
        for (a, m) in m.iter().enumerate() {
            if own.contains(&a) {
                continue;
            }
            let present: u64 = session.patterns.iter().filter(|(g, _)| g[a] != MISSING).map(|(_, c)| *c).sum();
            let w = present as f64;
            if w == 0.0 {
                continue;
            }
            for (s, x) in sum[a].iter_mut().zip(m) {
                *s += w * x;
            }
            weight[a] += w;
        }
    }
    let m: Vec<Vec<f64>> = sum
        .iter()
        .zip(&weight)
        .zip(&m0)
        .map(|((s, w), m0)| if *w > 0.0 { s.iter().map(|x| (x / w).max(FLOOR)).collect() } else { m0.clone() })
        .collect();
    let match_share = if total > 0.0 { matched / total } else { 0.0 };
    // The share of all pairs that are matches: EM's matches among the blocked pairs, over every
    // pair of records.
    let n = records.len() as f64;
    let match_rate = if n > 1.0 { matched / (n * (n - 1.0) / 2.0) } else { 0.0 };
    let group_caps = group_caps(schema, records, &m, &u, match_rate, random_pairs, seed);
    Estimates { m, u, match_share, random_pairs, blocked_pairs, iterations, group_caps }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulated comparison vectors from known m, u and match share: EM (u given, m started far
    /// off) recovers m within 0.02.
    #[test]
    fn em_recovers_known_m() {
        let m_true = [vec![0.80, 0.10], vec![0.90], vec![0.70, 0.15, 0.05], vec![0.85]];
        let u = [vec![0.01, 0.02], vec![0.05], vec![0.001, 0.01, 0.05], vec![0.10]];
        let share = 0.25;
        let mut rng = SplitMix(11);
        let mut unit = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let draw = |p: &[f64], x: f64| {
            let mut acc = 0.0;
            for (i, q) in p.iter().enumerate() {
                acc += q;
                if x < acc {
                    return i as u8;
                }
            }
            p.len() as u8
        };
        let mut patterns: HashMap<Gamma, u64> = HashMap::new();
        for _ in 0..200_000 {
            let is_match = unit() < share;
            let g: Gamma = (0..4)
                .map(|a| {
                    if unit() < 0.05 {
                        return MISSING;
                    }
                    draw(if is_match { &m_true[a] } else { &u[a] }, unit())
                })
                .collect();
            *patterns.entry(g).or_default() += 1;
        }
        let m0 = [vec![0.5, 0.2], vec![0.5], vec![0.4, 0.2, 0.1], vec![0.5]];
        let (m, s, _) = em(&patterns, &u, &m0, 0.5, 200);
        for (got, want) in m.iter().flatten().zip(m_true.iter().flatten()) {
            assert!((got - want).abs() < 0.02, "m {got:.4} against {want}: {m:?}");
        }
        assert!((s - share).abs() < 0.02, "match share {s}");
    }
}
