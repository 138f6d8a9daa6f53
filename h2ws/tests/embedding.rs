//! Embedding: `h2ws::route` on a user's own axum app served by hyper (not h2ws's
//! own loop): rfc6455, rfc8441 (hyper extended CONNECT), fetch `stream` and `post` work;
//! `native` is refused with 501 because it needs h2ws's own HTTP/2 loop.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use h2ws::{Message as M, Socket};
use h2ws_codec::Message;
use http::StatusCode;
use tokio_tungstenite::tungstenite::Message as TMsg;

/// The user's app: one route that upper-cases text.
fn user_app() -> axum::Router {
    axum::Router::new().route(
        "/ws/shout",
        h2ws::route(|mut socket: Socket| async move {
            while let Some(msg) = socket.recv().await {
                let reply = match msg {
                    M::Text(t) => M::Text(t.to_uppercase()),
                    other => other,
                };
                if socket.send(reply).await.is_err() {
                    break;
                }
            }
        }),
    )
}

/// Serves the app with hyper-util's auto builder (HTTP/1.1 + h2c, extended CONNECT enabled).
async fn serve_with_hyper() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The app's endpoint (limits, sessions, stats): explicit, as an extension.
    let app = user_app().layer(axum::Extension(h2ws::Endpoint::new(
        h2ws::SocketConfig::default(),
    )));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let app = app.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let app = app.clone();
                        async move {
                            use tower::ServiceExt;
                            app.oneshot(req.map(axum::body::Body::new)).await
                        }
                    });
                let mut builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                builder.http2().enable_connect_protocol();
                let _ = builder
                    .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn route_serves_every_transport_but_native_on_a_plain_hyper_server() {
    init_tracing();
    let addr = serve_with_hyper().await;
    let a = addr.to_string();

    // rfc6455 over HTTP/1.1.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{a}/ws/shout"))
        .await
        .expect("rfc6455 connect");
    ws.send(TMsg::text("hi")).await.expect("send");
    let got = tokio::time::timeout(LIMIT, ws.next())
        .await
        .expect("in time")
        .unwrap()
        .unwrap();
    assert_eq!(got, TMsg::text("HI"));
    ws.close(None).await.expect("close");

    // HTTP/2 (h2c prior knowledge) through hyper.
    let sr = h2c(addr).await;
    for kind in [Kind::Rfc8441, Kind::Stream, Kind::Post] {
        let mut p = Peer::open(&sr, &a, "/ws/shout", kind)
            .await
            .unwrap_or_else(|r| panic!("{kind:?} refused: {r:?}"));
        p.send_text("quiet").await;
        assert_eq!(
            p.recv_message().await,
            Message::Text("QUIET".into()),
            "{kind:?}"
        );
        let big = pattern(300_000);
        p.send_binary(&big).await;
        assert_eq!(p.recv_message().await, Message::Binary(big), "{kind:?}");
        p.close(4000, "").await;
        assert_eq!(p.closed().await.0, 4000, "{kind:?}");
    }
    let refused = Peer::open(&sr, &a, "/ws/shout", Kind::Native)
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status, StatusCode::NOT_IMPLEMENTED);
    assert!(refused.body.contains("own HTTP/2"), "{}", refused.body);
}

#[tokio::test]
async fn user_routes_mount_on_the_devserver_with_native() {
    init_tracing();
    let (server, sr, a) =
        TestServer::start(server(h2ws::SocketConfig::default()).routes(user_app()))
            .await
            .parts();
    for kind in Kind::ALL {
        let mut p = Peer::open(&sr, &a, "/ws/shout", kind).await.expect("open");
        p.send_text("abc").await;
        assert_eq!(
            p.recv_message().await,
            Message::Text("ABC".into()),
            "{kind:?}"
        );
    }
    server.shutdown().await;
}

/// A route without an endpoint, or a `SocketUpgrade` on a route h2ws did not make, is a setup
/// error: 500 (the reason goes to the log), never a silent default.
#[tokio::test]
async fn a_route_set_up_wrongly_answers_500() {
    use tower::ServiceExt;
    init_tracing();
    let open = || {
        http::Request::builder()
            .method("POST")
            .uri("/ws/shout")
            .header("h2ws-version", "1")
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let no_endpoint = user_app().oneshot(open()).await.expect("response");
    assert_eq!(no_endpoint.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let plain_any = axum::Router::new()
        .route(
            "/ws/shout",
            axum::routing::any(|up: h2ws::SocketUpgrade| async move {
                up.on_socket(|_s: Socket| async {})
            }),
        )
        .layer(axum::Extension(h2ws::Endpoint::new(
            h2ws::SocketConfig::default(),
        )));
    let res = plain_any.oneshot(open()).await.expect("response");
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
