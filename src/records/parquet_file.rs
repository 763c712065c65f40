//! Rows as a Parquet file: one OPTIONAL column per key, its physical type chosen from every
//! non-null value the column holds, a row group per chunk of rows.

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type as SchemaType;
use serde_json::Value;

use super::{field, plain_text, Layout, Record};
use crate::error::{Error, Result};

/// A Parquet column's physical type, chosen from all its non-null values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Int,
    Double,
    Text,
}

impl Kind {
    /// The kind of one value (none for null).
    pub(super) fn of_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => None,
            Value::Bool(_) => Some(Kind::Bool),
            Value::Number(n) if n.is_i64() => Some(Kind::Int),
            Value::Number(_) => Some(Kind::Double),
            Value::String(_) | Value::Array(_) | Value::Object(_) => Some(Kind::Text),
        }
    }

    /// The narrowest kind that holds values of kinds `a` and `b`: all bools, all integers that
    /// fit an i64, all numbers, or else text.
    pub(super) fn join(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        Some(match (a, b) {
            (None, k) | (k, None) => return k,
            (Some(a), Some(b)) if a == b => a,
            (Some(Kind::Int | Kind::Double), Some(Kind::Int | Kind::Double)) => Kind::Double,
            _ => Kind::Text,
        })
    }
}

/// The rows as an uncompressed Parquet file with one row group: one OPTIONAL column per key of
/// any row, in the order first seen (a row that lacks a key has null there). A column of bools is
/// BOOLEAN, of integers that fit an i64 INT64, of numbers DOUBLE; any other column (strings,
/// mixed kinds, all null) is a UTF8 string column holding strings as they are and other values
/// as their JSON text. No rows give a valid file with no columns and no row group. The same
/// rows always give the same bytes.
pub fn to_parquet(rows: &[Record]) -> Result<Vec<u8>> {
    let layout = Layout::of(rows);
    let parquet = || {
        let mut writer = parquet_writer(Vec::new(), &layout)?;
        parquet_group(&mut writer, &layout, rows)?;
        writer.into_inner()
    };
    parquet().map_err(|e| Error::Parquet(e.to_string()))
}

/// A Parquet writer of `layout`'s columns (see [`to_parquet`]) into `sink`.
pub(super) fn parquet_writer<W: Write + Send>(
    sink: W,
    layout: &Layout,
) -> Result<SerializedFileWriter<W>, ParquetError> {
    let fields = layout
        .keys
        .iter()
        .enumerate()
        .map(|(col, key)| {
            let (physical, logical) = match layout.kind(col) {
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
    SerializedFileWriter::new(
        sink,
        Arc::new(schema),
        Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::UNCOMPRESSED)
                .build(),
        ),
    )
}

/// Writes `rows` as one row group of `layout`'s columns (none when the layout has no column).
pub(super) fn parquet_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    layout: &Layout,
    rows: &[Record],
) -> Result<(), ParquetError> {
    if layout.keys.is_empty() {
        return Ok(());
    }
    let mut group = writer.next_row_group()?;
    for (col, key) in layout.keys.iter().enumerate() {
        let mut column = group
            .next_column()?
            .ok_or_else(|| ParquetError::General(format!("no column writer for {key:?}")))?;
        let values: Vec<&Value> = rows.iter().map(|r| field(r, col, key)).collect();
        let def: Vec<i16> = values.iter().map(|v| i16::from(!v.is_null())).collect();
        let present = values.iter().filter(|v| !v.is_null());
        match layout.kind(col) {
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
                    .map(|v| ByteArray::from(plain_text(v).into_owned().into_bytes()))
                    .collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&data, Some(&def), None)?;
            }
        }
        column.close()?;
    }
    group.close()?;
    Ok(())
}
