//! The summary the sensor pipeline prints when it has no `--top-output`: the ten hottest
//! sensors of the last window, temperatures rounded to two decimals.

/// A top line `window_start_ms,window_end_ms,rank,sensor_id,avg,max` with its two
/// temperatures rounded to two decimals.
fn rounded(line: &str) -> String {
    let mut fields: Vec<String> = line.split(',').map(str::to_string).collect();
    for f in fields.iter_mut().skip(4) {
        if let Ok(t) = f.parse::<f64>() {
            *f = format!("{t:.2}");
        }
    }
    fields.join(",")
}

/// Prints the rows of the last window among `rows` (top lines, any order), by rank.
pub fn print_last_window(mut rows: Vec<String>) {
    rows.sort_by_key(|l| {
        let mut f = l.split(',');
        let start: i64 = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        let rank: u32 = f.nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
        (start, rank)
    });
    let Some(last) = rows.last() else { return };
    let last_start = format!("{},", last.split(',').next().unwrap_or(""));
    println!(
        "hottest sensors of the last window (window_start_ms,window_end_ms,rank,sensor_id,avg,max):"
    );
    for r in rows.iter().filter(|r| r.starts_with(&last_start)) {
        println!("  {}", rounded(r));
    }
}

#[cfg(test)]
mod tests {
    use super::rounded;

    #[test]
    fn temperatures_are_rounded_to_two_decimals() {
        assert_eq!(
            rounded("1000,2000,1,sensor-0042,79.89999999999999,80.1"),
            "1000,2000,1,sensor-0042,79.90,80.10"
        );
    }
}
