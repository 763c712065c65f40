//! Result rows and the files they go to: one flat record per (instance, checkpoint) with every
//! knob and exact figure beside the metrics, written as CSV, JSON Lines and Parquet with the
//! same keys.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type as SchemaType;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
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

    /// Replaces the value of `key` (appends the field if there is none).
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.into(),
            None => self.push(key, value),
        }
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

/// A value as plain text: a string as itself, null as nothing, anything else as JSON.
fn plain_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(v: &Value) -> String {
    let raw = plain_text(v);
    if raw.contains([',', '"', '\n']) {
        format!("\"{}\"", raw.replace('"', "\"\""))
    } else {
        raw
    }
}

/// Every key of any row, in the order first seen: the columns of the CSV and Parquet files
/// (rows written by different versions, or from different kinds of model, may differ).
fn columns(rows: &[Record]) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    rows.iter()
        .flat_map(|r| r.0.iter().map(|(k, _)| k.as_str()))
        .filter(|k| seen.insert(*k))
        .collect()
}

/// The rows as CSV text: one column per key of any row, in the order first seen (a row that
/// lacks a key has an empty field there).
pub fn to_csv(rows: &[Record]) -> String {
    let mut out = String::new();
    let keys = columns(rows);
    if !rows.is_empty() {
        let header: Vec<String> = keys
            .iter()
            .map(|k| csv_field(&Value::String(k.to_string())))
            .collect();
        let _ = writeln!(out, "{}", header.join(","));
    }
    for r in rows {
        let line: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(col, key)| csv_field(field(r, col, key)))
            .collect();
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

/// A Parquet column's physical type, chosen from all its non-null values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Double,
    Text,
}

impl Kind {
    /// The narrowest kind that holds the non-null `values`: all bools, all integers that fit an
    /// i64, all numbers, or else text (also when every value is null).
    fn of<'a>(values: impl IntoIterator<Item = &'a Value>) -> Self {
        let mut kind = None;
        for v in values {
            let this = match v {
                Value::Null => continue,
                Value::Bool(_) => Kind::Bool,
                Value::Number(n) if n.is_i64() => Kind::Int,
                Value::Number(_) => Kind::Double,
                Value::String(_) | Value::Array(_) | Value::Object(_) => Kind::Text,
            };
            kind = Some(match (kind, this) {
                (None, k) => k,
                (Some(a), b) if a == b => a,
                (Some(Kind::Int | Kind::Double), Kind::Int | Kind::Double) => Kind::Double,
                _ => Kind::Text,
            });
        }
        kind.unwrap_or(Kind::Text)
    }
}

/// `r`'s value of column `col` named `key`; null when the row lacks it.
fn field<'a>(r: &'a Record, col: usize, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match r.0.get(col) {
        Some((k, v)) if k == key => v,
        _ => r.get(key).unwrap_or(&NULL),
    }
}

/// The rows as an uncompressed Parquet file with one row group: one OPTIONAL column per key of
/// any row, in the order first seen (a row that lacks a key has null there). A column of bools is
/// BOOLEAN, of integers that fit an i64 INT64, of numbers DOUBLE; any other column (strings,
/// mixed kinds, all null) is a UTF8 string column holding strings as they are and other values
/// as their JSON text. No rows give a valid file with no columns and no row group. The same
/// rows always give the same bytes.
pub fn to_parquet(rows: &[Record]) -> Result<Vec<u8>> {
    parquet_bytes(rows).map_err(|e| Error::Parquet(e.to_string()))
}

