//! Waits that cannot hang: a rank that dies or stops answering ends the job within seconds,
//! with an `error:` naming it, instead of leaving the others blocked in a collective.
//!
//! OpenMPI's `MPI_ERRORS_RETURN` does not report a peer killed mid-collective (the wait just
//! never completes), and `mpirun` only notices a death on its own node. So every wait polls:
//! between two polls the watchdog looks (every 50 ms) whether the peers on this host still
//! run (`/proc/<pid>/stat`: gone, or a zombie, is dead), and a wait longer than the timeout
//! (`NEURITE_MPI_TIMEOUT` seconds, default 60: a peer on another host that died or hangs)
//! ends the job too. Either way rank 0 (or whichever rank sees it first) prints the error and
//! calls `MPI_Abort`, which makes the launcher stop every rank.

// Without the `mpi` feature there is no peer to watch: the waits are the identity.
#![cfg_attr(not(feature = "mpi"), allow(dead_code))]

use std::time::{Duration, Instant};

/// Where each rank runs: found once at [`super::init`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Peers {
    /// This rank.
    pub(crate) rank: usize,
    /// Each rank's process id.
    pub(crate) pids: Vec<u64>,
    /// Each rank's host, as a hash of its name (equal hashes: the same machine).
    pub(crate) hosts: Vec<u64>,
}

/// The timeout of one wait, from `NEURITE_MPI_TIMEOUT` (seconds) or 60 s.
pub(crate) fn timeout_from_env() -> Duration {
    let secs = std::env::var("NEURITE_MPI_TIMEOUT")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(60.0);
    Duration::from_secs_f64(secs)
}

/// The guard of one wait.
#[derive(Clone, Debug)]
pub(crate) struct Watchdog {
    pub(crate) peers: Peers,
    pub(crate) timeout: Duration,
    started: Instant,
    last_probe: std::cell::Cell<Instant>,
}

impl Watchdog {
    /// A watchdog over `peers`.
    pub(crate) fn new(peers: Peers, timeout: Duration) -> Watchdog {
        let now = Instant::now();
        Watchdog {
            peers,
            timeout,
            started: now,
            last_probe: std::cell::Cell::new(now),
        }
    }

    /// The same watchdog, its clock starting now (one per wait).
    pub(crate) fn started(&self) -> Watchdog {
        Watchdog::new(self.peers.clone(), self.timeout)
    }

    /// The first rank on this host whose process is gone, if any.
    pub(crate) fn dead_peer(&self) -> Option<usize> {
        let me = self.peers.rank;
        let host = *self.peers.hosts.get(me)?;
        (0..self.peers.pids.len())
            .find(|&r| r != me && self.peers.hosts[r] == host && !process_runs(self.peers.pids[r]))
    }

    /// Called between two polls of a wait for `what`: ends the job with an error when a
    /// peer died or the wait ran past the timeout.
    pub(crate) fn check(&self, what: &str) {
        let now = Instant::now();
        if now.duration_since(self.last_probe.get()) < Duration::from_millis(50) {
            return;
        }
        self.last_probe.set(now);
        if let Some(r) = self.dead_peer() {
            fail(&format!(
                "rank {r} (pid {}) died during {what}; stopping all {} ranks (the last \
                 checkpoint is intact: resume with --resume)",
                self.peers.pids[r],
                self.peers.pids.len()
            ));
        }
        if now.duration_since(self.started) > self.timeout {
            fail(&format!(
                "rank {} waited {:.0} s for the other ranks during {what}: a rank on another \
                 host died or hangs; stopping the job (NEURITE_MPI_TIMEOUT sets the wait, in \
                 seconds)",
                self.peers.rank,
                self.timeout.as_secs_f64()
            ));
        }
    }
}

/// Prints `error: …` and ends every rank.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    super::backend::abort(1)
}

/// Whether process `pid` of this host still runs (not gone, not a zombie).
pub(crate) fn process_runs(pid: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last ')' (comm may contain one).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z') | Some('X') | None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_reaped_child_does_not() {
        assert!(process_runs(std::process::id() as u64));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as u64;
        child.wait().unwrap();
        assert!(!process_runs(pid));
    }

    #[test]
    fn a_dead_peer_on_this_host_is_named() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as u64;
        child.wait().unwrap();
        let me = std::process::id() as u64;
        let peers = Peers {
            rank: 0,
            pids: vec![me, me, pid],
            hosts: vec![7, 7, 7],
        };
        assert_eq!(
            Watchdog::new(peers.clone(), timeout_from_env()).dead_peer(),
            Some(2)
        );
        // A peer on another host is left to the timeout.
        let elsewhere = Peers {
            hosts: vec![7, 7, 8],
            ..peers
        };
        assert_eq!(
            Watchdog::new(elsewhere, timeout_from_env()).dead_peer(),
            None
        );
    }
}
