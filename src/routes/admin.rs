//! Operations on the actors. Needs `Authorization: Bearer <admin_token>`; without a configured
//! token the endpoints are disabled.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::ApiError;
use crate::actors::Pipeline;
use crate::actors::messages::{ListActors, RestartActor};
use crate::actors::status::ActorInfo;

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
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        // Constant time, so the comparison does not tell how much of a guess was right.
        if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized)
        }
    }
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
        (status = 401, body = super::error::ErrorBody, description = "missing or wrong token"),
        (status = 403, body = super::error::ErrorBody, description = "no admin_token configured"),
    )
)]
pub async fn list_actors(
    request: HttpRequest,
    token: web::Data<AdminToken>,
    pipeline: web::Data<Pipeline>,
) -> Result<HttpResponse, ApiError> {
    token.check(&request)?;
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
        (status = 401, body = super::error::ErrorBody, description = "missing or wrong token"),
        (status = 403, body = super::error::ErrorBody, description = "no admin_token configured"),
        (status = 404, body = super::error::ErrorBody, description = "no such actor"),
    )
)]
pub async fn restart_actor(
    request: HttpRequest,
    token: web::Data<AdminToken>,
    pipeline: web::Data<Pipeline>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    token.check(&request)?;
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
