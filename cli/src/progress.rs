//! What an attached `weir run` shows while it waits for its job: the status (with the
//! JobManager's message, such as how many slots a waiting job lacks), restarts and the
//! latest checkpoint. On a terminal a spinner (indicatif) keeps one line current; otherwise
//! each change of status or message is one line on standard error, so a log shows it.
//!
//! Invariant: nothing is shown with `--output json` (scripts read only the final object).

use crate::Format;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;
use weir_runtime::rpc::messages::JobSummary;

/// The waiting display of one job.
pub struct Progress {
    spinner: Option<ProgressBar>,
    lines: bool,
    last: Option<String>,
}

impl Progress {
    /// A display for `format`: a spinner on a terminal, lines otherwise, nothing for JSON.
    pub fn new(format: Format) -> Self {
        let table = format == Format::Table;
        let spinner = (table && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            lines: table && spinner.is_none(),
            spinner,
            last: None,
        }
    }

    /// Shows the job as `s` says it is.
    pub fn update(&mut self, s: &JobSummary) {
        let status = match &s.message {
            Some(m) => format!("{}: {m}", s.status.name()),
            None => s.status.name().to_string(),
        };
        if let Some(bar) = &self.spinner {
            let checkpoint = s
                .last_checkpoint
                .map_or(String::new(), |c| format!(", checkpoint {c}"));
            bar.set_message(format!(
                "Job {}: {status} (restarts {}{checkpoint})",
                s.id, s.restarts
            ));
        } else if self.lines && self.last.as_deref() != Some(status.as_str()) {
            eprintln!("Job {}: {status}", s.id);
        }
        self.last = Some(status);
    }

    /// Takes the spinner off the screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}
