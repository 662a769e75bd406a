//! The `chronik-server` command line: parsing arguments into a [`Command`]
//! (clap derive), and layering the flags of the server subcommands on top of
//! the file/environment configuration from `crate::config`, so that the order
//! of precedence is defaults < TOML file < `CHRONIK_*` environment < flags.
//!
//! ```text
//! chronik-server standalone [--config FILE] [--data-dir DIR] [--listen HOST:PORT]
//!                           [--advertised-addr HOST] [--admin-listen HOST:PORT] [--log-level LEVEL]
//! chronik-server raft-cluster [--config FILE] --node-id N --advertised-addr HOST
//!                           [--kafka-port P | --listen HOST:PORT] [--raft-addr HOST:PORT]
//!                           [--data-dir DIR] [--peers "1@host:port,2@host:port,3@host:port"]
//!                           [--join HOST:PORT] [--admin-listen HOST:PORT] [--log-level LEVEL]
//! chronik-server cluster status --admin HOST:PORT [--json]
//! chronik-server cluster add-node --admin HOST:PORT --node-id N --raft-addr HOST:PORT
//! chronik-server cluster remove-node|decommission --admin HOST:PORT --node-id N [--timeout-secs S]
//! ```

use std::collections::HashSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::{check_host, check_host_port, parse_peer_list, Config, ConfigError, LogLevel, PeerConfig};

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "chronik-server",
    version,
    about = "chronik: a Kafka-compatible message broker where every partition is a Raft group.",
    long_about = None,
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "Settings are layered: built-in defaults, then the --config file, then CHRONIK_* \
                  environment variables (e.g. CHRONIK_RAFT__ELECTION_TIMEOUT=5s), then flags."
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A `chronik-server` subcommand.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run a single-node broker (node id 1, no peers).
    Standalone(StandaloneArgs),
    /// Run one node of a cluster whose partitions are replicated with Raft.
    RaftCluster(RaftClusterArgs),
    /// Inspect a running cluster (client side).
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `chronik-server cluster ...`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ClusterCommand {
    /// Print the cluster's nodes, controller and partition leaders.
    Status(ClusterStatusArgs),
    /// Test-only: cut or delay one node's peer traffic (the node needs `faults.runtime = true`).
    Faults(ClusterFaultsArgs),
    /// Record a node in the cluster ahead of its start (its id and Raft address).
    AddNode(ClusterAddNodeArgs),
    /// Remove a dead node for good and replace its replicas on other live nodes.
    RemoveNode(ClusterNodeArgs),
    /// Move every replica off a node, then remove it from the cluster.
    Decommission(ClusterNodeArgs),
}

/// Flags of `chronik-server cluster add-node`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterAddNodeArgs {
    /// Admin API address (`admin.listen`) of any node of the cluster, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_admin)]
    pub admin: String,
    /// The new node's id, unused in the cluster so far.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    pub node_id: u64,
    /// The new node's Raft address (its `raft.listen`), as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub raft_addr: String,
}

/// Flags of `chronik-server cluster remove-node|decommission`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterNodeArgs {
    /// Admin API address (`admin.listen`) of any node of the cluster, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_admin)]
    pub admin: String,
    /// The id of the node that leaves the cluster.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    pub node_id: u64,
    /// How long to wait for the replicas to move before giving up (the moves go on), in seconds.
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub timeout_secs: u64,
}

/// Flags of `chronik-server cluster faults`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterFaultsArgs {
    /// Admin API address (`admin.listen`) of the node whose peer traffic changes, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_admin)]
    pub admin: String,
    /// Removed: the Kafka port no longer serves faults; any use fails, pointing to --admin.
    #[arg(long, hide = true, value_parser = removed_bootstrap)]
    pub bootstrap: Option<String>,
    /// Comma-separated peer node ids to cut this node off from, in both directions.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub cut: Vec<u64>,
    /// Comma-separated peer node ids whose traffic is restored.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub heal: Vec<u64>,
    /// Delay every frame to the peers named by --delay-to by this many milliseconds (0 removes it).
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,
    /// Comma-separated peer node ids that --delay-ms applies to.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub delay_to: Vec<u64>,
}

/// Flags of `chronik-server standalone`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[command(after_help = "Standalone always runs as node-id 1 with no raft peers, whatever the file or \
                  environment say; topics.default-replication-factor must therefore be 1.")]
pub struct StandaloneArgs {
    /// TOML configuration file; every key is optional (see config/standalone.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for partition logs and raft state; overrides `data-dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address the Kafka listener binds, as IP:PORT; overrides `kafka.listen`.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Host name or IP that clients are told to connect to; overrides `kafka.advertised-host`.
    #[arg(long, value_name = "HOST", value_parser = parse_advertised_host)]
    pub advertised_addr: Option<String>,

