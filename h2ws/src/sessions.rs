//! Fetch-transport sessions (DESIGN §2.2, §2.3): tokens, the single upstream attach, the
//! attach timeout, ordered `post` batches, remembering ended tokens (410), and re-attaches of
//! sessions that negotiated resume (codec `resume`: a new downstream and upstream for a socket
//! whose transport broke).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use h2ws_codec::CloseCode;
use http::StatusCode;
use http_body_util::BodyExt;

use crate::config::{InstanceId, SocketConfig};
use crate::read_window::ReadWindow;
use crate::reply::{Parked, Replies, Reply};
use crate::request::{check_origin, cors_headers, header_pairs, Refusal};
use crate::socket::{Transport, TransportCell};
use crate::stats::Stats;
use crate::wiring::{queue, CommandHandle, Input, Reattach};
use h2ws_codec::handshake::fetch;
use h2ws_codec::post::{self, Applied, PostReorder};
use h2ws_codec::resume::{self, ResumeConfig};

/// Longest wait for the socket's driver to take a re-attach (it is a poll away unless the
/// runtime is overloaded); past it the re-attach is answered 503.
const REATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Chunks queued from an upstream to the socket driver.
const INBOUND_DEPTH: usize = 4;
/// Ended tokens remembered at most (oldest forgotten first).
const MAX_EXPIRED: usize = 100_000;

enum Attach {
    None,
    Stream,
    /// The batches put back in `h2ws-seq` order (codec [`post`]).
    Post(PostReorder<Bytes>),
}

pub(crate) struct Session {
    pub(crate) transport: Arc<TransportCell>,
    /// Where the upstream's chunks go: the current transport's input (a re-attach replaces it,
    /// under the `attach` lock, so no chunk of a lost upstream reaches the new one).
    inbound: Mutex<queue::Sender<Input>>,
    attach: tokio::sync::Mutex<Attach>,
    /// Held while a run of `post` batches is handed to the socket, in order.
    apply: tokio::sync::Mutex<()>,
    socket: Mutex<Option<CommandHandle>>,
    /// Held until the upstream attaches (or the session ends): counts toward the cap.
    waiting: Mutex<Option<PendingAttach>>,
    /// The downstream's read window, when the client acks what it reads (a re-attach's new
    /// downstream gets a new one).
    read_window: Mutex<Option<Arc<ReadWindow>>>,
    /// The current downstream's waiting `post` batches ([`crate::reply`]; a re-attach's new
    /// downstream brings its own).
    replies: Mutex<Option<Arc<Replies>>>,
    /// Resume, when the open negotiated it.
    /// Boxed: most sessions do not resume, and inline it would cost each of them its size.
    resume: Option<Box<ResumeSlot>>,
}

/// What a re-attach is checked against, and where it goes.
struct ResumeSlot {
    config: ResumeConfig,
    /// The keys a re-attach may present (see [`Keys`]).
    keys: Mutex<Keys>,
    /// The open's `Origin`: a re-attach must come from the same one.
    origin: Option<http::HeaderValue>,
    /// To the socket's driver.
    tx: tokio::sync::mpsc::Sender<Reattach>,
    /// Re-attaches taken: the `h2ws-attach` a `stream` upstream must carry (changed under the
    /// session's `attach` lock).
    generation: AtomicU64,
}

/// A resumable session's re-attach keys. `current` is taken while a re-attach is served, so
/// each key works once (a replayed request finds another key, or none). `previous` is the key
/// of the last re-attach, kept until the new transport proves its answer arrived (its upstream
/// attaches or its first batch is applied): a re-attach whose answer was lost on the way (the
/// network broke again at that moment) can be repeated with the only key the client has.
#[derive(Default)]
struct Keys {
    current: Option<String>,
    previous: Option<String>,
}

impl Keys {
    /// Takes the key `presented` matches, if any.
    fn take(&mut self, presented: &str) -> Option<String> {
        let matches = |key: &Option<String>| {
            key.as_deref()
                .is_some_and(|k| resume::keys_match(presented, k))
        };
        if matches(&self.current) {
            self.previous = None;
            return self.current.take();
        }
        if matches(&self.previous) {
            self.current = None;
            return self.previous.take();
        }
        None
    }
}

