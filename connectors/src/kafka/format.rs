//! How Kafka record values become records and records become values: bytes, UTF-8
//! strings, JSON into or out of any serde type, and CSV rows.
//!
//! A deserializer sees the whole record ([`RecordView`]: topic, partition, offset, key,
//! timestamp); its error is only the cause, the source adds where the record was. A
//! serializer appends one value to a reused buffer, so the sink allocates nothing per
//! record beyond what serde does.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use weir_runtime::Timestamp;

/// One Kafka record as a deserializer sees it.
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    /// The record's topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<&'a [u8]>,
    /// Its value (empty for a tombstone).
    pub value: &'a [u8],
    /// Its timestamp (create or log-append time) in milliseconds, if it has one.
    pub timestamp: Option<Timestamp>,
}

/// Turns Kafka records into records of `T`.
pub trait KafkaDeserializer<T>: Send + Sync + 'static {
    /// Deserializes one record; the error says why (the source names where).
    fn deserialize(&self, record: &RecordView<'_>) -> Result<T, String>;
}

/// Turns records of `T` into Kafka record values.
pub trait KafkaSerializer<T>: Send + Sync + 'static {
    /// Appends the value of `record` to `out` (cleared by the caller).
    fn serialize(&self, record: &T, out: &mut Vec<u8>) -> Result<(), String>;
}

/// The value's bytes as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bytes;

impl KafkaDeserializer<Vec<u8>> for Bytes {
    fn deserialize(&self, record: &RecordView<'_>) -> Result<Vec<u8>, String> {
        Ok(record.value.to_vec())
    }
}

impl KafkaSerializer<Vec<u8>> for Bytes {
    fn serialize(&self, record: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(record);
        Ok(())
    }
}

/// The value as UTF-8 text.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8;

impl KafkaDeserializer<String> for Utf8 {
    fn deserialize(&self, record: &RecordView<'_>) -> Result<String, String> {
        std::str::from_utf8(record.value)
            .map(str::to_string)
            .map_err(|e| format!("not UTF-8: {e}"))
    }
}

impl KafkaSerializer<String> for Utf8 {
    fn serialize(&self, record: &String, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(record.as_bytes());
        Ok(())
    }
}

/// The value as one JSON document of `T`.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// A JSON format for `T`.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: DeserializeOwned + 'static> KafkaDeserializer<T> for Json<T> {
    fn deserialize(&self, record: &RecordView<'_>) -> Result<T, String> {
        serde_json::from_slice(record.value).map_err(|e| format!("invalid JSON: {e}"))
    }
}

impl<T: Serialize + 'static> KafkaSerializer<T> for Json<T> {
    fn serialize(&self, record: &T, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, record).map_err(|e| format!("cannot write JSON: {e}"))
    }
}

/// The value as one CSV row (no header) of `T`'s fields, in order.
pub struct Csv<T> {
    delimiter: u8,
    _t: PhantomData<fn() -> T>,
}

impl<T> Csv<T> {
    /// A comma-separated format for `T`.
    pub fn new() -> Self {
        Self {
            delimiter: b',',
            _t: PhantomData,
        }
    }

    /// Separates fields with `delimiter` instead of a comma.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

impl<T> Default for Csv<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: DeserializeOwned + 'static> KafkaDeserializer<T> for Csv<T> {
    fn deserialize(&self, record: &RecordView<'_>) -> Result<T, String> {
        super::csv_row::parse_row(record.value, self.delimiter)
    }
}

impl<T: Serialize + 'static> KafkaSerializer<T> for Csv<T> {
    fn serialize(&self, record: &T, out: &mut Vec<u8>) -> Result<(), String> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            // A row is short: a small buffer (the default is 8 KiB) per record.
            .buffer_capacity(64)
            .from_writer(&mut *out);
        writer
            .serialize(record)
            .and_then(|()| writer.flush().map_err(csv::Error::from))
            .map_err(|e| format!("cannot write CSV: {e}"))?;
        drop(writer);
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        Ok(())
    }
}

/// Any function of the whole record.
impl<T, F> KafkaDeserializer<T> for F
where
    F: Fn(&RecordView<'_>) -> Result<T, String> + Send + Sync + 'static,
{
    fn deserialize(&self, record: &RecordView<'_>) -> Result<T, String> {
        self(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Reading {
        sensor: String,
        ts: i64,
        temperature: f64,
    }

    fn view(value: &[u8]) -> RecordView<'_> {
        RecordView {
            topic: "readings",
            partition: 0,
            offset: 7,
            key: None,
            value,
            timestamp: None,
        }
    }

    #[test]
    fn csv_and_json_values_round_trip_through_their_serializers() {
        let r = Reading {
            sensor: "s-1".into(),
            ts: 1000,
            temperature: 21.5,
        };
        let mut out = Vec::new();
        Csv::<Reading>::new().serialize(&r, &mut out).unwrap();
        assert_eq!(out, b"s-1,1000,21.5");
        assert_eq!(Csv::<Reading>::new().deserialize(&view(&out)).unwrap(), r);
        out.clear();
        Json::<Reading>::new().serialize(&r, &mut out).unwrap();
        assert_eq!(Json::<Reading>::new().deserialize(&view(&out)).unwrap(), r);
    }

    #[test]
    fn a_value_that_does_not_parse_is_an_error_that_says_why() {
        let e = Csv::<Reading>::new()
            .deserialize(&view(b"s-1,not-a-time,1"))
            .unwrap_err();
        assert!(e.contains("invalid CSV row"), "{e}");
        let e = Json::<Reading>::new().deserialize(&view(b"{")).unwrap_err();
        assert!(e.contains("invalid JSON"), "{e}");
        let e = Utf8.deserialize(&view(&[0xff, 0xfe])).unwrap_err();
        assert!(e.contains("not UTF-8"), "{e}");
    }
}
