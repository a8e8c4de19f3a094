//! Stopping a server started in a process group of its own (RabbitMQ's
//! `rabbitmq-server` script and its Erlang VM, Keycloak's `kc.sh` and its
//! JVM): signal, wait until nothing of the group is left, kill the rest.
//!
//! Signals go through the `kill` command (the crate forbids `unsafe`, so no
//! `libc::kill`); `kill -0 -- -PGID` answers whether any member is alive.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The process group led by a child spawned with `process_group(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessGroup(u32);

/// Where [`ProcessGroup::stop`] sends its first SIGTERM.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Term {
    /// To the whole group.
    Group,
    /// To one process (e.g. the Erlang VM named in a pid file), which
    /// takes the rest of the group down itself.
    Pid(u32),
}

impl ProcessGroup {
    /// The group `child` leads (its pid is the group id).
    pub(crate) fn of(child: &Child) -> Self {
        ProcessGroup(child.id())
    }

    /// `kill -SIGNAL -- -PGID`; whether `kill` succeeded.
    pub(crate) fn signal(self, signal: &str) -> bool {
        Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Whether any process of the group still answers a signal.
    pub(crate) fn is_alive(self) -> bool {
        self.signal("0")
    }

    /// Wait up to `timeout` until nothing of the group answers a signal (and
    /// `leader`, when given, has exited, so it is reaped); whether it is gone.
    pub(crate) fn wait_gone(
        self,
        mut leader: Option<&mut Child>,
        timeout: Duration,
        poll: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let exited = leader
                .as_mut()
                .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited && !self.is_alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(poll);
        }
    }

    /// SIGKILL the whole group and wait (up to 10 s) until it is gone. An
    /// error when `kill` itself failed (e.g. the group no longer exists).
    ///
    /// Without `leader` to reap, its zombie answers `kill -0` until its
    /// parent waits for it, so the wait then lasts the full 10 s.
    pub(crate) fn kill(self, leader: Option<&mut Child>) -> std::io::Result<()> {
        let out = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::piped())
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "kill -KILL -- -{}: {}",
                self.0,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        self.wait_gone(leader, Duration::from_secs(10), Duration::from_millis(50));
        Ok(())
    }

    /// Stop `leader`'s group: SIGTERM (to the group or one pid), wait up to
    /// `grace` for the leader to exit and the group to empty, then SIGKILL
    /// whatever is left and reap the leader.
    pub(crate) fn stop(leader: &mut Child, term: Term, grace: Duration) {
        let group = ProcessGroup::of(leader);
        match term {
            Term::Group => {
                group.signal("TERM");
            }
            Term::Pid(pid) => {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
        group.wait_gone(Some(leader), grace, Duration::from_millis(100));
        group.signal("KILL");
        let _ = leader.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper_group() -> Child {
        use std::os::unix::process::CommandExt;
        // A leader with a child of its own: both must go.
        Command::new("sh")
            .args(["-c", "sleep 600 & wait"])
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .expect("sh runs")
    }

    #[test]
    fn stop_takes_the_whole_group() {
        let mut child = sleeper_group();
        let group = ProcessGroup::of(&child);
        assert!(group.is_alive());
        ProcessGroup::stop(&mut child, Term::Group, Duration::from_secs(10));
        assert!(!group.is_alive());
    }

    #[test]
    fn kill_waits_until_gone() {
        let mut child = sleeper_group();
        let group = ProcessGroup::of(&child);
        group.kill(Some(&mut child)).expect("the group exists");
        assert!(!group.is_alive());
        assert!(group.kill(None).is_err(), "nothing left to kill");
    }
}