    /// Address the admin HTTP listener (/metrics) binds, as IP:PORT; overrides `admin.listen` and enables it.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub admin_listen: Option<SocketAddr>,

    /// Log verbosity: trace, debug, info, warn or error; overrides `log-level`.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

/// Flags of `chronik-server raft-cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
#[command(after_help = "Without --listen the Kafka listener keeps the host of kafka.listen (127.0.0.1 by \
                  default) and --kafka-port only replaces its port; to accept clients from other \
                  machines pass --listen 0.0.0.0:PORT.\n\
                  --peers names every node of the cluster, this one included: the entry with this \
                  node's id is its raft listen address (unless --raft-addr is given) and the other \
                  entries replace raft.peers.")]
pub struct RaftClusterArgs {
    /// TOML configuration file; every key is optional (see config/cluster-3node/).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// This node's id (1..2147483647), unique in the cluster; overrides `node-id` (required without --config).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64), required_unless_present = "config")]
    pub node_id: Option<u64>,

    /// Host name or IP that clients are told to connect to; sets `kafka.advertised-host` (required without --config).
    #[arg(long, value_name = "HOST", value_parser = parse_advertised_host, required_unless_present = "config")]
    pub advertised_addr: Option<String>,

    /// Port of the Kafka listener (host kept from `kafka.listen`); also the advertised port unless `kafka.advertised-port` is set.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "listen")]
    pub kafka_port: Option<u16>,

    /// Full address the Kafka listener binds, as IP:PORT; overrides `kafka.listen`.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Address the raft peer listener binds, as IP:PORT; overrides `raft.listen` and this node's --peers entry.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub raft_addr: Option<SocketAddr>,

    /// Directory for partition logs and raft state; overrides `data-dir`.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Every node of the cluster as ID@HOST:PORT (raft address), comma-separated, this node included; replaces `raft.peers`.
    #[arg(long, value_name = "ID@HOST:PORT,...", value_parser = parse_peers_arg)]
    pub peers: Option<PeerList>,

    /// Join a running cluster through any member's Raft address, as HOST:PORT; sets `raft.join`.
    #[arg(long, value_name = "HOST:PORT")]
    pub join: Option<String>,

    /// Address the admin HTTP listener (/metrics) binds, as IP:PORT; overrides `admin.listen` and enables it.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_listen)]
    pub admin_listen: Option<SocketAddr>,

    /// Log verbosity: trace, debug, info, warn or error; overrides `log-level`.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
}

/// Flags of `chronik-server cluster status`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ClusterStatusArgs {
    /// Admin API address (`admin.listen`) of any node of the cluster, as HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_admin)]
    pub admin: String,
    /// Removed: the Kafka port no longer serves status; any use fails, pointing to --admin.
    #[arg(long, hide = true, value_parser = removed_bootstrap)]
    pub bootstrap: Option<String>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Leave out each partition's log checksum, which reads every replica's whole log: for
    /// frequent progress polls (applied, commit, high watermark).
    #[arg(long)]
    pub no_checksums: bool,
}

/// The nodes given to `--peers`, in command-line order, ids unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerList(pub Vec<PeerConfig>);

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse::<SocketAddr>()
        .map_err(|_| format!("{s:?} is not IP:PORT (for example 127.0.0.1:9092, 0.0.0.0:9092 or [::1]:9092)"))
}

fn parse_advertised_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Err(e) = check_host(s) {
        return Err(if s.contains(':') {
            format!("{e}; give a host without a port (the port comes from the Kafka listener or --kafka-port)")
        } else {
            e
        });
    }
    Ok(s.to_string())
}

fn parse_admin(s: &str) -> Result<String, String> {
    let s = s.trim();
    check_host_port(s)?;
    Ok(s.to_string())
}

fn removed_bootstrap(_: &str) -> Result<String, String> {
    Err("--bootstrap was removed: status and faults moved from the Kafka port to the admin API; \
         give --admin HOST:PORT (the node's admin.listen, for example 127.0.0.1:9300)"
        .to_string())
}

fn parse_peers_arg(s: &str) -> Result<PeerList, String> {
    let peers = parse_peer_list(s)?;
    if peers.is_empty() {
        return Err("the list is empty; expected ID@HOST:PORT,ID@HOST:PORT,...".to_string());
    }
    let mut seen = HashSet::new();
    for p in &peers {
        if p.id == 0 {
            return Err(format!("peer {p}: node ids start at 1"));
        }
        if !seen.insert(p.id) {
            return Err(format!("node id {} is listed more than once", p.id));
        }
    }
    Ok(PeerList(peers))
}

