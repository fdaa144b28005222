use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The OpenAPI 3 document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(title = "vmtelemetry", description = "Live and historical telemetry of libvirt VMs."),
    paths(
        super::health::health,
        super::health::ready,
        super::status::telemetry_status,
        super::vms::list_vms,
        super::summary::summary,
        super::stats::vm_stats,
        super::history::history,
        super::insights::fleet_insights,
        super::insights::vm_insights,
        super::recommendations::recommendations,
        super::metrics::metrics,
        super::admin::list_actors,
        super::admin::restart_actor,
        super::admin::drain,
        super::admin::resume,
        super::admin::hand_over,
    ),
    modifiers(&AdminSecurity)
)]
pub struct ApiDoc;

struct AdminSecurity;

impl Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
