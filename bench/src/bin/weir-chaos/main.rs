//! `weir-chaos`: a seeded chaos run over a real cluster, with every output record checked.
//!
//! Starts ZooKeeper, two JobManagers with ZooKeeper high availability (one leads, one
//! stands by) and three one-slot TaskManagers as processes (on loopback, or in network
//! namespaces of the run's own when it partitions), submits the per-key sequence job
//! (`weir-chaos-job`, parallelism 2, checkpoints every `--checkpoint-interval-ms`, the
//! transactional file sink, or the exactly-once PostgreSQL and Kafka sinks for the output
//! whose server the schedule restarts) and injects `--faults` faults drawn from `--seed`
//! (printed to standard error before the run, each one again as it is injected, so any
//! run can be replayed; kinds in `schedule.rs`): kills, freezes and partitions of
//! processes, slow and lossy links, restarts of ZooKeeper, PostgreSQL and Kafka, damaged
//! checkpoints, and full or slow checkpoint storage. After each fault it waits until the
//! job runs again and has completed a checkpoint begun after the fault (the transactional
//! sinks commit output at checkpoints), then for the next fault. Once all are injected
//! the job runs to its end, and every committed record is checked: each
//! key's sequence numbers must appear exactly once, the job's own state check must have
//! found no gap or repeat, each key's event-time windows must appear once each with the
//! failure-free count and sum, and no incomplete checkpoint may be left on storage, nor a
//! prepared transaction in PostgreSQL.
//!
//! The last line of standard output is one JSON object: `seed`, `faults_injected`,
//! `faults` (by kind), `restarts`, `recovery_ms` (`p50`, `p99`, `max`), `records`,
//! `records_checked`, `windows_checked`, `lost`, `duplicated`, `violations`,
//! `incomplete_checkpoints_left`, `prepared_transactions_left`.
//! The exit status is 0 if every fault was injected and all of these checks passed, 1 if
//! one failed, 2 if the run could not be carried out; unless 0 (or with `--keep`), the
//! working directory (logs, output, checkpoints) is kept and named.
//!
//! ```text
//! cargo build --release -p weir-cli -p weir-bench
//! target/release/weir-chaos --seed 7 --faults 100
//! ```

mod cluster;
mod connectors;
mod network;
mod schedule;
mod slow_storage;
mod storage;
mod system;
mod verify;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cluster::{Cluster, POLL, WAIT};
use connectors::Connectors;
use schedule::{Fault, FaultKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use weir_bench::procs::{beside_me, wait_every};

/// How long the job's last clean-up of incomplete checkpoints may take after it ended.
const CLEANUP: Duration = Duration::from_secs(10);

/// Injects seeded faults into a real cluster running an exactly-once job and checks every
/// output record.
#[derive(Parser, Debug)]
#[command(name = "weir-chaos")]
struct Args {
    /// Seed of the fault schedule.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Faults to inject.
    #[arg(long, default_value_t = 15)]
    faults: usize,
    /// Kinds of faults to draw from (comma-separated; default: all but `restart-postgres`
    /// and `restart-kafka`, which cannot be combined with `corrupt-checkpoint`).
    #[arg(long, value_enum, value_delimiter = ',')]
    kinds: Vec<FaultKind>,
    /// Records per second the job's source emits in all.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// Keys of the sequence job (even).
    #[arg(long, default_value_t = 100)]
    keys: u64,
    /// Records in all [default: the rate times 5 s per fault plus 15 s].
    #[arg(long)]
    records: Option<u64>,
    /// Checkpoint interval of the job, in milliseconds.
    #[arg(long, default_value_t = 500)]
    checkpoint_interval_ms: u64,
    /// The `weir` binary [default: beside this one].
    #[arg(long)]
    weir: Option<PathBuf>,
    /// The sequence job's binary [default: `weir-chaos-job` beside this one].
    #[arg(long)]
    job: Option<PathBuf>,
    /// Checkpoint failures in a row the job tolerates before it restarts
    /// (`execution.checkpointing.tolerable-failed-checkpoints`; Flink's default, 0).
    #[arg(long, default_value_t = 0)]
    tolerable_failed_checkpoints: u32,
    /// Size of the checkpoint storage's volume, in MiB (a `tmpfs` with
    /// fill-checkpoint-storage, ext4 on a loop device with slow-checkpoint-storage).
    #[arg(long, default_value_t = 16)]
    checkpoint_storage_mib: u64,
    /// Keep the working directory (logs, output, checkpoints) also when the run passes.
    #[arg(long)]
    keep: bool,
}

fn main() {
    weir_api::logging::init("warn");
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            println!("{}", report.json);
            if !report.passed {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("weir-chaos: {e:#}");
            std::process::exit(2);
        }
    }
}

