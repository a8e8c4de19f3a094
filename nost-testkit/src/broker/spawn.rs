//! Starting the node's processes: free ports, `rabbitmq-server` in a process
//! group of its own, and the watchdog that cleans up after a dead starter.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{BIN, BrokerError, OAuthBrokerInfo};

/// `n` distinct free loopback ports (all bound at once, then released).
pub(super) fn free_ports<const N: usize>() -> Result<[u16; N], BrokerError> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = [0u16; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr()?.port();
    }
    Ok(ports)
}

/// Script of the watchdog: wait for `$1` (the starter) to die, then stop
/// the node's process group `$2` (SIGTERM to the pid in the pid file,
/// SIGKILL after 10 s) and remove the directory `$3`.
const WATCHDOG: &str = r#"
parent=$1; group=$2; dir=$3
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
[ -d "$dir" ] || exit 0
pid=$(cat "$dir/data/node.pid" 2>/dev/null)
[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
i=0
while [ $i -lt 100 ] && kill -0 "-$group" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -KILL "-$group" 2>/dev/null
rm -rf "$dir"
"#;

/// `rabbitmq-server` for `info`'s node, in a process group of its own,
/// output appended to `log/stdout.txt` and `log/stderr.txt`.
pub(super) fn spawn_node(info: &OAuthBrokerInfo) -> Result<Child, BrokerError> {
    let log = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(info.dir.join("log").join(name))
    };
    let mut cmd = Command::new(format!("{BIN}/rabbitmq-server"));
    cmd.envs(info.node_env())
        .stdin(Stdio::null())
        .stdout(log("stdout.txt")?)
        .stderr(log("stderr.txt")?);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    Ok(cmd.spawn()?)
}

/// The watchdog of the node whose process group is `group`.
pub(super) fn spawn_watchdog(dir: &Path, group: u32) -> Option<Child> {
    let mut w = Command::new("sh");
    w.arg("-c")
        .arg(WATCHDOG)
        .arg("nost-oauth-watchdog")
        .arg(std::process::id().to_string())
        .arg(group.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Not in our process group: Ctrl-C must not take it down.
        w.process_group(0);
    }
    w.spawn().ok()
}
