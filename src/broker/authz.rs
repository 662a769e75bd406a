//! The one place Kafka handlers ask the authorizer: [`BrokerCtx::check`] answers with the Kafka
//! error code of the resource type (TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED,
//! CLUSTER_AUTHORIZATION_FAILED, TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and writes the audit
//! line; [`BrokerCtx::visible`] filters lists (Metadata, ListGroups) without one. The principal
//! and host are those of the connection the request came in on (`security::principal::current`).

use super::BrokerCtx;
use crate::error::code;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::principal;

/// The error code Kafka answers when `rt` is not authorized.
pub fn denied_code(rt: ResourceType) -> i16 {
    match rt {
        ResourceType::Group => code::GROUP_AUTHORIZATION_FAILED,
        ResourceType::Cluster => code::CLUSTER_AUTHORIZATION_FAILED,
        ResourceType::TransactionalId => code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        _ => code::TOPIC_AUTHORIZATION_FAILED,
    }
}

impl BrokerCtx {
    /// May the current request do `op` on the resource? `Err(code)`: Kafka's error code for
    /// the resource type (and one audit log line).
    pub fn check(&self, op: Operation, rt: ResourceType, name: &str) -> Result<(), i16> {
        if !self.authorizer.enabled() {
            return Ok(());
        }
        let acls = self.image.borrow().acls.clone();
        match self.authorizer.authorize(&acls, &principal::current(), op, rt, name) {
            true => Ok(()),
            false => Err(denied_code(rt)),
        }
    }

    /// [`BrokerCtx::check`] on a topic.
    pub fn check_topic(&self, op: Operation, topic: &str) -> Result<(), i16> {
        self.check(op, ResourceType::Topic, topic)
    }

    /// [`BrokerCtx::check`] on a group.
    pub fn check_group(&self, op: Operation, group: &str) -> Result<(), i16> {
        self.check(op, ResourceType::Group, group)
    }

    /// [`BrokerCtx::check`] on the cluster.
    pub fn check_cluster(&self, op: Operation) -> Result<(), i16> {
        self.check(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// May the current request see this resource in a list? No audit line (Kafka logs list
    /// filtering at debug only).
    pub fn visible(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        if !self.authorizer.enabled() {
            return true;
        }
        let acls = self.image.borrow().acls.clone();
        self.authorizer.allowed(&acls, &principal::current(), op, rt, name)
    }

    /// Kafka's `authorized_operations` bits of a resource for the current request.
    pub fn authorized_operations(&self, rt: ResourceType, name: &str) -> i32 {
        let acls = self.image.borrow().acls.clone();
        self.authorizer.authorized_operations(&acls, &principal::current(), rt, name)
    }

    /// A config resource (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs): a TOPIC (2)
    /// on the topic, a BROKER (4) or BROKER_LOGGER (8) on the cluster.
    pub fn check_config_resource(&self, op: Operation, resource_type: i8, name: &str) -> Result<(), i16> {
        match resource_type {
            super::describe_configs::RESOURCE_TOPIC => self.check_topic(op, name),
            _ => self.check_cluster(op),
        }
    }

    /// Creating a topic: CREATE on the cluster, or else on the topic (TOPIC_AUTHORIZATION_FAILED).
    pub fn check_create_topic(&self, topic: &str) -> Result<(), i16> {
        if self.visible(Operation::Create, ResourceType::Cluster, CLUSTER_NAME) {
            return Ok(());
        }
        self.check_topic(Operation::Create, topic)
    }

    /// InitProducerId without a transactional id: IDEMPOTENT_WRITE on the cluster, or WRITE on
    /// any topic (Kafka's `authorizeByResourceType`).
    pub fn check_idempotent_write(&self) -> Result<(), i16> {
        if !self.authorizer.enabled() || self.visible(Operation::IdempotentWrite, ResourceType::Cluster, CLUSTER_NAME) {
            return Ok(());
        }
        let acls = self.image.borrow().acls.clone();
        match self.authorizer.allowed_on_any(&acls, &principal::current(), Operation::Write, ResourceType::Topic) {
            true => Ok(()),
            false => self.check_cluster(Operation::IdempotentWrite),
        }
    }
}
