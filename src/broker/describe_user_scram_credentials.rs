//! DescribeUserScramCredentials (key 50): which SCRAM mechanisms (and iteration counts) each
//! user has in `__meta`. Never the salt or keys. No users asked: every user; a user without
//! credentials: RESOURCE_NOT_FOUND; a user asked twice: DUPLICATE_RESOURCE (as Kafka).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, RequestHeader,
};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::security::acl::Operation;
use crate::security::scram::{Credential, Mechanism};

fn infos(creds: &BTreeMap<Mechanism, Credential>) -> Vec<CredentialInfo> {
    creds.iter().map(|(m, c)| CredentialInfo::default().with_mechanism(m.id()).with_iterations(c.iterations)).collect()
}

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: DescribeUserScramCredentialsRequest,
) -> Option<DescribeUserScramCredentialsResponse> {
    // Kafka: DESCRIBE on the CLUSTER resource.
    if let Err(denied) = ctx.check_cluster(Operation::Describe) {
        return Some(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(denied)
                .with_error_message(Some(sb("Authorization failed."))),
        );
    }
    let image = ctx.image();
    let results = match req.users.filter(|u| !u.is_empty()) {
        None => image
            .scram_credentials
            .iter()
            .map(|(user, creds)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(sb(user.clone()))
                    .with_credential_infos(infos(creds))
            })
            .collect(),
        Some(users) => {
            let names: Vec<String> = users.iter().map(|u| u.name.to_string()).collect();
            names
                .iter()
                .map(|name| {
                    let r = DescribeUserScramCredentialsResult::default().with_user(sb(name.clone()));
                    if names.iter().filter(|n| *n == name).count() > 1 {
                        return r.with_error_code(code::DUPLICATE_RESOURCE).with_error_message(Some(sb(format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                        ))));
                    }
                    match image.scram_credentials.get(name) {
                        Some(creds) => r.with_credential_infos(infos(creds)),
                        None => r.with_error_code(code::RESOURCE_NOT_FOUND).with_error_message(Some(sb(format!(
                            "Attempt to describe a user credential that does not exist: {name}"
                        )))),
                    }
                })
                .collect()
        }
    };
    Some(DescribeUserScramCredentialsResponse::default().with_results(results))
}