/// One session waiting for its upstream; the count drops when this does. The attach deadline
/// itself is the codec's (`Timeouts::attach_timeout`, run by the socket's driver).
struct PendingAttach {
    count: Arc<AtomicUsize>,
}

impl Drop for PendingAttach {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Session {
    /// The upstream attached: the session no longer counts as pending, and its socket's attach
    /// deadline is off.
    fn attached(&self) {
        self.confirm_reattach();
        if let Ok(mut w) = self.waiting.lock() {
            w.take();
        }
        if let Some(socket) = self.socket.lock().ok().and_then(|s| s.clone()) {
            socket.upstream_attached();
        }
    }

    /// The current downstream's read window. A re-attach's new window replaces the lost
    /// downstream's, which is released: that body ends with what it still holds, whatever the
    /// window, instead of waiting for acks that will never come.
    /// The client's upstream arrived over the transport of the last re-attach: its answer did
    /// reach the client, so that re-attach's key is spent for good.
    fn confirm_reattach(&self) {
        if let Some(slot) = &self.resume {
            if let Ok(mut keys) = slot.keys.lock() {
                keys.previous = None;
            }
        }
    }

    pub(crate) fn set_read_window(&self, window: Arc<ReadWindow>) {
        let old = self
            .read_window
            .lock()
            .ok()
            .and_then(|mut w| w.replace(window));
        if let Some(old) = old {
            old.release();
        }
    }

    /// The socket ended: its current downstream's window no longer holds anything back.
    pub(crate) fn release_read_window(&self) {
        if let Some(window) = self.read_window() {
            window.release();
        }
    }

    pub(crate) fn set_replies(&self, replies: Arc<Replies>) {
        if let Ok(mut r) = self.replies.lock() {
            *r = Some(replies);
        }
    }

    fn replies(&self) -> Option<Arc<Replies>> {
        self.replies.lock().ok().and_then(|r| r.clone())
    }

    fn read_window(&self) -> Option<Arc<ReadWindow>> {
        self.read_window.lock().ok().and_then(|w| w.clone())
    }

    /// The current upstream's input.
    fn inbound(&self) -> Option<queue::Sender<Input>> {
        self.inbound.lock().ok().map(|i| i.clone())
    }

    /// Re-attaches taken so far: the `h2ws-attach` of the current transport.
    fn generation(&self) -> u64 {
        self.resume
            .as_ref()
            .map_or(0, |slot| slot.generation.load(Ordering::Relaxed))
    }

    pub(crate) fn set_socket(&self, handle: CommandHandle) {
        if let Ok(mut s) = self.socket.lock() {
            *s = Some(handle.clone());
        }
        // The upstream may have attached before the socket was set.
        let attached = self.waiting.lock().map(|w| w.is_none()).unwrap_or(false);
        if attached {
            handle.upstream_attached();
        }
    }

    async fn close_socket(&self, code: CloseCode, reason: &str) {
        let handle = self.socket.lock().ok().and_then(|s| s.clone());
        if let Some(closer) = handle {
            closer.close(code, reason);
        }
    }
}

/// A new session: its token, the shared record, and the driver's input.
pub(crate) struct Opened {
    pub token: String,
    pub session: Arc<Session>,
    pub input: BoxStream<'static, Input>,
    /// With resume: the first re-attach key (for the answer) and the driver's end of the
    /// re-attach queue.
    pub resume: Option<(String, tokio::sync::mpsc::Receiver<Reattach>)>,
}

/// Ended tokens: when each ended, and the order to forget them in.
/// Tokens are kept as 64-bit keyed fingerprints (~40 bytes an entry instead of two strings):
/// a collision between server-made random tokens only turns a 404 into a 410.
type Expired = (HashMap<u64, Instant>, VecDeque<(Instant, u64)>);

pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Arc<Session>>>,
    expired: Mutex<Expired>,
    fingerprint: std::collections::hash_map::RandomState,
    ttl: Duration,
    /// Sessions whose upstream has not attached yet.
    pending: Arc<AtomicUsize>,
    /// Upstream requests refused with 421 (token of another instance): a misrouting balancer.
    misdirected: AtomicU64,
    /// Upstream requests refused with 404/410 (unknown or ended session).
    unknown: AtomicU64,
    /// Re-attaches that resumed a socket, and those refused (a wrong key or origin, a count the
    /// socket cannot honour, a socket already gone).
    resumed: AtomicU64,
    resume_refused: AtomicU64,
}

