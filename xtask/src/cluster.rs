//! `cargo xtask cluster [--nodes N] [--write DIR]`: a RabbitMQ cluster on
//! loopback for trying failover by hand, until Enter, Ctrl-C or SIGTERM.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use nost_testkit::{Cluster, ClusterOptions, epmd_knows};

use crate::Running;

/// The Erlang cookie of Debian's default node.
const SYSTEM_COOKIE: &str = "/var/lib/rabbitmq/.erlang.cookie";

/// The YAML a user points an application at: every node in `hosts`
/// (the nost-rs extension), the first also as `host`/`port` so the file
/// stays usable by nost_tools, which knows one host.
fn cluster_yaml(cluster: &Cluster) -> String {
    let first = cluster.node(0).amqp_port();
    let hosts: Vec<String> = cluster.hosts().iter().map(|h| format!("\"{h}\"")).collect();
    format!(
        "servers:\n  rabbitmq:\n    keycloak_authentication: False\n    host: \"127.0.0.1\"\n    port: {first}\n    hosts: [{}]\n    reconnect_delay: 1\nexecution: {{}}\n",
        hosts.join(", ")
    )
}

fn nodes_txt(cluster: &Cluster) -> String {
    cluster
        .nodes()
        .iter()
        .map(|n| format!("{} {}\n", n.node_name(), n.amqp_port()))
        .collect()
}

fn write_files(dir: &Path, cluster: &Cluster) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("cluster.yaml"), cluster_yaml(cluster))?;
    std::fs::write(dir.join(".env"), "USERNAME=\"guest\"\nPASSWORD=\"guest\"\n")?;
    std::fs::write(dir.join("nodes.txt"), nodes_txt(cluster))?;
    // Last: whoever waits for it may use everything above.
    std::fs::write(dir.join("ready"), "")
}

pub(crate) fn cluster(running: &Running, nodes: usize, write: Option<&Path>) -> ExitCode {
    eprintln!("xtask: starting a {nodes}-node RabbitMQ cluster on 127.0.0.1");
    let t = Instant::now();
    // With the system node's cookie, a plain `rabbitmqctl -n NODE …` (the
    // Debian wrapper runs as the rabbitmq user) reaches these nodes too.
    let cookie = std::fs::read_to_string(SYSTEM_COOKIE)
        .ok()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let plain_ctl = cookie.is_some();
    let mut options = ClusterOptions {
        nodes,
        ..Default::default()
    };
    options.node.cookie = cookie;
    let cluster = match Cluster::start(options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "xtask: cluster ready in {:.1} s: {:?}",
        t.elapsed().as_secs_f64(),
        cluster.running_nodes()
    );
    println!("nodes (name, AMQP port on 127.0.0.1; basic auth guest/guest, JWTs too):");
    print!("{}", nodes_txt(&cluster));
    if plain_ctl {
        println!("\nrabbitmqctl: rabbitmqctl -n NODE cluster_status");
    } else {
        let env = cluster.node(0).info().node_env();
        println!(
            "\nrabbitmqctl: env HOME={} /usr/lib/rabbitmq/bin/rabbitmqctl -n NODE cluster_status",
            env.iter()
                .find(|(k, _)| k == "HOME")
                .map(|(_, v)| v.as_str())
                .unwrap_or("?")
        );
    }
    println!(
        "(stop one: `... -n NODE stop_app`; back: `... -n NODE start_app`)\n\nYAML for an application:\n{}",
        cluster_yaml(&cluster)
    );
    if let Some(dir) = write {
        if let Err(e) = write_files(dir, &cluster) {
            eprintln!("xtask: cannot write {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        eprintln!(
            "xtask: wrote {}/{{cluster.yaml,.env,nodes.txt,ready}}",
            dir.display()
        );
        if let Ok(mut files) = running.ready_files.lock() {
            files.push(dir.join("ready"));
        }
    }
    let names: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| n.node_name().to_owned())
        .collect();
    let dirs: Vec<std::path::PathBuf> = cluster
        .nodes()
        .iter()
        .map(|n| n.info().dir.clone())
        .collect();
    if let Ok(mut slot) = running.cluster.lock() {
        *slot = Some(cluster);
    }
    eprintln!("xtask: press Enter (or Ctrl-C) to stop the cluster");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if matches!(read, Ok(0) | Err(_)) {
        // No terminal (closed stdin): run until a signal stops us.
        loop {
            std::thread::park();
        }
    }
    running.stop_node();
    // epmd may need a moment to drop the names of nodes that just died.
    let mut left: Vec<&String> = names.iter().filter(|n| epmd_knows(n)).collect();
    for _ in 0..20 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        left.retain(|n| epmd_knows(n));
    }
    let dirs_left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    if left.is_empty() && dirs_left.is_empty() {
        eprintln!("xtask: cluster stopped, nothing left behind");
        ExitCode::SUCCESS
    } else {
        eprintln!("xtask: left behind: epmd names {left:?}, directories {dirs_left:?}");
        ExitCode::FAILURE
    }
}