fn parquet_bytes(rows: &[Record]) -> Result<Vec<u8>, ParquetError> {
    let keys = columns(rows);
    let kinds: Vec<Kind> = keys
        .iter()
        .enumerate()
        .map(|(col, key)| Kind::of(rows.iter().map(|r| field(r, col, key))))
        .collect();
    let fields = keys
        .iter()
        .zip(&kinds)
        .map(|(key, kind)| {
            let (physical, logical) = match kind {
                Kind::Bool => (PhysicalType::BOOLEAN, None),
                Kind::Int => (PhysicalType::INT64, None),
                Kind::Double => (PhysicalType::DOUBLE, None),
                Kind::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
            };
            SchemaType::primitive_type_builder(key, physical)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let schema = SchemaType::group_type_builder("schema")
        .with_fields(fields)
        .build()?;
    let mut writer = SerializedFileWriter::new(
        Vec::new(),
        Arc::new(schema),
        Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::UNCOMPRESSED)
                .build(),
        ),
    )?;
    if !keys.is_empty() {
        let mut group = writer.next_row_group()?;
        for (col, (key, kind)) in keys.iter().zip(&kinds).enumerate() {
            let mut column = group
                .next_column()?
                .ok_or_else(|| ParquetError::General(format!("no column writer for {key:?}")))?;
            let values: Vec<&Value> = rows.iter().map(|r| field(r, col, key)).collect();
            let def: Vec<i16> = values.iter().map(|v| i16::from(!v.is_null())).collect();
            let present = values.iter().filter(|v| !v.is_null());
            match kind {
                Kind::Bool => {
                    let data: Vec<bool> = present.filter_map(|v| v.as_bool()).collect();
                    column
                        .typed::<BoolType>()
                        .write_batch(&data, Some(&def), None)?;
                }
                Kind::Int => {
                    let data: Vec<i64> = present.filter_map(|v| v.as_i64()).collect();
                    column
                        .typed::<Int64Type>()
                        .write_batch(&data, Some(&def), None)?;
                }
                Kind::Double => {
                    let data: Vec<f64> = present.filter_map(|v| v.as_f64()).collect();
                    column
                        .typed::<DoubleType>()
                        .write_batch(&data, Some(&def), None)?;
                }
                Kind::Text => {
                    let data: Vec<ByteArray> = present
                        .map(|v| ByteArray::from(plain_text(v).into_bytes()))
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&data, Some(&def), None)?;
                }
            }
            column.close()?;
        }
        group.close()?;
    }
    writer.into_inner()
}

/// Checks that [`write_rows`] can write its three files in `dir`: no folder or other non-file
/// stands at their paths (so that it writes all three or none; commands call it before any
/// work, and `write_rows` again before writing).
pub fn rows_fit(dir: &Path, stem: &str) -> Result<()> {
    for ext in ["csv", "jsonl", "parquet"] {
        let path = dir.join(format!("{stem}.{ext}"));
        if path.exists() && !path.is_file() {
            return Err(Error::invalid(
                "--out",
                format!("{} is in the way: it is not a file", path.display()),
            ));
        }
    }
    Ok(())
}

