//! `weir-bench scaling`: how throughput grows with parallelism.
//!
//! Runs `stateless`, `keyed-count` and `sensor-window` (or `--workloads`) at each
//! parallelism of `--parallelisms` (default 1, 2, 4, … up to the machine's cores, and the
//! core count itself), each job on a fresh local mini-cluster with `--taskmanagers`
//! TaskManagers and `--records` rows per subtask, so every run does the same work per core.
//! Prints one JSON line per run (`workload`, `parallelism`, `records`, `seconds`,
//! `records_per_sec`, `speedup` over parallelism 1 or the smallest measured, `efficiency`,
//! the speedup divided by the parallelism ratio, `cpu_ns_per_record`, the process's CPU
//! time per record, and `cpu_efficiency`, the first run's CPU time per record over this
//! run's), then a Markdown table of the same figures. On a machine with fewer cores than
//! the parallelism, or where one subtask's pipeline already keeps several cores busy (a
//! source and its keyed consumer are two threads), the wall-clock speedup is bounded by the
//! cores; the CPU efficiency shows whether the work per record grows with parallelism.
//!
//! Invariant: runs happen one after the other, in the order of the table, so no two jobs
//! share the machine.

use crate::{build, Args, LatencySink, Workload};
use anyhow::{bail, Result};
use std::time::{Duration, Instant};
use weir_api::StreamExecutionEnvironment;

/// What to measure.
pub(crate) struct Settings {
    /// The workloads, in order.
    pub(crate) workloads: Vec<Workload>,
    /// The parallelisms, ascending.
    pub(crate) parallelisms: Vec<u16>,
    /// Rows each subtask's source produces.
    pub(crate) records_per_subtask: u64,
}

/// The workloads measured unless `--workloads` names others.
pub(crate) const DEFAULT_WORKLOADS: [Workload; 3] = [
    Workload::Stateless,
    Workload::KeyedCount,
    Workload::SensorWindow,
];

/// Runs `scaling`: each workload at each parallelism on a fresh mini-cluster; prints a
/// JSON line per run and the table.
pub(crate) fn main(args: &Args) -> Result<()> {
    if args.checkpoint_interval_ms.is_some() || args.fail_after_records.is_some() {
        bail!("scaling measures jobs without checkpoints or failures");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let settings = Settings {
        workloads: match args.workloads.is_empty() {
            true => DEFAULT_WORKLOADS.to_vec(),
            false => args.workloads.clone(),
        },
        parallelisms: match args.parallelisms.is_empty() {
            true => default_parallelisms(u16::try_from(cores).unwrap_or(u16::MAX)),
            false => args.parallelisms.clone(),
        },
        records_per_subtask: args.records,
    };
    let latency = LatencySink::default();
    let table = run(&settings, |workload, records, parallelism| {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism)
            .set_local_taskmanagers(args.taskmanagers)
            .set_state_backend(args.state_backend);
        if let Some(ms) = args.buffer_timeout_ms {
            env.set_buffer_timeout(Duration::from_millis(ms));
        }
        build(
            &env,
            workload,
            records,
            (args.rate, args.keys),
            &latency,
            None,
        );
        let started = Instant::now();
        env.execute(workload.name())?;
        Ok(started.elapsed().as_secs_f64())
    })?;
    println!("{table}");
    Ok(())
}

/// One measured run.
struct Run {
    workload: Workload,
    parallelism: u16,
    records: u64,
    seconds: f64,
    /// CPU time of the process during the run.
    cpu_seconds: f64,
}

impl Run {
    fn per_sec(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    fn cpu_ns_per_record(&self) -> f64 {
        self.cpu_seconds * 1e9 / self.records as f64
    }
}

/// The CPU time (user and system) this process used so far, from `/proc/self/stat`
/// (clock ticks of 10 ms); zero where it cannot be read.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// 1, 2, 4, … up to `cores`, and `cores` itself.
pub(crate) fn default_parallelisms(cores: u16) -> Vec<u16> {
    let mut p: Vec<u16> = std::iter::successors(Some(1u16), |p| p.checked_mul(2))
        .take_while(|p| *p <= cores)
        .collect();
    if p.last() != Some(&cores) {
        p.push(cores.max(1));
    }
    p
}

/// Checks the settings: workloads that scale with parallelism, parallelisms ascending.
pub(crate) fn check(settings: &Settings) -> Result<()> {
    if let Some(w) = settings
        .workloads
        .iter()
        .find(|w| !DEFAULT_WORKLOADS.contains(w))
    {
        bail!(
            "--workloads: {} is not measured for scaling (stateless, keyed-count, sensor-window are)",
            w.name()
        );
    }
    if settings.parallelisms.is_empty() || settings.parallelisms.contains(&0) {
        bail!("--parallelisms must list parallelisms of at least 1");
    }
    if settings.parallelisms.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--parallelisms must be ascending");
    }
    if settings.records_per_subtask == 0 {
        bail!("--records must be at least 1");
    }
    Ok(())
}