/// Parses `args` (the first item is the program name). `--help` and
/// `--version` come back as errors of kind `DisplayHelp` / `DisplayVersion`;
/// call `clap::Error::exit` on any error to print it and exit properly.
pub fn parse_from<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args).map(|cli| cli.command)
}

/// Parses the process arguments; on an error (or `--help`) prints clap's
/// message and exits.
pub fn parse() -> Command {
    parse_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
}

impl StandaloneArgs {
    /// Layers these flags on `config`: forces node-id 1 and no peers, then
    /// applies each given flag. Does not validate.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        config.node_id = 1;
        config.raft.peers.clear();
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = self.listen {
            config.kafka.listen = listen.to_string();
        }
        if let Some(host) = &self.advertised_addr {
            config.kafka.advertised_host = Some(host.clone());
        }
        if let Some(level) = self.log_level {
            config.log_level = level;
        }
        if let Some(addr) = self.admin_listen {
            config.admin.enabled = true;
            config.admin.listen = addr.to_string();
        }
        Ok(())
    }
}

impl RaftClusterArgs {
    /// Layers these flags on `config`. Does not validate; errors name the
    /// flag at fault.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        if let Some(id) = self.node_id {
            config.node_id = id;
        }
        if let Some(host) = &self.advertised_addr {
            config.kafka.advertised_host = Some(host.clone());
        }
        let node_id = config.node_id;
        if let Some(listen) = self.listen {
            config.kafka.listen = listen.to_string();
        }
        if let Some(port) = self.kafka_port {
            let mut addr = config.kafka.listen_addr().map_err(|_| {
                ConfigError::invalid(
                    "--kafka-port",
                    format!(
                        "cannot replace the port of kafka.listen {:?}, which is not IP:PORT; pass --listen instead",
                        config.kafka.listen
                    ),
                )
            })?;
            addr.set_port(port);
            config.kafka.listen = addr.to_string();
        }
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(level) = self.log_level {
            config.log_level = level;
        }
        if let Some(addr) = self.admin_listen {
            config.admin.enabled = true;
            config.admin.listen = addr.to_string();
        }
        if let Some(PeerList(peers)) = &self.peers {
            let me = peers.iter().find(|p| p.id == node_id).ok_or_else(|| {
                ConfigError::invalid(
                    "--peers",
                    format!("must list every node including this one, but has no entry for node id {node_id}"),
                )
            })?;
            if self.raft_addr.is_none() {
                let addr: SocketAddr = me.addr.parse().map_err(|_| {
                    ConfigError::invalid(
                        "--peers",
                        format!(
                            "entry {me} for this node is not IP:PORT, so it cannot be bound as the raft listener; pass --raft-addr"
                        ),
                    )
                })?;
                config.raft.listen = addr.to_string();
            }
            config.raft.peers = peers.iter().filter(|p| p.id != node_id).cloned().collect();
        }
        if let Some(addr) = self.raft_addr {
            config.raft.listen = addr.to_string();
        }
        if let Some(join) = &self.join {
            config.raft.join = Some(join.clone());
        }
        Ok(())
    }
}

impl Command {
    /// The `--config` file, if the subcommand has one and it was given.
    pub fn config_file(&self) -> Option<&Path> {
        match self {
            Command::Standalone(a) => a.config.as_deref(),
            Command::RaftCluster(a) => a.config.as_deref(),
            Command::Cluster(_) => None,
        }
    }

    /// Whether this subcommand runs a server (and so needs a [`Config`]).
    pub fn is_server(&self) -> bool {
        !matches!(self, Command::Cluster(_))
    }

    /// Layers this subcommand's flags on `config` (nothing for client
    /// subcommands). Does not validate.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        match self {
            Command::Standalone(a) => a.apply(config),
            Command::RaftCluster(a) => a.apply(config),
            Command::Cluster(_) => Ok(()),
        }
    }

    /// The server's effective, validated configuration: defaults, the
    /// `--config` file, `CHRONIK_*` environment variables, then the flags.
    /// `None` for client subcommands.
    pub fn load_config(&self) -> Result<Option<Config>, ConfigError> {
        if !self.is_server() {
            return Ok(None);
        }
        let mut config = Config::load_unvalidated(self.config_file())?;
        self.apply(&mut config)?;
        config.validate()?;
        Ok(Some(config))
    }

    /// [`Command::load_config`] with the environment passed in (see
    /// [`Config::load_layers`]), for tests.
    pub fn load_config_with_env<I, K, V>(&self, env: I) -> Result<Option<Config>, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        if !self.is_server() {
            return Ok(None);
        }
        let mut config = Config::load_layers(self.config_file(), env)?;
        self.apply(&mut config)?;
        config.validate()?;
        Ok(Some(config))
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
