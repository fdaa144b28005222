//! Headers every answer carries: JSON, errors and the dashboard's files alike.

use actix_web::http::header::{REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use actix_web::middleware::DefaultHeaders;

/// A browser never guesses a type other than the one sent (a JSON answer holding VM names is
/// never run as a page or a script), and links out of the dashboard leak no URL.
pub fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((REFERRER_POLICY, "no-referrer"))
}