/// Measures every run with `run_one(workload, records, parallelism)`, which returns the
/// seconds the job took; prints each JSON line as it comes and returns the table.
pub(crate) fn run(
    settings: &Settings,
    mut run_one: impl FnMut(Workload, u64, u16) -> Result<f64>,
) -> Result<String> {
    check(settings)?;
    let mut runs = Vec::new();
    for &workload in &settings.workloads {
        let first = runs.len();
        for &parallelism in &settings.parallelisms {
            let records = settings.records_per_subtask * parallelism as u64;
            let cpu = cpu_seconds();
            let seconds = run_one(workload, records, parallelism)?;
            runs.push(Run {
                workload,
                parallelism,
                records,
                seconds,
                cpu_seconds: cpu_seconds() - cpu,
            });
            let (speedup, efficiency, cpu_efficiency) =
                relative(&runs[first], &runs[runs.len() - 1]);
            let r = &runs[runs.len() - 1];
            println!(
                "{}",
                serde_json::json!({
                    "workload": workload.name(),
                    "parallelism": parallelism,
                    "records": records,
                    "seconds": seconds,
                    "records_per_sec": r.per_sec(),
                    "speedup": speedup,
                    "efficiency": efficiency,
                    "cpu_ns_per_record": r.cpu_ns_per_record(),
                    "cpu_efficiency": cpu_efficiency,
                })
            );
        }
    }
    Ok(table(&runs))
}

/// The speedup of `run` over `base`, its efficiency (speedup per unit of parallelism
/// added) and its CPU efficiency (`base`'s CPU time per record over `run`'s).
fn relative(base: &Run, run: &Run) -> (f64, f64, f64) {
    let speedup = run.per_sec() / base.per_sec();
    let scale = run.parallelism as f64 / base.parallelism as f64;
    let cpu = match run.cpu_ns_per_record() {
        0.0 => 0.0,
        per_record => base.cpu_ns_per_record() / per_record,
    };
    (speedup, speedup / scale, cpu)
}

/// The Markdown table of `runs` (grouped by workload, the first run of each the base).
fn table(runs: &[Run]) -> String {
    let mut out = String::from(
        "| workload | parallelism | records/s | speedup | efficiency | CPU ns/record | CPU efficiency |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut base = 0;
    for (i, r) in runs.iter().enumerate() {
        if runs[base].workload != r.workload {
            base = i;
        }
        let (speedup, efficiency, cpu) = relative(&runs[base], r);
        out.push_str(&format!(
            "| {} | {} | {:.2} M | {speedup:.2}× | {:.0} % | {:.0} | {:.0} % |\n",
            r.workload.name(),
            r.parallelism,
            r.per_sec() / 1e6,
            efficiency * 100.0,
            r.cpu_ns_per_record(),
            cpu * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parallelisms_double_up_to_the_cores_and_end_at_them() {
        assert_eq!(default_parallelisms(1), vec![1]);
        assert_eq!(default_parallelisms(2), vec![1, 2]);
        assert_eq!(default_parallelisms(6), vec![1, 2, 4, 6]);
        assert_eq!(default_parallelisms(16), vec![1, 2, 4, 8, 16]);
    }

    #[test]
    fn every_run_does_the_same_work_per_subtask_and_the_table_relates_it_to_the_first() {
        let settings = Settings {
            workloads: vec![Workload::KeyedCount, Workload::Stateless],
            parallelisms: vec![1, 2, 4],
            records_per_subtask: 1000,
        };
        let mut asked = Vec::new();
        // Parallelism 2 runs at 1.5× and 4 at 3× the records per second of 1.
        let table = run(&settings, |w, records, p| {
            asked.push((w, records, p));
            let per_sec = 1000.0 * [1.0, 1.5, 0.0, 3.0][p as usize - 1];
            Ok(records as f64 / per_sec)
        })
        .unwrap();
        assert_eq!(asked.len(), 6);
        assert_eq!(asked[2], (Workload::KeyedCount, 4000, 4));
        assert!(
            table.contains("| keyed-count | 2 | 0.00 M | 1.50× | 75 % |"),
            "{table}"
        );
        assert!(
            table.contains("| stateless | 4 | 0.00 M | 3.00× | 75 % |"),
            "{table}"
        );
    }

    #[test]
    fn the_cpu_time_of_the_process_is_read_and_grows() {
        let start = std::time::Instant::now();
        let mut x = 1u64;
        while cpu_seconds() < 0.02 && start.elapsed() < Duration::from_secs(10) {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
        }
        assert!(x != 0 && cpu_seconds() >= 0.02, "{}", cpu_seconds());
    }

    #[test]
    fn settings_that_do_not_scale_are_refused_naming_the_flag() {
        let bad = |workloads, parallelisms| Settings {
            workloads,
            parallelisms,
            records_per_subtask: 1,
        };
        let e = check(&bad(vec![Workload::Kafka], vec![1])).unwrap_err();
        assert!(e.to_string().contains("--workloads: kafka"), "{e}");
        let e = check(&bad(vec![Workload::Stateless], vec![2, 1])).unwrap_err();
        assert!(e.to_string().contains("ascending"), "{e}");
        let e = check(&bad(vec![Workload::Stateless], vec![0])).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
}
