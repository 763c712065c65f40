//! Result rows and the files they go to: one flat record per (instance, checkpoint) with every
//! knob and exact figure beside the metrics, written as CSV, JSON Lines and Parquet with the
//! same keys.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use parquet::errors::ParquetError;
use rayon::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::io::Partial;

mod parquet_file;

pub use parquet_file::to_parquet;
use parquet_file::{parquet_group, parquet_writer, Kind};

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
fn plain_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        Value::String(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.to_string()),
    }
}

/// Appends `v` as a CSV field: its plain text, quoted when it holds a comma, a quote or a
/// line break.
fn push_csv_field(out: &mut String, v: &Value) {
    let raw = plain_text(v);
    if raw.contains([',', '"', '\n']) {
        out.push('"');
        out.push_str(&raw.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&raw);
    }
}

/// Columns whose values are text, which is their Parquet type also where every row is null.
const TEXT_COLUMNS: [&str; 1] = ["pipeline"];

/// The columns of a set of rows: every key of any row in the order first seen (rows written by
/// different versions, or from different kinds of model, may differ), with the kind of each
/// column's non-null values.
#[derive(Clone, Debug, Default)]
struct Layout {
    keys: Vec<String>,
    kinds: Vec<Option<Kind>>,
    index: HashMap<String, usize>,
}

impl Layout {
    fn of(rows: &[Record]) -> Self {
        let mut layout = Self::default();
        for r in rows {
            for (col, (key, v)) in r.0.iter().enumerate() {
                let i = layout.column(col, key);
                layout.kinds[i] = Kind::join(layout.kinds[i], Kind::of_value(v));
            }
        }
        layout
    }

    /// The index of column `key`, looked for at `col` first (rows mostly share one order),
    /// added when new.
    fn column(&mut self, col: usize, key: &str) -> usize {
        if self.keys.get(col).is_some_and(|k| k == key) {
            return col;
        }
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        self.index.insert(key.to_string(), self.keys.len());
        self.keys.push(key.to_string());
        self.kinds.push(None);
        self.keys.len() - 1
    }

    /// The layout of this one's rows followed by `later`'s.
    fn then(mut self, later: &Layout) -> Self {
        for (key, &kind) in later.keys.iter().zip(&later.kinds) {
            let i = self.column(usize::MAX, key);
            self.kinds[i] = Kind::join(self.kinds[i], kind);
        }
        self
    }

    /// The Parquet kind of column `col`. A column null in every row is DOUBLE (UTF8 for the
    /// text columns of [`TEXT_COLUMNS`]): such columns are metrics that no instance had (every
    /// one diverged; a standard deviation of one instance) or numeric knobs left unset (`clip`),
    /// and the files of runs that do have values must read together with this one.
    fn kind(&self, col: usize) -> Kind {
        self.kinds[col].unwrap_or(if TEXT_COLUMNS.contains(&self.keys[col].as_str()) {
            Kind::Text
        } else {
            Kind::Double
        })
    }

    /// The CSV header line.
    fn csv_header(&self) -> String {
        let mut out = String::new();
        for (col, key) in self.keys.iter().enumerate() {
            if col > 0 {
                out.push(',');
            }
            push_csv_field(&mut out, &Value::String(key.clone()));
        }
        out.push('\n');
        out
    }

    /// Appends `r` as a CSV line (a row that lacks a key has an empty field there).
    fn push_csv_line(&self, out: &mut String, r: &Record) {
        for (col, key) in self.keys.iter().enumerate() {
            if col > 0 {
                out.push(',');
            }
            push_csv_field(out, field(r, col, key));
        }
        out.push('\n');
    }
}

/// The rows as CSV text: one column per key of any row, in the order first seen (a row that
/// lacks a key has an empty field there).
pub fn to_csv(rows: &[Record]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let layout = Layout::of(rows);
    let mut out = layout.csv_header();
    for r in rows {
        layout.push_csv_line(&mut out, r);
    }
    out
}