impl Sessions {
    pub(crate) fn new(ttl: Duration) -> Self {
        Sessions {
            live: Mutex::new(HashMap::new()),
            expired: Mutex::new((HashMap::new(), VecDeque::new())),
            fingerprint: std::collections::hash_map::RandomState::new(),
            ttl,
            pending: Arc::new(AtomicUsize::new(0)),
            misdirected: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            resume_refused: AtomicU64::new(0),
        }
    }

    /// Re-attaches that resumed a socket, and re-attaches refused (for `/.h2ws/stats`).
    pub(crate) fn resumes(&self) -> (u64, u64) {
        (
            self.resumed.load(Ordering::Relaxed),
            self.resume_refused.load(Ordering::Relaxed),
        )
    }

    /// Upstream requests answered 421 and 404/410 so far (for `/.h2ws/stats`).
    pub(crate) fn refused(&self) -> (u64, u64) {
        (
            self.misdirected.load(Ordering::Relaxed),
            self.unknown.load(Ordering::Relaxed),
        )
    }

    /// Sessions waiting for their upstream to attach.
    pub(crate) fn pending_attaches(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// A new session; `resume`: the open offered resume and the server takes it (its limits,
    /// and the open's `Origin`).
    pub(crate) fn open(
        &self,
        config: &SocketConfig,
        transport: Transport,
        resume: Option<(ResumeConfig, Option<http::HeaderValue>)>,
    ) -> Result<Opened, Refusal> {
        // Unattached sessions cost a socket and a token each: cap them (DESIGN §2.1: 503).
        let cap = config.max_pending_attaches;
        if self.pending.fetch_add(1, Ordering::Relaxed) >= cap {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many sessions waiting for their upstream",
            ));
        }
        let waiting = PendingAttach {
            count: self.pending.clone(),
        };
        let instance = config.instance_id.as_ref().map(|i| i.as_str());
        let token = new_token(instance).ok_or_else(|| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no randomness for a session token",
            )
        })?;
        let (tx, rx) = queue::channel(INBOUND_DEPTH);
        let mut driver_end = None;
        let resume = match resume {
            Some((config, origin)) => {
                let key = new_key().ok_or_else(|| {
                    Refusal::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no randomness for a resume key",
                    )
                })?;
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                driver_end = Some((key.clone(), rx));
                Some(Box::new(ResumeSlot {
                    config,
                    keys: Mutex::new(Keys {
                        current: Some(key),
                        previous: None,
                    }),
                    origin,
                    tx,
                    generation: AtomicU64::new(0),
                }))
            }
            None => None,
        };
        let session = Arc::new(Session {
            transport: Arc::new(TransportCell::new(transport)),
            inbound: Mutex::new(tx),
            attach: tokio::sync::Mutex::new(Attach::None),
            apply: tokio::sync::Mutex::new(()),
            socket: Mutex::new(None),
            waiting: Mutex::new(Some(waiting)),
            read_window: Mutex::new(None),
            replies: Mutex::new(None),
            resume,
        });
        if let Ok(mut live) = self.live.lock() {
            live.insert(token.clone(), session.clone());
        }
        Ok(Opened {
            token,
            session,
            input: rx.boxed(),
            resume: driver_end,
        })
    }

    /// The socket ended: forget the session, remember the token as expired.
    pub(crate) fn end(&self, token: &str) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(token);
        }
        if let Ok(mut guard) = self.expired.lock() {
            let (map, order) = &mut *guard;
            let now = Instant::now();
            while let Some((t, _)) = order.front() {
                if now.duration_since(*t) < self.ttl && order.len() < MAX_EXPIRED {
                    break;
                }
                if let Some((_, old)) = order.pop_front() {
                    map.remove(&old);
                }
            }
            let key = self.fingerprint.hash_one(token);
            map.insert(key, now);
            order.push_back((now, key));
        }
    }

    /// The live session of `token`: 421 when the token names another instance (the load
    /// balancer sent it to the wrong server: no lookup can succeed here), 410 when it ended
    /// recently, else 404.
    fn lookup(&self, token: &str, instance: Option<&InstanceId>) -> Result<Arc<Session>, Refusal> {
        let named = fetch::token_instance(token.as_bytes());
        if named != instance.map(|i| i.as_str().as_bytes()) {
            self.misdirected.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::new(
                StatusCode::MISDIRECTED_REQUEST,
                "session token of another server instance",
            ));
        }
        if let Some(s) = self.live.lock().ok().and_then(|l| l.get(token).cloned()) {
            return Ok(s);
        }
        let expired = self.expired.lock().ok().and_then(|e| {
            let key = self.fingerprint.hash_one(token);
            e.0.get(&key).map(|t| t.elapsed() < self.ttl)
        });
        self.unknown.fetch_add(1, Ordering::Relaxed);
        if expired == Some(true) {
            Err(Refusal::new(StatusCode::GONE, "session ended"))
        } else {
            Err(Refusal::new(StatusCode::NOT_FOUND, "no such session"))
        }
    }
}

