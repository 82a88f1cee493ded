//! The clusters file: `source,record_id,golden_id`, one row per input record in input order, with
//! the golden record each record is in after the whole input.

use super::survivors::Survivors;
use std::io::Write;
use std::path::Path;

/// Writes the clusters file. `rows` are the records in input order: file index (into
/// `systems`), record id and the golden record their merge put them in. The rows are formatted
/// on `threads` threads, a share each, and written in one go: the run's other threads are done
/// by then, and formatting alone took 20 ms at 100k records.
pub fn write(
    path: &Path,
    rows: &[(u32, mdm_core::Text, u32)],
    systems: &[String],
    survivors: &mut Survivors,
    threads: usize,
) -> Result<(), String> {
    let shown = path.display();
    let finals: Vec<u32> = rows.iter().map(|(_, _, golden)| survivors.survivor(*golden)).collect();
    let names = survivors.names();
    let share = rows.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Result<Vec<u8>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(share)
            .zip(finals.chunks(share))
            .map(|(rows, finals)| {
                let names = &names;
                scope.spawn(move || format(rows, finals, names, systems))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("formatting failed".to_owned()))).collect()
    });
    let mut file = std::fs::File::create(path).map_err(|e| format!("{shown}: cannot write: {e}"))?;
    file.write_all(b"source,record_id,golden_id\n").map_err(|e| format!("{shown}: {e}"))?;
    for part in parts {
        file.write_all(&part?).map_err(|e| format!("{shown}: {e}"))?;
    }
    Ok(())
}

/// Rows as CSV (quoted where a field needs it).
fn format(
    rows: &[(u32, mdm_core::Text, u32)],
    finals: &[u32],
    names: &[&str],
    systems: &[String],
) -> Result<Vec<u8>, String> {
    let mut out = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::with_capacity(rows.len() * 48));
    for ((file, record_id, _), golden) in rows.iter().zip(finals) {
        let system = systems.get(*file as usize).map_or("", String::as_str);
        let golden = names.get(*golden as usize).copied().unwrap_or("");
        out.write_record([system, record_id.as_str(), golden]).map_err(|e| e.to_string())?;
    }
    out.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input order, survivors of later merges, quoting, and the same bytes for any number of
    /// threads.
    #[test]
    fn rows_in_input_order_with_their_final_golden_record() {
        let dir = std::env::temp_dir().join(format!("mdm-clusters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut s = Survivors::default();
        let (a, b, c) = (s.number("ga"), s.number("gb"), s.number("gc"));
        s.merged("gb", &["ga".into()]);
        let rows = vec![(0, "r1".into(), a), (1, "r,2".into(), b), (0, "r\"3".into(), c), (1, "r4".into(), a)];
        let systems = vec!["crm".to_owned(), "web shop".to_owned()];
        let mut outs = Vec::new();
        for threads in [1, 2, 3, 8] {
            let path = dir.join(format!("c{threads}.csv"));
            write(&path, &rows, &systems, &mut s, threads).expect("write");
            outs.push(std::fs::read_to_string(&path).expect("read"));
        }
        assert_eq!(
            outs[0],
            "source,record_id,golden_id\ncrm,r1,gb\nweb shop,\"r,2\",gb\ncrm,\"r\"\"3\",gc\nweb shop,r4,gb\n"
        );
        assert!(outs.iter().all(|o| *o == outs[0]), "{outs:?}");
        let empty = dir.join("empty.csv");
        write(&empty, &[], &systems, &mut s, 2).expect("write");
        assert_eq!(std::fs::read_to_string(&empty).expect("read"), "source,record_id,golden_id\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
