//! Reconnect, opt-in (issue 14; partysocket semantics): a socket that opens a **new session**
//! when its session ends in a way worth retrying — a failed resume (the server restarted, the
//! grace window ran out), a refused or broken open, a close by the server that is not 1000 or
//! 1001. The app sees [`ReconnectEvent::Close`] then, later, [`ReconnectEvent::Open`] again;
//! what it sends while no session is open waits in a bounded buffer and goes out on the next
//! open. Unlike resume, a new session may lose what was in flight: reconnect is for apps that
//! can start over (a chat that reloads its history), resume for those that cannot.
//!
//! One task per reconnecting socket owns the current [`Socket`]; the handle talks to it through
//! two channels.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Client, CloseStatus, Error, Handshake, Message, OpenOptions, Socket, Transport};

/// When and how often to open a new session (partysocket's options).
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// Wait before the first new attempt.
    pub min_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Each failed attempt multiplies the wait by this.
    pub factor: f64,
    /// Random share of each wait added or removed (0.0 = none, 0.5 = ±50 %): many clients
    /// cut off at once do not come back at once.
    pub jitter: f64,
    /// Attempts after a session ends before giving up (`None`: never give up). The count
    /// starts again only after a session stayed open `min_uptime`: a server that accepts and
    /// closes at once still exhausts it.
    pub max_retries: Option<u32>,
    /// How long a session must last to count as stable (the retry count and delay reset).
    pub min_uptime: Duration,
    /// Bytes of messages kept while no session is open; a send beyond it fails
    /// ([`ReconnectError::BufferFull`]).
    pub max_buffered: usize,
}

impl Default for Reconnect {
    /// partysocket's defaults: 1 s to 10 s, ×1.3, no retry limit, 5 s to be stable; ±20 %
    /// jitter; 1 MiB kept.
    fn default() -> Self {
        Reconnect {
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            factor: 1.3,
            jitter: 0.2,
            max_retries: None,
            min_uptime: Duration::from_secs(5),
            max_buffered: 1 << 20,
        }
    }
}

impl Reconnect {
    /// The wait before attempt `n` (0-based), jittered by `unit` ∈ [0, 1).
    fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.min_delay.as_secs_f64() * self.factor.max(1.0).powi(attempt as i32);
        let base = base.min(self.max_delay.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        Duration::from_secs_f64((base * (1.0 + jitter * (2.0 * unit - 1.0))).max(0.0))
    }
}

/// What a reconnecting socket reports, in order.
#[derive(Debug)]
pub enum ReconnectEvent {
    /// A session opened (the first, or a new one after a close).
    Open(Handshake),
    Message(Message),
    /// The session ended. Unless it was 1000/1001, the app closed it, or the retries ran
    /// out, a new one is being opened.
    Close(CloseStatus),
}

#[derive(Debug, thiserror::Error)]
pub enum ReconnectError {
    #[error("the reconnecting socket was closed")]
    Closed,
    #[error("over the {0} bytes kept while no session is open")]
    BufferFull(usize),
}

enum Command {
    Send(Message, oneshot::Sender<Result<(), ReconnectError>>),
    Close(u16, String),
}

/// A socket that reopens itself: [`Client::connect_reconnecting`].
pub struct ReconnectingSocket {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<ReconnectEvent>,
}

impl ReconnectingSocket {
    /// The next event; `None` once the socket is over for good (closed by the app, a 1000/1001
    /// close, retries exhausted).
    pub async fn recv(&mut self) -> Option<ReconnectEvent> {
        self.events.recv().await
    }

    /// Sends on the open session, or keeps the message for the next one.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), ReconnectError> {
        let (done, result) = oneshot::channel();
        self.commands
            .send(Command::Send(msg.into(), done))
            .await
            .map_err(|_| ReconnectError::Closed)?;
        result.await.map_err(|_| ReconnectError::Closed)?
    }

    /// Closes the session (if one is open) and stops reconnecting.
    pub async fn close(&self, code: u16, reason: &str) {
        let _ = self
            .commands
            .send(Command::Close(code, reason.into()))
            .await;
    }
}

impl Client {
    /// Opens `url` like [`connect`](Client::connect) and keeps reopening it per `policy` when a
    /// session ends (see [`ReconnectEvent`]). Combine with [`OpenOptions::resume`]: a session
    /// then survives a lost connection without an event, and only a failed resume reconnects.
    pub fn connect_reconnecting(
        &self,
        url: &str,
        transport: Transport,
        options: &OpenOptions,
        policy: Reconnect,
    ) -> Result<ReconnectingSocket, Error> {
        super::Target::parse(url)?;
        let (commands, command_rx) = mpsc::channel(16);
        let (event_tx, events) = mpsc::channel(64);
        let task = Task {
            client: self.clone(),
            url: url.to_owned(),
            transport,
            options: options.clone(),
            policy,
            commands: command_rx,
            events: event_tx,
            buffered: Vec::new(),
            buffered_bytes: 0,
        };
        tokio::spawn(task.run());
        Ok(ReconnectingSocket { commands, events })
    }
}