/// A re-attach the socket took: what its answer carries.
pub(crate) struct Reattached {
    pub session: Arc<Session>,
    pub token: String,
    /// Counted frames the server received (`h2ws-received` of the answer).
    pub received: u64,
    /// The `h2ws-resume` answer: limits and the next key.
    pub accept: String,
    /// The `h2ws-attach` answer: this transport's number, for its `stream` upstream.
    pub generation: u64,
}

impl Sessions {
    /// A re-attach (codec `resume`): checks token, origin and key, hands the new downstream
    /// (`output`) and a new upstream input to the socket's driver, and waits for the codec's
    /// verdict. The key is used up whatever the outcome; a new one comes with success.
    pub(crate) async fn reattach(
        &self,
        config: &SocketConfig,
        parts: &http::request::Parts,
        output: queue::Sender<crate::wiring::Output>,
        replies: Arc<Replies>,
    ) -> Result<Reattached, Refusal> {
        let (token, key, next_seq, peer_received) = {
            let pairs = header_pairs(&parts.headers);
            let r = resume::validate_reattach(&pairs)?;
            let key = r.resume.key.to_string();
            (r.session.to_string(), key, r.resume.next_seq, r.received)
        };
        check_origin(config, parts)?;
        let session = self.lookup(&token, config.instance_id.as_ref())?;
        tracing::debug!("re-attach: the peer received {peer_received} frames, seq {next_seq:?}");
        let refused = |status: StatusCode, why: String| {
            self.resume_refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("re-attach refused ({status}): {why}");
            Refusal::new(status, why)
        };
        let Some(slot) = session.resume.as_ref() else {
            return Err(refused(
                StatusCode::CONFLICT,
                "this session was opened without resume".into(),
            ));
        };
        if parts.headers.get(http::header::ORIGIN) != slot.origin.as_ref() {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "origin differs from the session's".into(),
            ));
        }
        let taken = slot.keys.lock().ok().and_then(|mut keys| keys.take(&key));
        if taken.is_none() {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "wrong or already used resume key".into(),
            ));
        }
        let next_key = new_key().ok_or_else(|| {
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "no randomness for a resume key".into(),
            )
        })?;
        // Held until the new input is in place: no batch of the lost transport is applied
        // in between (see `post_batch`).
        let mut attach = session.attach.lock().await;
        let (tx, rx) = queue::channel(INBOUND_DEPTH);
        let (reply, verdict) = tokio::sync::oneshot::channel();
        let request = Reattach {
            peer_received,
            input: rx.boxed(),
            output,
            reply,
        };
        let handed = tokio::time::timeout(REATTACH_TIMEOUT, async {
            slot.tx.send(request).await.ok()?;
            verdict.await.ok()
        })
        .await;
        let received = match handed {
            Ok(Some(Ok(n))) => n,
            Ok(Some(Err(e))) => {
                return Err(refused(
                    StatusCode::CONFLICT,
                    format!("resume refused: {e}"),
                ))
            }
            Ok(None) => return Err(refused(StatusCode::GONE, "session ended".into())),
            Err(_) => {
                return Err(refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the socket did not take the re-attach in time".into(),
                ))
            }
        };
        if let Ok(mut inbound) = session.inbound.lock() {
            *inbound = tx;
        }
        session.set_replies(replies);
        *attach = match next_seq {
            Some(seq) => Attach::Post(PostReorder::starting_at(
                post::max_batch_body(config.max_message_size),
                seq,
            )),
            None => Attach::None, // the next `stream` upstream attaches
        };
        let generation = slot.generation.fetch_add(1, Ordering::Relaxed) + 1;
        drop(attach);
        let accept = slot.config.accept(&next_key);
        if let Ok(mut keys) = slot.keys.lock() {
            keys.current = Some(next_key);
            keys.previous = taken;
        }
        self.resumed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("re-attach taken: the server received {received} frames");
        Ok(Reattached {
            session,
            token,
            received,
            accept,
            generation,
        })
    }
}

