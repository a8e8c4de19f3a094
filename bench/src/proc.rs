//! A measured child process and the line protocol with it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A child with piped stdin/stdout, killed if dropped while running.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Proc {
    /// Spawn `cmd` (stderr goes to ours, so a failing child explains itself).
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Proc> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        Ok(Proc {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            lines: BufReader::new(stdout).lines(),
            child,
        })
    }

    /// The next line starting with `word`, within `timeout`; other lines are
    /// skipped (libraries may print).
    pub async fn expect(&mut self, word: &str, timeout: Duration) -> Result<String> {
        let name = self.name.clone();
        let read = async {
            loop {
                match self.lines.next_line().await? {
                    Some(l) if l.split_whitespace().next() == Some(word) => return Ok(l),
                    Some(_) => continue,
                    None => bail!("{name} exited before saying {word:?}"),
                }
            }
        };
        tokio::time::timeout(timeout, read)
            .await
            .with_context(|| format!("{name} did not say {word:?} within {timeout:?}"))?
    }

    /// The child's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Send one line.
    pub async fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("child stdin closed")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// Close stdin and wait for the exit; kill after `timeout`.
    pub async fn finish(mut self, timeout: Duration) {
        self.stdin = None;
        if tokio::time::timeout(timeout, self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "bench: {} did not exit within {timeout:?}; killed",
                self.name
            );
            let _ = self.child.kill().await;
        }
    }
}

/// The numbers after the first word of `line`.
pub fn numbers(line: &str) -> Vec<f64> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect()
}
