//! What a sink promises about its records across failures, shared by every sink connector.

/// What a sink promises about its records across failures (Flink's `DeliveryGuarantee`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryGuarantee {
    /// Records may be lost or repeated.
    None,
    /// Records may be repeated, never lost (the default).
    #[default]
    AtLeastOnce,
    /// Every record becomes visible exactly once, when the checkpoint that covers it
    /// completes (Kafka: to `read_committed` consumers; PostgreSQL: to every reader).
    ExactlyOnce,
}