/// 256 bits from the OS RNG, base64url without padding, after `INSTANCE.` when the server has
/// an instance id; `None` if the OS RNG fails (there is no safe fallback for a bearer token).
fn new_token(instance: Option<&str>) -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(fetch::session_token_for(instance, &bytes))
}

/// A resume key: 256 bits from the OS RNG (codec `resume::new_key`).
fn new_key() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(resume::new_key(&bytes))
}

/// What serving an upstream request reads: the sessions and their endpoint's config and stats,
/// borrowed one by one (the endpoint owns the sessions, so this module never names it).
pub(crate) struct Upstream<'a> {
    pub sessions: &'a Sessions,
    pub config: &'a SocketConfig,
    pub stats: &'a Stats,
}

/// What an upstream request asks for, once checked.
enum Work {
    Answered(StatusCode),
    /// A `stream` upstream, with its `h2ws-attach`.
    Stream(Arc<Session>, u64),
    /// A batch: its session, `h2ws-seq`, and whether the client takes a reply.
    Post(Arc<Session>, u64, bool),
}

/// An upstream request once its head is checked: what it asks for, and its `Origin` (copied)
/// for the answer's CORS headers. The head itself is let go: a `stream` upstream is served for
/// as long as its socket lives.
pub(crate) struct Checked {
    work: Result<Work, Refusal>,
    origin: Option<http::HeaderValue>,
}

/// Checks a fetch upstream request's head (`stream` attach, `post` batch, read ack).
pub(crate) fn check(up: &Upstream<'_>, parts: http::request::Parts) -> Checked {
    let origin = parts
        .headers
        .get(http::header::ORIGIN)
        .map(|v| http::HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|_| v.clone()));
    Checked {
        work: check_upstream(up, &parts),
        origin,
    }
}

/// Answers a checked upstream request; a stream attach and a post batch each run in a box of
/// their own size.
pub(crate) async fn serve(up: &Upstream<'_>, checked: Checked, body: Body) -> Response {
    let Checked { work, origin } = checked;
    let served = match work {
        Ok(Work::Answered(status)) => Ok(status),
        Ok(Work::Stream(session, generation)) => {
            Box::pin(attach_stream(up, &session, generation, body)).await
        }
        Ok(Work::Post(session, seq, reply)) => {
            let limit = post::max_batch_body(up.config.max_message_size);
            let replies = reply.then(|| session.replies()).flatten();
            let applied = Box::pin(post_batch(up, &session, seq, body, limit, replies)).await;
            match applied {
                // Applied just now: the socket's answer, if it comes at once, goes with it.
                Ok(Batch::Applied(Some(parked))) => {
                    let wait = Duration::from_millis(fetch::REPLY_WAIT_MS.into());
                    match parked.wait(wait).await {
                        Some(reply) => return answer(reply_response(reply), origin),
                        None => Ok(StatusCode::OK),
                    }
                }
                applied => applied.map(Batch::status),
            }
        }
        Err(refusal) => Err(refusal),
    };
    let res = match served {
        Ok(status) => status.into_response(),
        Err(refusal) => refusal.into_response(),
    };
    answer(res, origin)
}