struct Task {
    client: Client,
    url: String,
    transport: Transport,
    options: OpenOptions,
    policy: Reconnect,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ReconnectEvent>,
    /// Messages sent while no session was open.
    buffered: Vec<Message>,
    buffered_bytes: usize,
}

/// How one session (or attempt) ended.
enum Ended {
    /// Retry per the policy.
    Retry,
    /// Over for good.
    Stop,
}

impl Task {
    async fn run(mut self) {
        let mut attempt = 0u32;
        loop {
            let (client, url, options) =
                (self.client.clone(), self.url.clone(), self.options.clone());
            let transport = self.transport;
            let connect = async move { client.connect(&url, transport, &options).await };
            tokio::pin!(connect);
            let opened = loop {
                tokio::select! {
                    opened = &mut connect => break opened,
                    stop = self.serve_while_closed() => if stop { return },
                }
            };
            let ended = match opened {
                Ok(socket) => {
                    let opened_at = tokio::time::Instant::now();
                    let ended = self.session(socket).await;
                    if opened_at.elapsed() >= self.policy.min_uptime {
                        attempt = 0;
                    }
                    ended
                }
                Err(e) => {
                    tracing::debug!(error = %e, "reconnect: open failed");
                    Ended::Retry
                }
            };
            if matches!(ended, Ended::Stop) {
                return;
            }
            if self.policy.max_retries.is_some_and(|max| attempt >= max) {
                return;
            }
            let wait = self.policy.delay(attempt, unit_random());
            attempt = attempt.saturating_add(1);
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    stop = self.serve_while_closed() => if stop { return },
                }
            }
        }
    }

    /// While no session is open: buffer sends, take a close. True = stop for good.
    async fn serve_while_closed(&mut self) -> bool {
        match self.commands.recv().await {
            None | Some(Command::Close(..)) => true,
            Some(Command::Send(msg, done)) => {
                let len = msg.len();
                if self.buffered_bytes + len > self.policy.max_buffered {
                    let _ = done.send(Err(ReconnectError::BufferFull(self.policy.max_buffered)));
                } else {
                    self.buffered_bytes += len;
                    self.buffered.push(msg);
                    let _ = done.send(Ok(()));
                }
                false
            }
        }
    }

    /// One open session: flush what was kept, then relay both ways until it ends.
    async fn session(&mut self, socket: Socket) -> Ended {
        let handshake = socket.handshake().clone();
        if self
            .events
            .send(ReconnectEvent::Open(handshake))
            .await
            .is_err()
        {
            return Ended::Stop; // the handle is gone
        }
        let (tx, mut rx) = socket.split();
        self.buffered_bytes = 0;
        for msg in std::mem::take(&mut self.buffered) {
            if tx.send(msg).await.is_err() {
                break;
            }
        }
        let mut closing = false;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => {
                        if self.events.send(ReconnectEvent::Message(m)).await.is_err() {
                            let _ = tx.close(1001, "").await;
                            return Ended::Stop;
                        }
                    }
                    None => break,
                },
                command = self.commands.recv(), if !closing => match command {
                    Some(Command::Send(msg, done)) => {
                        let _ = done.send(tx.send(msg).await.map_err(|_| ReconnectError::Closed));
                    }
                    Some(Command::Close(code, reason)) => {
                        closing = true;
                        let _ = tx.close(code, &reason).await;
                    }
                    None => {
                        closing = true;
                        let _ = tx.close(1000, "").await;
                    }
                },
            }
        }
        let status = rx.close_status().unwrap_or(CloseStatus {
            code: 1006,
            reason: String::new(),
            clean: false,
        });
        let code = status.code;
        let _ = self.events.send(ReconnectEvent::Close(status)).await;
        if closing || code == 1000 || code == 1001 {
            Ended::Stop
        } else {
            Ended::Retry
        }
    }
}

/// A number in [0, 1) from the OS RNG (jitter only; 0.5 if it fails: no jitter).
fn unit_random() -> f64 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_factor_up_to_the_cap_with_bounded_jitter() {
        let p = Reconnect {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            factor: 2.0,
            jitter: 0.0,
            ..Reconnect::default()
        };
        let ms = |a| p.delay(a, 0.9).as_millis();
        assert_eq!(
            (ms(0), ms(1), ms(2), ms(3), ms(4), ms(10)),
            (100, 200, 400, 800, 1000, 1000)
        );
        let j = Reconnect { jitter: 0.5, ..p };
        assert_eq!(j.delay(0, 0.0).as_millis(), 50);
        assert_eq!(j.delay(0, 0.5).as_millis(), 100);
        assert!(j.delay(0, 0.999).as_millis() <= 150);
    }
}
