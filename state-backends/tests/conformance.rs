//! Backend conformance suite: every `StateBackendKind` must pass the same
//! specification of keyed state semantics, isolation, snapshots, rescaling
//! and corruption handling.
//!
//! The suite is written as functions taking the backend kind; the
//! `conformance_suite!` macro instantiates all of them for one kind. Adding a
//! backend is one line at the bottom of this file.

#[path = "conformance/common.rs"]
mod common;
#[path = "conformance/isolation.rs"]
mod isolation;
#[path = "conformance/kinds.rs"]
mod kinds;
#[path = "conformance/model.rs"]
mod model;
#[path = "conformance/snapshots.rs"]
mod snapshots;
#[path = "conformance/ttl.rs"]
mod ttl;

macro_rules! conformance_suite {
    ($backend:ident, $kind:expr) => {
        mod $backend {
            conformance_suite!(@tests $kind;
                kinds::value_state_reads_back_updates_and_clears,
                kinds::list_state_preserves_insertion_order,
                kinds::map_state_behaves_like_a_map,
                kinds::reducing_state_reduces_in_place,
                kinds::aggregating_state_accumulates_and_reports_results,
                kinds::registering_a_name_twice_returns_the_same_state,
                kinds::a_name_cannot_be_reused_with_another_kind_or_type,
                isolation::value_state_is_scoped_to_current_key_and_namespace,
                isolation::every_kind_isolates_keys_and_namespaces,
                isolation::clear_removes_only_the_current_entry_and_leaves_no_residue,
                isolation::modify_reads_and_writes_in_place,
                isolation::merge_namespaces_combines_list_reducing_and_aggregating_state,
                isolation::access_without_a_current_key_fails_naming_the_state,
                isolation::keys_outside_the_key_group_range_are_rejected,
                isolation::every_kind_lists_the_keys_holding_state_in_its_namespace,
                snapshots::snapshot_restore_into_a_fresh_backend_gives_identical_reads,
                snapshots::snapshot_is_unaffected_by_later_writes,
                snapshots::rescale_two_into_three_keeps_exactly_the_owned_key_groups,
                snapshots::rescale_three_into_one_keeps_every_key_group,
                snapshots::corrupt_truncated_and_wrong_version_bytes_fail_clearly,
                snapshots::corrupt_key_group_bytes_fail_with_state_and_key_group,
                snapshots::incompatible_snapshot_layouts_are_rejected,
                model::value_state_matches_a_hash_map_model,
                model::map_state_matches_a_hash_map_model,
                ttl::ttl_value_state_expires_once_its_time_to_live_passed,
                ttl::update_types_decide_whether_reads_refresh,
                ttl::return_expired_if_not_cleaned_up_returns_it_once,
                ttl::list_elements_expire_one_by_one,
                ttl::map_entries_expire_one_by_one,
                ttl::reducing_and_aggregating_state_start_afresh_after_expiry,
                ttl::full_snapshots_leave_expired_entries_out_when_asked,
                ttl::ttl_state_restores_with_its_timestamps,
                ttl::compaction_drops_expired_entries_in_rocksdb,
                ttl::a_time_to_live_below_one_millisecond_is_rejected_naming_the_state,
                ttl::ttl_and_plain_state_cannot_share_a_name,
            );
        }
    };
    (@tests $kind:expr; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                crate::$module::$test($kind);
            }
        )*
    };
}

fn backend(kind: weir_state_backends::StateBackendKind, cache: usize) -> common::Backend {
    common::Backend {
        kind,
        value_cache_entries: cache,
    }
}

conformance_suite!(
    memory,
    crate::backend(weir_state_backends::StateBackendKind::Memory, 0)
);
#[cfg(feature = "rocksdb")]
conformance_suite!(
    rocksdb,
    crate::backend(
        weir_state_backends::StateBackendKind::RocksDb,
        weir_state_backends::DEFAULT_ROCKSDB_VALUE_CACHE_ENTRIES
    )
);
// The value cache writing back every few accesses, and writing through.
#[cfg(feature = "rocksdb")]
conformance_suite!(
    rocksdb_small_value_cache,
    crate::backend(weir_state_backends::StateBackendKind::RocksDb, 2)
);
#[cfg(feature = "rocksdb")]
conformance_suite!(
    rocksdb_without_value_cache,
    crate::backend(weir_state_backends::StateBackendKind::RocksDb, 0)
);