impl serde::Serialize for Record {
    /// A JSON object with the record's keys in its order.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Appends `r` as a line of JSON.
fn push_json_line(out: &mut Vec<u8>, r: &Record) {
    serde_json::to_writer(&mut *out, r).expect("a record serializes to memory");
    out.push(b'\n');
}

/// The rows as JSON Lines.
pub fn to_jsonl(rows: &[Record]) -> String {
    let mut out = Vec::new();
    for r in rows {
        push_json_line(&mut out, r);
    }
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// `r`'s value of column `col` named `key`; null when the row lacks it.
fn field<'a>(r: &'a Record, col: usize, key: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match r.0.get(col) {
        Some((k, v)) if k == key => v,
        _ => r.get(key).unwrap_or(&NULL),
    }
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
    write_rows_with(dir, stem, rows.len(), |range| rows[range].to_vec(), &|| {})
}

/// Rows of one chunk of [`write_rows_with`]: the Parquet file gets a row group per chunk.
pub const CHUNK_ROWS: usize = 8_192;

/// Rows of the pieces a chunk is made, checked and written in on every thread.
const PIECE_ROWS: usize = 1_024;

/// [`write_rows`] of `total` rows made on demand, [`CHUNK_ROWS`] at a time: `rows(range)`
/// gives the rows of `range`, the same each time it is asked, so that a million instances'
/// checkpoints never stand in memory at once. Each chunk is made twice: once to find the
/// columns and their kinds, once to write it; `done` is called after each, 2·⌈total /
/// CHUNK_ROWS⌉ times in all (for a progress bar).
pub fn write_rows_with<F>(
    dir: &Path,
    stem: &str,
    total: usize,
    rows: F,
    done: &(dyn Fn() + Sync),
) -> Result<()>
where
    F: Fn(Range<usize>) -> Vec<Record> + Sync,
{
    rows_fit(dir, stem)?;
    // One chunk at a time, made in pieces on every thread.
    let chunk = |i: usize| -> Vec<Record> {
        let end = total.min((i + 1) * CHUNK_ROWS);
        let starts: Vec<usize> = (i * CHUNK_ROWS..end).step_by(PIECE_ROWS).collect();
        let pieces: Vec<Vec<Record>> = (starts.into_par_iter())
            .map(|start| rows(start..end.min(start + PIECE_ROWS)))
            .collect();
        pieces.into_iter().flatten().collect()
    };
    let stop = || {
        crate::io::check_stop().map_err(|cause| Error::Io {
            path: dir.to_path_buf(),
            cause,
        })
    };
    let chunks = total.div_ceil(CHUNK_ROWS);
    let mut layout = Layout::default();
    for i in 0..chunks {
        stop()?;
        let pieces: Vec<Layout> = chunk(i).par_chunks(PIECE_ROWS).map(Layout::of).collect();
        layout = pieces.iter().fold(layout, Layout::then);
        done();
    }
    let path = |ext: &str| dir.join(format!("{stem}.{ext}"));
    let mut csv = Partial::create(&path("csv"))?;
    let mut jsonl = Partial::create(&path("jsonl"))?;
    let parquet_error = |e: ParquetError| Error::Parquet(e.to_string());
    let mut parquet =
        parquet_writer(Partial::create(&path("parquet"))?, &layout).map_err(parquet_error)?;
    if total > 0 {
        csv.write_all(layout.csv_header().as_bytes())
            .map_err(|e| csv.error(e))?;
    }
    for i in 0..chunks {
        stop()?;
        let rows = chunk(i);
        // The Parquet group on one thread, the text lines on the others.
        let (grouped, texts) = rayon::join(
            || parquet_group(&mut parquet, &layout, &rows),
            || {
                rows.par_chunks(PIECE_ROWS)
                    .map(|part| {
                        let (mut c, mut j) = (String::new(), Vec::new());
                        for r in part {
                            layout.push_csv_line(&mut c, r);
                            push_json_line(&mut j, r);
                        }
                        (c, j)
                    })
                    .collect::<Vec<_>>()
            },
        );
        grouped.map_err(parquet_error)?;
        for (c, j) in texts {
            csv.write_all(c.as_bytes()).map_err(|e| csv.error(e))?;
            jsonl.write_all(&j).map_err(|e| jsonl.error(e))?;
        }
        done();
    }
    let parquet = parquet.into_inner().map_err(parquet_error)?;
    csv.keep()?;
    jsonl.keep()?;
    parquet.keep()
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::path::PathBuf;

    use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
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

    /// Rows written a chunk at a time give the files one pass over all of them would: the
    /// CSV and JSON Lines byte for byte, and a Parquet file with a row group per chunk whose
    /// column kinds come from every chunk.
    #[test]
    fn chunks_write_what_one_pass_writes() {
        let total = CHUNK_ROWS + 3;
        let row = |i: usize| {
            let mut r = Record::default();
            r.push("i", i);
            // An integer in the first chunk, a float in the second: DOUBLE.
            if i < CHUNK_ROWS {
                r.push("x", i);
            } else {
                r.push("x", num(0.5));
                r.push("late", format!("row {i}"));
            }
            r.push("none", Value::Null);
            r
        };
        let all: Vec<Record> = (0..total).map(row).collect();
        let d = dir("chunks");
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let count = || {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        write_rows_with(&d, "rows", total, |range| range.map(row).collect(), &count).unwrap();
        assert_eq!(calls.into_inner(), 4, "two chunks, two passes");
        let read = |ext: &str| std::fs::read_to_string(d.join(format!("rows.{ext}"))).unwrap();
        assert!(read("csv") == to_csv(&all), "CSV differs");
        assert!(read("jsonl") == to_jsonl(&all), "JSON Lines differ");
        let reader =
            SerializedFileReader::new(File::open(d.join("rows.parquet")).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), total as i64);
        assert_eq!(meta.num_row_groups(), 2);
        let schema = meta.file_metadata().schema_descr();
        let types: Vec<(String, PhysicalType)> = schema
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.physical_type()))
            .collect();
        let want = [
            ("i", PhysicalType::INT64),
            ("x", PhysicalType::DOUBLE),
            ("none", PhysicalType::DOUBLE),
            ("late", PhysicalType::BYTE_ARRAY),
        ];
        assert_eq!(
            types,
            want.map(|(k, t)| (k.to_string(), t)).to_vec(),
            "columns in the order first seen"
        );
        let rows = fields(&reader);
        assert_eq!(
            rows[7],
            vec![Field::Long(7), Field::Double(7.0), Field::Null, Field::Null]
        );
        let last = total - 1;
        assert_eq!(
            rows[last],
            vec![
                Field::Long(last as i64),
                Field::Double(0.5),
                Field::Null,
                Field::Str(format!("row {last}")),
            ]
        );
        let mut names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["rows.csv", "rows.jsonl", "rows.parquet"],
            "no temporary file left"
        );
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
            // Null in every row: a number, as most such columns are.
            ("none", PhysicalType::DOUBLE),
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

    /// A column null in every row is DOUBLE, so that the file reads together with one where
    /// the same column has numbers (a run whose instances all diverged beside one that did
    /// not); a text column keeps its text type.
    #[test]
    fn all_null_columns_keep_their_family_type() {
        let d = dir("all-null");
        let mut r = Record::default();
        r.push("q_err", Value::Null);
        r.push("pipeline", Value::Null);
        write_rows(&d, "rows", &[r]).unwrap();
        let reader =
            SerializedFileReader::new(File::open(d.join("rows.parquet")).unwrap()).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr();
        let types: Vec<_> = (0..2).map(|i| schema.column(i).physical_type()).collect();
        assert_eq!(types, [PhysicalType::DOUBLE, PhysicalType::BYTE_ARRAY]);
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
