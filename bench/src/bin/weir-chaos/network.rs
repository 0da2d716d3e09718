//! Network namespaces for partitions: each TaskManager in a namespace of its own, the
//! control plane (ZooKeeper, the JobManagers, and the sinks' PostgreSQL and Kafka) in another, all linked through a bridge in
//! a hub namespace; the harness reaches them through one more link from its own namespace.
//! A partition takes a TaskManager's link down (it keeps running, cut off from the
//! JobManagers and from its peers) and brings it up again; a partial one cuts it off from
//! some members only (the control plane, or its peers) with blackhole routes on both sides,
//! so packets between them go nowhere while the rest of the network works. A slow link
//! shapes both ends of a TaskManager's link with a token bucket (`tc ... tbf`): a low rate
//! and a short queue, so packets wait (delay) and those that would wait longer than the
//! queue allows are dropped (loss): delay and loss come from the queue rather than being
//! drawn per packet, as `netem`, missing from many kernels, would.
//!
//! Invariants: every namespace and link is created by the harness under names derived from
//! its process id and deleted when the [`Network`] drops (deleting the hub deletes every
//! link into it); servers bind only addresses of the run's own subnet, inside its own
//! namespaces.

use anyhow::{Context, Result};
use std::process::Command;

/// The run's namespaces.
pub struct Network {
    /// Prefix of the namespace names: `weir-chaos-<pid>`.
    prefix: String,
    /// The subnet's first three octets.
    subnet: String,
    /// Namespaces created, the hub first.
    namespaces: Vec<String>,
    /// The members linked to the hub, with their host numbers.
    members: Vec<(String, u8)>,
}

/// Host number of the control plane's address in the subnet.
const CONTROL: u8 = 1;
/// Host number of the harness's own address in the subnet.
const HARNESS: u8 = 254;

impl Network {
    /// Creates the hub with its bridge, the harness's link into it and the control
    /// plane's namespace. Needs root and `ip`.
    pub fn create() -> Result<Self> {
        let pid = std::process::id();
        let subnet = format!("10.{}.{}", 100 + (pid >> 8) % 100, pid & 0xff);
        let mut net = Self {
            prefix: format!("weir-chaos-{pid}"),
            subnet,
            namespaces: Vec::new(),
            members: Vec::new(),
        };
        let hub = net.add_namespace("hub")?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        let root_end = format!("wc{pid}");
        ip(&[
            "link", "add", &root_end, "type", "veth", "peer", "name", "harness",
        ])?;
        ip(&["link", "set", "harness", "netns", &hub])?;
        ip(&["-n", &hub, "link", "set", "harness", "master", "br0", "up"])?;
        let own = format!("{}/24", net.address(HARNESS));
        ip(&["addr", "add", &own, "dev", &root_end])?;
        ip(&["link", "set", &root_end, "up"])?;
        net.add_member("control", CONTROL)?;
        Ok(net)
    }

    /// The address of host `n` of the run's subnet.
    pub fn address(&self, n: u8) -> String {
        format!("{}.{n}", self.subnet)
    }

    /// The run's subnet, `A.B.C.0/24`.
    pub fn cidr(&self) -> String {
        format!("{}.0/24", self.subnet)
    }

    /// The control plane's address.
    pub fn control_address(&self) -> String {
        self.address(CONTROL)
    }

