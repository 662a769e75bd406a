//! Tests of the command line (`cli`): parsing, layering on the configuration, help texts.

use super::*;
use clap::error::ErrorKind;
use clap::CommandFactory;
use std::io::Write;

const NO_ENV: [(&str, &str); 0] = [];

fn parse(args: &[&str]) -> Result<Command, clap::Error> {
    parse_from(std::iter::once("chronik-server").chain(args.iter().copied()))
}

fn ok(args: &[&str]) -> Command {
    parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn err_kind(args: &[&str]) -> ErrorKind {
    match parse(args) {
        Ok(c) => panic!("{args:?} parsed as {c:?}"),
        Err(e) => e.kind(),
    }
}

fn write_toml(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f.flush().expect("flush");
    f
}

fn template(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

const PEERS: &str = "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194";

#[test]
fn clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn standalone_without_flags() {
    let cmd = ok(&["standalone"]);
    let expected = Command::Standalone(StandaloneArgs {
        config: None,
        data_dir: None,
        listen: None,
        advertised_addr: None,
        admin_listen: None,
        log_level: None,
    });
    assert_eq!(cmd, expected);
    assert!(cmd.is_server());
    let c = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn standalone_with_all_flags() {
    let cmd = ok(&[
        "standalone",
        "--config",
        "x.toml",
        "--data-dir",
        "/tmp/d",
        "--listen",
        "0.0.0.0:19092",
        "--advertised-addr",
        "broker.example",
        "--log-level",
        "debug",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let Command::Standalone(a) = &cmd else { panic!("{cmd:?}") };
    assert_eq!(a.config.as_deref(), Some(Path::new("x.toml")));
    assert_eq!(cmd.config_file(), Some(Path::new("x.toml")));
    let mut c = Config::default();
    cmd.apply(&mut c).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/tmp/d"));
    assert_eq!(c.kafka.listen, "0.0.0.0:19092");
    assert_eq!(c.kafka.effective_advertised_host().unwrap(), "broker.example");
    assert_eq!(c.kafka.effective_advertised_port().unwrap(), 19092);
    assert_eq!(c.log_level, LogLevel::Debug);
    assert_eq!((c.admin.enabled, c.admin.listen.as_str()), (true, "127.0.0.1:0"));
    c.validate().unwrap();
}

#[test]
fn flags_override_file_and_environment() {
    let f = write_toml(
        "data-dir = \"/from/file\"\nlog-level = \"warn\"\n[kafka]\nlisten = \"127.0.0.1:1111\"\nmax-connections = 7\n",
    );
    let path = f.path().display().to_string();
    let env = [("CHRONIK_KAFKA__LISTEN", "127.0.0.1:2222"), ("CHRONIK_DATA_DIR", "/from/env")];
    let cmd = ok(&["standalone", "--config", &path]);
    let c = cmd.load_config_with_env(env).unwrap().unwrap();
    assert_eq!(c.kafka.listen, "127.0.0.1:2222", "env beats file");
    assert_eq!(c.data_dir, PathBuf::from("/from/env"));
    assert_eq!(c.log_level, LogLevel::Warn, "file beats default");
    assert_eq!(c.kafka.max_connections, 7);

    let cmd = ok(&[
        "standalone",
        "--config",
        &path,
        "--listen",
        "127.0.0.1:3333",
        "--data-dir",
        "/from/flag",
        "--log-level",
        "error",
    ]);
    let c = cmd.load_config_with_env(env).unwrap().unwrap();
    assert_eq!(c.kafka.listen, "127.0.0.1:3333", "flag beats env");
    assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(c.log_level, LogLevel::Error, "flag beats file");
}

#[test]
fn standalone_forces_single_node() {
    let f = write_toml("node-id = 5\n[raft]\npeers = [{ id = 2, addr = \"127.0.0.1:9193\" }]\n");
    let path = f.path().display().to_string();
    let c = ok(&["standalone", "--config", &path]).load_config_with_env(NO_ENV).unwrap().unwrap();
    assert_eq!(c.node_id, 1);
    assert!(c.raft.peers.is_empty());
    assert_eq!(c.topics.default_replication_factor, 1);
}

#[test]
fn standalone_rejects_replication_above_one() {
    let err =
        ok(&["standalone"]).load_config_with_env([("CHRONIK_TOPICS__DEFAULT_REPLICATION_FACTOR", "3")]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("topics.default-replication-factor"), "{msg}");
}

#[test]
fn raft_cluster_with_peers_from_flags_only() {
    let cmd = ok(&[
        "raft-cluster",
        "--node-id",
        "2",
        "--advertised-addr",
        "127.0.0.1",
        "--kafka-port",
        "9093",
        "--peers",
        PEERS,
        "--data-dir",
        "./data/node2",
        "--admin-listen",
        "127.0.0.1:9301",
    ]);
    let env = [("CHRONIK_ADMIN__LISTEN", "127.0.0.1:9999"), ("CHRONIK_ADMIN__ENABLED", "false")];
    let c = cmd.load_config_with_env(env).unwrap().unwrap();
    assert_eq!((c.admin.enabled, c.admin.listen.as_str()), (true, "127.0.0.1:9301"), "flag beats env");
    assert_eq!(c.node_id, 2);
    assert_eq!(c.kafka.listen, "127.0.0.1:9093");
    assert_eq!(c.kafka.effective_advertised_host().unwrap(), "127.0.0.1");
    assert_eq!(c.kafka.effective_advertised_port().unwrap(), 9093);
    assert_eq!(c.raft.listen, "127.0.0.1:9193", "from this node's --peers entry");
    let ids: Vec<u64> = c.raft.peers.iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![1, 3]);
    assert_eq!(c.raft.peers[1].addr, "127.0.0.1:9194");
    assert_eq!(c.data_dir, PathBuf::from("./data/node2"));
    assert_eq!(c.node_count(), 3);
}

#[test]
fn raft_addr_overrides_own_peer_entry() {
    let cmd = ok(&[
        "raft-cluster",
        "--node-id",
        "1",
        "--advertised-addr",
        "node1.internal",
        "--raft-addr",
        "0.0.0.0:9192",
        "--peers",
        "1@node1.internal:9192,2@node2.internal:9192",
        "--listen",
        "0.0.0.0:9092",
    ]);
    let c = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
    assert_eq!(c.raft.listen, "0.0.0.0:9192");
    assert_eq!(c.kafka.listen, "0.0.0.0:9092");
    assert_eq!(c.kafka.effective_advertised_host().unwrap(), "node1.internal");
    assert_eq!(c.raft.peers, vec![PeerConfig { id: 2, addr: "node2.internal:9192".into() }]);
}

#[test]
fn own_peer_entry_must_be_bindable_without_raft_addr() {
    let cmd = ok(&[
        "raft-cluster",
        "--node-id",
        "1",
        "--advertised-addr",
        "h1",
        "--peers",
        "1@node1.internal:9192,2@node2.internal:9192",
    ]);
    let msg = cmd.load_config_with_env(NO_ENV).unwrap_err().to_string();
    assert!(msg.contains("--peers") && msg.contains("--raft-addr"), "{msg}");
}

#[test]
fn raft_cluster_takes_identity_from_the_config_file_alone() {
    let path = format!("{}/config/cluster-3node/node2.toml", env!("CARGO_MANIFEST_DIR"));
    let cmd = ok(&["raft-cluster", "--config", &path]);
    let config = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
    assert_eq!(config.node_id, 2);
    assert_eq!(config.raft.peers.len(), 2);
    assert!(parse_from(["chronik-server", "raft-cluster"]).is_err(), "no --config: --node-id is required");
}

#[test]
fn peers_must_include_this_node() {
    let cmd = ok(&["raft-cluster", "--node-id", "4", "--advertised-addr", "127.0.0.1", "--peers", PEERS]);
    let err = cmd.load_config_with_env(NO_ENV).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "--peers"), "{err:?}");
    assert!(err.to_string().contains("node id 4"), "{err}");
}

#[test]
fn kafka_port_keeps_the_listen_host() {
    let f = write_toml("[kafka]\nlisten = \"10.0.0.5:9092\"\n");
    let path = f.path().display().to_string();
    let cmd = ok(&[
        "raft-cluster",
        "--config",
        &path,
        "--node-id",
        "1",
        "--advertised-addr",
        "10.0.0.5",
        "--kafka-port",
        "19092",
    ]);
    let mut c = Config::load_layers(Some(f.path()), NO_ENV).unwrap();
    cmd.apply(&mut c).unwrap();
    assert_eq!(c.kafka.listen, "10.0.0.5:19092");
}

#[test]
fn kafka_port_needs_a_parsable_listen() {
    let cmd = ok(&["raft-cluster", "--node-id", "1", "--advertised-addr", "h", "--kafka-port", "19092"]);
    let mut c = Config::default();
    c.kafka.listen = "localhost:9092".into();
    let err = cmd.apply(&mut c).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "--kafka-port"), "{err:?}");
}

