//! Static files: `/` serves the demo page directory (`--www`), `/pkg/` the built npm package
//! (`--pkg`, i.e. `wasm/pkg`). MIME types come from the extension (`.wasm` →
//! `application/wasm`); every answer says `cache-control: no-cache` so a rebuild shows at once.

use std::path::PathBuf;

use axum::Router;
use http::header::{HeaderValue, CACHE_CONTROL};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// Adds the static file routes to `router` (routes already in `router` take precedence).
pub(crate) fn routes(router: Router, www: Option<PathBuf>, pkg: Option<PathBuf>) -> Router {
    let no_cache =
        || SetResponseHeaderLayer::overriding(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mut router = router;
    if let Some(pkg) = pkg {
        router = router.nest_service(
            "/pkg",
            tower::ServiceBuilder::new()
                .layer(no_cache())
                .service(ServeDir::new(pkg)),
        );
    }
    if let Some(www) = www {
        router = router.fallback_service(
            tower::ServiceBuilder::new()
                .layer(no_cache())
                .service(ServeDir::new(www)),
        );
    }
    router
}
