//! Result rows and the files they go to: one flat record per (instance, checkpoint) with every
//! knob and exact figure beside the metrics, written as CSV and JSON Lines with the same keys.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::io::write_atomically;

/// One flat record: ordered (key, value) pairs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record(pub Vec<(String, Value)>);

impl Record {
    /// Appends a field.
    pub fn push(&mut self, key: &str, value: impl Into<Value>) {
        self.0.push((key.to_string(), value.into()));
    }

    /// Appends every field of `other`.
    pub fn extend(&mut self, other: &Record) {
        self.0.extend(other.0.iter().cloned());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A float field: JSON `null` when not finite.
pub fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn csv_field(v: &Value) -> String {
    let raw = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if raw.contains([',', '"', '\n']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw
    }
}

/// The rows as CSV text (header from the first row's keys).
pub fn to_csv(rows: &[Record]) -> String {
    let mut out = String::new();
    if let Some(first) = rows.first() {
        let header: Vec<String> = first
            .0
            .iter()
            .map(|(k, _)| csv_field(&Value::String(k.clone())))
            .collect();
        let _ = writeln!(out, "{}", header.join(","));
    }
    for r in rows {
        let line: Vec<String> = r.0.iter().map(|(_, v)| csv_field(v)).collect();
        let _ = writeln!(out, "{}", line.join(","));
    }
    out
}

/// The rows as JSON Lines.
pub fn to_jsonl(rows: &[Record]) -> String {
    let mut out = String::new();
    for r in rows {
        let obj: Map<String, Value> = r.0.iter().cloned().collect();
        let _ = writeln!(out, "{}", Value::Object(obj));
    }
    out
}

/// Writes `DIR/{stem}.csv` and `DIR/{stem}.jsonl`, each through a temporary file.
pub fn write_rows(dir: &Path, stem: &str, rows: &[Record]) -> Result<()> {
    write_atomically(&dir.join(format!("{stem}.csv")), to_csv(rows).as_bytes())?;
    write_atomically(
        &dir.join(format!("{stem}.jsonl")),
        to_jsonl(rows).as_bytes(),
    )
}
