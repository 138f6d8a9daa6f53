//! Starting the devserver binary for a test stage and reading the URLs it prints.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::Result;

/// A devserver child process, killed when dropped so no stage leaves one behind.
pub struct DevServer {
    child: Child,
    pub https: Option<String>,
    pub http: Option<String>,
}

impl DevServer {
    /// Starts `target/debug/h2ws-devserver ARGS` and waits (bounded) for its `listening` lines.
    pub fn start(args: &[&str]) -> Result<DevServer> {
        let bin = crate::root().join("target/debug/h2ws-devserver");
        let mut child = Command::new(&bin)
            .args(args)
            .current_dir(crate::root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("devserver has no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("[devserver] {line}");
                // The receiver is gone once start() returned: keep draining so the child never blocks.
                let _ = tx.send(line);
            }
        });
        let want_http = !args.contains(&"--no-http");
        let mut server = DevServer {
            child,
            https: None,
            http: None,
        };
        while server.https.is_none() || (want_http && server.http.is_none()) {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .map_err(|_| "devserver printed no `listening` line within 30 s")?;
            if let Some(url) = line.strip_prefix("listening ") {
                let url = url.trim().to_string();
                if url.starts_with("https://") {
                    server.https = Some(url);
                } else if url.starts_with("http://") {
                    server.http = Some(url);
                }
            }
        }
        Ok(server)
    }

    /// The plain listener's address as a `ws://` base URL.
    pub fn ws_base(&self) -> Result<String> {
        let http = self
            .http
            .as_deref()
            .ok_or("devserver has no plain listener")?;
        Ok(http
            .replacen("http://", "ws://", 1)
            .trim_end_matches('/')
            .to_string())
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
