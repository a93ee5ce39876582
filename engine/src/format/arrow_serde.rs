//! Serde bridge between Arrow [`RecordBatch`]es and typed Rust records.
//!
//! Parquet/Arrow replay sources use [`deserialize_row`] to decode one row of a
//! batch straight into a user's `#[derive(Deserialize)]` record type, and the
//! Parquet sink uses [`BatchBuilder`] to turn a stream of
//! `#[derive(Serialize)]` outputs into `RecordBatch`es. Neither side goes
//! through an intermediate JSON value.
//!
//! # Reading (`deserialize_row`)
//!
//! The row is presented to serde as a map of column name -> cell. Columns the
//! record does not name are skipped without being decoded; fields without a
//! column produce serde's usual `missing field` error (or `None` for `Option`
//! fields). A null cell becomes `None` for `Option` fields and is an error
//! naming the column for any other field.
//!
//! | Arrow column type                     | Delivered to serde as              | Fills fields of type                  |
//! |---------------------------------------|------------------------------------|---------------------------------------|
//! | `Boolean`                             | `bool`                             | `bool`                                |
//! | `Int8`, `Int16`, `Int32`, `Int64`     | `i64`                              | any integer (range checked), `f32/64` |
//! | `UInt8`, `UInt16`, `UInt32`, `UInt64` | `u64`                              | any integer (range checked), `f32/64` |
//! | `Float32`, `Float64`                  | `f64`                              | `f64`, `f32`                          |
//! | `Utf8`, `LargeUtf8`, `Utf8View`       | `str`                              | `String`, `char`, unit enum variants  |
//! | `Timestamp(unit, _)`                  | `i64`, raw value in that unit      | `i64` (or another integer / float)    |
//! | `Date32`                              | `i64`, days since the Unix epoch   | `i32`, `i64`, ...                     |
//! | `Null`                                | null                               | `Option<_>`                           |
//!
//! Any other column type yields [`ArrowSerdeError::UnsupportedType`] when a
//! field asks for it.
//!
//! # Writing (`BatchBuilder`)
//!
//! Each pushed record must serialize as a struct; its fields become columns in
//! declaration order. All columns are nullable.
//!
//! | Rust field value                                   | Arrow column type          |
//! |----------------------------------------------------|----------------------------|
//! | `bool`                                             | `Boolean`                  |
//! | `i8`, `i16`, `i32`, `i64` (and `i128` that fits)   | `Int64`                    |
//! | `u8`, `u16`, `u32`, `u64` (and `u128` that fits)   | `UInt64`                   |
//! | `f32`, `f64`                                       | `Float64`                  |
//! | `str`, `String`, `char`, unit enum variant (name)  | `Utf8`                     |
//! | `None`, `()`, unit struct, skipped field           | null                       |
//! | `Some(x)`, newtype struct `W(x)`                   | the column type of `x`     |
//!
//! Sequences, maps, tuples, nested structs, bytes and data-carrying enum
//! variants are rejected with [`ArrowSerdeError::Unsupported`].
//!
//! A column's type is decided by the first non-null value seen for it. The
//! first [`BatchBuilder::finish`] fixes the schema for all later batches (so
//! every batch written to one Parquet file agrees); a column that was all-null
//! until then becomes `Utf8`. Afterwards an integer may still go into a
//! `Float64` column, a `u64` into an `Int64` column when it fits and a
//! non-negative `i64` into a `UInt64` column; any other mismatch is an error.

use std::fmt::{self, Display, Write as _};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, StringArray,
    StringBuilder, UInt64Builder,
};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Impossible, Serialize};

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Errors raised while converting between Arrow batches and serde records.
#[derive(Debug, thiserror::Error)]
pub enum ArrowSerdeError {
    /// A message produced by serde itself (derived impls, visitors, user
    /// `Serialize`/`Deserialize` impls), e.g. "missing field `x`".
    #[error("{0}")]
    Custom(String),

    /// A serde error that occurred while decoding or encoding one column.
    #[error("column `{column}`: {message}")]
    Column { column: String, message: String },

    /// A field asked for a column whose Arrow type the bridge cannot decode.
    #[error("column `{column}` has Arrow type {data_type}, which cannot be deserialized")]
    UnsupportedType { column: String, data_type: DataType },

    /// A null cell was read into a field that is not an `Option`.
    #[error("column `{column}` is null at row {row}, but the target field is not an Option")]
    UnexpectedNull { column: String, row: usize },

    /// `deserialize_row` was asked for a row past the end of the batch.
    #[error("row {row} is out of bounds for a batch of {num_rows} rows")]
    RowOutOfBounds { row: usize, num_rows: usize },

    /// A record field holds a value that has no column representation.
    #[error(
        "field `{field}`: unsupported value ({kind}); columns hold only booleans, integers, \
         floats, strings, unit enum variants, options and newtype wrappers of these"
    )]
    Unsupported { field: String, kind: &'static str },

    /// `BatchBuilder::push` was given something that does not serialize as a struct.
    #[error("BatchBuilder::push expects a struct record, got {kind}")]
    NotAStruct { kind: &'static str },

    /// A value does not fit the type already decided for its column.
    #[error("column `{column}` has type {expected}, but the record's value is {found}")]
    TypeMismatch {
        column: String,
        expected: DataType,
        found: String,
    },

    /// A record's field names differ from those of the first record.
    #[error(
        "record field #{position} is {}, but the schema learned from the first record expects {}",
        describe_field(.found),
        describe_field(.expected)
    )]
    FieldMismatch {
        position: usize,
        expected: Option<String>,
        found: Option<String>,
    },

    /// The first record names the same field twice.
    #[error("field `{field}` appears more than once in the record")]
    DuplicateField { field: String },

    /// Building the `RecordBatch` failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] ArrowError),
}