/// What a run found.
struct Report {
    json: serde_json::Value,
    passed: bool,
}

fn binaries(args: &Args) -> Result<(PathBuf, PathBuf)> {
    let weir = args.weir.clone().map_or_else(|| beside_me("weir"), Ok)?;
    let job = args
        .job
        .clone()
        .map_or_else(|| beside_me("weir-chaos-job"), Ok)?;
    for p in [&weir, &job] {
        if !p.is_file() {
            bail!(
                "{} is missing: build it (cargo build -p weir-cli -p weir-bench) or pass --weir/--job",
                p.display()
            );
        }
    }
    Ok((weir, job))
}

fn run(args: &Args) -> Result<Report> {
    if args.keys == 0 || !args.keys.is_multiple_of(2) {
        bail!("--keys {} must be even and positive", args.keys);
    }
    if args.rate == 0 {
        bail!("--rate 0: the job must emit records");
    }
    for (i, a) in args.kinds.iter().enumerate() {
        if let Some(b) = args.kinds[i + 1..].iter().find(|b| a.conflicts_with(**b)) {
            bail!(
                "--kinds: {} and {} cannot be combined: a damaged checkpoint makes the job \
                 restore an older one and replay records that the PostgreSQL and Kafka sinks \
                 already committed (two-phase-commit sinks are exactly-once from the latest \
                 complete checkpoint only)",
                a.name(),
                b.name()
            );
        }
    }
    let (weir, job_bin) = binaries(args)?;
    let records = args
        .records
        .unwrap_or(args.rate * (5 * args.faults as u64 + 15));
    let faults = schedule::draw(args.seed, args.faults, &args.kinds);
    eprintln!("weir-chaos: seed {}, {} faults:", args.seed, faults.len());
    for (i, f) in faults.iter().enumerate() {
        eprintln!("  {}: {f}", i + 1);
    }
    let dir = tempfile::Builder::new().prefix("weir-chaos-").tempdir()?;
    let result = chaos(args, &weir, &job_bin, records, &faults, dir.path());
    match &result {
        Ok(r) if r.passed && !args.keep => {}
        _ => {
            let kept = dir.keep();
            eprintln!(
                "weir-chaos: logs, output and checkpoints kept in {}",
                kept.display()
            );
        }
    }
    result
}

fn chaos(
    args: &Args,
    weir: &Path,
    job_bin: &Path,
    records: u64,
    faults: &[Fault],
    dir: &Path,
) -> Result<Report> {
    let checkpoints = dir.join("checkpoints");
    // Full storage needs storage of its own that can fill up, slow storage a block device.
    let has = |kind| faults.iter().any(|f| f.kind == kind);
    let volume = Volume::mount(
        &checkpoints,
        dir,
        args.checkpoint_storage_mib,
        has(FaultKind::FillCheckpointStorage),
        has(FaultKind::SlowCheckpointStorage),
    )?;
    // Partitions and slow links need the cluster in network namespaces of its own.
    let net = faults
        .iter()
        .any(|f| f.kind.partitions())
        .then(network::Network::create)
        .transpose()?;
    // The sinks' servers, where the schedule restarts them (in the control plane's
    // namespace when there is one: started before the cluster takes the network).
    let (postgres, kafka) = (
        has(FaultKind::RestartPostgres),
        has(FaultKind::RestartKafka),
    );
    let connectors = Connectors::start(net.as_ref(), postgres, kafka)?;
    let cluster = Cluster::start(weir, dir, 3, net)?;
    let out = dir.join("output");
    let mut job_args = job_args(args, records, &out, dir);
    job_args.extend(connectors.job_args());
    let job = cluster.submit(job_bin, &job_args)?;
    let mut watch = Watch {
        cluster,
        connectors,
        job,
        checkpoints,
        storage_throttle: volume.throttle(),
        restarts: Restarts::default(),
    };
    let report = watch.run(args, faults, records, &out);
    // Every process goes before the volume does.
    drop(watch);
    if args.keep || !report.as_ref().is_ok_and(|r| r.passed) {
        // The volume goes with the run: keep a copy of what it held.
        volume.copy_to(&dir.join("checkpoints-kept"));
    }
    report
}

