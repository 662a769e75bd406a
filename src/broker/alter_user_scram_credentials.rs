//! AlterUserScramCredentials (key 51): adds, replaces or deletes SCRAM credentials in `__meta`
//! (what `kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[password=...]' --entity-type
//! users` sends). The client sends salt and salted password; only the salt, stored key and
//! server key are proposed. Per-user errors as Kafka: UNSUPPORTED_SASL_MECHANISM,
//! UNACCEPTABLE_CREDENTIAL (iterations, empty salt or password, empty user), DUPLICATE_RESOURCE
//! (a user named twice), RESOURCE_NOT_FOUND (deleting a credential that does not exist).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, RequestHeader};

use super::{sb, BrokerCtx};
use crate::error::code;
use crate::meta::command::{AlterScramCredentials, Cmd, MetaCommand, ScramDeletion, ScramUpsertion};
use crate::meta::state::MetaResult;
use crate::security::acl::Operation;
use crate::security::scram::{Credential, Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

pub async fn handle(
    ctx: Arc<BrokerCtx>,
    _h: RequestHeader,
    req: AlterUserScramCredentialsRequest,
) -> Option<AlterUserScramCredentialsResponse> {
    let image = ctx.image();
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    let mut seen: BTreeMap<(String, i8), usize> = BTreeMap::new();
    for d in &req.deletions {
        *seen.entry((d.name.to_string(), d.mechanism)).or_default() += 1;
    }
    for u in &req.upsertions {
        *seen.entry((u.name.to_string(), u.mechanism)).or_default() += 1;
    }
    // Kafka: ALTER on the CLUSTER resource, else every user's result is CLUSTER_AUTHORIZATION_FAILED.
    if let Err(denied) = ctx.check_cluster(Operation::Alter) {
        for (user, _) in seen.keys() {
            errors.entry(user.clone()).or_insert((denied, "Authorization failed.".to_string()));
        }
    }
    let mut users: Vec<String> = Vec::new();
    let mut note = |user: &str| {
        if !users.iter().any(|u| u == user) {
            users.push(user.to_string());
        }
    };
    let mut cmd = AlterScramCredentials::default();
    for d in &req.deletions {
        let user = d.name.to_string();
        note(&user);
        let err = if user.is_empty() {
            Some((code::UNACCEPTABLE_CREDENTIAL, "Username must not be empty".to_string()))
        } else if seen[&(user.clone(), d.mechanism)] > 1 {
            Some((
                code::DUPLICATE_RESOURCE,
                format!("A user credential cannot be altered twice in the same request: {user}"),
            ))
        } else if let Some(m) = Mechanism::from_id(d.mechanism) {
            let exists = image.scram_credentials.get(&user).is_some_and(|c| c.contains_key(&m));
            (!exists).then(|| {
                (code::RESOURCE_NOT_FOUND, format!("Attempt to delete a user credential that does not exist: {user}"))
            })
        } else {
            Some((code::UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism".to_string()))
        };
        match err {
            Some(e) => {
                errors.entry(user).or_insert(e);
            }
            None => cmd.deletions.push(ScramDeletion { user, mechanism: i32::from(d.mechanism) }),
        }
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        note(&user);
        let mechanism = Mechanism::from_id(u.mechanism);
        let err = if user.is_empty() {
            Some((code::UNACCEPTABLE_CREDENTIAL, "Username must not be empty".to_string()))
        } else if seen[&(user.clone(), u.mechanism)] > 1 {
            Some((
                code::DUPLICATE_RESOURCE,
                format!("A user credential cannot be altered twice in the same request: {user}"),
            ))
        } else if mechanism.is_none() {
            Some((code::UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism".to_string()))
        } else if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&u.iterations) {
            Some((
                code::UNACCEPTABLE_CREDENTIAL,
                format!("Iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {}", u.iterations),
            ))
        } else if u.salt.is_empty() || u.salted_password.is_empty() {
            Some((code::UNACCEPTABLE_CREDENTIAL, "Salt and salted password must not be empty".to_string()))
        } else {
            None
        };
        match (err, mechanism) {
            (None, Some(m)) => {
                let c = Credential::from_salted_password(m, &u.salted_password, &u.salt, u.iterations);
                cmd.upsertions.push(ScramUpsertion {
                    user,
                    mechanism: i32::from(m.id()),
                    iterations: c.iterations,
                    salt: c.salt,
                    stored_key: c.stored_key,
                    server_key: c.server_key,
                });
            }
            (Some(e), _) => {
                errors.entry(user).or_insert(e);
            }
            (None, None) => {}
        }
    }
    // A user with any error has none of its alterations applied (as Kafka).
    cmd.deletions.retain(|d| !errors.contains_key(&d.user));
    cmd.upsertions.retain(|u| !errors.contains_key(&u.user));
    if !cmd.deletions.is_empty() || !cmd.upsertions.is_empty() {
        let failure = match ctx.propose(MetaCommand::new(Cmd::AlterScramCredentials(cmd.clone()))).await {
            Ok(MetaResult::Rejected { code, message }) => Some((code, message)),
            Ok(_) => None,
            Err(e) => Some((meta_error_code(&e), e.to_string())),
        };
        if let Some(f) = failure {
            for u in cmd.deletions.iter().map(|d| &d.user).chain(cmd.upsertions.iter().map(|u| &u.user)) {
                errors.entry(u.clone()).or_insert_with(|| f.clone());
            }
        }
    }
    let results = users
        .into_iter()
        .map(|user| {
            let r = AlterUserScramCredentialsResult::default().with_user(sb(user.clone()));
            match errors.get(&user) {
                Some((c, m)) => r.with_error_code(*c).with_error_message(Some(sb(m.clone()))),
                None => r,
            }
        })
        .collect();
    Some(AlterUserScramCredentialsResponse::default().with_results(results))
}

/// The Kafka error for a proposal that did not apply.
fn meta_error_code(e: &crate::meta::actor::MetaError) -> i16 {
    match e {
        crate::meta::actor::MetaError::NotLeader(_) => code::NOT_CONTROLLER,
        _ => code::REQUEST_TIMED_OUT,
    }
}
