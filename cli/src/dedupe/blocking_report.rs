//! `mdm blocking`: how complete an entity type's blocking is on a file with known clusters.
//!
//! ```text
//! mdm blocking --entity customer --id-column rec_id [--map COLUMN=ATTRIBUTE]... [--schemas DIR]
//!              --truth TRUTH.csv INPUT.csv [INPUT.csv ...]
//! ```
//!
//! Every record is read and keyed as `mdm dedupe` keys it. A block is *used* when it holds at most
//! as many entities as its key allows (the key's own `max_block_size`, else the entity type's):
//! matching skips larger blocks as too common. Printed: **pairs completeness** (the share of true
//! pairs — two records of one entity in the truth file — that share at least one used block),
//! the same over every block, the comparisons the used blocks imply per record (other entities
//! met in a used block, summed over the record's keys: an upper bound of the candidates matching
//! scores), and per key name its blocks, largest block and the share of true pairs it alone finds.

use super::reading::{prepare, Layout, Reading};
use super::{load, BlockingArgs, Options};
use mdm_core::blocking::keys_of;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

/// One key of one record: the key (name and digest, hashed), its name's index, the record.
struct Keyed {
    key: u64,
    name: u16,
    entity: u32,
    record: u32,
}

pub fn run(args: BlockingArgs) -> Result<(), String> {
    let opts = Options::from(args);
    let (registry, attributes) = load(&opts)?;
    let schema = registry.get(&opts.entity).ok_or("unknown entity type")?;
    let truth = read_truth(opts.truth.as_deref().ok_or("--truth is required")?)?;
    let layout =
        Layout { entity: opts.entity.clone(), id_column: opts.id_column.clone(), maps: opts.maps.clone(), attributes };
    let systems: Vec<String> = opts.inputs.iter().map(|p| super::system_of(p)).collect();
    let mut reading = Reading::new(layout, opts.inputs.clone(), vec![0; opts.inputs.len()]);

    let hasher = foldhash::fast::FixedState::with_seed(7);
    let mut names: Vec<(&'static str, usize)> = Vec::new();
    let mut keyed: Vec<Keyed> = Vec::new();
    let mut entity_ids: HashMap<String, u32> = HashMap::new();
    let mut entity_of: Vec<u32> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut unknown = 0usize;
    while let Some((_, rows)) = reading.next_batch() {
        for row in rows {
            let p = prepare(&registry, row?)?;
            let system = systems.get(p.file_index).map_or("", String::as_str);
            let Some(entity) = truth
                .get(&(system.to_owned(), p.record_id.clone()))
                .or_else(|| truth.get(&(String::new(), p.record_id.clone())))
            else {
                unknown += 1;
                continue;
            };
            let next = entity_ids.len() as u32;
            let entity = *entity_ids.entry(entity.clone()).or_insert(next);
            let record = entity_of.len() as u32;
            entity_of.push(entity);
            ids.push(p.record_id.clone());
            for k in keys_of(schema, &p.record) {
                let limit = k.max_block_size().unwrap_or(schema.matching.max_block_size);
                let name = match names.iter().position(|(n, _)| *n == k.name()) {
                    Some(i) => i,
                    None => {
                        names.push((k.name(), limit));
                        names.len() - 1
                    }
                };
                let mut h = hasher.build_hasher();
                h.write(k.name().as_bytes());
                h.write(&k.digest);
                keyed.push(Keyed { key: h.finish(), name: name as u16, entity, record });
            }
        }
    }
    if unknown > 0 {
        return Err(format!("{unknown} records are not in the truth file"));
    }

    // True pairs: records of one entity.
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    for (r, e) in entity_of.iter().enumerate() {
        members.entry(*e).or_default().push(r as u32);
    }
    let pairs: u64 = members.values().map(|m| (m.len() * m.len().saturating_sub(1) / 2) as u64).sum();

    // A pair's covering keys: which names cover it in a used block; whether any block covers it.
    let mut used_cover: HashMap<(u32, u32), u64> = HashMap::new();
    let mut any_cover: HashMap<(u32, u32), ()> = HashMap::new();
    let mut per_name = vec![NameStats::default(); names.len()];
    let mut comparisons = 0u64;
    keyed.sort_unstable_by_key(|k| (k.key, k.entity, k.record));
    for block in keyed.chunk_by(|a, b| a.key == b.key) {
        let name = block[0].name as usize;
        let entities = 1 + block.windows(2).filter(|w| w[0].entity != w[1].entity).count();
        let used = entities <= names[name].1;
        let s = &mut per_name[name];
        s.blocks += 1;
        s.largest = s.largest.max(entities);
        if !used {
            s.too_common += 1;
            s.records_in_too_common += block.len();
        } else {
            comparisons += (block.len() * (entities - 1)) as u64;
            s.comparisons += (block.len() * (entities - 1)) as u64;
        }
        for same in block.chunk_by(|a, b| a.entity == b.entity).filter(|s| s.len() > 1) {
            for (i, a) in same.iter().enumerate() {
                for b in &same[i + 1..] {
                    let pair = (a.record.min(b.record), a.record.max(b.record));
                    any_cover.insert(pair, ());
                    if used {
                        *used_cover.entry(pair).or_default() |= 1u64 << name.min(63);
                    }
                }
            }
        }
    }
    if let Ok(path) = std::env::var("MDM_BLOCKING_MISSED") {
        // Diagnostics: the record ids of the true pairs no used block finds.
        let mut out = String::from("a,b\n");
        for m in members.values() {
            for (i, a) in m.iter().enumerate() {
                for b in &m[i + 1..] {
                    if !used_cover.contains_key(&(*a.min(b), *a.max(b))) {
                        out.push_str(&format!("{},{}\n", ids[*a as usize], ids[*b as usize]));
                    }
                }
            }
        }
        std::fs::write(&path, out).map_err(|e| format!("{path}: {e}"))?;
    }
    for bits in used_cover.values() {
        if bits.count_ones() == 1 {
            per_name[bits.trailing_zeros() as usize].alone += 1;
        }
    }
    let n = entity_of.len().max(1) as f64;
    let share = |x: usize| if pairs == 0 { 1.0 } else { x as f64 / pairs as f64 };
    println!(
        "records {}  true pairs {pairs}  pairs completeness {:.5} (every block {:.5})  comparisons/record {:.2}",
        entity_of.len(),
        share(used_cover.len()),
        share(any_cover.len()),
        comparisons as f64 / n
    );
    let order: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
    for (name, i) in order {
        let s = &per_name[i];
        println!(
            "  {name:<55} limit {:>4}  blocks {:>8}  largest {:>6}  too common {:>6} ({:.3} of records)  comparisons/record {:.3}  pairs found by it alone {:.5}",
            names[i].1,
            s.blocks,
            s.largest,
            s.too_common,
            s.records_in_too_common as f64 / n,
            s.comparisons as f64 / n,
            share(s.alone)
        );
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
struct NameStats {
    blocks: usize,
    largest: usize,
    too_common: usize,
    records_in_too_common: usize,
    /// Other entities met in this name's used blocks, summed over records.
    comparisons: u64,
    /// True pairs no other key name finds in a used block.
    alone: usize,
}

/// `record_id,entity_id`, optionally with a `source` column (the file stem): (source or "",
/// record id) → entity.
pub(super) fn read_truth(path: &std::path::Path) -> Result<HashMap<(String, String), String>, String> {
    let mut r = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let header = r.headers().map_err(|e| format!("{}: {e}", path.display()))?.clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(id), Some(entity)) = (col("record_id"), col("entity_id")) else {
        return Err(format!("{}: expected columns record_id and entity_id", path.display()));
    };
    let source = col("source");
    let mut out = HashMap::new();
    for row in r.records() {
        let row = row.map_err(|e| format!("{}: {e}", path.display()))?;
        let field = |i: usize| row.get(i).unwrap_or("").to_owned();
        out.insert((source.map(field).unwrap_or_default(), field(id)), field(entity));
    }
    Ok(out)
}
