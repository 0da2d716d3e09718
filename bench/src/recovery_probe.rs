//! The in-process recovery probe of `sensor-window --fail-after-records`: one injected
//! failure, timed, and a sink that notes the first window result after it.

use std::time::Instant;
use weir_api::DataStream;

/// When the injected failure happened and when the first result after it arrived.
#[derive(Default)]
pub(crate) struct Recovery {
    pub(crate) failed_at: std::sync::OnceLock<Instant>,
    pub(crate) first_output: std::sync::OnceLock<Instant>,
}

pub(crate) static RECOVERY: std::sync::LazyLock<Recovery> =
    std::sync::LazyLock::new(Recovery::default);

/// Discards window results, noting the first one that arrives after the failure.
pub(crate) struct RecoveryProbe;

impl<T: 'static> weir_api::sink::SinkFunction<T> for RecoveryProbe {
    fn create_writer(
        &self,
        _ctx: &weir_api::sink::SinkContext,
    ) -> Result<Box<dyn weir_api::sink::SinkWriter<T>>, weir_api::TaskError> {
        Ok(Box::new(RecoveryProbe))
    }
}

impl<T> weir_api::sink::SinkWriter<T> for RecoveryProbe {
    #[inline]
    fn write(&mut self, _v: T, _ts: weir_api::Timestamp) -> Result<(), weir_api::TaskError> {
        if RECOVERY.failed_at.get().is_some() && RECOVERY.first_output.get().is_none() {
            let _ = RECOVERY.first_output.set(Instant::now());
        }
        Ok(())
    }
}

/// Passes sensor rows through, panicking once, at the `at`-th row it sees, and noting the
/// time of that failure in `RECOVERY`.
pub(crate) fn fail_once_at(
    readings: DataStream<(u32, i64, f64)>,
    at: u64,
) -> DataStream<(u32, i64, f64)> {
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    readings.map(move |r: (u32, i64, f64)| {
        let i = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if i == at && RECOVERY.failed_at.set(Instant::now()).is_ok() {
            panic!("injected failure at record {at}");
        }
        r
    })
}
