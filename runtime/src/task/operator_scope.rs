//! Which operator of the chain runs user code on this thread, so that a panic can be
//! attributed to it.
//!
//! Invariant: while an [`OperatorScope`] lives, its operator is the one marked; when it
//! ends normally the caller's operator is marked again. During a panic the innermost
//! operator stays marked, so the task loop, catching the panic, names that operator.

use std::cell::Cell;

/// Marks no operator: code outside any operator (the task's own) is running.
const NO_OPERATOR: usize = usize::MAX;

thread_local! {
    static CURRENT_OPERATOR: Cell<usize> = const { Cell::new(NO_OPERATOR) };
}

/// Marks the chain's `index`-th operator as the one running user code on this thread, so a
/// panic can be attributed to it, until the returned scope ends. Ending the scope restores
/// the caller's operator, so user code that runs after a downstream call is attributed to
/// its own operator again; during a panic the innermost operator stays marked.
#[inline]
pub fn enter_operator(index: usize) -> OperatorScope {
    OperatorScope {
        previous: CURRENT_OPERATOR.with(|c| c.replace(index)),
    }
}

/// The time an operator is marked as running user code (see [`enter_operator`]).
#[must_use = "the operator stays marked only while the scope lives"]
pub struct OperatorScope {
    previous: usize,
}

impl Drop for OperatorScope {
    #[inline]
    fn drop(&mut self) {
        if !std::thread::panicking() {
            CURRENT_OPERATOR.with(|c| c.set(self.previous));
        }
    }
}

/// Marks no operator on this thread (a task starts its chain).
pub(super) fn reset() {
    CURRENT_OPERATOR.with(|c| c.set(NO_OPERATOR));
}

/// Returns the index of the operator marked on this thread (`usize::MAX` for none).
pub(super) fn current() -> usize {
    CURRENT_OPERATOR.with(|c| c.get())
}

/// Extracts the message of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_scope_marks_the_callers_operator_again_and_a_panic_keeps_the_innermost() {
        reset();
        {
            let _outer = enter_operator(1);
            {
                let _inner = enter_operator(2);
                assert_eq!(current(), 2);
            }
            assert_eq!(current(), 1);
        }
        assert_eq!(current(), NO_OPERATOR);
        let panic = std::panic::catch_unwind(|| {
            let _outer = enter_operator(1);
            let _inner = enter_operator(3);
            panic!("user code");
        })
        .unwrap_err();
        assert_eq!(current(), 3);
        assert_eq!(panic_message(&*panic), "user code");
        reset();
    }

    #[test]
    fn a_panic_message_is_read_from_str_and_string_payloads() {
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&42u8), "non-string panic payload");
    }
}