/// The checkpoint storage's own volume, where the schedule needs one.
enum Volume {
    /// The run directory's disk.
    None,
    /// A `tmpfs`, which can fill up.
    Tmpfs(storage::Tmpfs),
    /// An ext4 file system on a loop device, which can fill up and be slowed.
    Loop(slow_storage::LoopVolume),
}

impl Volume {
    /// Mounts a volume of `mib` MiB on `checkpoints` if the schedule fills (`fill`) or slows
    /// (`slow`) the storage: a loop device's ext4 (its image in `dir`) if it slows it.
    fn mount(checkpoints: &Path, dir: &Path, mib: u64, fill: bool, slow: bool) -> Result<Self> {
        Ok(if slow {
            let image = dir.join("checkpoints.ext4");
            Volume::Loop(slow_storage::LoopVolume::mount(&image, checkpoints, mib)?)
        } else if fill {
            Volume::Tmpfs(storage::Tmpfs::mount(checkpoints, mib)?)
        } else {
            Volume::None
        })
    }

    fn throttle(&self) -> Option<slow_storage::Throttle> {
        match self {
            Volume::Loop(v) => Some(v.throttle()),
            _ => None,
        }
    }

    fn copy_to(&self, dest: &Path) {
        match self {
            Volume::None => {}
            Volume::Tmpfs(v) => v.copy_to(dest),
            Volume::Loop(v) => v.copy_to(dest),
        }
    }
}

/// The cluster and the job it runs, watched through whichever JobManager serves.
struct Watch {
    cluster: Cluster,
    /// The sinks' servers (stopped after the cluster: fields drop in order).
    connectors: Connectors,
    job: String,
    /// Where the job's checkpoints are.
    checkpoints: PathBuf,
    /// The checkpoint storage's write throttle, where the schedule slows it.
    storage_throttle: Option<slow_storage::Throttle>,
    restarts: Restarts,
}