fn describe_field(name: &Option<String>) -> String {
    match name {
        Some(name) => format!("`{name}`"),
        None => "absent".to_owned(),
    }
}

impl ArrowSerdeError {
    /// Attaches a column name to a context-free serde message.
    fn in_column(self, column: &str) -> Self {
        match self {
            Self::Custom(message) => Self::Column {
                column: column.to_owned(),
                message,
            },
            other => other,
        }
    }
}

impl de::Error for ArrowSerdeError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}

impl ser::Error for ArrowSerdeError {
    fn custom<T: Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}

// ---------------------------------------------------------------------------
// Reading: RecordBatch row -> T
// ---------------------------------------------------------------------------

/// Deserializes row `row` of `batch` into `T`.
///
/// `T` is usually a `#[derive(Deserialize)]` struct whose field names match
/// column names; see the module docs for the type mapping.
///
/// # Errors
///
/// Fails when `row` is out of bounds, when a field needs a column of an
/// unsupported type, when a null meets a non-`Option` field, when a column is
/// missing for a required field, or when a value does not fit its field.
pub fn deserialize_row<T: de::DeserializeOwned>(
    batch: &RecordBatch,
    row: usize,
) -> Result<T, ArrowSerdeError> {
    let num_rows = batch.num_rows();
    if row >= num_rows {
        return Err(ArrowSerdeError::RowOutOfBounds { row, num_rows });
    }
    T::deserialize(RowDeserializer { batch, row })
}

/// One row of a batch, seen as a map of column name -> cell.
#[derive(Clone, Copy)]
struct RowDeserializer<'a> {
    batch: &'a RecordBatch,
    row: usize,
}

impl<'a> RowDeserializer<'a> {
    fn cell(self, index: usize) -> CellDeserializer<'a> {
        CellDeserializer {
            array: self.batch.column(index).as_ref(),
            name: self.batch.schema_ref().field(index).name(),
            row: self.row,
        }
    }
}

impl<'a> de::Deserializer<'a> for RowDeserializer<'a> {
    type Error = ArrowSerdeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(RowAccess { row: self, next: 0 })
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(RowAccess { row: self, next: 0 })
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_map(RowAccess { row: self, next: 0 })
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(RowAccess { row: self, next: 0 })
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf enum identifier
    }
}

/// Walks the columns of one row, as map entries or as sequence elements.
struct RowAccess<'a> {
    row: RowDeserializer<'a>,
    next: usize,
}

impl<'a> RowAccess<'a> {
    fn remaining(&self) -> usize {
        self.row.batch.num_columns().saturating_sub(self.next)
    }
}

impl<'a> MapAccess<'a> for RowAccess<'a> {
    type Error = ArrowSerdeError;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        if self.next >= self.row.batch.num_columns() {
            return Ok(None);
        }
        let name: &'a str = self.row.batch.schema_ref().field(self.next).name();
        seed.deserialize(BorrowedStrDeserializer::new(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let index = self.next;
        if index >= self.row.batch.num_columns() {
            return Err(de::Error::custom(
                "map value requested past the last column",
            ));
        }
        self.next += 1;
        let cell = self.row.cell(index);
        seed.deserialize(cell).map_err(|e| e.in_column(cell.name))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining())
    }
}

impl<'a> SeqAccess<'a> for RowAccess<'a> {
    type Error = ArrowSerdeError;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        if self.next >= self.row.batch.num_columns() {
            return Ok(None);
        }
        let cell = self.row.cell(self.next);
        self.next += 1;
        seed.deserialize(cell)
            .map(Some)
            .map_err(|e| e.in_column(cell.name))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining())
    }
}

/// A non-null cell value, widened to one of serde's core scalar kinds.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'a str),
}

fn visit_scalar<'a, V: Visitor<'a>>(
    scalar: Scalar<'a>,
    visitor: V,
) -> Result<V::Value, ArrowSerdeError> {
    match scalar {
        Scalar::Bool(v) => visitor.visit_bool(v),
        Scalar::I64(v) => visitor.visit_i64(v),
        Scalar::U64(v) => visitor.visit_u64(v),
        Scalar::F64(v) => visitor.visit_f64(v),
        Scalar::Str(v) => visitor.visit_borrowed_str(v),
    }
}

/// One cell: a column of the batch at a fixed row.
#[derive(Clone, Copy)]
struct CellDeserializer<'a> {
    array: &'a dyn Array,
    name: &'a str,
    row: usize,
}

impl<'a> CellDeserializer<'a> {
    fn is_null(self) -> bool {
        self.array.is_null(self.row) || *self.array.data_type() == DataType::Null
    }

