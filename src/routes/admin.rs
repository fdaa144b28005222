//! Operations on the actors. Needs `Authorization: Bearer <admin_token>` (the scheme in any
//! case); without a configured token the endpoints are disabled.

use std::future::{Ready, ready};

use actix::Addr;
use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

use super::ApiError;
use super::error::AdminRefused;
use crate::actors::Pipeline;
use crate::actors::actor_info::ActorInfo;
use crate::actors::coordinator::CoordinatorActor;
use crate::actors::messages::{HandOver, ListActors, RestartActor, SetDraining};
use crate::coordination::status::CoordinationStatus;

pub struct AdminToken(pub Option<SecretString>);

impl AdminToken {
    fn check(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let Some(expected) = &self.0 else {
            return Err(ApiError::AdminDisabled);
        };
        let given = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_credentials)
            .ok_or(ApiError::Unauthorized)?;
        // Digests of equal length compared in constant time: the answer's timing tells neither
        // how much of a guess was right nor how long the token is.
        let given = Sha256::digest(given.as_bytes());
        let expected = Sha256::digest(expected.expose_secret().as_bytes());
        if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// A request that carried the admin token: the admin endpoints take one, so none of them runs
/// without the check.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let checked = match request.app_data::<web::Data<AdminToken>>() {
            Some(token) => token.check(request),
            None => Err(ApiError::AdminDisabled),
        };
        ready(checked.map(|()| Admin))
    }
}

/// The credentials of `Bearer <token>`: the scheme in any case, then one or more spaces or tabs.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once([' ', '\t'])?;
    let credentials = credentials.trim_start_matches([' ', '\t']);
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}

#[derive(Serialize, ToSchema)]
pub struct ActorList {
    pub actors: Vec<ActorInfo>,
}

#[derive(Serialize, ToSchema)]
pub struct RestartAccepted {
    pub actor: String,
    /// Always `restarting`: the actor's supervisor starts it again at once.
    pub status: &'static str,
}

/// Each actor: name, kind, state, restarts, last error and queue depth.
#[utoipa::path(
    get,
    path = "/api/admin/actors",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ActorList),
        AdminRefused,
    )
)]
pub async fn list_actors(
    _admin: Admin,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, ApiError> {
    let actors = pipeline.supervisor.send(ListActors).await?;
    Ok(HttpResponse::Ok().json(ActorList { actors }))
}

/// Stops one actor and lets its supervisor start it again; the others keep running.
#[utoipa::path(
    post,
    path = "/api/admin/actors/{name}/restart",
    security(("admin_token" = [])),
    params(("name" = String, Path, description = "e.g. `writer`, `features`, `host:qemu:///system` (URL-encoded)")),
    responses(
        (status = 202, body = RestartAccepted),
        AdminRefused,
        (status = 404, body = super::error::ErrorBody, description = "no such actor"),
    )
)]
pub async fn restart_actor(
    _admin: Admin,
    pipeline: web::Data<Pipeline>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    pipeline
        .supervisor
        .send(RestartActor(name.clone()))
        .await?
        .map_err(|unknown| ApiError::UnknownActor(unknown.0))?;
    Ok(HttpResponse::Accepted().json(RestartAccepted {
        actor: name,
        status: "restarting",
    }))
}

/// Drains this replica (`coordination = "etcd"`): it hands every host over, each a poll
/// interval after its last cycle, and takes none until resumed. For maintenance: the others
/// take its hosts without waiting for its lease to expire.
#[utoipa::path(
    post,
    path = "/api/admin/coordination/drain",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = CoordinationStatus, description = "draining: the hosts move at the next ticks"),
        AdminRefused,
        (status = 404, body = super::error::ErrorBody, description = "static shards: nothing to drain"),
    )
)]
pub async fn drain(_admin: Admin, pipeline: web::Data<Pipeline>) -> Result<HttpResponse, ApiError> {
    set_draining(&pipeline, true).await
}

/// Ends the draining and takes back the hosts handed over: this replica takes its share again.
#[utoipa::path(
    post,
    path = "/api/admin/coordination/resume",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = CoordinationStatus),
        AdminRefused,
        (status = 404, body = super::error::ErrorBody, description = "static shards: nothing to resume"),
    )
)]
pub async fn resume(
    _admin: Admin,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, ApiError> {
    set_draining(&pipeline, false).await
}

#[derive(Deserialize, IntoParams)]
pub struct HandOverQuery {
    /// The host's libvirt URI, as configured (URL-encoded).
    host: String,
}

/// Hands one host over (`coordination = "etcd"`): this replica stops collecting it and declines
/// it, so the rendezvous gives it to the next member, which takes it a poll interval after its
/// last cycle here. `resume` takes it back.
#[utoipa::path(
    post,
    path = "/api/admin/coordination/hand-over",
    security(("admin_token" = [])),
    params(HandOverQuery),
    responses(
        (status = 200, body = CoordinationStatus, description = "declined: the host moves at the next ticks"),
        (status = 400, body = super::error::ErrorBody, description = "no `host` parameter"),
        AdminRefused,
        (status = 404, body = super::error::ErrorBody, description = "static shards, or a host this replica does not collect"),
    )
)]
pub async fn hand_over(
    _admin: Admin,
    request: HttpRequest,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, ApiError> {
    let coordinator = coordinator(&pipeline)?;
    // Parsed after the check of the shards, not by an extractor before it.
    let query = web::Query::<HandOverQuery>::from_query(request.query_string())
        .map_err(|error| ApiError::bad_parameter("host", error.to_string()))?;
    let host = query.into_inner().host;
    let status = coordinator.send(HandOver(host.clone())).await?;
    Ok(HttpResponse::Ok().json(status.ok_or(ApiError::HostNotHere(host))?))
}

async fn set_draining(pipeline: &Pipeline, draining: bool) -> Result<HttpResponse, ApiError> {
    let status = coordinator(pipeline)?.send(SetDraining(draining)).await?;
    Ok(HttpResponse::Ok().json(status))
}

fn coordinator(pipeline: &Pipeline) -> Result<&Addr<CoordinatorActor>, ApiError> {
    (pipeline.coordinator.as_ref()).ok_or(ApiError::CoordinationStatic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials_take_the_scheme_in_any_case() {
        for (header, credentials) in [
            ("Bearer t0ken", Some("t0ken")),
            ("bearer t0ken", Some("t0ken")),
            ("BEARER \t  t0ken ", Some("t0ken")),
            ("Basic t0ken", None),
            ("Bearert0ken", None),
            ("Bearer", None),
            ("Bearer   ", None),
            ("", None),
        ] {
            assert_eq!(bearer_credentials(header), credentials, "{header:?}");
        }
    }
}