/// Writes `DIR/{stem}.csv`, `DIR/{stem}.jsonl` and `DIR/{stem}.parquet`, each through a
/// temporary file (all three or none when [`rows_fit`] passes).
pub fn write_rows(dir: &Path, stem: &str, rows: &[Record]) -> Result<()> {
    rows_fit(dir, stem)?;
    let parquet = to_parquet(rows)?;
    write_atomically(&dir.join(format!("{stem}.csv")), to_csv(rows).as_bytes())?;
    write_atomically(
        &dir.join(format!("{stem}.jsonl")),
        to_jsonl(rows).as_bytes(),
    )?;
    write_atomically(&dir.join(format!("{stem}.parquet")), &parquet)
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::path::PathBuf;

    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    use serde_json::json;

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("icq-records-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Every kind of value, with a null in each column.
    fn rows() -> Vec<Record> {
        let cols: [(&str, [Value; 4]); 9] = [
            ("int", [json!(1), json!(null), json!(-3), json!(7u64)]),
            (
                "int64",
                [json!(i64::MAX), json!(i64::MIN), json!(null), json!(0)],
            ),
            ("float", [json!(0.5), json!(null), json!(1.0), json!(-2.25)]),
            ("number", [json!(1), json!(2.5), json!(null), json!(-3)]),
            (
                "unsigned",
                [json!(u64::MAX), json!(null), json!(1), json!(0)],
            ),
            (
                "flag",
                [json!(true), json!(false), json!(null), json!(true)],
            ),
            (
                "text",
                [json!("a"), json!(null), json!(""), json!("é, \"x\"")],
            ),
            ("mixed", [json!("x"), json!(1), json!(true), json!(null)]),
            ("none", [json!(null), json!(null), json!(null), json!(null)]),
        ];
        (0..4)
            .map(|i| {
                let mut r = Record::default();
                for (key, values) in &cols {
                    r.push(key, values[i].clone());
                }
                r
            })
            .collect()
    }

    /// Every row of a Parquet file as its fields.
    fn fields(reader: &SerializedFileReader<File>) -> Vec<Vec<Field>> {
        reader
            .get_row_iter(None)
            .unwrap()
            .map(|row| {
                let row = row.unwrap();
                row.get_column_iter().map(|(_, f)| f.clone()).collect()
            })
            .collect()
    }

    #[test]
    fn parquet_reads_back_every_value_and_type() {
        let d = dir("kinds");
        write_rows(&d, "rows", &rows()).unwrap();
        assert!(d.join("rows.csv").exists() && d.join("rows.jsonl").exists());
        let reader =
            SerializedFileReader::new(File::open(d.join("rows.parquet")).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 4);
        assert_eq!(meta.num_row_groups(), 1);
        let schema = meta.file_metadata().schema_descr();
        let want_types = [
            ("int", PhysicalType::INT64),
            ("int64", PhysicalType::INT64),
            ("float", PhysicalType::DOUBLE),
            ("number", PhysicalType::DOUBLE),
            ("unsigned", PhysicalType::DOUBLE),
            ("flag", PhysicalType::BOOLEAN),
            ("text", PhysicalType::BYTE_ARRAY),
            ("mixed", PhysicalType::BYTE_ARRAY),
            ("none", PhysicalType::BYTE_ARRAY),
        ];
        assert_eq!(schema.num_columns(), want_types.len());
        for (i, (name, physical)) in want_types.into_iter().enumerate() {
            let c = schema.column(i);
            assert_eq!((c.name(), c.physical_type()), (name, physical));
            assert_eq!(
                c.self_type().get_basic_info().repetition(),
                Repetition::OPTIONAL
            );
            let want_logical =
                (physical == PhysicalType::BYTE_ARRAY).then_some(LogicalType::String);
            assert_eq!(c.logical_type_ref(), want_logical.as_ref(), "{name}");
        }
        let s = |t: &str| Field::Str(t.to_string());
        let want = [
            [
                Field::Long(1),
                Field::Long(i64::MAX),
                Field::Double(0.5),
                Field::Double(1.0),
                Field::Double(u64::MAX as f64),
                Field::Bool(true),
                s("a"),
                s("x"),
                Field::Null,
            ],
            [
                Field::Null,
                Field::Long(i64::MIN),
                Field::Null,
                Field::Double(2.5),
                Field::Null,
                Field::Bool(false),
                Field::Null,
                s("1"),
                Field::Null,
            ],
            [
                Field::Long(-3),
                Field::Null,
                Field::Double(1.0),
                Field::Null,
                Field::Double(1.0),
                Field::Null,
                s(""),
                s("true"),
                Field::Null,
            ],
            [
                Field::Long(7),
                Field::Long(0),
                Field::Double(-2.25),
                Field::Double(-3.0),
                Field::Double(0.0),
                Field::Bool(true),
                s("é, \"x\""),
                Field::Null,
                Field::Null,
            ],
        ];
        let got = fields(&reader);
        assert_eq!(got, want);
    }

    #[test]
    fn parquet_bytes_are_deterministic() {
        let rows = rows();
        let a = to_parquet(&rows).unwrap();
        assert_eq!(a, to_parquet(&rows.clone()).unwrap());
        let d = dir("same");
        write_rows(&d, "rows", &rows).unwrap();
        assert_eq!(std::fs::read(d.join("rows.parquet")).unwrap(), a);
    }

    /// Columns are every key of any row in the order first seen, and each row's values are
    /// found by key (rows of two versions, or of two kinds of model, may differ in their keys
    /// and their order).
    #[test]
    fn columns_are_found_by_key() {
        let mut a = Record::default();
        a.push("x", 1);
        a.push("y", "p");
        let mut b = Record::default();
        b.push("y", "q");
        b.push("x", 2);
        let mut c = Record::default();
        c.push("x", 3);
        c.push("z", true);
        let d = dir("keys");
        write_rows(&d, "rows", &[a, b, c]).unwrap();
        let reader =
            SerializedFileReader::new(File::open(d.join("rows.parquet")).unwrap()).unwrap();
        let got = fields(&reader);
        let s = |t: &str| Field::Str(t.to_string());
        assert_eq!(
            got,
            [
                [Field::Long(1), s("p"), Field::Null],
                [Field::Long(2), s("q"), Field::Null],
                [Field::Long(3), Field::Null, Field::Bool(true)]
            ]
        );
        let csv = std::fs::read_to_string(d.join("rows.csv")).unwrap();
        assert_eq!(csv, "x,y,z\n1,p,\n2,q,\n3,,true\n");
    }

    #[test]
    fn no_rows_give_a_valid_empty_parquet_file() {
        let d = dir("empty");
        write_rows(&d, "rows", &[]).unwrap();
        let reader =
            SerializedFileReader::new(File::open(d.join("rows.parquet")).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 0);
        assert_eq!(meta.num_row_groups(), 0);
        assert_eq!(meta.file_metadata().schema_descr().num_columns(), 0);
        assert_eq!(reader.get_row_iter(None).unwrap().count(), 0);
    }
}
