//! DescribeLogDirs (key 35, `kafka-log-dirs.sh --describe`): this node's one log dir (its data
//! dir) with, per replica hosted here, its size in bytes and its offset lag, and (v4) the total
//! and usable bytes of the file system.
//!
//! Size: the bytes of the replica's segment files (`*.log`), as Kafka's `UnifiedLog.size`.
//! Offset lag: Kafka's formula for a current (not future) replica, `max(high watermark − log
//! end offset, 0)`; a replica's high watermark never passes its own end, so it is 0 for every
//! replica here (chronik has no future replicas: no reassignment between log dirs). Topics that
//! do not exist or have no replica here are left out, as Kafka does. ACL: DESCRIBE on CLUSTER
//! (otherwise CLUSTER_AUTHORIZATION_FAILED and no results). The directory walk runs on the
//! blocking pool.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, RequestHeader, TopicName};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::security::acl::Operation;

/// Kafka's "unknown" for volume bytes (`DescribeLogDirsResponse.UNKNOWN_VOLUME_BYTES`).
const UNKNOWN_VOLUME_BYTES: i64 = -1;

/// Bytes of the segment files (`*.log`) under `dir` (two levels at most).
pub fn segment_bytes(dir: &Path) -> u64 {
    fn walk(dir: &Path, depth: u32) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let path = e.path();
            if meta.is_dir() && depth > 0 {
                total += walk(&path, depth - 1);
            } else if meta.is_file() && path.extension().is_some_and(|x| x == "log") {
                total += meta.len();
            }
        }
        total
    }
    walk(dir, 1)
}

/// (total, usable) bytes of the file system holding `dir`, or Kafka's unknown (-1, -1).
pub fn volume_bytes(dir: &Path) -> (i64, i64) {
    match rustix::fs::statvfs(dir) {
        Ok(s) => {
            let total = s.f_blocks.saturating_mul(s.f_frsize);
            let usable = s.f_bavail.saturating_mul(s.f_frsize);
            (i64::try_from(total).unwrap_or(i64::MAX), i64::try_from(usable).unwrap_or(i64::MAX))
        }
        Err(_) => (UNKNOWN_VOLUME_BYTES, UNKNOWN_VOLUME_BYTES),
    }
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    h: RequestHeader,
    req: DescribeLogDirsRequest,
) -> Option<DescribeLogDirsResponse> {
    let version = h.request_api_version;
    let mut resp = DescribeLogDirsResponse::default();
    if let Err(denied) = ctx.check_cluster(Operation::Describe) {
        if version >= 3 {
            resp = resp.with_error_code(denied);
        }
        return Some(resp);
    }
    let image = ctx.image();
    // (topic, partition, group directory) of every wanted replica hosted here.
    let mut replicas: Vec<(String, i32, PathBuf)> = Vec::new();
    let table = ctx.partition_table();
    let dir_of = |group| crate::node::group_dir(&ctx.data_dir, group);
    match &req.topics {
        None => {
            for (topic, parts) in table.iter() {
                for (p, handle) in parts {
                    replicas.push((topic.clone(), *p, dir_of(handle.group)));
                }
            }
        }
        Some(topics) => {
            for t in topics {
                let name = t.topic.0.to_string();
                for p in &t.partitions {
                    if let Some(handle) = table.get(&name).and_then(|ps| ps.get(p)) {
                        replicas.push((name.clone(), *p, dir_of(handle.group)));
                    }
                }
            }
        }
    }
    replicas.retain(|(t, _, _)| image.topics.contains_key(t));
    replicas.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    replicas.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    let data_dir = ctx.data_dir.clone();
    let walked = tokio::task::spawn_blocking(move || {
        let sizes: Vec<(String, i32, u64)> =
            replicas.into_iter().map(|(t, p, dir)| (t, p, segment_bytes(&dir))).collect();
        (sizes, volume_bytes(&data_dir))
    })
    .await;
    let Ok((sizes, (total, usable))) = walked else {
        let r = DescribeLogDirsResult::default()
            .with_error_code(code::KAFKA_STORAGE_ERROR)
            .with_log_dir(sb(ctx.data_dir.display().to_string()));
        return Some(resp.with_results(vec![r]));
    };
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for (topic, p, size) in sizes {
        let part = DescribeLogDirsPartition::default()
            .with_partition_index(p)
            .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
            .with_offset_lag(0)
            .with_is_future_key(false);
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == topic => t.partitions.push(part),
            _ => {
                topics.push(DescribeLogDirsTopic::default().with_name(TopicName(sb(topic))).with_partitions(vec![part]))
            }
        }
    }
    let dir = std::fs::canonicalize(&ctx.data_dir).unwrap_or_else(|_| ctx.data_dir.clone());
    let mut result = DescribeLogDirsResult::default().with_log_dir(sb(dir.display().to_string())).with_topics(topics);
    if version >= 4 {
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    Some(resp.with_results(vec![result]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_bytes_count_log_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("00000000000000000000.log"), vec![0u8; 100]).unwrap();
        std::fs::write(dir.path().join("00000000000000000000.index"), vec![0u8; 40]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub").join("00000000000000000100.log"), vec![0u8; 7]).unwrap();
        assert_eq!(segment_bytes(dir.path()), 107);
        assert_eq!(segment_bytes(&dir.path().join("missing")), 0);
        let (total, usable) = volume_bytes(dir.path());
        assert!(total > 0 && usable >= 0 && usable <= total, "{total} {usable}");
    }
}