/// A batch's answer carrying a reply: `200`, `h2ws-at`, the frames.
fn reply_response(reply: Reply) -> Response {
    let mut res = Response::new(Body::from(reply.frames));
    let h = res.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(fetch::CONTENT_TYPE),
    );
    h.insert(fetch::H2WS_AT, http::HeaderValue::from(reply.at));
    res
}

/// What every upstream answer carries: `no-store` and the CORS headers for its `Origin`.
fn answer(mut res: Response, origin: Option<http::HeaderValue>) -> Response {
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    let mut request_origin = http::HeaderMap::new();
    if let Some(origin) = origin {
        request_origin.insert(http::header::ORIGIN, origin);
    }
    cors_headers(&request_origin, res.headers_mut());
    res
}

fn check_upstream(up: &Upstream<'_>, parts: &http::request::Parts) -> Result<Work, Refusal> {
    let (token, seq, read, generation) = {
        let pairs = header_pairs(&parts.headers);
        let up = fetch::validate_upstream(&pairs)?;
        (up.session.to_string(), up.seq, up.read, up.attach)
    };
    check_origin(up.config, parts)?;
    let session = up.sessions.lookup(&token, up.config.instance_id.as_ref())?;
    if let Some(read) = read {
        return ack(&session, read).map(Work::Answered);
    }
    Ok(match seq {
        None => Work::Stream(session, generation),
        Some(seq) => {
            let reply = parts.headers.get(fetch::H2WS_REPLY).map(|v| v.as_bytes()) == Some(b"1");
            Work::Post(session, seq, reply)
        }
    })
}

