//! Stopping a server started in a process group of its own (RabbitMQ's
//! `rabbitmq-server` script and its Erlang VM, Keycloak's `kc.sh` and its
//! JVM): signal, wait until nothing of the group is left, kill the rest.
//!
//! Signals go through the `kill` command (the crate forbids `unsafe`, so no
//! `libc::kill`); `kill -0 -- -PGID` answers whether any member exists.
//! Whether one still *runs* is read from `/proc/<pid>/stat`: a killed
//! leader nobody has reaped yet is a zombie (state `Z`), holds no socket
//! or file any more, and still answers `kill -0`.

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

    /// Whether any process of the group still runs: a member in
    /// `/proc` whose state is not zombie (`Z`) or dead (`X`). Without a
    /// readable `/proc`, whether any member answers a signal.
    pub(crate) fn is_running(self) -> bool {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return self.is_alive();
        };
        let mut any = false;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            any = true;
            // Gone since the listing: not running.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some((state, pgrp)) = state_and_group(&stat)
                && pgrp == self.0
                && state != 'Z'
                && state != 'X'
            {
                return true;
            }
        }
        // A `/proc` with no process in it is no `/proc`.
        !any && self.is_alive()
    }

    /// Wait up to `timeout` until nothing of the group runs any more (and
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
            if exited && !self.is_running() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(poll);
        }
    }

    /// SIGKILL the whole group and wait (up to 10 s) until nothing of it
    /// runs. An error when `kill` itself failed (e.g. the group no longer
    /// exists).
    ///
    /// Without `leader` to reap, the leader stays a zombie until its parent
    /// waits for it; a zombie counts as gone, so the wait ends as soon as
    /// the processes died (the zombie holds no port).
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

/// The state letter and process group id of a `/proc/<pid>/stat` line:
/// `pid (comm) state ppid pgrp …` (`comm` may hold spaces and parentheses,
/// so the fields are counted after its last `)`).
fn state_and_group(stat: &str) -> Option<(char, u32)> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
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

    /// Whether every member of `group` is gone for good, zombies reaped
    /// too (the orphaned `sleep` is reaped by init a moment after it died).
    fn reaped(group: ProcessGroup) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while group.is_alive() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    #[test]
    fn stop_takes_the_whole_group() {
        let mut child = sleeper_group();
        let group = ProcessGroup::of(&child);
        assert!(group.is_alive());
        ProcessGroup::stop(&mut child, Term::Group, Duration::from_secs(10));
        assert!(!group.is_running());
        assert!(reaped(group));
    }

    #[test]
    fn stat_lines_give_state_and_group() {
        assert_eq!(
            state_and_group("42 (beam.smp) S 1 40 40 0 -1 4194560"),
            Some(('S', 40))
        );
        assert_eq!(state_and_group("7 (a (b) c) Z 1 7 7 0"), Some(('Z', 7)));
        assert_eq!(state_and_group("garbage"), None);
    }

    /// A killed leader nobody reaped yet is a zombie: it still answers
    /// `kill -0`, but the group no longer runs, so `kill` returns at once
    /// instead of waiting its 10 s for the zombie.
    #[test]
    fn an_unreaped_zombie_leader_counts_as_gone() {
        let mut child = sleeper_group();
        let group = ProcessGroup::of(&child);
        assert!(group.is_running());
        group.kill(None).expect("the group exists");
        assert!(!group.is_running(), "nothing of it runs");
        assert!(
            group.is_alive(),
            "the unreaped leader still answers kill -0"
        );
        let _ = child.wait();
        assert!(reaped(group));
    }

    #[test]
    fn kill_waits_until_gone() {
        let mut child = sleeper_group();
        let group = ProcessGroup::of(&child);
        group.kill(Some(&mut child)).expect("the group exists");
        assert!(!group.is_running());
        assert!(reaped(group));
        assert!(group.kill(None).is_err(), "nothing left to kill");
    }
}
