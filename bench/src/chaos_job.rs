//! The records and windows of the chaos job (`weir-chaos-job`), shared by the job and the
//! verifier of `weir-chaos`: record `i` of `records` over `keys` keys is
//! `(i % keys, i / keys + 1)`, and each key's records fall into tumbling event-time windows of
//! [`WINDOW`] sequence numbers (a record's event time is its sequence number, in
//! milliseconds), and each window's committed line is
//! `window,<key>,<start>,<count>,<sum of seq>`.
//!
//! Invariant: a key's window starting at `start` holds exactly its sequence numbers in
//! `max(start, 1)..=min(start + WINDOW - 1, n)`, `n` the key's last sequence number, so
//! the expected lines follow from the number of records and keys alone.

/// Sequence numbers of key `key` among `records` records over `keys` keys (round-robin).
pub fn records_of_key(records: u64, keys: u64, key: u64) -> u64 {
    (records + keys - 1 - key) / keys
}

/// The PostgreSQL table of the sequence lines when the job writes them there.
pub const RECORDS_TABLE: &str = "chaos_records";

/// The Kafka topic of the window lines when the job writes them there.
pub const WINDOWS_TOPIC: &str = "chaos-windows";

/// Sequence numbers (event-time milliseconds) per window.
pub const WINDOW: u64 = 100;

/// The committed line of key `key`'s window starting at `start` with `count` records
/// whose sequence numbers add up to `sum`.
pub fn window_line(key: u64, start: u64, count: u64, sum: u64) -> String {
    format!("window,{key},{start},{count},{sum}")
}

/// Count and sum of the window starting at `start` of a key whose sequence numbers are
/// `1..=n`; `None` if that window holds none of them or `start` is no window's start.
pub fn expected_window(n: u64, start: u64) -> Option<(u64, u64)> {
    if !start.is_multiple_of(WINDOW) {
        return None;
    }
    let (lo, hi) = (start.max(1), (start + WINDOW - 1).min(n));
    (lo <= hi).then(|| (hi - lo + 1, (lo + hi) * (hi - lo + 1) / 2))
}

/// Number of windows of a key whose sequence numbers are `1..=n`.
pub fn windows_of(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        n / WINDOW + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_records_round_robin() {
        assert_eq!((0..4).map(|k| records_of_key(10, 4, k)).sum::<u64>(), 10);
        assert_eq!(records_of_key(10, 4, 1), 3);
        assert_eq!(records_of_key(10, 4, 3), 2);
    }

    #[test]
    fn windows_cover_each_sequence_number_once() {
        for n in [0, 1, 99, 100, 101, 250] {
            let windows = (0..windows_of(n)).map(|w| expected_window(n, w * WINDOW).unwrap());
            let (count, sum) = windows.fold((0, 0), |(c, s), (wc, ws)| (c + wc, s + ws));
            assert_eq!((count, sum), (n, n * (n + 1) / 2), "n = {n}");
            assert_eq!(expected_window(n, windows_of(n) * WINDOW), None);
        }
        assert_eq!(expected_window(10, 0), Some((10, 55)));
        assert_eq!(expected_window(10, 50), None);
        assert_eq!(expected_window(500, 7), None);
    }
}
