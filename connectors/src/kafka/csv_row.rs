//! Parses one CSV row (a Kafka record value) into a record, with a parser built once per
//! thread and delimiter: building a CSV parser costs far more than parsing a short row, so
//! building one per record would dominate a Kafka source's time.
//!
//! Invariant: a value is one row; its fields are matched to `T`'s fields in order (no
//! header). The parser, its output buffers and the field record are reused, so a row
//! allocates nothing beyond what deserializing `T` does.

use serde::de::DeserializeOwned;
use std::cell::RefCell;

/// A reusable row parser.
struct RowParser {
    delimiter: u8,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    record: csv::ByteRecord,
}

impl RowParser {
    fn new(delimiter: u8) -> Self {
        Self {
            delimiter,
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            out: vec![0; 256],
            ends: vec![0; 16],
            record: csv::ByteRecord::new(),
        }
    }

    /// Parses `value` into `self.record`.
    fn parse(&mut self, value: &[u8]) -> Result<(), String> {
        use csv_core::ReadRecordResult as R;
        self.core.reset();
        self.record.clear();
        let (mut input, mut nout, mut nend) = (value, 0, 0);
        let mut fed_end = false;
        loop {
            let (res, i, o, e) =
                self.core
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            input = &input[i..];
            nout += o;
            nend += e;
            match res {
                R::InputEmpty if !fed_end && input.is_empty() => fed_end = true,
                R::InputEmpty => {}
                R::OutputFull => self.out.resize(self.out.len() * 2, 0),
                R::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                R::Record => break,
                R::End => return Err("empty value, expected a CSV row".into()),
            }
        }
        if !input.is_empty() {
            return Err("more than one CSV row in one value".into());
        }
        let mut start = 0;
        for &end in &self.ends[..nend] {
            self.record.push_field(&self.out[start..end]);
            start = end;
        }
        Ok(())
    }
}

thread_local! {
    static PARSER: RefCell<Option<RowParser>> = const { RefCell::new(None) };
}

/// Deserializes the CSV row `value` (fields separated by `delimiter`) into a `T`.
pub(crate) fn parse_row<T: DeserializeOwned>(value: &[u8], delimiter: u8) -> Result<T, String> {
    PARSER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let parser = match slot.as_mut() {
            Some(p) if p.delimiter == delimiter => p,
            _ => slot.insert(RowParser::new(delimiter)),
        };
        parser.parse(value)?;
        parser
            .record
            .deserialize(None)
            .map_err(|e| format!("invalid CSV row: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_parse_one_after_another_with_quotes_and_long_fields() {
        let a: (String, i64, f64) = parse_row(b"s-1,1000,21.5", b',').unwrap();
        assert_eq!(a, ("s-1".to_string(), 1000, 21.5));
        let long = "x".repeat(1000);
        let b: (String, String) = parse_row(format!("\"a,b\",{long}").as_bytes(), b',').unwrap();
        assert_eq!(b, ("a,b".to_string(), long));
        let c: (u32, u32) = parse_row(b"1;2", b';').unwrap();
        assert_eq!(c, (1, 2));
        let many: Vec<u8> = (0..40)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes();
        let d: Vec<u32> = parse_row(&many, b',').unwrap();
        assert_eq!(d.len(), 40);
    }

    #[test]
    fn an_empty_value_or_two_rows_in_one_value_are_errors() {
        assert!(parse_row::<(u32,)>(b"", b',')
            .unwrap_err()
            .contains("empty value"));
        assert!(parse_row::<(u32,)>(b"1\n2", b',')
            .unwrap_err()
            .contains("more than one"));
        assert!(parse_row::<(u32, u32)>(b"1,x", b',')
            .unwrap_err()
            .contains("invalid CSV row"));
    }
}
