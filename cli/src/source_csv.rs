//! Generated CSV files (`mdm generate`) as ingest records, for the commands that send them
//! through the local stack (`mdm local cost`, `mdm local freshness`).

use serde_json::{json, Map, Value};
use std::path::Path;

/// Each row of `path` as a record of `entity` from `system`: its id from the `rec_id` column,
/// every other non-empty column an attribute of the same name, sequence 1.
pub fn read_records(entity: &str, system: &str, path: &Path) -> Result<Vec<Value>, String> {
    let name = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("{name}: cannot read: {e}"))?;
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("{name}: header: {e}"))?.iter().map(str::to_owned).collect();
    let id = header.iter().position(|h| h == "rec_id").ok_or_else(|| format!("{name}: no rec_id column"))?;
    let mut out = Vec::new();
    for (line, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("{name}:{}: {e}", line + 2))?;
        let mut attributes = Map::new();
        for (i, (field, value)) in header.iter().zip(row.iter()).enumerate() {
            if i != id && !value.is_empty() {
                attributes.insert(field.clone(), json!(value));
            }
        }
        out.push(json!({
            "entityType": entity, "sourceSystem": system, "sourceId": row.get(id).unwrap_or(""),
            "sourceSeq": 1, "attributes": attributes,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_records_without_empty_values() {
        let path = std::env::temp_dir().join(format!("mdm-source-csv-{}.csv", std::process::id()));
        std::fs::write(&path, "rec_id,given_name,email\nr1, Ann ,\nr2,Bo,bo@x.com\n").expect("write");
        let records = read_records("customer", "people", &path).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["sourceId"], "r1");
        assert_eq!(records[0]["attributes"], json!({"given_name": "Ann"}));
        assert_eq!(records[1]["attributes"]["email"], "bo@x.com");
        let missing = read_records("customer", "people", Path::new("/nonexistent/people.csv"));
        assert!(missing.is_err_and(|e| e.contains("cannot read")));
    }
}