/// An ack request: the client has read `read` downstream bytes in all. Answered at once (never
/// queued behind batches), so a client whose batches wait on a full downstream can still
/// reopen it.
fn ack(session: &Session, read: u64) -> Result<StatusCode, Refusal> {
    let window = session.read_window().ok_or_else(|| {
        Refusal::new(
            StatusCode::CONFLICT,
            "this session has no read window (open without h2ws-acks)",
        )
    })?;
    window
        .ack(read)
        .map_err(|_| Refusal::bad_request("h2ws-read is beyond the bytes sent"))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn attach_stream(
    up: &Upstream<'_>,
    session: &Session,
    generation: u64,
    body: Body,
) -> Result<StatusCode, Refusal> {
    {
        let mut attach = session.attach.lock().await;
        let current = session.generation();
        if generation != current {
            // An upstream of a lost transport, sent again by the browser (`fetch::H2WS_ATTACH`):
            // its frames were counted already, or are the codec's to replay.
            tracing::debug!(
                "stream upstream refused: h2ws-attach {generation}, the session is at {current}"
            );
            return Err(Refusal::new(
                StatusCode::CONFLICT,
                "an upstream of an earlier transport of this session (h2ws-attach)",
            ));
        }
        match *attach {
            Attach::None => {
                *attach = Attach::Stream;
                // Counted as what attached (an open over HTTP/1.1 starts counted as `post`).
                up.stats.switch(&session.transport, Transport::Stream);
                session.attached();
            }
            Attach::Stream => {
                return Err(Refusal::new(
                    StatusCode::CONFLICT,
                    "an upstream is already attached to this session",
                ))
            }
            Attach::Post { .. } => {
                return Err(Refusal::new(
                    StatusCode::CONFLICT,
                    "this session's upstream uses post batches",
                ))
            }
        }
    }
    let Some(inbound) = session.inbound() else {
        return Err(Refusal::new(StatusCode::GONE, "session ended"));
    };
    let mut data = body.into_data_stream();
    loop {
        let next = tokio::select! {
            next = data.next() => next,
            _ = inbound.closed() => {
                Box::pin(drain_upstream(&mut data)).await;
                break;
            }
        };
        let input = match next {
            Some(Ok(chunk)) => Input::Chunk(chunk),
            Some(Err(e)) => {
                tracing::debug!("upstream body failed: {e}");
                let _ = inbound.send(Input::Failed).await;
                break;
            }
            None => {
                let _ = inbound.send(Input::End).await;
                break;
            }
        };
        if inbound.send(input).await.is_err() {
            Box::pin(drain_upstream(&mut data)).await;
            break;
        }
    }
    Ok(StatusCode::OK)
}

/// After the socket ended (close handshake done), the client ends its upstream body right
/// behind its last frame: read it to its end before answering, so the stream ends with
/// END_STREAM both ways (the rule and its bounds: `wiring::drain_after_close`). Boxed where
/// it is awaited: its timer would otherwise sit in every attached upstream's future for as
/// long as the socket lives.
async fn drain_upstream(
    data: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
) {
    crate::wiring::drain_after_close(data, |item| item.as_ref().ok().map(Bytes::len)).await;
}

/// How a batch was taken.
enum Batch {
    /// Its frames were applied now (with the run of held batches behind it): `200`, and the
    /// wait for a reply when the client asked for one.
    Applied(Option<Parked>),
    /// Held until the batches before it come (`200`), or a repeat (`204`).
    Other(StatusCode),
}

impl Batch {
    fn status(self) -> StatusCode {
        match self {
            Batch::Applied(_) => StatusCode::OK,
            Batch::Other(status) => status,
        }
    }
}

async fn post_batch(
    up: &Upstream<'_>,
    session: &Session,
    seq: u64,
    body: Body,
    limit: usize,
    replies: Option<Arc<Replies>>,
) -> Result<Batch, Refusal> {
    {
        let mut attach = session.attach.lock().await;
        if let Attach::None = *attach {
            *attach = Attach::Post(PostReorder::new(limit));
            up.stats.switch(&session.transport, Transport::Post);
            session.attached();
        }
        match &*attach {
            Attach::Stream => {
                return Err(Refusal::new(
                    StatusCode::CONFLICT,
                    "this session's upstream is a stream",
                ))
            }
            Attach::Post(reorder) => {
                if reorder.check(seq).map_err(batch_refused)? {
                    return Ok(Batch::Other(StatusCode::NO_CONTENT));
                }
            }
            Attach::None => unreachable!("set above"),
        }
    }
    let collected = http_body_util::Limited::new(body, limit).collect().await;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            // A batch holds whole frames, so it carries a message over the limit: the same
            // answer as on the other transports (1009), plus 413 for this request.
            session
                .close_socket(CloseCode::TOO_BIG, "message too big")
                .await;
            return Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("batch over {limit} bytes"),
            ));
        }
        Err(e) => {
            tracing::debug!("post batch {seq}: body failed: {e}");
            return Err(Refusal::bad_request("batch body failed"));
        }
    };
    // Runs of batches are applied in order under `apply`, and the state lock is never held
    // while the socket takes them: other batches of this session are still checked and read
    // meanwhile, so their bodies do not sit in the connection's flow-control window (shared
    // by every socket on the connection) behind a slow socket.
    let _apply = session.apply.lock().await;
    let (run, inbound) = {
        let mut attach = session.attach.lock().await;
        let Attach::Post(reorder) = &mut *attach else {
            return Err(Refusal::new(StatusCode::CONFLICT, "session changed mode"));
        };
        let run = match reorder.accept(seq, bytes).map_err(batch_refused)? {
            Applied::Repeat => return Ok(Batch::Other(StatusCode::NO_CONTENT)),
            Applied::Held => {
                tracing::debug!(
                    "post batch {seq} held: waiting for batch {}",
                    reorder.next()
                );
                return Ok(Batch::Other(StatusCode::OK));
            }
            Applied::Run(run) => run,
        };
        session.confirm_reattach();
        // Taken with the reorder state: a re-attach replaces both at once, so a run of the
        // lost transport's batches never reaches the new input.
        (run, session.inbound())
    };
    let Some(inbound) = inbound else {
        return Err(Refusal::new(StatusCode::GONE, "session ended"));
    };
    // An empty run (the attaching batch 0) has nothing an answer could follow.
    if run.iter().all(|bytes| bytes.is_empty()) {
        return Ok(Batch::Other(StatusCode::OK));
    }
    // Parked before the frames go in: the socket's answer cannot pass it on the downstream.
    let parked = replies.and_then(|r| r.park());
    for bytes in run {
        if !bytes.is_empty() && inbound.send(Input::Chunk(bytes)).await.is_err() {
            return Err(Refusal::new(StatusCode::GONE, "session ended"));
        }
    }
    Ok(Batch::Applied(parked))
}

