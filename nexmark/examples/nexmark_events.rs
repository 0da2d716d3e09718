//! Writes Nexmark events as JSON lines in the schema of Flink's Nexmark table, for Flink SQL
//! (`bench/flink/nexmark.py`) to read the events Weir's queries see:
//!
//! ```text
//! cargo run --release -p weir-nexmark --example nexmark_events -- EVENTS DIR [FILES]
//! ```
//!
//! Event `n` goes to `DIR/events-<n % FILES>.json` (FILES defaults to 4), generated with the
//! default configuration (seed 0, 10 million events per second of event time).

use std::path::PathBuf;

use weir_nexmark::{write_json_events, NexmarkConfig, NexmarkGenerator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: nexmark_events EVENTS DIR [FILES]";
    let events: u64 = args.first().ok_or(usage)?.parse()?;
    let dir = PathBuf::from(args.get(1).ok_or(usage)?);
    let files: u64 = args.get(2).map_or(Ok(4), |f| f.parse())?;
    std::fs::create_dir_all(&dir)?;
    let generator = NexmarkGenerator::new(NexmarkConfig::default());
    for path in write_json_events(&generator, events, &dir, files)? {
        println!("{}", path.display());
    }
    Ok(())
}