    fn add_namespace(&mut self, name: &str) -> Result<String> {
        let ns = format!("{}-{name}", self.prefix);
        ip(&["netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates namespace `name` linked to the hub (the hub's end named `name`) with host
    /// number `n`; returns the namespace.
    pub fn add_member(&mut self, name: &str, n: u8) -> Result<String> {
        let ns = self.add_namespace(name)?;
        let hub = self.namespaces[0].clone();
        ip(&[
            "-n", &hub, "link", "add", name, "type", "veth", "peer", "name", "eth0",
        ])?;
        ip(&["-n", &hub, "link", "set", "eth0", "netns", &ns])?;
        ip(&["-n", &hub, "link", "set", name, "master", "br0", "up"])?;
        let addr = format!("{}/24", self.address(n));
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        self.members.push((name.to_string(), n));
        Ok(ns)
    }

    /// Cuts member `name` off from each member of `from` (`cut` true), or joins them again:
    /// a blackhole route to the other's address in each of the two namespaces.
    pub fn cut(&self, name: &str, from: &[String], cut: bool) -> Result<()> {
        let op = if cut { "add" } else { "del" };
        let mut result = Ok(());
        for other in from {
            for (a, b) in [(name, other.as_str()), (other.as_str(), name)] {
                let to = format!("{}/32", self.address(self.host_of(b)?));
                let ns = format!("{}-{a}", self.prefix);
                // Joining again goes on past a failure, so no route stays behind.
                let routed = ip(&["-n", &ns, "route", op, "blackhole", &to]);
                if cut {
                    routed?;
                } else if result.is_ok() {
                    result = routed;
                }
            }
        }
        result
    }

    fn host_of(&self, name: &str) -> Result<u8> {
        let member = self.members.iter().find(|(m, _)| m == name);
        member
            .map(|(_, n)| *n)
            .with_context(|| format!("no member {name} in the run's network"))
    }

    /// The command prefix that runs a program in member `name`'s namespace.
    pub fn exec_prefix(&self, name: &str) -> Vec<String> {
        ["ip", "netns", "exec", &format!("{}-{name}", self.prefix)]
            .map(str::to_string)
            .to_vec()
    }

    /// A command running `program` in member `name`'s namespace.
    pub fn command(&self, name: &str, program: &std::path::Path) -> Command {
        let prefix = self.exec_prefix(name);
        let mut cmd = Command::new(&prefix[0]);
        cmd.args(&prefix[1..]).arg(program);
        cmd
    }

    /// Shapes both ends of member `name`'s link to `shape` (egress of the hub's end and of
    /// the member's `eth0`), or removes the shaping (`None`; goes on past a failure so
    /// nothing stays shaped).
    pub fn shape(&self, name: &str, shape: Option<Shape>) -> Result<()> {
        let member = format!("{}-{name}", self.prefix);
        let ends = [(&self.namespaces[0], name), (&member, "eth0")];
        let Some(shape) = shape else {
            let mut result = Ok(());
            for (ns, dev) in ends {
                let removed = tc(&["-n", ns, "qdisc", "del", "dev", dev, "root"]);
                result = result.and(removed);
            }
            return result;
        };
        let rate = format!("{}kbit", shape.rate_kbit);
        let latency = format!("{}ms", shape.latency_ms);
        for (ns, dev) in ends {
            tc(&[
                "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf", "rate", &rate, "burst",
                "8kb", "latency", &latency,
            ])?;
        }
        Ok(())
    }

    /// Takes member `name`'s link down (`up` false) or up again.
    pub fn link(&self, name: &str, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.namespaces[0], "link", "set", name, state])
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// How a slow link is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The rate each direction is held to, in kbit/s.
    pub rate_kbit: u32,
    /// The longest a packet waits in the queue; longer and it is dropped.
    pub latency_ms: u32,
}

impl Shape {
    /// The shape for a fault's target: 128, 256, 512 or 1024 kbit/s, with queues of
    /// 50–400 ms.
    pub fn for_target(target: u64) -> Self {
        Self {
            rate_kbit: 128 << (target % 4),
            latency_ms: 50 * (1 + (target / 4 % 8) as u32),
        }
    }
}

/// Runs `tc args` (iproute2), failing with its error output.
fn tc(args: &[&str]) -> Result<()> {
    let needs = "slow links need root and the tbf queueing discipline";
    crate::system::run("tc", args, needs).map(drop)
}

/// Runs `ip args` (iproute2), failing with its error output.
fn ip(args: &[&str]) -> Result<()> {
    crate::system::run("ip", args, "network partitions need root").map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_link_is_shaped_to_one_of_four_rates_with_a_queue_of_50_to_400_ms() {
        let shapes: Vec<Shape> = (0..1_000).map(Shape::for_target).collect();
        for s in &shapes {
            assert!([128, 256, 512, 1024].contains(&s.rate_kbit), "{s:?}");
            assert!((50..=400).contains(&s.latency_ms), "{s:?}");
        }
        for rate in [128, 1024] {
            assert!(shapes.iter().any(|s| s.rate_kbit == rate));
        }
        for latency in [50, 400] {
            assert!(shapes.iter().any(|s| s.latency_ms == latency));
        }
    }
}
