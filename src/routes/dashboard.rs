//! The web dashboard: `static/` built into the binary, so the page works offline and the binary
//! needs no files beside it.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError, web};

use super::ApiError;

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "application/javascript";
const CSS: &str = "text/css";
const TEXT: &str = "text/plain; charset=utf-8";

const INDEX: &[u8] = include_bytes!("../../static/index.html");

/// `(path under /static/, content type, body)`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    // The page's ES modules: main.js imports the others.
    (
        "main.js",
        JAVASCRIPT,
        include_bytes!("../../static/main.js"),
    ),
    ("api.js", JAVASCRIPT, include_bytes!("../../static/api.js")),
    (
        "util.js",
        JAVASCRIPT,
        include_bytes!("../../static/util.js"),
    ),
    (
        "state.js",
        JAVASCRIPT,
        include_bytes!("../../static/state.js"),
    ),
    (
        "controls.js",
        JAVASCRIPT,
        include_bytes!("../../static/controls.js"),
    ),
    (
        "address.js",
        JAVASCRIPT,
        include_bytes!("../../static/address.js"),
    ),
    (
        "tiles.js",
        JAVASCRIPT,
        include_bytes!("../../static/tiles.js"),
    ),
    (
        "table.js",
        JAVASCRIPT,
        include_bytes!("../../static/table.js"),
    ),
    (
        "charts.js",
        JAVASCRIPT,
        include_bytes!("../../static/charts.js"),
    ),
    (
        "vmdata.js",
        JAVASCRIPT,
        include_bytes!("../../static/vmdata.js"),
    ),
    (
        "vmview.js",
        JAVASCRIPT,
        include_bytes!("../../static/vmview.js"),
    ),
    (
        "insights.js",
        JAVASCRIPT,
        include_bytes!("../../static/insights.js"),
    ),
    (
        "hosts.js",
        JAVASCRIPT,
        include_bytes!("../../static/hosts.js"),
    ),
    (
        "forecast.js",
        JAVASCRIPT,
        include_bytes!("../../static/forecast.js"),
    ),
    (
        "rightsizing.js",
        JAVASCRIPT,
        include_bytes!("../../static/rightsizing.js"),
    ),
    (
        "actors.js",
        JAVASCRIPT,
        include_bytes!("../../static/actors.js"),
    ),
    (
        "dashboard.css",
        CSS,
        include_bytes!("../../static/dashboard.css"),
    ),
    (
        "vendor/uplot/uPlot.iife.min.js",
        JAVASCRIPT,
        include_bytes!("../../static/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "vendor/uplot/uPlot.min.css",
        CSS,
        include_bytes!("../../static/vendor/uplot/uPlot.min.css"),
    ),
    // uPlot's MIT licence asks for its notice to travel with the code.
    (
        "vendor/uplot/LICENSE",
        TEXT,
        include_bytes!("../../static/vendor/uplot/LICENSE"),
    ),
    (
        "vendor/uplot/VERSION",
        TEXT,
        include_bytes!("../../static/vendor/uplot/VERSION"),
    ),
];

/// Scripts, styles and the API from this origin only: a VM name that slipped into the page as
/// markup still could not run anything.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `GET /`: the dashboard page.
pub async fn index() -> HttpResponse {
    let mut response = file(HTML, INDEX);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// `GET /static/{path:.*}`: the page's scripts and styles.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    let path = path.into_inner();
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => file(content_type, body),
        None => ApiError::NotFound(format!("/static/{path}")).error_response(),
    }
}

/// `no-cache`: browsers revalidate, so a new binary's page is never mixed with an old script.
fn file(content_type: &'static str, body: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    fn header_of(response: &HttpResponse, name: header::HeaderName) -> &str {
        response.headers().get(name).unwrap().to_str().unwrap()
    }

    #[actix_web::test]
    async fn index_is_html_that_refers_only_to_served_assets() {
        let response = index().await;
        assert_eq!(response.status(), 200);
        assert_eq!(header_of(&response, header::CONTENT_TYPE), HTML);
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        let body = to_bytes(response.into_body()).await.unwrap();
        let html = std::str::from_utf8(&body).unwrap();
        let mut referenced = 0;
        for reference in html.split("\"/static/").skip(1) {
            let path = &reference[..reference.find('"').unwrap()];
            assert!(
                ASSETS.iter().any(|(name, _, _)| *name == path),
                "index.html refers to /static/{path}, which is not served"
            );
            referenced += 1;
        }
        assert_eq!(referenced, 5, "{html}");
    }

    /// Every `from "./x.js"` of every module is served, and every module served is imported.
    #[test]
    fn the_modules_import_only_served_modules_and_each_is_imported() {
        let modules: Vec<&str> = ASSETS
            .iter()
            .filter(|(name, kind, _)| *kind == JAVASCRIPT && !name.starts_with("vendor/"))
            .map(|(name, _, _)| *name)
            .collect();
        let mut imported = std::collections::BTreeSet::from(["main.js"]);
        for (name, kind, body) in ASSETS {
            if *kind != JAVASCRIPT || name.starts_with("vendor/") {
                continue;
            }
            let text = std::str::from_utf8(body).unwrap();
            for import in text.split(" from \"./").skip(1) {
                let path = &import[..import.find('"').unwrap()];
                assert!(
                    modules.contains(&path),
                    "{name} imports ./{path}, which is not served"
                );
                imported.insert(path);
            }
        }
        assert_eq!(
            imported.len(),
            modules.len(),
            "{modules:?} against {imported:?}"
        );
    }

    #[actix_web::test]
    async fn assets_have_their_content_type_and_unknown_paths_are_404_json() {
        let response = asset(web::Path::from("main.js".to_owned())).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header_of(&response, header::CONTENT_TYPE), JAVASCRIPT);
        assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
        let response = asset(web::Path::from("vendor/uplot/uPlot.min.css".to_owned())).await;
        assert_eq!(header_of(&response, header::CONTENT_TYPE), CSS);

        for missing in ["nope.js", "../Cargo.toml", "", "vendor/uplot"] {
            let response = asset(web::Path::from(missing.to_owned())).await;
            assert_eq!(response.status(), 404, "{missing}");
            let body = to_bytes(response.into_body()).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"]["code"], "not_found", "{json}");
        }
    }
}
