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
    /// Per `matching.groups` entry: `u` of the other attributes among different entities that
    /// agree on the whole group (see [`within_u`]), written as the group's `within` table;
    /// `None` when the input holds too few such pairs to tell.
    pub within: Vec<Option<Within>>,
    /// Per `matching.groups` entry: caps of subsets of its members agreed on together (see
    /// [`subset_caps`]), written as the group's `subsets` table.
    pub subsets: Vec<Subsets>,
}

/// Per subset of a group's members (their names joined with `+`), the most they add together.
pub type Subsets = std::collections::BTreeMap<String, f64>;

/// Per attribute name, `u` per agreement level among pairs that agree on a whole group.
pub type Within = std::collections::BTreeMap<String, Vec<f64>>;

/// Fewest non-matching pairs agreeing on a whole group (counted, or EM's estimate) from which
/// [`within_u`] says anything.
const WITHIN_MIN_PAIRS: f64 = 50.0;
/// Records sharing one whole-group value beyond which the bucket is left out of [`within_u`]
/// (a group's value held by that many records is a sparse one: a town and a state, nothing more).
const WITHIN_MAX_BUCKET: usize = 64;

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

/// The comparison vector of two records, read as the hub reads a candidate: a swap pair (given
/// and family name) crosswise when that reading scores higher, so a record with its names swapped
/// counts as agreeing, not as disagreeing twice.
pub fn gamma(schema: &EntitySchema, a: &[Slot<'_>], b: &[Slot<'_>]) -> Gamma {
    let compare = |i: usize, x: &Slot<'_>, y: &Slot<'_>| -> Option<crate::compare::Comparison> {
        let def = &schema.attributes[i];
        Some(def.comparator.compare(x.value?, y.value?, x.valid && y.valid))
    };
    let mut parts: Vec<Option<crate::compare::Comparison>> =
        (0..schema.attributes.len()).map(|i| compare(i, &a[i], &b[i])).collect();
    for &[i, j] in &schema.layout().swaps {
        let (Some(si), Some(sj)) = (parts[i], parts[j]) else { continue };
        let (Some(ci), Some(cj)) = (compare(i, &a[i], &b[j]), compare(j, &a[j], &b[i])) else { continue };
        if ci.weight + cj.weight > si.weight + sj.weight + 1e-9 {
            parts[i] = Some(ci);
            parts[j] = Some(cj);
        }
    }
    schema
        .attributes
        .iter()
        .zip(parts)
        .map(|(def, c)| match c {
            Some(c) => {
                let levels = def.comparator.m.len();
                c.level.map_or(levels, |l| l.min(levels)) as u8
            }
            None => MISSING,
        })
        .collect()
}

/// Records of one entity beyond which [`m_from_labels`] compares only the first ones.
const LABELLED_MAX_ENTITY: usize = 64;

