//! Resume for the native client (codec `resume`): when the HTTP/2 connection under a
//! resumable `stream` or `post` socket breaks, a new connection to the same origin, the
//! re-attach request with the socket's key and received count, and the new wire — retried with
//! backoff until the server answers or the codec's grace window ends the socket.
//!
//! What is replayed, and when the socket gives up, is the codec's business (the driver calls
//! `Connection::resume` with the count this module returns); this module only finds a new
//! transport.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use h2ws_codec::handshake::fetch;
use h2ws_codec::resume;
use http::Method;

use super::connect::Target;
use super::h2conn::{
    add_common_headers, fetch_upstream_request, header_pairs, header_string, header_value, request,
    H2Connection, Successor,
};
use super::wire::{self, Wire};
use super::{ClientConfig, Error, Route, Transport};

/// A resumable socket's re-attach state.
pub(crate) struct Resumer {
    route: Arc<Route>,
    /// The key of the last answer: each works once.
    key: String,
    /// `post`: the next batch's `h2ws-seq`, taken from the lost wire.
    next_seq: Option<u64>,
    attempt: Option<Attempt>,
    failures: u32,
}

/// One re-attach attempt in flight.
type Attempt = Pin<Box<dyn Future<Output = Result<Reattached, Error>> + Send>>;

struct Reattached {
    wire: Wire,
    peer_received: u64,
    key: String,
}

impl Resumer {
    pub(crate) fn new(route: Route, key: String) -> Self {
        Resumer {
            route: Arc::new(route),
            key,
            next_seq: None,
            attempt: None,
            failures: 0,
        }
    }

    /// The transport broke: remembers where the `post` numbering stands.
    pub(crate) fn lost(&mut self, wire: Option<&Wire>) {
        if self.route.transport == Transport::Post {
            self.next_seq = wire.and_then(Wire::post_next_seq).or(self.next_seq);
        }
        self.attempt = None;
        self.failures = 0;
    }

    /// Drives re-attach attempts: `Ready(Ok((wire, n)))` once the server took one (it received
    /// `n` counted frames), `Ready(Err)` when it refused for good (the session is gone, the key
    /// or origin is wrong). Network failures are retried with backoff; the codec's grace
    /// window bounds the whole.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        received: u64,
    ) -> Poll<Result<(Wire, u64), Error>> {
        loop {
            let delay = Duration::from_millis(u64::from(resume::reattach_delay_ms(self.failures)));
            let attempt = self.attempt.get_or_insert_with(|| {
                Box::pin(reattach(
                    self.route.clone(),
                    resume::reattach_value(&self.key, self.next_seq),
                    self.next_seq,
                    received,
                    delay,
                ))
            });
            match std::task::ready!(attempt.as_mut().poll(cx)) {
                Ok(done) => {
                    self.attempt = None;
                    self.failures = 0;
                    self.key = done.key;
                    return Poll::Ready(Ok((done.wire, done.peer_received)));
                }
                Err(e) if is_final(&e) => {
                    self.attempt = None;
                    return Poll::Ready(Err(e));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "re-attach attempt failed; retrying");
                    self.attempt = None;
                    self.failures = self.failures.saturating_add(1);
                }
            }
        }
    }
}

/// A refusal by the server is final (codec `resume::reattach_refusal_is_final`: 4xx), except
/// 5xx (a proxy in front of a restarting server). Everything else is the network: try again.
fn is_final(e: &Error) -> bool {
    matches!(e, Error::Refused { status, .. } if resume::reattach_refusal_is_final(*status))
}

/// One attempt: a new HTTP/2 connection, the re-attach request, its answer, the new upstream.
async fn reattach(
    route: Arc<Route>,
    resume_value: String,
    next_seq: Option<u64>,
    received: u64,
    delay: Duration,
) -> Result<Reattached, Error> {
    tokio::time::sleep(delay).await;
    let Route {
        config,
        successor,
        target,
        uri,
        options,
        transport,
        session,
    } = &*route;
    let limit = config.handshake_timeout;
    let conn = successor_connection(successor, config.clone(), target).await?;
    let mut req = request(Method::POST, uri)?;
    let h = req.headers_mut();
    h.insert(fetch::H2WS_VERSION, header_value(fetch::VERSION)?);
    h.insert(fetch::H2WS_SESSION, header_value(session)?);
    h.insert(fetch::H2WS_RESUME, header_value(&resume_value)?);
    h.insert(
        fetch::H2WS_RECEIVED,
        header_value(&fetch::decimal(received))?,
    );
    add_common_headers(h, options)?;
    let answer = async {
        let (resp, _) = conn.send_request(req, true).await?;
        Ok::<_, Error>(resp.await?)
    };
    let resp = tokio::time::timeout(limit, answer)
        .await
        .map_err(|_| Error::Timeout(limit, "re-attaching a resumed socket"))??;
    let (parts, downstream) = resp.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(super::h2conn::refusal(parts.status.as_u16(), downstream).await);
    }
    let pairs = header_pairs(&parts.headers);
    let bad = |what: &str| Error::Handshake(format!("re-attach answer: {what}"));
    let peer_received = header_string(&parts.headers, fetch::H2WS_RECEIVED)
        .and_then(|v| resume::parse_count(&v))
        .ok_or_else(|| bad("missing or malformed h2ws-received"))?;
    let key = h2ws_codec::handshake::single_header(&pairs, fetch::H2WS_RESUME, "")
        .ok()
        .flatten()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(resume::parse_accept)
        .map(|a| a.key.to_owned())
        .ok_or_else(|| bad("missing or malformed h2ws-resume"))?;
    let mut upstream = fetch_upstream_request(uri, session, options)?;
    if let Some(generation) = parts.headers.get(fetch::H2WS_ATTACH) {
        // This transport's number, passed back as given: the server refuses the upstreams of
        // earlier ones.
        upstream
            .headers_mut()
            .insert(fetch::H2WS_ATTACH, generation.clone());
    }
    let wire = match transport {
        Transport::Post => {
            let up = wire::Up::H2 {
                requests: conn.requests(),
                in_flight: Default::default(),
            };
            Wire::post_from(
                wire::Down::H2(downstream),
                up,
                upstream,
                next_seq.unwrap_or(0),
            )
        }
        _ => {
            let (up_resp, up_send) = conn.send_request(upstream, false).await?;
            Wire::h2(up_send, downstream, false, Some(up_resp))
        }
    };
    Ok(Reattached {
        wire,
        peer_received,
        key,
    })
}

/// The connection the sockets of a broken one re-attach over: the one a sibling socket already
/// made if it still works, else a new one (kept for the siblings). The lock is held while
/// connecting, so sockets lost together make one connection, not one each.
async fn successor_connection(
    successor: &Successor,
    config: Arc<ClientConfig>,
    target: &Target,
) -> Result<H2Connection, Error> {
    let mut slot = successor.lock().await;
    if let Some(conn) = slot.as_ref() {
        // Bounded: a connection at its stream limit is as good as none here.
        let usable = tokio::time::timeout(config.connect_timeout, conn.is_usable()).await;
        if usable.unwrap_or(false) {
            return Ok(conn.clone());
        }
    }
    let conn = H2Connection::connect(config, target).await?;
    *slot = Some(conn.clone());
    Ok(conn)
}