/// A batch the codec's reorder rules refuse (409 and its reason).
fn batch_refused(refusal: post::BatchRefusal) -> Refusal {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::CONFLICT);
    Refusal::new(status, refusal.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;

    #[tokio::test]
    async fn tokens_live_then_expire() {
        let endpoint = Endpoint::new(crate::SocketConfig::default());
        let sessions = &endpoint.0.sessions;
        let a = sessions
            .open(endpoint.config(), Transport::Stream, None)
            .expect("open");
        let b = sessions
            .open(endpoint.config(), Transport::Stream, None)
            .expect("open");
        assert_ne!(a.token, b.token);
        assert!(fetch::is_valid_session_token(a.token.as_bytes()));
        assert!(a.token.len() >= 43, "256 bits: {}", a.token);
        assert!(sessions.lookup(&a.token, None).is_ok());
        sessions.end(&a.token);
        assert_eq!(
            sessions.lookup(&a.token, None).err().map(|r| r.status),
            Some(StatusCode::GONE)
        );
        assert_eq!(
            sessions.lookup("nope", None).err().map(|r| r.status),
            Some(StatusCode::NOT_FOUND)
        );
        assert!(sessions.lookup(&b.token, None).is_ok());
    }

    #[tokio::test]
    async fn expired_tokens_are_forgotten_after_the_ttl() {
        let endpoint = Endpoint::new(crate::SocketConfig {
            expired_token_ttl: Duration::from_millis(1),
            ..crate::SocketConfig::default()
        });
        let sessions = &endpoint.0.sessions;
        let a = sessions
            .open(endpoint.config(), Transport::Post, None)
            .expect("open");
        sessions.end(&a.token);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            sessions.lookup(&a.token, None).err().map(|r| r.status),
            Some(StatusCode::NOT_FOUND)
        );
        // Ending another prunes the old entry.
        let b = sessions
            .open(endpoint.config(), Transport::Post, None)
            .expect("open");
        sessions.end(&b.token);
        assert_eq!(sessions.expired.lock().unwrap().0.len(), 1);
    }

    #[tokio::test]
    async fn instance_tokens_route_and_misdirected_ones_get_421() {
        let id = |s: &str| InstanceId::new(s).expect("valid id");
        let endpoint = Endpoint::new(crate::SocketConfig {
            instance_id: Some(id("s2")),
            ..crate::SocketConfig::default()
        });
        let sessions = &endpoint.0.sessions;
        let a = sessions
            .open(endpoint.config(), Transport::Stream, None)
            .expect("open");
        let random = a
            .token
            .strip_prefix("s2.")
            .expect("token starts with the instance id");
        // The prefix takes nothing from the 256 random bits.
        assert_eq!(random.len(), 43);
        assert!(fetch::is_valid_session_token(a.token.as_bytes()));
        assert!(sessions.lookup(&a.token, Some(&id("s2"))).is_ok());
        // The same token at another instance, or at one without an id, and a token of
        // another instance here: 421, counted; never a lookup.
        let status =
            |t: &str, i: Option<&InstanceId>| sessions.lookup(t, i).err().map(|r| r.status);
        assert_eq!(
            status(&a.token, Some(&id("s1"))),
            Some(StatusCode::MISDIRECTED_REQUEST)
        );
        assert_eq!(
            status(&a.token, None),
            Some(StatusCode::MISDIRECTED_REQUEST)
        );
        assert_eq!(
            status(random, Some(&id("s2"))),
            Some(StatusCode::MISDIRECTED_REQUEST)
        );
        assert_eq!(sessions.refused(), (3, 0));
        let other = fetch::session_token_for(Some("s2"), &[1; 32]);
        assert_eq!(status(&other, Some(&id("s2"))), Some(StatusCode::NOT_FOUND));
        assert_eq!(sessions.refused(), (3, 1));
        assert!(InstanceId::new("a.b").is_err());
        assert!(InstanceId::new("").is_err());
        assert!(InstanceId::new("x".repeat(33)).is_err());
    }
}
