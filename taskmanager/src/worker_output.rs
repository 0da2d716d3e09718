//! What a job worker writes to its standard output and error, relayed by its TaskManager
//! line by line so that every line says whose it is: in text, prefixed with
//! `[job <id> worker <taskmanager>.<start>]`; with JSON logs (`--log-format json`), as a JSON
//! object with `job_id` and `worker` fields (a line that is a JSON object gets them added,
//! any other line becomes the `message` of one).
//!
//! Invariants: each line is written whole, with one write, to the TaskManager's stream of
//! the same name (a line over 64 KiB in pieces of 64 KiB); bytes that are not UTF-8 are kept as they are in text and replaced only
//! in JSON; a relay ends when the worker closes the stream (it exited).

use std::io::{BufRead, BufReader, Read, Write};
use weir_runtime::logging::LogFormat;
use weir_runtime::JobId;

/// Whose output a relay carries.
#[derive(Clone, Debug)]
pub(crate) struct WorkerLabel {
    /// The worker's job.
    pub job: JobId,
    /// `<taskmanager>.<start>`: the TaskManager and the start number of the worker.
    pub worker: String,
    /// How the TaskManager logs.
    pub format: LogFormat,
}

impl WorkerLabel {
    /// `line` (without its newline) as the TaskManager writes it, newline included.
    pub(crate) fn label(&self, line: &[u8]) -> Vec<u8> {
        match self.format {
            LogFormat::Text => {
                let mut out = format!("[job {} worker {}] ", self.job, self.worker).into_bytes();
                out.extend_from_slice(line);
                out.push(b'\n');
                out
            }
            LogFormat::Json => {
                let text = String::from_utf8_lossy(line);
                let mut v = match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    _ => serde_json::json!({
                        "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
                        "level": "INFO",
                        "target": "weir::worker",
                        "fields": { "message": text },
                    }),
                };
                v["job_id"] = self.job.to_string().into();
                v["worker"] = self.worker.clone().into();
                let mut out = v.to_string().into_bytes();
                out.push(b'\n');
                out
            }
        }
    }
}

/// The longest line relayed whole; a longer one is relayed in pieces of this size.
const MAX_LINE: u64 = 64 * 1024;

/// Relays `from` line by line to `to`, labelled, until `from` ends. Should reading fail,
/// the rest is read and dropped, so the worker never writes into a closed pipe.
pub(crate) fn relay(from: impl Read, mut to: impl Write, label: &WorkerLabel) {
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.by_ref().take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) => return,
            Err(_) => {
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                return;
            }
            Ok(_) => {
                let body = line.strip_suffix(b"\n").unwrap_or(&line);
                let body = body.strip_suffix(b"\r").unwrap_or(body);
                let _ = to.write_all(&label.label(body));
            }
        }
    }
}

/// Starts one thread per stream that relays the worker's output to the TaskManager's.
pub(crate) fn relay_streams(
    child: &mut std::process::Child,
    label: WorkerLabel,
) -> std::io::Result<()> {
    if let Some(out) = child.stdout.take() {
        let l = label.clone();
        std::thread::Builder::new()
            .name(format!("weir-stdout-{}", label.job))
            .spawn(move || relay(out, std::io::stdout(), &l))?;
    }
    if let Some(err) = child.stderr.take() {
        std::thread::Builder::new()
            .name(format!("weir-stderr-{}", label.job))
            .spawn(move || relay(err, std::io::stderr(), &label))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(format: LogFormat) -> WorkerLabel {
        WorkerLabel {
            job: JobId(0xab),
            worker: "2.7".into(),
            format,
        }
    }

    #[test]
    fn every_text_line_names_its_job_and_worker_and_keeps_its_bytes() {
        let mut out = Vec::new();
        relay(
            &b"first\nsecond \xff\r\nlast without newline"[..],
            &mut out,
            &label(LogFormat::Text),
        );
        let expected = b"[job 00000000000000ab worker 2.7] first\n\
            [job 00000000000000ab worker 2.7] second \xff\n\
            [job 00000000000000ab worker 2.7] last without newline\n";
        assert_eq!(out, expected.to_vec());
    }

    #[test]
    fn a_json_line_gets_the_fields_and_any_other_line_becomes_a_json_message() {
        let mut out = Vec::new();
        let input = b"{\"level\":\"WARN\",\"fields\":{\"message\":\"hi\"}}\nplain text\n";
        relay(&input[..], &mut out, &label(LogFormat::Json));
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["fields"]["message"], "hi");
        assert_eq!(lines[1]["fields"]["message"], "plain text");
        for l in &lines {
            assert_eq!(l["job_id"], "00000000000000ab");
            assert_eq!(l["worker"], "2.7");
        }
    }

    #[test]
    fn a_line_without_end_is_relayed_in_bounded_pieces() {
        let long = vec![b'x'; (MAX_LINE as usize) * 2 + 10];
        let mut out = Vec::new();
        relay(&long[..], &mut out, &label(LogFormat::Text));
        let lines: Vec<&[u8]> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 3);
        let prefix = b"[job 00000000000000ab worker 2.7] ".len();
        assert_eq!(lines[0].len() - prefix, MAX_LINE as usize);
        assert_eq!(lines[2].len() - prefix, 10);
    }
}
