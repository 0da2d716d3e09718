//! Fencing tokens on the JobManager's commands.
//!
//! Every command a JobManager sends a TaskManager or a job worker is wrapped in
//! [`Fenced`] with the JobManager's epoch: its leader epoch with high availability (the
//! sequence of its ZooKeeper latch, which only grows from one leader to the next), 0
//! without. A receiver keeps a [`Fence`]: the highest epoch it knows of, raised by every
//! admitted command and by leader retrieval when a new leader is published.
//!
//! Invariant: a command whose epoch is lower than the highest one known comes from a
//! deposed leader; it is refused and logged, never carried out.

use super::LinkSender;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc::error::SendError;
use tracing::warn;

/// A command stamped with the epoch of the JobManager that sent it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fenced<T> {
    /// The sender's epoch.
    pub epoch: u64,
    /// The command.
    pub message: T,
}

/// The sending half of a link whose every message carries one JobManager's epoch.
#[derive(Debug)]
pub struct FencedSender<T> {
    link: LinkSender<Fenced<T>>,
    epoch: u64,
}

impl<T> Clone for FencedSender<T> {
    fn clone(&self) -> Self {
        Self {
            link: self.link.clone(),
            epoch: self.epoch,
        }
    }
}

impl<T> FencedSender<T> {
    /// Stamps every message sent on `link` with `epoch`.
    pub fn new(link: LinkSender<Fenced<T>>, epoch: u64) -> Self {
        Self { link, epoch }
    }

    /// Sends `message` with this sender's epoch; fails once the link is closed.
    pub fn send(&self, message: T) -> Result<(), SendError<Fenced<T>>> {
        self.link.send(Fenced {
            epoch: self.epoch,
            message,
        })
    }
}

/// The highest JobManager epoch a receiver knows of.
#[derive(Debug, Default)]
pub struct Fence {
    highest: AtomicU64,
}

impl Fence {
    /// A fence that admits epochs from `epoch` on.
    pub fn new(epoch: u64) -> Self {
        Self {
            highest: AtomicU64::new(epoch),
        }
    }

    /// Records that a leader of `epoch` exists (leader retrieval published it): commands
    /// of any lower epoch are refused from now on.
    pub fn observe(&self, epoch: u64) {
        self.highest.fetch_max(epoch, Ordering::AcqRel);
    }

    /// The highest epoch known.
    pub fn highest(&self) -> u64 {
        self.highest.load(Ordering::Acquire)
    }

    /// Returns the command of `fenced` unless a later leader is known, in which case it is
    /// logged (naming `peer`) and refused.
    pub fn admit<T: std::fmt::Debug>(&self, fenced: Fenced<T>, peer: &str) -> Option<T> {
        let highest = self.highest.fetch_max(fenced.epoch, Ordering::AcqRel);
        if fenced.epoch < highest {
            warn!(
                %peer,
                epoch = fenced.epoch,
                leader_epoch = highest,
                command = ?fenced.message,
                "refused a command of a deposed JobManager"
            );
            return None;
        }
        Some(fenced.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fenced(epoch: u64) -> Fenced<&'static str> {
        Fenced {
            epoch,
            message: "deploy",
        }
    }

    #[test]
    fn a_command_of_a_lower_epoch_than_the_highest_known_is_refused() {
        let fence = Fence::new(3);
        assert_eq!(fence.admit(fenced(3), "jm"), Some("deploy"));
        assert_eq!(fence.admit(fenced(2), "old jm"), None);
        // A later leader raises the fence for everyone after it.
        assert_eq!(fence.admit(fenced(7), "new jm"), Some("deploy"));
        assert_eq!(fence.admit(fenced(3), "jm"), None);
        // Leader retrieval learning of a new leader refuses the current one's commands.
        fence.observe(9);
        assert_eq!(fence.admit(fenced(7), "new jm"), None);
        assert_eq!(fence.highest(), 9);
    }

    #[test]
    fn a_fenced_sender_stamps_its_epoch_on_every_message() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sender = FencedSender::new(tx, 12);
        sender.send("a").unwrap();
        sender.clone().send("b").unwrap();
        for want in ["a", "b"] {
            let got = rx.try_recv().unwrap();
            assert_eq!((got.epoch, got.message), (12, want));
        }
        drop(rx);
        assert!(sender.send("c").is_err());
    }
}