    /// The cell's value, or an error naming the column if it is null.
    fn value(self) -> Result<Scalar<'a>, ArrowSerdeError> {
        if self.is_null() {
            return Err(ArrowSerdeError::UnexpectedNull {
                column: self.name.to_owned(),
                row: self.row,
            });
        }
        self.scalar()
    }

    fn downcast_error(self) -> ArrowSerdeError {
        ArrowSerdeError::Column {
            column: self.name.to_owned(),
            message: format!(
                "array does not match its declared type {}",
                self.array.data_type()
            ),
        }
    }

    fn primitive<T: ArrowPrimitiveType>(self) -> Result<T::Native, ArrowSerdeError> {
        self.array
            .as_primitive_opt::<T>()
            .map(|a| a.value(self.row))
            .ok_or_else(|| self.downcast_error())
    }

    /// Reads the (non-null) cell. Only called after the null check.
    fn scalar(self) -> Result<Scalar<'a>, ArrowSerdeError> {
        let row = self.row;
        let array: &'a dyn Array = self.array;
        Ok(match array.data_type() {
            DataType::Boolean => Scalar::Bool(
                array
                    .as_boolean_opt()
                    .ok_or_else(|| self.downcast_error())?
                    .value(row),
            ),
            DataType::Int8 => Scalar::I64(self.primitive::<Int8Type>()?.into()),
            DataType::Int16 => Scalar::I64(self.primitive::<Int16Type>()?.into()),
            DataType::Int32 => Scalar::I64(self.primitive::<Int32Type>()?.into()),
            DataType::Int64 => Scalar::I64(self.primitive::<Int64Type>()?),
            DataType::UInt8 => Scalar::U64(self.primitive::<UInt8Type>()?.into()),
            DataType::UInt16 => Scalar::U64(self.primitive::<UInt16Type>()?.into()),
            DataType::UInt32 => Scalar::U64(self.primitive::<UInt32Type>()?.into()),
            DataType::UInt64 => Scalar::U64(self.primitive::<UInt64Type>()?),
            DataType::Float32 => Scalar::F64(self.primitive::<Float32Type>()?.into()),
            DataType::Float64 => Scalar::F64(self.primitive::<Float64Type>()?),
            DataType::Utf8 => Scalar::Str(
                array
                    .as_string_opt::<i32>()
                    .ok_or_else(|| self.downcast_error())?
                    .value(row),
            ),
            DataType::LargeUtf8 => Scalar::Str(
                array
                    .as_string_opt::<i64>()
                    .ok_or_else(|| self.downcast_error())?
                    .value(row),
            ),
            DataType::Utf8View => Scalar::Str(
                array
                    .as_string_view_opt()
                    .ok_or_else(|| self.downcast_error())?
                    .value(row),
            ),
            DataType::Timestamp(unit, _) => Scalar::I64(match unit {
                TimeUnit::Second => self.primitive::<TimestampSecondType>()?,
                TimeUnit::Millisecond => self.primitive::<TimestampMillisecondType>()?,
                TimeUnit::Microsecond => self.primitive::<TimestampMicrosecondType>()?,
                TimeUnit::Nanosecond => self.primitive::<TimestampNanosecondType>()?,
            }),
            DataType::Date32 => Scalar::I64(self.primitive::<Date32Type>()?.into()),
            other => {
                return Err(ArrowSerdeError::UnsupportedType {
                    column: self.name.to_owned(),
                    data_type: other.clone(),
                });
            }
        })
    }
}

macro_rules! deserialize_signed {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self.value()? {
                Scalar::U64(v) => match i64::try_from(v) {
                    Ok(v) => visitor.visit_i64(v),
                    Err(_) => visitor.visit_u64(v),
                },
                other => visit_scalar(other, visitor),
            }
        }
    )*};
}

macro_rules! deserialize_unsigned {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self.value()? {
                Scalar::I64(v) => match u64::try_from(v) {
                    Ok(v) => visitor.visit_u64(v),
                    Err(_) => visitor.visit_i64(v),
                },
                other => visit_scalar(other, visitor),
            }
        }
    )*};
}

macro_rules! deserialize_float {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self.value()? {
                Scalar::I64(v) => visitor.visit_f64(v as f64),
                Scalar::U64(v) => visitor.visit_f64(v as f64),
                other => visit_scalar(other, visitor),
            }
        }
    )*};
}

macro_rules! deserialize_plain {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            visit_scalar(self.value()?, visitor)
        }
    )*};
}

