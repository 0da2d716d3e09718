//! Word count, as Spark Streaming's `socketTextStream` example: counts words from a file or a
//! TCP socket and writes `word,count` updates.
//!
//! ```text
//! cargo run --release --example word_count -- --input book.txt
//! nc -lk 9999 &   cargo run --release --example word_count -- --socket 127.0.0.1:9999
//! cargo run --release --example word_count -- --socket 127.0.0.1:9999 --window-ms 10000 --slide-ms 2000
//! ```
//!
//! Without a window every record updates its word's running count. With `--window-ms W
//! --slide-ms S` the counts are per sliding processing-time window of length W every S, like
//! `reduceByKeyAndWindow`; when a bounded input ends, its open windows fire.

use anyhow::{bail, Context as _};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use weir_api::sink::FileSink;
use weir_api::window::SlidingProcessingTimeWindows;
use weir_api::{DataStream, StreamExecutionEnvironment};

/// Counts words from a file or a socket.
#[derive(Parser, Debug)]
#[command(name = "word_count")]
struct Args {
    /// Text file to read.
    #[arg(long, conflicts_with = "socket")]
    input: Option<PathBuf>,
    /// `HOST:PORT` of a server that sends text lines.
    #[arg(long)]
    socket: Option<String>,
    /// Sliding window length in milliseconds (counts per window instead of running counts).
    #[arg(long)]
    window_ms: Option<u64>,
    /// Sliding window slide in milliseconds (default: the window length).
    #[arg(long, requires = "window_ms")]
    slide_ms: Option<u64>,
    /// Directory for `word,count` part files (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Parallelism of the counting operators.
    #[arg(long)]
    parallelism: Option<u16>,
}

fn parse_socket(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--socket {s}: expected HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("--socket {s}: '{port}' is not a port number"))?;
    Ok((host.to_string(), port))
}

fn main() -> anyhow::Result<()> {
    weir_examples::init_logging();
    let args = Args::parse();
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let lines: DataStream<String> = match (&args.input, &args.socket) {
        (Some(path), None) => env.read_text_file(path),
        (None, Some(addr)) => {
            let (host, port) = parse_socket(addr)?;
            env.set_buffer_timeout(Duration::ZERO);
            env.socket_text_stream(&host, port)
        }
        _ => bail!("give exactly one of --input FILE or --socket HOST:PORT"),
    };
    let pairs = lines
        .flat_map(|line: String| {
            line.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| (w.to_lowercase(), 1u64))
                .collect::<Vec<_>>()
        })
        .name("Tokenizer");
    let keyed = pairs.key_by(|p: &(String, u64)| p.0.clone());
    let counts = match args.window_ms {
        None => keyed.reduce(|a, b| (a.0, a.1 + b.1)).name("Running Count"),
        Some(w) => {
            let slide = args.slide_ms.unwrap_or(w);
            if w == 0 || slide == 0 {
                bail!("--window-ms and --slide-ms must be at least 1");
            }
            keyed
                .window(SlidingProcessingTimeWindows::of(
                    Duration::from_millis(w),
                    Duration::from_millis(slide),
                ))
                .reduce(|a, b| (a.0, a.1 + b.1))
                .name("Windowed Count")
        }
    };
    let formatted = counts.map(|(w, c): (String, u64)| format!("{w},{c}"));
    match &args.output {
        Some(dir) => {
            formatted.sink_to_files(FileSink::new(dir, |l: &String, out: &mut String| {
                out.push_str(l)
            }));
        }
        None => {
            formatted.add_sink(StdoutLines).set_parallelism(1);
        }
    }
    env.execute("word-count").context("word count failed")?;
    Ok(())
}

/// Prints each record as one line.
struct StdoutLines;

impl weir_api::sink::SinkFunction<String> for StdoutLines {
    fn create_writer(
        &self,
        _ctx: &weir_api::sink::SinkContext,
    ) -> Result<Box<dyn weir_api::sink::SinkWriter<String>>, weir_api::TaskError> {
        Ok(Box::new(StdoutWriter))
    }
}

struct StdoutWriter;

impl weir_api::sink::SinkWriter<String> for StdoutWriter {
    fn write(&mut self, line: String, _ts: weir_api::Timestamp) -> Result<(), weir_api::TaskError> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").map_err(|e| weir_api::TaskError::Io(format!("stdout: {e}")))
    }
    fn flush(&mut self) -> Result<(), weir_api::TaskError> {
        use std::io::Write;
        std::io::stdout()
            .flush()
            .map_err(|e| weir_api::TaskError::Io(format!("stdout: {e}")))
    }
}