/// `m` counted on every pair of records of one entity (a labelled set: `entities` in `records`'
/// order) — the supervised estimate, where EM over blocked pairs takes people who share an
/// address and a family name for one person. `None` for an attribute with fewer than
/// [`WITHIN_MIN_PAIRS`] such pairs holding it on both sides.
pub fn m_from_labels(schema: &EntitySchema, records: &[SourceRecord], entities: &[u32]) -> Vec<Option<Vec<f64>>> {
    let slots: Vec<Vec<Slot<'_>>> = records.iter().map(|r| r.slots(schema)).collect();
    let mut order: Vec<u32> = (0..records.len() as u32).collect();
    order.sort_by_key(|&i| entities.get(i as usize).copied().unwrap_or(u32::MAX));
    let mut counts: Vec<Vec<f64>> = schema.attributes.iter().map(|a| vec![0.0; a.comparator.m.len() + 1]).collect();
    for one in order.chunk_by(|a, b| entities.get(*a as usize) == entities.get(*b as usize)) {
        let one = &one[..one.len().min(LABELLED_MAX_ENTITY)];
        for (x, &a) in one.iter().enumerate() {
            for &b in &one[x + 1..] {
                for (c, l) in counts.iter_mut().zip(gamma(schema, &slots[a as usize], &slots[b as usize])) {
                    if l != MISSING {
                        c[l as usize] += 1.0;
                    }
                }
            }
        }
    }
    counts
        .iter()
        .map(|c| {
            let total: f64 = c.iter().sum();
            (total >= WITHIN_MIN_PAIRS).then(|| c[..c.len() - 1].iter().map(|x| (x / total).max(FLOOR)).collect())
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
    em_core(patterns, (u, m0), share0, iterations, (&[], &[]), true)
}

/// A group's `within` table as EM reads it: for a comparison vector that agrees on the whole
/// group, the non-matching class agrees on these attributes as people who share it do.
pub struct Stratum {
    /// The group's attribute positions.
    pub members: Vec<usize>,
    /// Per member: how many of its levels read as one value (as the hub scores it).
    pub same_value: Vec<u8>,
    /// Per attribute position, its `within` `u` per agreement level (the rest disagreement).
    pub u: Vec<Option<Vec<f64>>>,
}

impl Stratum {
    /// Whether a comparison vector agrees on the whole group: every member it holds at a level
    /// that reads as one value, and at least two (as the hub decides when it weighs a candidate).
    fn holds(&self, g: &[u8]) -> bool {
        let mut present = 0;
        for (&a, &same) in self.members.iter().zip(&self.same_value) {
            match g[a] {
                MISSING => {}
                l if l < same => present += 1,
                _ => return false,
            }
        }
        present >= 2
    }
}

/// [`em`] where the non-matching class of a vector inside a [`Stratum`] uses the stratum's `u`,
/// and agreement on a subset of a group with a [`JointU`] counts at its joint `u` (the likeliest
/// one where several apply): people who live together are explained as non-matches that share
/// an address, and do not drag the matches' `m` towards disagreeing given names and birth dates.
/// With `learn_share` false the share stays `share0`.
fn em_core(
    patterns: &HashMap<Gamma, u64>,
    (u, m0): (&[Vec<f64>], &[Vec<f64>]),
    share0: f64,
    iterations: usize,
    (strata, joint): (&[Stratum], &[Vec<JointU>]),
    learn_share: bool,
) -> (Vec<Vec<f64>>, f64, usize) {
    let full = |p: &[f64]| -> Vec<f64> {
        let rest = (1.0 - p.iter().sum::<f64>()).max(FLOOR);
        p.iter().copied().chain([rest]).collect()
    };
    let u_full: Vec<Vec<f64>> = u.iter().map(|x| full(x)).collect();
    let strata_full: Vec<Vec<Option<Vec<f64>>>> =
        strata.iter().map(|s| s.u.iter().map(|x| x.as_ref().map(|x| full(x))).collect()).collect();
    // The non-matching class's likelihood of each vector: `u` is fixed, so once.
    let unmatched: Vec<f64> = patterns
        .keys()
        .map(|g| {
            let within: Vec<&Vec<Option<Vec<f64>>>> =
                strata.iter().zip(&strata_full).filter(|(s, _)| s.holds(g)).map(|(_, f)| f).collect();
            let independent: f64 = g
                .iter()
                .enumerate()
                .filter(|(_, l)| **l != MISSING)
                .map(|(a, &l)| {
                    // Weighed within several groups, the attribute says the least of them (the
                    // highest `u`), as the hub scores it.
                    let tables = within.iter().filter_map(|f| f.get(a)?.as_ref());
                    tables.map(|t| t[l as usize]).reduce(f64::max).unwrap_or(u_full[a][l as usize])
                })
                .product();
            // Per group, the subset agreed on whose joint `u` most exceeds its members' product.
            let raised: f64 = joint
                .iter()
                .map(|found| {
                    found
                        .iter()
                        .filter(|j| j.attributes.iter().all(|&a| g[a] == 0))
                        .map(|j| j.u / j.attributes.iter().map(|&a| u_full[a][0]).product::<f64>())
                        .fold(1.0, f64::max)
                })
                .product();
            independent * raised
        })
        .collect();
    let mut m: Vec<Vec<f64>> = m0.to_vec();
    let mut share = share0.clamp(FLOOR, 1.0 - FLOOR);
    let mut done = 0;
    for it in 0..iterations {
        done = it + 1;
        let m_full: Vec<Vec<f64>> = m.iter().map(|x| full(x)).collect();
        let mut num: Vec<Vec<f64>> = m_full.iter().map(|x| vec![0.0; x.len()]).collect();
        let (mut matched, mut total) = (0.0, 0.0);
        for ((g, &count), unmatched) in patterns.iter().zip(&unmatched) {
            let (mut pm, pu) = (share, (1.0 - share) * unmatched);
            for (a, &l) in g.iter().enumerate() {
                if l != MISSING {
                    pm *= m_full[a][l as usize];
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
        if learn_share && total > 0.0 {
            share = (matched / total).clamp(FLOOR, 1.0 - FLOOR);
        }
        let moved = next.iter().flatten().zip(m.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        m = next;
        if moved < 1e-6 {
            break;
        }
    }
    (m, share, done)
}

/// How [`group_caps`] samples random pairs when the records' entities are not known.
#[derive(Debug, Clone, Copy)]
pub struct GroupSampling {
    /// The share of all pairs that are matches.
    pub match_rate: f64,
    pub samples: u64,
    pub seed: u64,
}

/// The weight of a correlated group's full agreement, measured jointly: log2 of the chance that a
/// match agrees exactly on every member (the product of the members' exact `m`: corruption strikes
/// fields independently) over the chance that a non-matching pair does. That chance is counted, not
/// multiplied — a postcode, its town and its state agree together, and people who live together
/// share a whole address — but never taken below the product of the members' exact `u`
/// (correlation only raises joint agreement; below that the count cannot see). Never below 0.
///
/// With the records' entities known (`entities`, a labelled set), every pair agreeing on the whole
/// group (equal values, or both missing, on every member; at least two present) is counted, and
/// those of two entities are the non-matching agreements. Without, random pairs that hold at least
/// two members on both sides are sampled, and the expected share of true matches among them
/// (`match_rate` of all pairs, agreeing on everything far more often) is taken off the count.
pub fn group_caps(
    schema: &EntitySchema,
    records: &[SourceRecord],
    (m, u): (&[Vec<f64>], &[Vec<f64>]),
    sampling: GroupSampling,
    entities: Option<&[u32]>,
) -> Vec<f64> {
    let GroupSampling { match_rate, samples, seed } = sampling;
    let groups = &schema.layout().groups;
    let n = records.len() as u64;
    let slots: Vec<Vec<Slot<'_>>> = records.iter().map(|r| r.slots(schema)).collect();
    // Per group, the share of non-matching pairs that agree on all of it.
    let shares: Vec<f64> = match entities.filter(|e| e.len() == records.len() && n >= 2) {
        Some(entities) => {
            let total = (n * (n - 1) / 2) as f64;
            let matching: f64 = {
                let mut sizes: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
                for e in entities {
                    *sizes.entry(*e).or_default() += 1;
                }
                sizes.values().map(|k| (k * k.saturating_sub(1) / 2) as f64).sum()
            };
            groups
                .iter()
                .map(|members| {
                    let mut buckets: std::collections::HashMap<Vec<Option<&str>>, Vec<u32>> =
                        std::collections::HashMap::new();
                    for (i, s) in slots.iter().enumerate() {
                        let key: Vec<Option<&str>> = members.iter().map(|&a| s[a].value).collect();
                        if key.iter().filter(|v| v.is_some()).count() >= 2 {
                            buckets.entry(key).or_default().push(entities[i]);
                        }
                    }
                    let mut apart = 0u64;
                    for ents in buckets.values_mut() {
                        let k = ents.len() as u64;
                        ents.sort_unstable();
                        let same: u64 =
                            ents.chunk_by(|a, b| a == b).map(|c| (c.len() as u64) * (c.len() as u64 - 1) / 2).sum();
                        apart += k * (k - 1) / 2 - same;
                    }
                    apart as f64 / (total - matching).max(1.0)
                })
                .collect()
        }
        None => {
            let mut agree = vec![0u64; groups.len()];
            let mut seen = vec![0u64; groups.len()];
            if n >= 2 {
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
                    let m_all: f64 = members.iter().map(|&a| m[a].first().copied().unwrap_or(1.0)).product();
                    if seen[g] > 0 {
                        agree[g] as f64 / seen[g] as f64 - match_rate * m_all
                    } else {
                        0.0
                    }
                })
                .collect()
        }
    };
    groups
        .iter()
        .zip(shares)
        .map(|(members, counted)| {
            let exact = |p: &[Vec<f64>], a: usize| p[a].first().copied().unwrap_or(1.0);
            let m_all: f64 = members.iter().map(|&a| exact(m, a)).product();
            let independent: f64 = members.iter().map(|&a| exact(u, a)).product();
            let u_all = counted.max(independent).max(FLOOR * FLOOR);
            (m_all / u_all).log2().max(0.0)
        })
        .collect()
}

/// Most members a group may have for [`joint_u`] to count its subsets (2^members of them).
const SUBSET_MAX_MEMBERS: usize = 8;

/// How often two records of different entities agree exactly on each member of a subset of a
/// group (its attribute positions), counted.
#[derive(Debug, Clone, PartialEq)]
pub struct JointU {
    pub attributes: Vec<usize>,
    pub u: f64,
}

/// Joint `u` of the subsets of each group's members (two or more, not all of them) that agree
/// together among different entities measurably more often than their members' agreements
/// multiplied (a town's name, postcode and state; people who share a street): the chance that two
/// records of different entities, both holding every member of the subset, agree exactly on each.
///
/// Counted on every pair: records grouped by the subset's values. With the records' entities
/// known, pairs of one entity are taken off; without, the matches expected among them
/// (`match_rate` of the pairs, agreeing with the product of the members' exact `m`), and what is
/// left must outnumber them. A subset with fewer than [`WITHIN_MIN_PAIRS`] such non-matching
/// pairs, or whose count does not exceed the product of its members' exact `u`, is left out.
pub fn joint_u(
    schema: &EntitySchema,
    records: &[SourceRecord],
    (m, u): (&[Vec<f64>], &[Vec<f64>]),
    match_rate: f64,
    entities: Option<&[u32]>,
) -> Vec<Vec<JointU>> {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let entities = entities.filter(|e| e.len() == records.len());
    let slots: Vec<Vec<Slot<'_>>> = records.iter().map(|r| r.slots(schema)).collect();
    let hasher = BuildHasherDefault::<DefaultHasher>::default();
    let pairs = |n: u64| (n * n.saturating_sub(1) / 2) as f64;
    schema
        .layout()
        .groups
        .iter()
        .map(|members| {
            let k = members.len();
            if !(3..=SUBSET_MAX_MEMBERS).contains(&k) {
                return Vec::new();
            }
            // Per record and member, a hash of the value (`None`: missing).
            let hashes: Vec<Vec<Option<u64>>> = slots
                .iter()
                .map(|s| members.iter().map(|&a| s[a].value.map(|v| hasher.hash_one(v))).collect())
                .collect();
            let full = (1u32 << k) - 1;
            let mut found = Vec::new();
            for s in (1..full).filter(|s| s.count_ones() >= 2) {
                let attributes: Vec<usize> = (0..k).filter(|b| s & (1 << b) != 0).map(|b| members[b]).collect();
                let mut keys: Vec<(u64, u32)> = hashes
                    .iter()
                    .enumerate()
                    .filter_map(|(r, h)| {
                        let joint = (0..k).filter(|b| s & (1 << b) != 0).try_fold(0u64, |acc, b| {
                            Some((acc.rotate_left(17) ^ h[b]?).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                        })?;
                        Some((joint, entities.map_or(0, |e| e[r])))
                    })
                    .collect();
                keys.sort_unstable();
                let holders = pairs(keys.len() as u64);
                let agreeing: f64 = keys.chunk_by(|a, b| a.0 == b.0).map(|c| pairs(c.len() as u64)).sum();
                // Non-matching pairs holding the subset, those agreeing on it, and the fewest of
                // those that say anything.
                let (apart, apart_agreeing, least) = match entities {
                    Some(_) => {
                        let same: f64 = keys.chunk_by(|a, b| a == b).map(|c| pairs(c.len() as u64)).sum();
                        let mut by_entity: Vec<u32> = keys.iter().map(|(_, e)| *e).collect();
                        by_entity.sort_unstable();
                        let matching: f64 = by_entity.chunk_by(|a, b| a == b).map(|c| pairs(c.len() as u64)).sum();
                        (holders - matching, agreeing - same, WITHIN_MIN_PAIRS)
                    }
                    None => {
                        // The matches' joint agreement is only estimated (their fields do not err
                        // independently: a person who moves changes them all), so what is left
                        // must outnumber it.
                        let m_s: f64 = attributes.iter().map(|&a| exact(m, a)).product();
                        let matching = match_rate * holders * m_s;
                        (holders * (1.0 - match_rate), agreeing - matching, matching.max(WITHIN_MIN_PAIRS))
                    }
                };
                if apart_agreeing < least || apart <= 0.0 {
                    continue;
                }
                let joint = apart_agreeing / apart;
                if joint > attributes.iter().map(|&a| exact(u, a)).product::<f64>() {
                    found.push(JointU { attributes, u: joint });
                }
            }
            found
        })
        .collect()
}

/// A comparator's exact-level probability in `p` (`m` or `u`) for attribute `a`.
fn exact(p: &[Vec<f64>], a: usize) -> f64 {
    p[a].first().copied().unwrap_or(1.0)
}

/// The `subsets` table of each group: per [`JointU`], log2 of the product of its members' exact
/// `m` over its joint `u` — as [`group_caps`] weighs a whole group — where that lies at least half
/// a bit below the members' summed weights and no smaller subset kept already bounds it as
/// tightly.
pub fn subset_caps(schema: &EntitySchema, joint: &[Vec<JointU>], (m, u): (&[Vec<f64>], &[Vec<f64>])) -> Vec<Subsets> {
    let weight = |a: usize| (exact(m, a) / exact(u, a)).log2();
    joint
        .iter()
        .map(|found| {
            let mut found: Vec<&JointU> = found.iter().collect();
            found.sort_by_key(|j| j.attributes.len());
            let mut kept: Vec<(&[usize], f64)> = Vec::new();
            for j in found {
                let m_s: f64 = j.attributes.iter().map(|&a| exact(m, a)).product();
                let cap = (m_s / j.u).log2().max(0.0);
                let summed: f64 = j.attributes.iter().map(|&a| weight(a)).sum();
                let implied = kept.iter().any(|(t, c)| {
                    t.iter().all(|a| j.attributes.contains(a))
                        && c + j.attributes.iter().filter(|a| !t.contains(a)).map(|&a| weight(a)).sum::<f64>()
                            <= cap + 0.5
                });
                if cap < summed - 0.5 && !implied {
                    kept.push((&j.attributes, cap));
                }
            }
            kept.into_iter()
                .map(|(at, cap)| {
                    let names: Vec<&str> = at.iter().map(|&a| schema.attributes[a].name.as_str()).collect();
                    (names.join("+"), cap)
                })
                .collect()
        })
        .collect()
}

/// `u` of the attributes outside a group among *different* entities that agree on the whole
/// group: people who live together share an address, and with it a family name (and now and then
/// a birth date) far more often than random pairs do, while their given names, birth dates and
/// e-mail addresses still tell them apart. Independence across the group does not hold for them,
/// so the hub weighs these attributes against this `u` when a pair agrees on the whole group.
///
/// The pairs: records with equal values (or both missing) on every member, at least two present,
/// in buckets of at most [`WITHIN_MAX_BUCKET`] records. With the records' entities known, the
/// pairs of two entities are counted. Without, EM over the pairs' comparison vectors with `m`
/// held fixed estimates the other class: the non-matching pairs' level shares and their number.
/// Each share is raised to the attribute's `u` where it falls below it. `None` for a group with
/// fewer than [`WITHIN_MIN_PAIRS`] non-matching pairs.
pub fn within_u(
    schema: &EntitySchema,
    records: &[SourceRecord],
    (m, u): (&[Vec<f64>], &[Vec<f64>]),
    entities: Option<&[u32]>,
    sampling: GroupSampling,
) -> Vec<Option<Within>> {
    let entities = entities.filter(|e| e.len() == records.len());
    let slots: Vec<Vec<Slot<'_>>> = records.iter().map(|r| r.slots(schema)).collect();
    let levels: Vec<usize> = schema.attributes.iter().map(|a| a.comparator.m.len()).collect();
    schema
        .layout()
        .groups
        .iter()
        .map(|members| {
            let mut buckets: HashMap<Vec<Option<&str>>, Vec<u32>> = HashMap::new();
            for (i, s) in slots.iter().enumerate() {
                let key: Vec<Option<&str>> = members.iter().map(|&a| s[a].value).collect();
                if key.iter().filter(|v| v.is_some()).count() >= 2 {
                    buckets.entry(key).or_default().push(i as u32);
                }
            }
            let mut patterns: HashMap<Gamma, u64> = HashMap::new();
            let mut counts: Vec<Vec<f64>> = levels.iter().map(|&n| vec![0.0; n + 1]).collect();
            let mut apart = 0.0;
            for bucket in buckets.values().filter(|b| b.len() >= 2 && b.len() <= WITHIN_MAX_BUCKET) {
                for (x, &a) in bucket.iter().enumerate() {
                    for &b in &bucket[x + 1..] {
                        let mut g = gamma(schema, &slots[a as usize], &slots[b as usize]);
                        for &i in members {
                            g[i] = MISSING;
                        }
                        match entities {
                            Some(e) if e[a as usize] == e[b as usize] => {}
                            Some(_) => {
                                apart += 1.0;
                                for (c, &l) in counts.iter_mut().zip(&g) {
                                    if l != MISSING {
                                        c[l as usize] += 1.0;
                                    }
                                }
                            }
                            None => *patterns.entry(g).or_default() += 1,
                        }
                    }
                }
            }
            let estimate: Vec<Option<Vec<f64>>> = match entities {
                Some(_) => counts
                    .iter()
                    .zip(&levels)
                    .map(|(c, &n)| {
                        let total: f64 = c.iter().sum();
                        (total >= 1.0).then(|| c[..n].iter().map(|x| x / total).collect())
                    })
                    .collect(),
                None => {
                    let pairs: u64 = patterns.values().sum();
                    // The estimated class is the non-matching one: EM's `u` argument is the class
                    // held fixed, here the matches' `m`.
                    // How many of them are two people: random pairs say how often two records
                    // agree on the whole group, matches taken off (EM alone cannot say: on pairs
                    // that are nearly all matches it makes its other class a copy of them).
                    apart = expected_apart(members, &slots, sampling, m).min(pairs as f64);
                    let share = (apart / pairs.max(1) as f64).clamp(FLOOR, 1.0 - FLOOR);
                    // The estimated class is the non-matching one: EM's `u` argument is the class
                    // held fixed, here the matches' `m`.
                    let (est, _, _) = em_core(&patterns, (m, u), share, 100, (&[], &[]), false);
                    (0..levels.len())
                        .map(|a| patterns.iter().any(|(g, _)| g[a] != MISSING).then(|| est[a].clone()))
                        .collect()
                }
            };
            if apart < WITHIN_MIN_PAIRS {
                return None;
            }
            // Never below `u` itself: shared living raises agreement, and below `u` a few hundred
            // pairs cannot see (no two of them sharing a birth date says little about one in
            // 25,000).
            let within: Within = schema
                .attributes
                .iter()
                .enumerate()
                .filter(|(a, _)| !members.contains(a))
                .filter_map(|(a, def)| {
                    let shares = estimate[a].as_ref()?;
                    let raised: Vec<f64> = shares.iter().zip(&u[a]).map(|(w, u)| w.max(*u)).collect();
                    Some((def.name.clone(), proper(&raised)))
                })
                .collect();
            (!within.is_empty()).then_some(within)
        })
        .collect()
}

/// The expected number of pairs of different entities among `slots` that agree on a whole group
/// (equal values or both missing on every member, at least two present): the share of sampled
/// random pairs that do, less the matches expected among them, over every pair.
fn expected_apart(members: &[usize], slots: &[Vec<Slot<'_>>], sampling: GroupSampling, m: &[Vec<f64>]) -> f64 {
    let GroupSampling { match_rate, samples, seed } = sampling;
    let n = slots.len() as u64;
    if n < 2 || samples == 0 {
        return 0.0;
    }
    let mut rng = SplitMix(seed ^ 0x0005_EED0_F6A0);
    let mut next = || rng.next_u64();
    let mut agree = 0u64;
    for _ in 0..samples {
        let (i, j) = ((next() % n) as usize, (next() % n) as usize);
        if i == j {
            continue;
        }
        let (a, b) = (&slots[i], &slots[j]);
        let same = members.iter().all(|&k| a[k].value == b[k].value);
        agree += u64::from(same && members.iter().filter(|&&k| a[k].value.is_some()).count() >= 2);
    }
    let m_all: f64 = members.iter().map(|&a| m[a].first().copied().unwrap_or(1.0)).product();
    let share = (agree as f64 / samples as f64 - match_rate * m_all).max(0.0);
    share * (n * (n - 1) / 2) as f64
}

/// Probabilities a schema accepts as one comparator's levels: each above 0, together below 1.
fn proper(p: &[f64]) -> Vec<f64> {
    let p: Vec<f64> = p.iter().map(|x| x.clamp(FLOOR, 1.0)).collect();
    let sum: f64 = p.iter().sum();
    let most = 1.0 - FLOOR;
    if sum > most {
        p.iter().map(|x| x * most / sum).collect()
    } else {
        p
    }
}

/// `u` from random pairs, then `m` by EM in one session per blocking key name; an attribute's
/// `m` is the mean over the sessions that estimate it (weighted by the pairs in which it has a
/// value), the schema's own `m` where none does.
pub fn train(schema: &EntitySchema, records: &[SourceRecord], random_pairs: u64, seed: u64) -> Estimates {
    train_labelled(schema, records, random_pairs, seed, None)
}

/// [`train`], with each record's entity when they are known (a labelled set, in `records`'
/// order): the groups' caps are then counted on every pair ([`group_caps`]).
pub fn train_labelled(
    schema: &EntitySchema,
    records: &[SourceRecord],
    random_pairs: u64,
    seed: u64,
    entities: Option<&[u32]>,
) -> Estimates {
    let u = estimate_u(schema, records, random_pairs, seed);
    let m0: Vec<Vec<f64>> = schema.attributes.iter().map(|a| a.comparator.m.clone()).collect();
    let sessions = blocked_sessions(schema, records);
    // The share of all pairs that are matches: EM's matches among the blocked pairs, over every
    // pair of records.
    let n = records.len() as f64;
    let sampling = |fit: &SessionFit| GroupSampling {
        match_rate: if n > 1.0 { fit.matched / (n * (n - 1.0) / 2.0) } else { 0.0 },
        samples: random_pairs,
        seed,
    };
    let mut fit = m_from_sessions(schema, &sessions, &u, &m0, (&[], &[]));
    // People who live together, once their `within` is known, are non-matches to EM, as are pairs
    // that agree on parts of a group that go together (one town) once their joint `u` is: `m` is
    // estimated again with them explained, and both again from that `m`.
    let rate = |fit: &SessionFit| sampling(fit).match_rate;
    let mut within = within_u(schema, records, (&fit.m, &u), entities, sampling(&fit));
    let mut joint = joint_u(schema, records, (&fit.m, &u), rate(&fit), entities);
    if within.iter().any(Option::is_some) || joint.iter().any(|j| !j.is_empty()) {
        fit = m_from_sessions(schema, &sessions, &u, &m0, (&strata(schema, &within), &joint));
        within = within_u(schema, records, (&fit.m, &u), entities, sampling(&fit));
        // Counted with the entities known, the joint `u` does not depend on `m`.
        if entities.is_none() {
            joint = joint_u(schema, records, (&fit.m, &u), rate(&fit), entities);
        }
    }
    // With the entities known, `m` is counted on the matches themselves (what is counted of
    // `within` and the joint `u` does not depend on it).
    if let Some(e) = entities.filter(|e| e.len() == records.len()) {
        for (m, counted) in fit.m.iter_mut().zip(m_from_labels(schema, records, e)) {
            if let Some(counted) = counted {
                *m = proper(&counted);
            }
        }
    }
    let sampling = sampling(&fit);
    let SessionFit { m, blocked_pairs, iterations, matched, total } = fit;
    let match_share = if total > 0.0 { matched / total } else { 0.0 };
    let group_caps = group_caps(schema, records, (&m, &u), sampling, entities);
    let subsets = subset_caps(schema, &joint, (&m, &u));
    Estimates { m, u, match_share, random_pairs, blocked_pairs, iterations, group_caps, within, subsets }
}

/// The groups' `within` tables as EM reads them.
fn strata(schema: &EntitySchema, within: &[Option<Within>]) -> Vec<Stratum> {
    let layout = schema.layout();
    layout
        .groups
        .iter()
        .zip(within)
        .filter_map(|(members, w)| {
            let w = w.as_ref()?;
            let u = schema.attributes.iter().map(|a| w.get(&a.name).cloned()).collect();
            let same_value = members.iter().map(|&a| u8::try_from(layout.same_value[a]).unwrap_or(u8::MAX)).collect();
            Some(Stratum { members: members.clone(), same_value, u })
        })
        .collect()
}

/// `m` from one EM run per session, and what the runs found.
struct SessionFit {
    m: Vec<Vec<f64>>,
    blocked_pairs: u64,
    iterations: usize,
    /// EM's matches among the blocked pairs, and the pairs.
    matched: f64,
    total: f64,
}

/// EM in each session of at least 100 pairs; an attribute's `m` is the mean over the sessions
/// that estimate it (weighted by the pairs in which it has a value), `m0` where none does.
fn m_from_sessions(
    schema: &EntitySchema,
    sessions: &[Session],
    u: &[Vec<f64>],
    m0: &[Vec<f64>],
    (strata, joint): (&[Stratum], &[Vec<JointU>]),
) -> SessionFit {
    let mut sum: Vec<Vec<f64>> = m0.iter().map(|m| vec![0.0; m.len()]).collect();
    let mut weight = vec![0.0f64; m0.len()];
    let (mut blocked_pairs, mut iterations, mut matched, mut total) = (0, 0, 0.0, 0.0);
    for session in sessions.iter().filter(|s| s.pairs >= 100) {
        let (m, share, it) = em_core(&session.patterns, (u, m0), 0.5, 100, (strata, joint), true);
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
        .zip(m0)
        .map(|((s, w), m0)| if *w > 0.0 { s.iter().map(|x| (x / w).max(FLOOR)).collect() } else { m0.clone() })
        .collect();
    SessionFit { m, blocked_pairs, iterations, matched, total }
}

/// A pair of records a data steward decided about (`GET /v1/labels`): the same entity or not.
#[derive(Debug, Clone)]
pub struct LabelledPair {
    pub left: SourceRecord,
    pub right: SourceRecord,
    pub link: bool,
}

/// How a link threshold separates labelled pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelFit {
    pub threshold: f64,
    /// F1 of the `link` labels: pairs at or above the threshold (or decided by a link rule, and
    /// held back by no rule) count as linked.
    pub f1: f64,
    pub links: usize,
    pub distinct: usize,
}

/// The score of one record against another, as the hub scores a record against a golden record
/// holding the other, and whether a rule links or holds the pair back.
pub fn pair_score(schema: &EntitySchema, left: &SourceRecord, right: &SourceRecord) -> (f64, Option<bool>) {
    let mut golden = crate::golden::GoldenRecord::empty(&schema.entity, "labelled", 0);
    golden.match_values = crate::plan::match_values(schema, &[right]).into();
    let c = crate::matching::score(schema, left, &golden);
    let ruled = if c.blocked_by.is_some() { Some(false) } else { c.rule.as_ref().map(|_| true) };
    (c.score, ruled)
}

/// The whole-number link threshold from 12 to 60 that best separates labelled pairs (best F1 of
/// the `link` labels; on a tie the higher one). `None` without a `link` label. Stewards label the
/// pairs the matcher was unsure of, so the labels say where the boundary lies, not how often
/// matches agree: they choose the threshold and leave `m` and `u` to the unlabelled records.
pub fn threshold_from_labels(schema: &EntitySchema, pairs: &[LabelledPair]) -> Option<LabelFit> {
    let links = pairs.iter().filter(|p| p.link).count();
    if links == 0 {
        return None;
    }
    let scored: Vec<(f64, Option<bool>, bool)> = pairs
        .iter()
        .map(|p| {
            let (score, ruled) = pair_score(schema, &p.left, &p.right);
            (score, ruled, p.link)
        })
        .collect();
    let mut best: Option<LabelFit> = None;
    for t in 12..=60 {
        let t = f64::from(t);
        let (mut tp, mut fp) = (0usize, 0usize);
        for (score, ruled, link) in &scored {
            let linked = ruled.unwrap_or(*score >= t);
            match (linked, link) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                _ => {}
            }
        }
        let f1 = if tp == 0 { 0.0 } else { 2.0 * tp as f64 / (2.0 * tp as f64 + fp as f64 + (links - tp) as f64) };
        if best.is_none_or(|b| f1 >= b.f1) {
            best = Some(LabelFit { threshold: t, f1, links, distinct: pairs.len() - links });
        }
    }
    best
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

    /// 1,500 people with two identical records each, and their entities; with households, every
    /// third person lives with the one before and shares their family name (500 households:
    /// 2,000 non-matching pairs agreeing on the address).
    fn household_records(registry: &crate::SchemaRegistry, households: bool) -> (Vec<SourceRecord>, Vec<u32>) {
        two_copies(registry, |entity| {
            let street = if households && entity % 3 == 2 { entity - 1 } else { entity };
            serde_json::json!({
                "given_name": format!("given{entity}"), "family_name": format!("family{street}"),
                "date_of_birth": format!("19{:02}-{:02}-{:02}", 30 + entity % 70, 1 + entity % 12, 1 + entity % 28),
                "street_number": format!("{}", 1 + street % 300), "address_line1": format!("street {street}"),
                "locality": format!("town {}", street % 97), "postcode": format!("{}", 2000 + street % 7919),
            })
        })
    }

    /// Two identical records of each of 1,500 people (`attributes` of each), and their entities.
    fn two_copies(
        registry: &crate::SchemaRegistry,
        attributes: impl Fn(usize) -> serde_json::Value,
    ) -> (Vec<SourceRecord>, Vec<u32>) {
        let (mut records, mut entities) = (Vec::new(), Vec::new());
        for e in 0..1500usize {
            for copy in 0..2 {
                let input = serde_json::json!({
                    "entityType": "customer", "sourceSystem": "crm", "sourceId": format!("r{e}-{copy}"), "sourceSeq": 1,
                    "attributes": attributes(e),
                });
                records.push(crate::record::validate(registry, &input, 0).expect("valid"));
                entities.push(e as u32);
            }
        }
        (records, entities)
    }

    /// Training reads a pair as the hub scores it: names swapped in one record agree crosswise,
    /// and do not count as two disagreements in the matches' `m`.
    #[test]
    fn gamma_reads_swapped_names_crosswise() {
        let registry = crate::SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let record = |id: &str, given: &str, family: &str| {
            let input = serde_json::json!({
                "entityType": "customer", "sourceSystem": "crm", "sourceId": id, "sourceSeq": 1,
                "attributes": {"given_name": given, "family_name": family, "date_of_birth": "1980-01-02"}
            });
            crate::record::validate(&registry, &input, 0).expect("valid")
        };
        let (a, b) = (record("a", "Maria", "Kenthornfen"), record("b", "Kenthornfen", "Maria"));
        let g = gamma(schema, &a.slots(schema), &b.slots(schema));
        let at = |name: &str| g[schema.attributes.iter().position(|d| d.name == name).expect("attribute")];
        assert_eq!((at("given_name"), at("family_name")), (0, 0), "{g:?}");
        let c = record("c", "Maria", "Okafor");
        let g = gamma(schema, &a.slots(schema), &c.slots(schema));
        assert_eq!(g[schema.attributes.iter().position(|d| d.name == "given_name").expect("given")], 0);
    }

    /// People who live together share a whole address: counted on every pair of a labelled set,
    /// they bring the address group's cap down to what sharing an address says about identity;
    /// without households the cap stays at the independence bound.
    /// People who live together share an address and a family name: among pairs agreeing on the
    /// whole address, agreement on the family name is the rule and on the given name rare, counted
    /// from a labelled set and estimated by EM from an unlabelled one; without households there is
    /// nothing to estimate.
    #[test]
    fn within_u_learns_what_households_share() {
        let registry = crate::SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let build = |households: bool| household_records(&registry, households);
        // The copies are exact: matches agree on every attribute.
        let m: Vec<Vec<f64>> = schema
            .attributes
            .iter()
            .map(|a| (0..a.comparator.m.len()).map(|l| if l == 0 { 0.99 } else { 0.001 }).collect())
            .collect();
        let u: Vec<Vec<f64>> = schema.attributes.iter().map(|a| a.comparator.u.clone()).collect();
        // Random pairs: 1,500 matching pairs among 4.5 million, and as many samples.
        let sampling = GroupSampling { match_rate: 1500.0 / (3000.0 * 2999.0 / 2.0), samples: 4_500_000, seed: 7 };
        let (records, entities) = build(true);
        for labelled in [true, false] {
            let within = within_u(schema, &records, (&m, &u), labelled.then_some(&entities[..]), sampling);
            let address = within[0].as_ref().expect("households: a within table for the address");
            let family = address.get("family_name").expect("family name")[0];
            let given = address.get("given_name").expect("given name")[0];
            assert!(family > 0.9, "labelled {labelled}: households share the family name: {family}");
            assert!(given < 0.05, "labelled {labelled}: and not the given name: {given}");
            assert!(!address.contains_key("street_number"), "a member of the group is not weighed within it");
            assert!(within[1].is_none(), "no two people share a given and family name");
        }
        let (records, entities) = build(false);
        assert!(within_u(schema, &records, (&m, &u), Some(&entities), sampling).iter().all(Option::is_none));
        assert!(within_u(schema, &records, (&m, &u), None, sampling).iter().all(Option::is_none), "EM: only matches");
    }

    #[test]
    fn households_in_a_labelled_set_lower_the_address_cap() {
        let registry = crate::SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let build = |households: bool| household_records(&registry, households);
        let m: Vec<Vec<f64>> = schema.attributes.iter().map(|a| a.comparator.m.clone()).collect();
        let u: Vec<Vec<f64>> = schema.attributes.iter().map(|a| a.comparator.u.clone()).collect();
        let sampling = GroupSampling { match_rate: 0.0, samples: 0, seed: 1 };
        let cap = |households: bool| {
            let (records, entities) = build(households);
            group_caps(schema, &records, (&m, &u), sampling, Some(&entities))[0]
        };
        let independent: f64 = {
            let g = &schema.layout().groups[0];
            let p = |x: &[Vec<f64>]| g.iter().map(|&a| x[a][0]).product::<f64>();
            (p(&m) / p(&u).max(FLOOR * FLOOR)).log2()
        };
        let (alone, together) = (cap(false), cap(true));
        assert!((alone - independent).abs() < 1e-9, "no two people share an address: {alone} against {independent}");
        // 500 households of two people with two records each: 2,000 non-matching pairs agreeing.
        let pairs = 3000.0 * 2999.0 / 2.0 - 1500.0;
        let m_all: f64 = schema.layout().groups[0].iter().map(|&a| m[a][0]).product();
        let expected = (m_all / (2000.0 / pairs)).log2();
        assert!((together - expected).abs() < 1e-6, "households: {together}, expected {expected}");
        assert!(together < alone - 10.0);
    }

    /// 1,500 people with two identical records each in 50 towns (a town's name, postcode and
    /// state go together), each on a street of their own; and their entities.
    fn town_records(registry: &crate::SchemaRegistry) -> (Vec<SourceRecord>, Vec<u32>) {
        two_copies(registry, |e| {
            let t = e % 50;
            let region = ["NSW", "VIC", "QLD", "WA", "SA"][t % 5];
            serde_json::json!({
                "given_name": format!("given{e}"), "family_name": format!("family{e}"),
                "street_number": format!("{}", 1 + e % 300), "address_line1": format!("street {e}"),
                "locality": format!("town {t}"), "postcode": format!("{}", 3000 + t),
                "region": region,
            })
        })
    }

    /// People of one town agree on its name, postcode and state together: counted on a labelled
    /// set (and estimated without labels), the joint `u` of those subsets is what it is, far above
    /// the members' `u` multiplied, and the written cap lies below their summed weights. Streets
    /// no two people share have no joint `u`.
    #[test]
    fn joint_u_counts_what_a_town_shares() {
        let registry = crate::SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let (records, entities) = town_records(&registry);
        let m: Vec<Vec<f64>> = schema
            .attributes
            .iter()
            .map(|a| (0..a.comparator.m.len()).map(|l| if l == 0 { 0.99 } else { 0.001 }).collect())
            .collect();
        let u: Vec<Vec<f64>> = schema.attributes.iter().map(|a| a.comparator.u.clone()).collect();
        let at = |n: &str| schema.attribute_index(n).expect("attribute");
        let town = vec![at("locality"), at("postcode")];
        // 50 towns of 60 records: 50 x (1,770 pairs - 30 of one person) of 4,498,500 - 1,500.
        let expected = 50.0 * 1740.0 / 4_497_000.0;
        let rate = 1500.0 / 4_498_500.0;
        for labelled in [true, false] {
            let joint = joint_u(schema, &records, (&m, &u), rate, labelled.then_some(&entities[..]));
            let found = joint[0].iter().find(|j| j.attributes == town).expect("locality+postcode");
            let tolerance = if labelled { 1e-12 } else { 1e-3 };
            assert!((found.u - expected).abs() < tolerance, "labelled {labelled}: {} against {expected}", found.u);
            assert!(joint[0].iter().all(|j| !j.attributes.contains(&at("address_line1"))), "{:?}", joint[0]);
            assert!(joint[1].is_empty(), "a group of two has no subsets");
        }
        let joint = joint_u(schema, &records, (&m, &u), rate, Some(&entities));
        let caps = subset_caps(schema, &joint, (&m, &u));
        let cap = caps[0].get("locality+postcode").copied().expect("written");
        let want = (0.99f64 * 0.99 / expected).log2();
        assert!((cap - want).abs() < 0.06, "{cap} against {want}");
        let summed = (0.99 / u[at("locality")][0]).log2() + (0.99 / u[at("postcode")][0]).log2();
        assert!(cap < summed - 5.0, "{cap} against {summed}");
        // The town with its state is bounded as tightly by the town alone plus the state's weight
        // only if that is no more than half a bit above its own cap.
        assert!(caps[0].keys().all(|k| k.split('+').count() >= 2), "{caps:?}");
    }

    /// With the entities known, `m` is counted on the matches, as they are: people who live
    /// together (sharing a family name and an address) cannot pass for matches whose given names
    /// disagree, and matches whose given names do disagree count at their true share.
    #[test]
    fn labelled_training_counts_m_on_the_matches() {
        let registry = crate::SchemaRegistry::built_in().expect("schemas");
        let schema = registry.get("customer").expect("customer");
        let at = |n: &str| schema.attribute_index(n).expect("attribute");
        let (records, entities) = household_records(&registry, true);
        let counted = m_from_labels(schema, &records, &entities);
        for name in ["given_name", "family_name", "date_of_birth", "postcode"] {
            let m = counted[at(name)].as_ref().expect("1,500 matching pairs");
            assert!(m[0] > 0.999, "{name}: the copies agree exactly: {m:?}");
        }
        assert!(counted[at("email")].is_none(), "no record holds an e-mail address");
        // One person in four gives another given name in their second record.
        let (mut records, entities) = town_records(&registry);
        for (i, r) in records.iter_mut().enumerate().filter(|(i, _)| i % 8 == 1) {
            let input = serde_json::json!({
                "entityType": "customer", "sourceSystem": "crm", "sourceId": format!("x{i}"), "sourceSeq": 1,
                "attributes": { "given_name": format!("other{i}"), "family_name": format!("family{}", i / 2),
                    "locality": format!("town {}", (i / 2) % 50) }
            });
            *r = crate::record::validate(&registry, &input, 0).expect("valid");
        }
        let est = train_labelled(schema, &records, 100_000, 3, Some(&entities));
        let disagree = 1.0 - est.m[at("given_name")].iter().sum::<f64>();
        assert!((disagree - 0.25).abs() < 1e-4, "{:?}", est.m[at("given_name")]);
    }
}
