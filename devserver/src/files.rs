//! Static files: `/` serves the demo page directory (`--www`), `/pkg/` the built npm package
//! (`--pkg`, i.e. `wasm/pkg`). MIME types come from the extension (`.wasm` →
//! `application/wasm`); every answer says `cache-control: no-cache` so a rebuild shows at once.

use std::path::PathBuf;

use axum::Router;
use http::header::{HeaderValue, CACHE_CONTROL};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// `/pkg/...` from `dir`: give it to [`h2ws::Server::routes`].
pub fn pkg(dir: impl Into<PathBuf>) -> Router {
    Router::new().nest_service("/pkg", no_cache(dir.into()))
}

/// Every path no route takes, from `dir`: give it to [`h2ws::Server::fallback`].
pub fn www(dir: impl Into<PathBuf>) -> Router {
    Router::new().fallback_service(no_cache(dir.into()))
}

fn no_cache(dir: PathBuf) -> tower_http::set_header::SetResponseHeader<ServeDir, HeaderValue> {
    tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .service(ServeDir::new(dir))
}
