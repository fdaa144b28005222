use std::sync::Arc;

use actix_web::http::header::{
    AcceptEncoding, ContentEncoding, ContentType, Encoding, EntityTag, Header, VARY,
};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiError;
use super::validators::{fresh, matches, not_modified};
use crate::actors::Pipeline;
use crate::actors::messages::{AnswerVms, GetCatalog};
use crate::metrics::HttpMetrics;
use crate::vms::{
    Answer, Body, Catalog, Encoding as AnswerEncoding, Order, PageQuery, SortColumn, VmFilter,
    VmList,
};

const VMS_ROUTE: &str = "/api/telemetry/vms";

/// The most VMs one page holds (≈ 0.5 MB of JSON); without `limit` the list is whole.
pub const MAX_LIMIT: usize = 1000;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VmsParams {
    /// Only VMs of this host (the `host` tag).
    host: Option<String>,
    /// Only VMs in this state, e.g. `running`, `paused`, `stopped`.
    state: Option<String>,
    /// Only VMs whose name contains this.
    name: Option<String>,
    /// Sort by this field of the VM (any of `VmView`'s, e.g. `name`, `cpu_usage_percent`,
    /// `memory_used_kb`); VMs without a value come last, ties in the default order. Default: by
    /// host, name and UUID.
    sort: Option<String>,
    /// `asc` (default) or `desc`.
    order: Option<String>,
    /// The most VMs returned, 1 to 1000; default all of them.
    limit: Option<String>,
    /// How many matching VMs to skip first; default 0. Past the end: an empty page.
    offset: Option<String>,
}

impl TryFrom<VmsParams> for PageQuery {
    type Error = ApiError;

    fn try_from(params: VmsParams) -> Result<Self, ApiError> {
        let column = match params.sort.as_deref() {
            None => None,
            Some(name) => Some(SortColumn::named(name).ok_or_else(|| {
                let known: Vec<_> = SortColumn::names().collect();
                let known = known.join(", ");
                ApiError::bad_parameter("sort", format!("no column `{name}`: one of {known}"))
            })?),
        };
        let order = match params.order.as_deref() {
            None => None,
            Some("asc") => Some(Order::Asc),
            Some("desc") => Some(Order::Desc),
            Some(_) => return Err(ApiError::bad_parameter("order", "must be `asc` or `desc`")),
        };
        let sort = match (column, order) {
            (None, None) => None,
            // The default order is by host first.
            (column, order) => Some((
                column.unwrap_or(SortColumn::HOST),
                order.unwrap_or(Order::Asc),
            )),
        };
        let limit = params.limit.as_deref().map(limit).transpose()?;
        let offset = params.offset.as_deref().map(offset).transpose()?;
        Ok(PageQuery {
            filter: VmFilter {
                host: params.host,
                state: params.state,
                name: params.name,
            },
            sort,
            offset: offset.unwrap_or(0),
            limit,
        })
    }
}

pub(super) fn limit(text: &str) -> Result<usize, ApiError> {
    match text.parse::<u64>() {
        Ok(n @ 1..) if n <= MAX_LIMIT as u64 => Ok(n as usize),
        _ => Err(ApiError::bad_parameter(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}, not `{text}`"),
        )),
    }
}

fn offset(text: &str) -> Result<usize, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_parameter("offset", format!("must be a whole number, not `{text}`"))
    })
}

/// Monitored VMs across hosts, live from the actors: by default all of them, ordered by host,
/// name and UUID. The answer changes once per collection cycle and carries a weak `ETag`: with
/// that in `If-None-Match`, an unchanged answer is a `304` without a body. Gzipped when the
/// client accepts it.
#[utoipa::path(
    get,
    path = "/api/telemetry/vms",
    params(
        VmsParams,
        ("If-None-Match" = Option<String>, Header, description = "the `ETag` of an earlier answer"),
    ),
    responses(
        (status = 200, body = VmList, headers(("ETag" = String, description = "this answer's version"))),
        (status = 304, description = "unchanged since the `ETag` in `If-None-Match`"),
        (status = 400, body = super::error::ErrorBody, description = "an unknown or bad parameter, named (code `invalid_parameter`)"),
    )
)]
pub async fn list_vms(
    request: HttpRequest,
    pipeline: web::Data<Pipeline>,
    http: web::Data<HttpMetrics>,
    params: web::Query<VmsParams>,
) -> Result<HttpResponse, ApiError> {
    let query = PageQuery::try_from(params.into_inner())?;
    let catalogs = &pipeline.catalogs;
    let current = etag(catalogs.epoch, catalogs.generation());
    if matches(&request, &current) {
        return Ok(not_modified(current));
    }
    // Gzipped here, once per cycle for the first queries asked, not by `Compress` each time.
    let gzip = accepts_gzip(&request);
    let encoding = if gzip {
        AnswerEncoding::Gzip
    } else {
        AnswerEncoding::Identity
    };
    let cached = catalogs.current().and_then(|catalog| {
        let body = catalog.cached(&query, encoding)?;
        Some((catalog, body, Body::Reused))
    });
    let (catalog, body, source) = match cached {
        Some(answer) => answer,
        None => answer(&pipeline, query, encoding).await?,
    };
    http.answered(VMS_ROUTE, source);
    let mut response = fresh(etag(catalog.epoch, catalog.generation));
    response
        .insert_header(ContentType::json())
        .insert_header((VARY, "accept-encoding"));
    if gzip {
        response.insert_header(ContentEncoding::Gzip);
    }
    Ok(response.body(body))
}

/// The answer the feature actor gives; the whole list plain is serialised here, on a blocking
/// thread, so that a script polling it does not hold up the cycles.
async fn answer(
    pipeline: &Pipeline,
    query: PageQuery,
    encoding: AnswerEncoding,
) -> Result<(Arc<Catalog>, Bytes, Body), ApiError> {
    let ask = AnswerVms {
        query: query.clone(),
        encoding,
    };
    let (catalog, answer) = pipeline.features.send(ask).await?;
    let body = match answer {
        Answer::Body(body, source) => return Ok((catalog, body, source)),
        Answer::Views(views) => web::block(move || serialise(&views))
            .await
            .map_err(|_| ApiError::NotReady("the service is stopping".to_owned()))?,
    };
    catalog.keep(&query, encoding, body.clone());
    Ok((catalog, body, Body::Serialised))
}

fn serialise(views: &VmList) -> Bytes {
    // Serialising these types into memory cannot fail.
    Bytes::from(serde_json::to_vec(views).expect("JSON"))
}

/// The catalog of the table's current generation: the one already built, else the feature
/// actor builds it.
pub async fn catalog(pipeline: &Pipeline) -> Result<Arc<Catalog>, ApiError> {
    match pipeline.catalogs.current() {
        Some(catalog) => Ok(catalog),
        None => Ok(pipeline.features.send(GetCatalog).await?),
    }
}

fn etag(epoch: u64, generation: u64) -> EntityTag {
    EntityTag::new_weak(format!("vms-{epoch:016x}-{generation}"))
}

fn accepts_gzip(request: &HttpRequest) -> bool {
    AcceptEncoding::parse(request).is_ok_and(|accepted| {
        accepted.negotiate([Encoding::gzip(), Encoding::identity()].iter())
            == Some(Encoding::gzip())
    })
}