impl<'a> de::Deserializer<'a> for CellDeserializer<'a> {
    type Error = ArrowSerdeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.is_null() {
            return visitor.visit_none();
        }
        visit_scalar(self.scalar()?, visitor)
    }

    deserialize_signed! { deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128 }
    deserialize_unsigned! { deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128 }
    deserialize_float! { deserialize_f32 deserialize_f64 }
    deserialize_plain! {
        deserialize_bool deserialize_char deserialize_str deserialize_string deserialize_identifier
        deserialize_seq deserialize_map
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value()? {
            Scalar::Str(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            other => visit_scalar(other, visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.is_null() {
            visitor.visit_unit()
        } else {
            visit_scalar(self.scalar()?, visitor)
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'a>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visit_scalar(self.value()?, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visit_scalar(self.value()?, visitor)
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visit_scalar(self.value()?, visitor)
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value()? {
            Scalar::Str(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            other => visit_scalar(other, visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }
}

// ---------------------------------------------------------------------------
// Writing: T -> RecordBatch
// ---------------------------------------------------------------------------

/// Accumulates serde records (structs) into Arrow [`RecordBatch`]es.
///
/// See the module docs for the type mapping and schema rules.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    columns: Vec<Column>,
    /// Whether the field names have been learned from a first record.
    names_known: bool,
    /// Set by the first `finish`; later batches reuse it.
    fixed_schema: Option<SchemaRef>,
    rows: usize,
    stage: Stage,
}

impl BatchBuilder {
    /// An empty builder that learns its schema from the first record pushed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one record. On error the builder is left unchanged.
    ///
    /// # Errors
    ///
    /// Fails when `record` is not a struct, when a field holds an unsupported
    /// value, when its field names differ from the first record's, or when a
    /// value does not fit the type already decided for its column.
    pub fn push<T: Serialize>(&mut self, record: &T) -> Result<(), ArrowSerdeError> {
        self.stage.clear();
        record.serialize(RecordSerializer {
            stage: &mut self.stage,
        })?;
        let stage = &self.stage;

        if self.names_known {
            check_names(&self.columns, &stage.names)?;
            // Validate every cell before touching any column so that a failed
            // push leaves all columns the same length.
            for (column, &cell) in self.columns.iter_mut().zip(&stage.cells) {
                column.data.accept(cell, &stage.text, &column.name, false)?;
            }
        } else {
            for (i, name) in stage.names.iter().enumerate() {
                if stage.names[..i].contains(name) {
                    return Err(ArrowSerdeError::DuplicateField {
                        field: (*name).to_owned(),
                    });
                }
            }
            self.columns = stage
                .names
                .iter()
                .map(|name| Column {
                    name: (*name).to_owned(),
                    data: ColumnData::Undecided { nulls: self.rows },
                })
                .collect();
            self.names_known = true;
        }

        for (column, &cell) in self.columns.iter_mut().zip(&stage.cells) {
            column.data.accept(cell, &stage.text, &column.name, true)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Number of records buffered since the last `finish`.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no records are buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Builds a batch from the buffered records and resets the builder for
    /// reuse. The first call fixes the schema for all later batches.
    ///
    /// Before any record has been pushed, returns an empty batch with an empty
    /// schema and fixes nothing.
    ///
    /// # Errors
    ///
    /// Only if Arrow rejects the assembled columns, which indicates a bug.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowSerdeError> {
        if !self.names_known {
            return Ok(RecordBatch::new_empty(Arc::new(Schema::empty())));
        }
        let schema = match &self.fixed_schema {
            Some(schema) => schema.clone(),
            None => {
                let schema = self.current_schema();
                self.fixed_schema = Some(schema.clone());
                schema
            }
        };
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(|c| c.data.finish()).collect();
        let rows = std::mem::take(&mut self.rows);
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(schema, arrays, &options)?)
    }

    /// The schema of the batches this builder produces: the fixed schema once
    /// a batch has been finished, before that the schema the next `finish`
    /// would fix, and `None` before the first record.
    pub fn schema(&self) -> Option<SchemaRef> {
        if let Some(schema) = &self.fixed_schema {
            return Some(schema.clone());
        }
        self.names_known.then(|| self.current_schema())
    }

    fn current_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(c.name.as_str(), c.data.data_type(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

fn check_names(columns: &[Column], names: &[&'static str]) -> Result<(), ArrowSerdeError> {
    if columns.len() == names.len() && columns.iter().zip(names).all(|(c, n)| c.name == *n) {
        return Ok(());
    }
    for position in 0..columns.len().max(names.len()) {
        let expected = columns.get(position).map(|c| c.name.as_str());
        let found = names.get(position).copied();
        if expected != found {
            return Err(ArrowSerdeError::FieldMismatch {
                position,
                expected: expected.map(str::to_owned),
                found: found.map(str::to_owned),
            });
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Column {
    name: String,
    data: ColumnData,
}

/// Per-column buffer; the variant is the column's decided type.
#[derive(Debug)]
enum ColumnData {
    /// No non-null value seen yet (only before the first `finish`).
    Undecided {
        nulls: usize,
    },
    Bool(BooleanBuilder),
    I64(Int64Builder),
    U64(UInt64Builder),
    F64(Float64Builder),
    Str(StringBuilder),
}

impl ColumnData {
    fn data_type(&self) -> DataType {
        match self {
            Self::Undecided { .. } | Self::Str(_) => DataType::Utf8,
            Self::Bool(_) => DataType::Boolean,
            Self::I64(_) => DataType::Int64,
            Self::U64(_) => DataType::UInt64,
            Self::F64(_) => DataType::Float64,
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Undecided { nulls } => *nulls += 1,
            Self::Bool(b) => b.append_null(),
            Self::I64(b) => b.append_null(),
            Self::U64(b) => b.append_null(),
            Self::F64(b) => b.append_null(),
            Self::Str(b) => b.append_null(),
        }
    }

    /// Checks (`commit == false`) or appends (`commit == true`) one cell.
    /// Both modes apply the same rules, so a checked cell always commits.
    fn accept(
        &mut self,
        cell: Staged,
        text: &str,
        column: &str,
        commit: bool,
    ) -> Result<(), ArrowSerdeError> {
        if commit && let Self::Undecided { nulls } = *self {
            let decided = match cell {
                Staged::Null => None,
                Staged::Bool(_) => Some(Self::Bool(BooleanBuilder::new())),
                Staged::I64(_) => Some(Self::I64(Int64Builder::new())),
                Staged::U64(_) => Some(Self::U64(UInt64Builder::new())),
                Staged::F64(_) => Some(Self::F64(Float64Builder::new())),
                Staged::Str { .. } => Some(Self::Str(StringBuilder::new())),
            };
            if let Some(mut decided) = decided {
                for _ in 0..nulls {
                    decided.append_null();
                }
                *self = decided;
            }
        }
        let mismatch = |expected: DataType, extra: &str| ArrowSerdeError::TypeMismatch {
            column: column.to_owned(),
            expected,
            found: format!("{}{extra}", cell.describe()),
        };
        match (self, cell) {
            (data, Staged::Null) => {
                if commit {
                    data.append_null();
                }
            }
            // Any value may decide an undecided column (only seen when checking).
            (Self::Undecided { .. }, _) => {}
            (Self::Bool(b), Staged::Bool(v)) => {
                if commit {
                    b.append_value(v);
                }
            }
            (Self::I64(b), Staged::I64(v)) => {
                if commit {
                    b.append_value(v);
                }
            }
            (Self::I64(b), Staged::U64(v)) => {
                let v = i64::try_from(v)
                    .map_err(|_| mismatch(DataType::Int64, ", which does not fit in Int64"))?;
                if commit {
                    b.append_value(v);
                }
            }
            (Self::U64(b), Staged::U64(v)) => {
                if commit {
                    b.append_value(v);
                }
            }
            (Self::U64(b), Staged::I64(v)) => {
                let v = u64::try_from(v)
                    .map_err(|_| mismatch(DataType::UInt64, ", which does not fit in UInt64"))?;
                if commit {
                    b.append_value(v);
                }
            }
            (Self::F64(b), Staged::F64(v)) => {
                if commit {
                    b.append_value(v);
                }
            }
            (Self::F64(b), Staged::I64(v)) => {
                if commit {
                    b.append_value(v as f64);
                }
            }
            (Self::F64(b), Staged::U64(v)) => {
                if commit {
                    b.append_value(v as f64);
                }
            }
            (Self::Str(b), Staged::Str { start, end }) => {
                if commit {
                    b.append_value(&text[start..end]);
                }
            }
            (data, _) => return Err(mismatch(data.data_type(), "")),
        }
        Ok(())
    }

    /// Takes the buffered values as an array, leaving an empty buffer of the
    /// same type (an undecided column becomes `Utf8`).
    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Undecided { nulls } => {
                let array = Arc::new(StringArray::new_null(*nulls));
                *self = Self::Str(StringBuilder::new());
                array
            }
            Self::Bool(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::U64(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Str(b) => Arc::new(b.finish()),
        }
    }
}

/// One serialized field value, before it is checked against its column.
/// Strings live in [`Stage::text`] so staging a record does not allocate once
/// the buffers have grown.
#[derive(Debug, Clone, Copy)]
enum Staged {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str { start: usize, end: usize },
}

impl Staged {
    fn describe(self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(v) => format!("the boolean {v}"),
            Self::I64(v) => format!("the signed integer {v}"),
            Self::U64(v) => format!("the unsigned integer {v}"),
            Self::F64(v) => format!("the float {v}"),
            Self::Str { .. } => "a string".to_owned(),
        }
    }
}

/// Scratch space for the record being pushed (reused across pushes).
#[derive(Debug, Default)]
struct Stage {
    names: Vec<&'static str>,
    cells: Vec<Staged>,
    text: String,
}

impl Stage {
    fn clear(&mut self) {
        self.names.clear();
        self.cells.clear();
        self.text.clear();
    }
}

/// Serializes the top-level record; only structs (possibly behind newtype
/// wrappers or `Some`) are accepted.
struct RecordSerializer<'s> {
    stage: &'s mut Stage,
}

impl RecordSerializer<'_> {
    fn not_a_struct<T>(kind: &'static str) -> Result<T, ArrowSerdeError> {
        Err(ArrowSerdeError::NotAStruct { kind })
    }
}

impl<'s> ser::Serializer for RecordSerializer<'s> {
    type Ok = ();
    type Error = ArrowSerdeError;
    type SerializeSeq = Impossible<(), ArrowSerdeError>;
    type SerializeTuple = Impossible<(), ArrowSerdeError>;
    type SerializeTupleStruct = Impossible<(), ArrowSerdeError>;
    type SerializeTupleVariant = Impossible<(), ArrowSerdeError>;
    type SerializeMap = Impossible<(), ArrowSerdeError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), ArrowSerdeError>;

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Ok(self)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Self::Error> {
        value.serialize(self)
    }

    fn serialize_bool(self, _v: bool) -> Result<(), Self::Error> {
        Self::not_a_struct("a boolean")
    }
    fn serialize_i8(self, _v: i8) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_i16(self, _v: i16) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_i32(self, _v: i32) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_i64(self, _v: i64) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_i128(self, _v: i128) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_u8(self, _v: u8) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_u16(self, _v: u16) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_u32(self, _v: u32) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_u64(self, _v: u64) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_u128(self, _v: u128) -> Result<(), Self::Error> {
        Self::not_a_struct("an integer")
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Self::Error> {
        Self::not_a_struct("a float")
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Self::Error> {
        Self::not_a_struct("a float")
    }
    fn serialize_char(self, _v: char) -> Result<(), Self::Error> {
        Self::not_a_struct("a char")
    }
    fn serialize_str(self, _v: &str) -> Result<(), Self::Error> {
        Self::not_a_struct("a string")
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Self::Error> {
        Self::not_a_struct("bytes")
    }
    fn serialize_none(self) -> Result<(), Self::Error> {
        Self::not_a_struct("None")
    }
    fn serialize_unit(self) -> Result<(), Self::Error> {
        Self::not_a_struct("()")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Self::Error> {
        Self::not_a_struct("a unit struct")
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<(), Self::Error> {
        Self::not_a_struct("an enum variant")
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Self::Error> {
        Self::not_a_struct("an enum variant")
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Self::not_a_struct("a sequence")
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Self::not_a_struct("a tuple")
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Self::not_a_struct("a tuple struct")
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        Self::not_a_struct("an enum variant")
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Self::not_a_struct("a map")
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Self::not_a_struct("an enum variant")
    }
}

impl ser::SerializeStruct for RecordSerializer<'_> {
    type Ok = ();
    type Error = ArrowSerdeError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        let cell = value
            .serialize(FieldSerializer {
                text: &mut self.stage.text,
                field: key,
            })
            .map_err(|e| e.in_column(key))?;
        self.stage.names.push(key);
        self.stage.cells.push(cell);
        Ok(())
    }

    /// A field skipped by `#[serde(skip_serializing_if = ...)]` is a null.
    fn skip_field(&mut self, key: &'static str) -> Result<(), Self::Error> {
        self.stage.names.push(key);
        self.stage.cells.push(Staged::Null);
        Ok(())
    }

    fn end(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Serializes one field value into a [`Staged`] cell.
struct FieldSerializer<'s> {
    text: &'s mut String,
    field: &'static str,
}

impl FieldSerializer<'_> {
    fn unsupported<T>(self, kind: &'static str) -> Result<T, ArrowSerdeError> {
        Err(ArrowSerdeError::Unsupported {
            field: self.field.to_owned(),
            kind,
        })
    }

    fn string(self, s: &str) -> Staged {
        let start = self.text.len();
        self.text.push_str(s);
        Staged::Str {
            start,
            end: self.text.len(),
        }
    }
}

impl<'s> ser::Serializer for FieldSerializer<'s> {
    type Ok = Staged;
    type Error = ArrowSerdeError;
    type SerializeSeq = Impossible<Staged, ArrowSerdeError>;
    type SerializeTuple = Impossible<Staged, ArrowSerdeError>;
    type SerializeTupleStruct = Impossible<Staged, ArrowSerdeError>;
    type SerializeTupleVariant = Impossible<Staged, ArrowSerdeError>;
    type SerializeMap = Impossible<Staged, ArrowSerdeError>;
    type SerializeStruct = Impossible<Staged, ArrowSerdeError>;
    type SerializeStructVariant = Impossible<Staged, ArrowSerdeError>;

    fn serialize_bool(self, v: bool) -> Result<Staged, Self::Error> {
        Ok(Staged::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Staged, Self::Error> {
        Ok(Staged::I64(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Staged, Self::Error> {
        Ok(Staged::I64(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Staged, Self::Error> {
        Ok(Staged::I64(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Staged, Self::Error> {
        Ok(Staged::I64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Staged, Self::Error> {
        match i64::try_from(v) {
            Ok(v) => Ok(Staged::I64(v)),
            Err(_) => self.unsupported("i128 outside the i64 range"),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<Staged, Self::Error> {
        Ok(Staged::U64(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Staged, Self::Error> {
        Ok(Staged::U64(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Staged, Self::Error> {
        Ok(Staged::U64(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Staged, Self::Error> {
        Ok(Staged::U64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<Staged, Self::Error> {
        match u64::try_from(v) {
            Ok(v) => Ok(Staged::U64(v)),
            Err(_) => self.unsupported("u128 outside the u64 range"),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<Staged, Self::Error> {
        Ok(Staged::F64(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Staged, Self::Error> {
        Ok(Staged::F64(v))
    }
    fn serialize_char(self, v: char) -> Result<Staged, Self::Error> {
        Ok(self.string(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<Staged, Self::Error> {
        Ok(self.string(v))
    }
    fn collect_str<T: ?Sized + Display>(self, value: &T) -> Result<Staged, Self::Error> {
        let start = self.text.len();
        write!(self.text, "{value}").map_err(|fmt::Error| {
            <ArrowSerdeError as ser::Error>::custom("Display implementation returned an error")
        })?;
        Ok(Staged::Str {
            start,
            end: self.text.len(),
        })
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<Staged, Self::Error> {
        self.unsupported("bytes")
    }
    fn serialize_none(self) -> Result<Staged, Self::Error> {
        Ok(Staged::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Staged, Self::Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Staged, Self::Error> {
        Ok(Staged::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Staged, Self::Error> {
        Ok(Staged::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Staged, Self::Error> {
        Ok(self.string(variant))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Staged, Self::Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<Staged, Self::Error> {
        self.unsupported("enum variant with data")
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        self.unsupported("sequence")
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Self::Error> {
        self.unsupported("tuple")
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        self.unsupported("tuple struct")
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        self.unsupported("enum variant with data")
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        self.unsupported("map")
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        self.unsupported("nested struct")
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        self.unsupported("enum variant with data")
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BinaryArray, Date32Array, Float64Array, Int32Array, Int64Array, LargeStringArray,
        StringViewArray, TimestampMillisecondArray, UInt64Array,
    };
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    enum Side {
        Buy,
        Sell,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Trade {
        id: i64,
        qty: u32,
        price: f64,
        active: bool,
        symbol: String,
        fee: Option<f64>,
        side: Side,
    }

    fn trades() -> Vec<Trade> {
        (0..5)
            .map(|i| Trade {
                id: i - 2,
                qty: (i as u32) * 10,
                price: 100.5 + i as f64,
                active: i % 2 == 0,
                symbol: format!("SYM{i}"),
                fee: if i % 2 == 0 {
                    None
                } else {
                    Some(0.25 * i as f64)
                },
                side: if i < 3 { Side::Buy } else { Side::Sell },
            })
            .collect()
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn round_trip_through_batch_builder() {
        let input = trades();
        let mut builder = BatchBuilder::new();
        assert!(builder.is_empty());
        assert!(builder.schema().is_none());
        for t in &input {
            builder.push(t).unwrap();
        }
        assert_eq!(builder.len(), input.len());
        let batch = builder.finish().unwrap();
        assert!(builder.is_empty());
        assert_eq!(batch.num_rows(), input.len());

        let types: Vec<(String, DataType, bool)> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect();
        let expected = [
            ("id", DataType::Int64),
            ("qty", DataType::UInt64),
            ("price", DataType::Float64),
            ("active", DataType::Boolean),
            ("symbol", DataType::Utf8),
            ("fee", DataType::Float64),
            ("side", DataType::Utf8),
        ]
        .map(|(n, t)| (n.to_owned(), t, true));
        assert_eq!(types, expected);
        assert_eq!(batch.column(5).null_count(), 3);

        let output: Vec<Trade> = (0..batch.num_rows())
            .map(|row| deserialize_row(&batch, row).unwrap())
            .collect();
        assert_eq!(output, input);
    }

    #[test]
    fn type_mismatch_is_an_error_and_leaves_builder_unchanged() {
        #[derive(Serialize)]
        struct A {
            k: i64,
            v: i64,
        }
        #[derive(Serialize)]
        struct B {
            k: i64,
            v: String,
        }
        let mut builder = BatchBuilder::new();
        builder.push(&A { k: 1, v: 1 }).unwrap();
        let err = builder
            .push(&B {
                k: 2,
                v: "x".into(),
            })
            .unwrap_err();
        assert!(
            matches!(&err, ArrowSerdeError::TypeMismatch { column, expected: DataType::Int64, .. } if column == "v"),
            "{err:?}"
        );
        assert!(err.to_string().contains("`v`"), "{err}");
        assert_eq!(builder.len(), 1);

        // Integers may widen into a Float64 column; a u64 into Int64 if it fits.
        #[derive(Serialize)]
        struct F {
            k: u64,
            v: f64,
        }
        #[derive(Serialize)]
        struct I {
            k: u64,
            v: i32,
        }
        let mut builder = BatchBuilder::new();
        builder.push(&F { k: 1, v: 0.5 }).unwrap();
        builder.push(&I { k: 2, v: 7 }).unwrap();
        builder.push(&A { k: 3, v: -1 }).unwrap();
        let err = builder.push(&A { k: -3, v: -1 }).unwrap_err();
        assert!(
            matches!(err, ArrowSerdeError::TypeMismatch { .. }),
            "{err:?}"
        );
        let mut builder2 = BatchBuilder::new();
        builder2.push(&A { k: 1, v: 1 }).unwrap();
        builder2.push(&F { k: 5, v: 1.0 }).unwrap_err();
        let err = builder2.push(&I { k: u64::MAX, v: 1 }).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
        builder2.push(&I { k: 9, v: 1 }).unwrap();
        assert_eq!(builder2.len(), 2);

        let batch = builder.finish().unwrap();
        assert_eq!(
            batch.column(1).as_primitive::<Float64Type>().values(),
            &[0.5, 7.0, -1.0]
        );
        let batch2 = builder2.finish().unwrap();
        assert_eq!(
            batch2.column(0).as_primitive::<Int64Type>().values(),
            &[1, 9]
        );
    }

    #[test]
    fn field_name_mismatch_is_an_error() {
        #[derive(Serialize)]
        struct A {
            a: i64,
            b: i64,
        }
        #[derive(Serialize)]
        struct B {
            a: i64,
            c: i64,
        }
        #[derive(Serialize)]
        struct C {
            a: i64,
        }
        let mut builder = BatchBuilder::new();
        builder.push(&A { a: 1, b: 2 }).unwrap();
        let err = builder.push(&B { a: 1, c: 2 }).unwrap_err();
        assert!(
            err.to_string().contains("`c`") && err.to_string().contains("`b`"),
            "{err}"
        );
        let err = builder.push(&C { a: 1 }).unwrap_err();
        assert!(
            matches!(
                err,
                ArrowSerdeError::FieldMismatch {
                    position: 1,
                    found: None,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(builder.len(), 1);
    }

    #[test]
    fn unsupported_values_are_errors() {
        #[derive(Serialize)]
        struct Nested {
            x: i64,
        }
        #[derive(Serialize)]
        struct WithVec {
            id: i64,
            tags: Vec<String>,
        }
        #[derive(Serialize)]
        struct WithNested {
            id: i64,
            inner: Nested,
        }
        let mut builder = BatchBuilder::new();
        let err = builder
            .push(&WithVec {
                id: 1,
                tags: vec![],
            })
            .unwrap_err();
        assert!(
            matches!(&err, ArrowSerdeError::Unsupported { field, .. } if field == "tags"),
            "{err:?}"
        );
        let err = builder
            .push(&WithNested {
                id: 1,
                inner: Nested { x: 1 },
            })
            .unwrap_err();
        assert!(err.to_string().contains("`inner`"), "{err}");
        let err = builder.push(&5_i64).unwrap_err();
        assert!(matches!(err, ArrowSerdeError::NotAStruct { .. }), "{err:?}");
        assert!(builder.schema().is_none());
        assert!(builder.is_empty());
    }

    #[test]
    fn null_into_non_option_is_an_error() {
        #[derive(Debug, Deserialize)]
        struct Row {
            #[allow(dead_code)]
            value: i64,
        }
        let b = batch(vec![(
            "value",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        )]);
        assert_eq!(deserialize_row::<Row>(&b, 0).unwrap().value, 1);
        let err = deserialize_row::<Row>(&b, 1).unwrap_err();
        assert!(
            matches!(&err, ArrowSerdeError::UnexpectedNull { column, row: 1 } if column == "value"),
            "{err:?}"
        );
        assert!(err.to_string().contains("`value`"), "{err}");
        let err = deserialize_row::<Row>(&b, 2).unwrap_err();
        assert!(matches!(
            err,
            ArrowSerdeError::RowOutOfBounds {
                row: 2,
                num_rows: 2
            }
        ));
    }

    #[test]
    fn unknown_columns_are_skipped_and_missing_ones_reported() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Row {
            id: i64,
            name: String,
        }
        let b = batch(vec![
            ("extra", Arc::new(StringArray::from(vec!["e"])) as ArrayRef),
            ("id", Arc::new(Int32Array::from(vec![7])) as ArrayRef),
            // An unsupported type in an ignored column must not matter.
            (
                "blob",
                Arc::new(BinaryArray::from(vec![&b"xy"[..]])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec!["seven"])) as ArrayRef,
            ),
        ]);
        let row: Row = deserialize_row(&b, 0).unwrap();
        assert_eq!(
            row,
            Row {
                id: 7,
                name: "seven".into()
            }
        );

        #[derive(Debug, Deserialize)]
        struct NeedsBlob {
            #[allow(dead_code)]
            blob: Vec<u8>,
        }
        let err = deserialize_row::<NeedsBlob>(&b, 0).unwrap_err();
        assert!(
            matches!(&err, ArrowSerdeError::UnsupportedType { column, data_type: DataType::Binary } if column == "blob"),
            "{err:?}"
        );

        #[derive(Debug, Deserialize)]
        struct Missing {
            #[allow(dead_code)]
            id: i64,
            #[allow(dead_code)]
            absent: i64,
            opt: Option<i64>,
        }
        let err = deserialize_row::<Missing>(&b, 0).unwrap_err();
        assert!(err.to_string().contains("missing field `absent`"), "{err}");
        let b2 = batch(vec![
            ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("absent", Arc::new(Int64Array::from(vec![2])) as ArrayRef),
        ]);
        assert_eq!(deserialize_row::<Missing>(&b2, 0).unwrap().opt, None);
    }

    #[test]
    fn numeric_coercions() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Row {
            a: f64,
            b: u32,
            c: f32,
            d: i64,
            e: Option<u8>,
        }
        let b = batch(vec![
            ("a", Arc::new(Int64Array::from(vec![3, -4])) as ArrayRef),
            ("b", Arc::new(Int64Array::from(vec![5, -1])) as ArrayRef),
            (
                "c",
                Arc::new(Float64Array::from(vec![1.5, 2.5])) as ArrayRef,
            ),
            ("d", Arc::new(UInt64Array::from(vec![9, 10])) as ArrayRef),
            (
                "e",
                Arc::new(Int32Array::from(vec![Some(200), Some(300)])) as ArrayRef,
            ),
        ]);
        assert_eq!(
            deserialize_row::<Row>(&b, 0).unwrap(),
            Row {
                a: 3.0,
                b: 5,
                c: 1.5,
                d: 9,
                e: Some(200)
            }
        );
        // -1 does not fit a u32: the error names the column.
        let err = deserialize_row::<Row>(&b, 1).unwrap_err();
        assert!(
            matches!(&err, ArrowSerdeError::Column { column, .. } if column == "b"),
            "{err:?}"
        );
    }

    #[test]
    fn timestamp_date_and_string_variants() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Row {
            ts: i64,
            day: i32,
            large: String,
            view: String,
            side: Side,
            letter: char,
        }
        let b = batch(vec![
            (
                "ts",
                Arc::new(
                    TimestampMillisecondArray::from(vec![1_700_000_000_123]).with_timezone("UTC"),
                ) as ArrayRef,
            ),
            ("day", Arc::new(Date32Array::from(vec![19_000])) as ArrayRef),
            (
                "large",
                Arc::new(LargeStringArray::from(vec!["big"])) as ArrayRef,
            ),
            (
                "view",
                Arc::new(StringViewArray::from(vec![
                    "a view string longer than twelve",
                ])) as ArrayRef,
            ),
            (
                "side",
                Arc::new(StringArray::from(vec!["Sell"])) as ArrayRef,
            ),
            ("letter", Arc::new(StringArray::from(vec!["z"])) as ArrayRef),
        ]);
        assert_eq!(
            deserialize_row::<Row>(&b, 0).unwrap(),
            Row {
                ts: 1_700_000_000_123,
                day: 19_000,
                large: "big".into(),
                view: "a view string longer than twelve".into(),
                side: Side::Sell,
                letter: 'z',
            }
        );

        #[derive(Debug, Deserialize)]
        struct BadSide {
            #[allow(dead_code)]
            side: Side,
        }
        let b = batch(vec![(
            "side",
            Arc::new(StringArray::from(vec!["Hold"])) as ArrayRef,
        )]);
        let err = deserialize_row::<BadSide>(&b, 0).unwrap_err();
        assert!(
            err.to_string().contains("`side`") && err.to_string().contains("Hold"),
            "{err}"
        );
    }

    #[test]
    fn deserialize_any_into_dynamic_values() {
        let b = batch(vec![
            ("n", Arc::new(Int64Array::from(vec![Some(1)])) as ArrayRef),
            (
                "s",
                Arc::new(StringArray::from(vec![None::<&str>])) as ArrayRef,
            ),
        ]);
        let v: serde_json::Value = deserialize_row(&b, 0).unwrap();
        assert_eq!(v, serde_json::json!({"n": 1, "s": null}));
        let t: (i64, Option<String>) = deserialize_row(&b, 0).unwrap();
        assert_eq!(t, (1, None));
    }

    #[test]
    fn two_batches_keep_the_same_schema() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Row {
            id: u64,
            note: Option<String>,
            score: Option<i64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tag: Option<Side>,
        }
        let mut builder = BatchBuilder::new();
        builder
            .push(&Row {
                id: 1,
                note: None,
                score: None,
                tag: None,
            })
            .unwrap();
        let first = builder.finish().unwrap();
        let schema = builder.schema().unwrap();
        assert_eq!(first.schema(), schema);
        assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
        assert_eq!(schema.field(2).data_type(), &DataType::Utf8);
        assert_eq!(schema.field(3).data_type(), &DataType::Utf8);

        // The all-null integer column was fixed to Utf8: integers no longer fit.
        let err = builder
            .push(&Row {
                id: 2,
                note: Some("n".into()),
                score: Some(5),
                tag: None,
            })
            .unwrap_err();
        assert!(
            matches!(&err, ArrowSerdeError::TypeMismatch { column, .. } if column == "score"),
            "{err:?}"
        );

        let second_rows = [
            Row {
                id: 2,
                note: Some("n".into()),
                score: None,
                tag: Some(Side::Buy),
            },
            Row {
                id: 3,
                note: None,
                score: None,
                tag: None,
            },
        ];
        for r in &second_rows {
            builder.push(r).unwrap();
        }
        let second = builder.finish().unwrap();
        assert_eq!(second.schema(), first.schema());
        assert_eq!(second.num_rows(), 2);
        let back: Vec<Row> = (0..2)
            .map(|i| deserialize_row(&second, i).unwrap())
            .collect();
        assert_eq!(back, second_rows);

        let empty = builder.finish().unwrap();
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.schema(), first.schema());
    }

    #[test]
    fn newtypes_chars_and_empty_builder() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Id(u64);
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Row {
            id: Id,
            c: char,
            big: i128,
        }
        let mut builder = BatchBuilder::new();
        assert_eq!(builder.finish().unwrap().num_columns(), 0);
        assert!(builder.schema().is_none());
        let row = Row {
            id: Id(4),
            c: 'é',
            big: -12,
        };
        builder.push(&row).unwrap();
        let b = builder.finish().unwrap();
        assert_eq!(b.schema().field(0).data_type(), &DataType::UInt64);
        assert_eq!(b.schema().field(2).data_type(), &DataType::Int64);
        assert_eq!(deserialize_row::<Row>(&b, 0).unwrap(), row);
    }
}
