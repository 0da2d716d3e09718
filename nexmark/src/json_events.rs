//! Nexmark events as JSON lines in the schema of Flink's Nexmark table (`event_type`
//! 0, 1 or 2 and one of the rows `person`, `auction`, `bid`, with camel-case fields and
//! SQL timestamps), so Flink SQL reads exactly the events Weir's queries see.
//!
//! Invariant: file `i` of `f` holds the events `n` with `n % f == i`, in order, so each
//! file is in event-time order, as each subtask of the Weir source is.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::generator::NexmarkGenerator;
use crate::model::Event;

/// The civil date and time (UTC) of `ms` since the Unix epoch: year, month, day, hour,
/// minute, second, millisecond.
fn civil(ms: i64) -> [i64; 7] {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Days to a civil date (proleptic Gregorian), by 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60);
    [year, month, day, h, m, s, in_day % 1000]
}

/// Appends `value` in at least `width` digits, zero-padded, after a minus sign if it is
/// negative (years before 1 BC).
fn push_padded(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        out.push('-');
    }
    let mut digits = [b'0'; 20];
    let (mut v, mut at) = (value.unsigned_abs(), digits.len());
    while v > 0 || digits.len() - at < width {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    digits[at..].iter().for_each(|&d| out.push(char::from(d)));
}

/// Appends the parts `from..to` of `ms`'s civil time, each with its separator before it.
fn push_parts(out: &mut String, ms: i64, parts: std::ops::Range<usize>) {
    const FORMAT: [(char, usize); 7] = [
        ('\0', 4),
        ('-', 2),
        ('-', 2),
        (' ', 2),
        (':', 2),
        (':', 2),
        ('.', 3),
    ];
    let civil = civil(ms);
    for i in parts.clone() {
        if i > parts.start {
            out.push(FORMAT[i].0);
        }
        push_padded(out, civil[i], FORMAT[i].1);
    }
}

/// `ms` since the Unix epoch as `yyyy-MM-dd HH:mm:ss.SSS` (UTC), Flink SQL's default JSON
/// timestamp format.
pub fn sql_timestamp(ms: i64) -> String {
    let mut out = String::with_capacity(23);
    push_parts(&mut out, ms, 0..7);
    out
}

/// The day of `ms` as `yyyy-MM-dd` (UTC), as `DATE_FORMAT(t, 'yyyy-MM-dd')`.
pub fn sql_date(ms: i64) -> String {
    let mut out = String::with_capacity(10);
    push_parts(&mut out, ms, 0..3);
    out
}

/// The minute of `ms` as `HH:mm` (UTC), as `DATE_FORMAT(t, 'HH:mm')`.
pub fn sql_minute(ms: i64) -> String {
    let mut out = String::with_capacity(5);
    push_parts(&mut out, ms, 3..5);
    out
}

/// One event as a JSON object in Flink's Nexmark schema.
pub fn event_json(event: &Event) -> serde_json::Value {
    match event {
        Event::Person(p) => json!({"event_type": 0, "person": {
            "id": p.id, "name": p.name, "emailAddress": p.email_address,
            "creditCard": p.credit_card, "city": p.city, "state": p.state,
            "dateTime": sql_timestamp(p.date_time), "extra": p.extra}}),
        Event::Auction(a) => json!({"event_type": 1, "auction": {
            "id": a.id, "itemName": a.item_name, "description": a.description,
            "initialBid": a.initial_bid, "reserve": a.reserve,
            "dateTime": sql_timestamp(a.date_time), "expires": sql_timestamp(a.expires),
            "seller": a.seller, "category": a.category, "extra": a.extra}}),
        Event::Bid(b) => json!({"event_type": 2, "bid": {
            "auction": b.auction, "bidder": b.bidder, "price": b.price,
            "channel": b.channel, "url": b.url, "dateTime": sql_timestamp(b.date_time),
            "extra": b.extra}}),
    }
}

/// Writes events `0..events` into `files` JSON-lines files `events-<i>.json` in `dir`;
/// returns their paths.
pub fn write_json_events(
    generator: &NexmarkGenerator,
    events: u64,
    dir: &Path,
    files: u64,
) -> std::io::Result<Vec<PathBuf>> {
    let files = files.max(1);
    let mut paths = Vec::new();
    for i in 0..files {
        let path = dir.join(format!("events-{i}.json"));
        let mut out = BufWriter::new(File::create(&path)?);
        for n in (i..events).step_by(files as usize) {
            serde_json::to_writer(&mut out, &event_json(&generator.event(n)))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_timestamps_are_utc_civil_times() {
        assert_eq!(sql_timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(sql_timestamp(1_436_918_400_000), "2015-07-15 00:00:00.000");
        assert_eq!(sql_timestamp(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(sql_timestamp(-1), "1969-12-31 23:59:59.999");
        // 1 BC is year 0, 2 BC year -1 (proleptic Gregorian, as ISO 8601).
        assert_eq!(sql_date(-62_167_219_200_000), "0000-01-01");
        assert_eq!(sql_date(-62_167_219_200_001), "-0001-12-31");
        assert_eq!(sql_date(951_782_400_123), "2000-02-29");
        assert_eq!(sql_minute(1_436_918_400_000 + 3_723_000), "01:02");
    }
}
