//! `ETag` and `If-None-Match` for answers that change only with the data behind them: a client
//! holding the current one gets a `304` and no body. Weak tags: the gzipped and the plain
//! answer are the same JSON.

use actix_web::http::StatusCode;
use actix_web::http::header::{CacheControl, CacheDirective, ETag, EntityTag, Header, IfNoneMatch};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

/// Whether the request's `If-None-Match` names `etag`. One that does not parse names nothing:
/// the full answer goes out.
pub fn matches(request: &HttpRequest, etag: &EntityTag) -> bool {
    match IfNoneMatch::parse(request) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(etag)),
        Err(_) => false,
    }
}

/// `304 Not Modified`, with the validator.
pub fn not_modified(etag: EntityTag) -> HttpResponse {
    validated(HttpResponse::build(StatusCode::NOT_MODIFIED), etag).finish()
}

/// `200 OK` carrying `etag`; caches must ask again before reusing it.
pub fn fresh(etag: EntityTag) -> HttpResponseBuilder {
    validated(HttpResponse::Ok(), etag)
}

fn validated(mut response: HttpResponseBuilder, etag: EntityTag) -> HttpResponseBuilder {
    response
        .insert_header(ETag(etag))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]));
    response
}