#[test]
fn cluster_templates_work_with_the_cli() {
    for n in 1..=3 {
        let path = template(&format!("config/cluster-3node/node{n}.toml"));
        let id = n.to_string();
        let cmd = ok(&["raft-cluster", "--config", &path, "--node-id", &id, "--advertised-addr", "127.0.0.1"]);
        let c = cmd.load_config_with_env(NO_ENV).unwrap().unwrap();
        assert_eq!(c.node_id, n);
        assert_eq!(c.node_count(), 3);
        assert_eq!(c.topics.default_replication_factor, 3);
    }
}

#[test]
fn cluster_status() {
    let cmd = ok(&["cluster", "status", "--admin", "127.0.0.1:9300"]);
    assert_eq!(
        cmd,
        Command::Cluster(ClusterCommand::Status(ClusterStatusArgs {
            admin: "127.0.0.1:9300".into(),
            bootstrap: None,
            json: false,
            no_checksums: false
        }))
    );
    let Command::Cluster(ClusterCommand::Status(quick)) =
        ok(&["cluster", "status", "--admin", "127.0.0.1:9300", "--no-checksums"])
    else {
        panic!("not cluster status")
    };
    assert!(quick.no_checksums);
    assert!(!cmd.is_server());
    assert_eq!(cmd.config_file(), None);
    assert_eq!(cmd.load_config_with_env(NO_ENV).unwrap(), None);
    let mut c = Config::default();
    cmd.apply(&mut c).unwrap();
    assert_eq!(c, Config::default());
    ok(&["cluster", "status", "--admin", "broker-1:9300"]);
    for sub in ["status", "faults"] {
        let e = parse_from(["chronik-server", "cluster", sub, "--bootstrap", "127.0.0.1:9092"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation, "{sub}");
        let text = e.to_string();
        assert!(text.contains("--bootstrap was removed") && text.contains("--admin HOST:PORT"), "{sub}: {text}");
    }
}

#[test]
fn structural_errors() {
    assert_eq!(err_kind(&[]), ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
    assert_eq!(err_kind(&["--node-id", "2", "raft-cluster"]), ErrorKind::UnknownArgument);
    assert_eq!(err_kind(&["standalone", "--bogus"]), ErrorKind::UnknownArgument);
    assert_eq!(err_kind(&["standalone", "--node-id", "2"]), ErrorKind::UnknownArgument);
    assert_eq!(err_kind(&["serve"]), ErrorKind::InvalidSubcommand);
    assert_eq!(err_kind(&["standalone", "extra"]), ErrorKind::UnknownArgument);
    assert_eq!(err_kind(&["cluster"]), ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
    assert_eq!(err_kind(&["cluster", "status"]), ErrorKind::MissingRequiredArgument);
}

#[test]
fn raft_cluster_required_flags() {
    assert_eq!(err_kind(&["raft-cluster", "--advertised-addr", "h"]), ErrorKind::MissingRequiredArgument);
    assert_eq!(err_kind(&["raft-cluster", "--node-id", "1"]), ErrorKind::MissingRequiredArgument);
    let e = parse(&["raft-cluster", "--advertised-addr", "h"]).unwrap_err();
    assert!(e.to_string().contains("--node-id"), "{e}");
}

#[test]
fn bad_flag_values() {
    let base = ["raft-cluster", "--node-id", "1", "--advertised-addr", "h"];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        err_kind(&v)
    };
    assert_eq!(with(&["--kafka-port", "0"]), ErrorKind::ValueValidation);
    assert_eq!(with(&["--kafka-port", "70000"]), ErrorKind::ValueValidation);
    assert_eq!(with(&["--kafka-port", "9093", "--listen", "127.0.0.1:9093"]), ErrorKind::ArgumentConflict);
    assert_eq!(with(&["--raft-addr", "localhost"]), ErrorKind::ValueValidation);
    assert_eq!(with(&["--peers", "1-127.0.0.1:9192"]), ErrorKind::ValueValidation);
    assert_eq!(with(&["--peers", "1@127.0.0.1:9192,1@127.0.0.1:9193"]), ErrorKind::ValueValidation);
    assert_eq!(with(&["--peers", ""]), ErrorKind::ValueValidation);
    assert_eq!(with(&["--peers", "0@127.0.0.1:9192"]), ErrorKind::ValueValidation);
    assert_eq!(with(&["--log-level", "loud"]), ErrorKind::ValueValidation);
    assert_eq!(err_kind(&["raft-cluster", "--node-id", "0", "--advertised-addr", "h"]), ErrorKind::ValueValidation);
    assert_eq!(
        err_kind(&["raft-cluster", "--node-id", "2147483648", "--advertised-addr", "h"]),
        ErrorKind::ValueValidation
    );
    let e = parse(&["standalone", "--advertised-addr", "host:9092"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueValidation);
    assert!(e.to_string().contains("without a port"), "{e}");
    assert_eq!(err_kind(&["standalone", "--listen", "127.0.0.1"]), ErrorKind::ValueValidation);
    assert_eq!(err_kind(&["cluster", "status", "--bootstrap", "nohost"]), ErrorKind::ValueValidation);
}

#[test]
fn help_and_version_are_reported_as_such() {
    assert_eq!(err_kind(&["--help"]), ErrorKind::DisplayHelp);
    assert_eq!(err_kind(&["standalone", "--help"]), ErrorKind::DisplayHelp);
    assert_eq!(err_kind(&["raft-cluster", "--help"]), ErrorKind::DisplayHelp);
    assert_eq!(err_kind(&["--version"]), ErrorKind::DisplayVersion);
}

#[test]
fn every_flag_is_documented_with_a_sentence() {
    let mut root = Cli::command();
    root.build();
    let mut checked = 0;
    let mut stack: Vec<&clap::Command> = root.get_subcommands().collect();
    while let Some(cmd) = stack.pop() {
        stack.extend(cmd.get_subcommands());
        assert!(cmd.get_about().is_some(), "{} has no about", cmd.get_name());
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_help().unwrap_or_else(|| panic!("{} --{id} has no help", cmd.get_name())).to_string();
            // clap drops the final period of a one-line doc comment.
            assert!(
                help.len() > 20 && help.contains(' ') && help.starts_with(|c: char| c.is_ascii_uppercase()),
                "{} --{id}: {help:?}",
                cmd.get_name()
            );
            checked += 1;
        }
    }
    // cluster status (4: --admin, --json, --no-checksums and a hidden --bootstrap) and faults each
    // keep a hidden --bootstrap that only explains its removal.
    assert_eq!(checked, 6 + 11 + 4 + 6 + 3 + 3 + 3);
}

#[test]
fn subcommand_help_lists_every_flag() {
    let mut root = Cli::command();
    let sub = root.find_subcommand_mut("raft-cluster").expect("raft-cluster exists");
    let help = sub.render_long_help().to_string();
    for flag in [
        "--config",
        "--node-id",
        "--advertised-addr",
        "--kafka-port",
        "--listen",
        "--raft-addr",
        "--data-dir",
        "--peers",
        "--join",
        "--admin-listen",
        "--log-level",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}
