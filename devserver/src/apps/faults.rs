//! `/demo/drop-connection` (POST): the server drops the HTTP/2 connection this request came
//! on, at once and without GOAWAY — a network loss on demand, for the demo's network panel
//! and the browser tests of resume (issue 14). Answered `202` first (the page learns the drop
//! is coming), the connection is dropped 20 ms later. A request can only drop its own
//! connection; on HTTP/1.1 or HTTP/3 the answer is `501`.

use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use h2ws::h2conn::ConnectionControl;

/// How long the `202` has to leave before the connection goes.
const DROP_DELAY: Duration = Duration::from_millis(20);

pub async fn drop_connection(req: Request) -> (StatusCode, &'static str) {
    let Some(control) = req.extensions().get::<ConnectionControl>().cloned() else {
        return (
            StatusCode::NOT_IMPLEMENTED,
            "only an HTTP/2 connection of this server can be dropped on request\n",
        );
    };
    tokio::spawn(async move {
        tokio::time::sleep(DROP_DELAY).await;
        control.drop_connection();
    });
    (StatusCode::ACCEPTED, "dropping this connection\n")
}