impl Watch {
    /// Injects `faults` into the running job, lets it finish and checks its output.
    fn run(&mut self, args: &Args, faults: &[Fault], records: u64, out: &Path) -> Result<Report> {
        self.until("the job's first checkpoint", WAIT, |i| {
            (i["last_checkpoint"].as_u64()? >= 1).then_some(())
        })?;
        let mut recoveries = Vec::new();
        let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        for (n, fault) in faults.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(fault.pause_ms));
            let Some(recovery) = self.hurt(fault)? else {
                eprintln!(
                    "weir-chaos: fault {}: {fault}: nothing to hit, skipped",
                    n + 1
                );
                continue;
            };
            let ms = recovery.as_millis() as u64;
            let of = faults.len();
            eprintln!(
                "weir-chaos: fault {}/{of}: {fault}: recovered in {ms} ms",
                n + 1
            );
            recoveries.push(ms);
            *by_kind.entry(fault.kind.name()).or_default() += 1;
        }
        let end_wait = Duration::from_secs(records / args.rate * 3 + 300);
        let end = self.until("the job's end", end_wait, |i| {
            let status = i["status"].as_str();
            let ended = matches!(status, Some("FINISHED" | "FAILED" | "CANCELLED"));
            ended.then(|| i.clone())
        })?;
        if end["status"] != "FINISHED" {
            bail!("the job did not finish: {end}");
        }
        let verdict = verify::check(out, &self.connectors, records, args.keys)?;
        for problem in &verdict.examples {
            eprintln!("weir-chaos: {problem}");
        }
        let (left, prepared) = self.left_behind()?;
        let injected: u64 = by_kind.values().sum();
        let json = serde_json::json!({
            "seed": args.seed,
            "faults_injected": injected,
            "faults": by_kind,
            "restarts": self.restarts.total(),
            "recovery_ms": percentiles(&mut recoveries),
            "records": records,
            "records_checked": verdict.records_checked,
            "windows_checked": verdict.windows_checked,
            "lost": verdict.lost,
            "duplicated": verdict.duplicated,
            "violations": verdict.violations,
            "incomplete_checkpoints_left": left.len(),
            "prepared_transactions_left": prepared.len(),
        });
        let clean = left.is_empty() && prepared.is_empty();
        Ok(Report {
            passed: verdict.exact() && injected == faults.len() as u64 && clean,
            json,
        })
    }

    /// What the finished job left behind: incomplete checkpoints on storage (once its last
    /// clean-up ran: a bounded wait for it) and prepared transactions in PostgreSQL.
    fn left_behind(&self) -> Result<(Vec<String>, Vec<String>)> {
        let (checkpoints, job) = (&self.checkpoints, &self.job);
        let left = wait_every("the clean-up of checkpoints", CLEANUP, POLL, || {
            storage::incomplete(checkpoints, job)
                .ok()
                .filter(Vec::is_empty)
        })
        .or_else(|_| storage::incomplete(checkpoints, job))?;
        if !left.is_empty() {
            eprintln!("weir-chaos: incomplete checkpoints left behind: {left:?}");
        }
        let prepared = self.connectors.prepared_transactions_left()?;
        if !prepared.is_empty() {
            eprintln!("weir-chaos: prepared transactions left in PostgreSQL: {prepared:?}");
        }
        Ok((left, prepared))
    }

    /// Polls the job's summary until `f` returns a value, for at most `timeout`.
    fn until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&serde_json::Value) -> Option<T>,
    ) -> Result<T> {
        wait_every(what, timeout, POLL, || {
            let i = self.cluster.job(&self.job)?;
            self.restarts.observe(i["restarts"].as_u64()?);
            f(&i)
        })
    }

    /// Injects `fault` and waits until the job runs again and completed a checkpoint begun
    /// after the fault (or finished); returns the time that took, from the fault (for an
    /// outage, a full or slow storage or a slow link, from the server's restart or the
    /// freed, unthrottled or restored storage or link: the job cannot lead, commit or
    /// complete a checkpoint without the server or the space, and keeps running, slowly,
    /// through a slow storage or link, so there the checkpoint must have begun after the
    /// storage or link is restored), or `None` when the fault had nothing to hit.
    fn hurt(&mut self, fault: &Fault) -> Result<Option<Duration>> {
        let progress = |i: &serde_json::Value| i["last_checkpoint"].as_u64();
        let mut before = self.until("the job's progress", WAIT, progress)?;
        let start = Instant::now();
        let target = (&mut self.cluster, &self.connectors);
        let storage = (self.checkpoints.as_path(), self.storage_throttle.as_ref());
        if !inject(target, fault, &self.job, storage)? {
            return Ok(None);
        }
        let at = match fault.kind {
            FaultKind::RestartZookeeper
            | FaultKind::RestartPostgres
            | FaultKind::RestartKafka
            | FaultKind::FillCheckpointStorage
            | FaultKind::SlowCheckpointStorage
            | FaultKind::SlowTaskmanagerLink => Instant::now(),
            _ => start,
        };
        if matches!(
            fault.kind,
            FaultKind::SlowCheckpointStorage | FaultKind::SlowTaskmanagerLink
        ) {
            // Checkpoints went on, slowly, during the fault.
            before = self.until("the job's progress", WAIT, progress)?;
        }
        // Two checkpoints on: the next one may have begun before the fault, with the
        // acknowledgements of the tasks it hit.
        let what = "the job to run again and complete a checkpoint";
        self.until(what, WAIT, |i| {
            let done = i["status"] == "FINISHED";
            let resumed = i["status"] == "RUNNING" && i["last_checkpoint"].as_u64()? > before + 1;
            (done || resumed).then_some(())
        })?;
        Ok(Some(at.elapsed()))
    }
}

/// Restarts as the serving JobManagers count them: a JobManager that takes over counts
/// from its own start, so a count that goes down starts a new term.
#[derive(Default)]
struct Restarts {
    earlier_terms: u64,
    current: u64,
}

