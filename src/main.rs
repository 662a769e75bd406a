//! `chronik-server`: parses the command line, loads and validates the configuration, logs the
//! node's identity and effective configuration, and runs the node's actors in an actix System.

#![forbid(unsafe_code)]

use anyhow::Context as _;
use chronik::cli::{self, Command};

fn main() {
    let command = cli::parse();
    if let Err(e) = run(command) {
        eprintln!("chronik-server: {e:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    if let Command::Cluster(cli::ClusterCommand::Status(args)) = &command {
        let status = chronik::admin::cluster_status(&args.admin, !args.no_checksums).context("cluster status")?;
        if args.json {
            println!("{status}");
        } else {
            print!("{}", chronik::admin::render(&status));
        }
        return Ok(());
    }
    if let Command::Cluster(cli::ClusterCommand::Faults(a)) = &command {
        let change = chronik::admin::FaultChange {
            cut: a.cut.clone(),
            heal: a.heal.clone(),
            delay_ms: a.delay_ms,
            delay_to: a.delay_to.clone(),
        };
        chronik::admin::send_faults(&a.admin, &change).context("cluster faults")?;
        println!("ok");
        return Ok(());
    }
    if let Command::Cluster(c) = &command {
        use serde_json::json;
        let (admin, path, body, timeout) = match c {
            cli::ClusterCommand::AddNode(a) => {
                (&a.admin, "/v1/members".to_string(), Some(json!({"node": a.node_id, "raft_addr": a.raft_addr})), 60)
            }
            cli::ClusterCommand::RemoveNode(a) => (&a.admin, format!("/v1/members/{}/remove", a.node_id), None, 60),
            cli::ClusterCommand::Decommission(a) => (
                &a.admin,
                format!("/v1/members/{}/decommission?timeout_ms={}", a.node_id, a.timeout_secs * 1000),
                None,
                a.timeout_secs + 60,
            ),
            _ => unreachable!("status and faults returned above"),
        };
        let timeout = std::time::Duration::from_secs(timeout);
        let answer =
            chronik::admin::member_change(admin, &path, body.as_ref(), timeout).context("cluster membership")?;
        println!("{answer}");
        return Ok(());
    }
    let Some(config) = command.load_config().context("configuration")? else {
        anyhow::bail!("no configuration for this command");
    };
    let logger = chronik::logging::terminal(config.log_level.as_str());
    let mode = if matches!(command, Command::Standalone(_)) { "standalone" } else { "raft-cluster" };
    slog::info!(logger, "chronik starting"; "mode" => mode, "node_id" => config.node_id,
        "data_dir" => %config.data_dir.display(), "kafka_listen" => &config.kafka.listen, "raft_listen" => &config.raft.listen,
        "peers" => ?config.raft.peers.iter().map(|p| format!("{}@{}", p.id, p.addr)).collect::<Vec<_>>());
    slog::info!(logger, "effective configuration:\n{}", config.describe());
    let system = actix::System::new();
    let timeout = config.raft.controlled_shutdown_timeout;
    let started = system.block_on(chronik::node::start(config, logger.clone()));
    let node = started.context("starting the node")?;
    // The controlled shutdown waits for SIGTERM/SIGINT on the System, then stops it.
    system.block_on(async {
        actix::spawn(chronik::shutdown::on_signal(node.ctx.clone(), timeout, logger.clone()));
    });
    system.run().context("actor system")?;
    drop(node);
    Ok(())
}