impl Restarts {
    fn observe(&mut self, count: u64) {
        if count < self.current {
            self.earlier_terms += self.current;
        }
        self.current = count;
    }

    fn total(&self) -> u64 {
        self.earlier_terms + self.current
    }
}

/// The job's arguments: its records and keys, its output, checkpoints in `dir`, and a
/// restart strategy that never gives up.
fn job_args(args: &Args, records: u64, out: &Path, dir: &Path) -> Vec<String> {
    let checkpoints = format!("file://{}", dir.join("checkpoints").display());
    let mut a: Vec<String> = vec![
        "--records".into(),
        records.to_string(),
        "--keys".into(),
        args.keys.to_string(),
        "--rate".into(),
        args.rate.to_string(),
        "--output".into(),
        out.display().to_string(),
    ];
    for d in [
        format!(
            "execution.checkpointing.interval={} ms",
            args.checkpoint_interval_ms
        ),
        format!("state.checkpoints.dir={checkpoints}"),
        "restart-strategy.type=fixed-delay".into(),
        format!("restart-strategy.fixed-delay.attempts={}", u32::MAX),
        "restart-strategy.fixed-delay.delay=200 ms".into(),
        // A damaged latest checkpoint leaves older ones to restore.
        "state.checkpoints.num-retained=3".into(),
        format!(
            "execution.checkpointing.tolerable-failed-checkpoints={}",
            args.tolerable_failed_checkpoints
        ),
    ] {
        a.push("-D".into());
        a.push(d);
    }
    a
}

/// Injects `fault`; false when there was nothing to hit.
fn inject(
    (cluster, connectors): (&mut Cluster, &Connectors),
    fault: &Fault,
    job: &str,
    (checkpoints, throttle): (&Path, Option<&slow_storage::Throttle>),
) -> Result<bool> {
    let hold = Duration::from_millis(fault.hold_ms);
    match fault.kind {
        FaultKind::KillTaskmanager => cluster.kill_taskmanager(fault.target)?,
        FaultKind::KillWorker => cluster.kill_worker(fault.target)?,
        FaultKind::KillJobmanager => cluster.kill_leader()?,
        FaultKind::FreezeTaskmanager => cluster.freeze_taskmanager(fault.target, hold)?,
        FaultKind::FreezeWorker => cluster.freeze_worker(fault.target, hold)?,
        FaultKind::FreezeJobmanager => cluster.freeze_leader(hold)?,
        FaultKind::RestartZookeeper => cluster.restart_zookeeper(hold)?,
        FaultKind::CorruptCheckpoint => {
            let Some(what) = storage::damage_latest(checkpoints, job, fault.target)? else {
                return Ok(false);
            };
            eprintln!("weir-chaos: {what}");
            cluster.kill_worker(fault.target)?;
        }
        FaultKind::FillCheckpointStorage => storage::fill_for(checkpoints, hold)?,
        FaultKind::PartitionTaskmanager => cluster.partition_taskmanager(fault.target, hold)?,
        FaultKind::PartitionTaskmanagerFromJobmanager => {
            cluster.partition_taskmanager_from(fault.target, false, hold)?
        }
        FaultKind::PartitionTaskmanagerFromPeers => {
            cluster.partition_taskmanager_from(fault.target, true, hold)?
        }
        FaultKind::SlowTaskmanagerLink => cluster.slow_taskmanager_link(fault.target, hold)?,
        FaultKind::SlowCheckpointStorage => throttle
            .context("slow storage needs the checkpoints on a loop device")?
            .slow_for(hold)?,
        FaultKind::RestartPostgres => return connectors.restart(false, hold),
        FaultKind::RestartKafka => return connectors.restart(true, hold),
    }
    Ok(true)
}

/// `p50`, `p99` and `max` of `values` (0 when empty).
fn percentiles(values: &mut [u64]) -> serde_json::Value {
    values.sort_unstable();
    let at = |q: f64| {
        if values.is_empty() {
            return 0;
        }
        let i = ((values.len() as f64 * q).ceil() as usize).clamp(1, values.len());
        values[i - 1]
    };
    serde_json::json!({ "p50": at(0.5), "p99": at(0.99), "max": at(1.0) })
}
