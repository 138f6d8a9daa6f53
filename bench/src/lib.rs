//! `h2ws-bench`: the pieces behind `cargo xtask bench` (issue 8).
//!
//! - `benches/codec.rs` — criterion: h2ws codec vs `tungstenite` and `fastwebsockets`.
//! - `bin/loadgen.rs` — the one load generator: RFC 6455 echo load (uWebSockets `load_test`
//!   shape), HTTP/2 echo load through the devserver's native client, idle sockets for memory,
//!   a 100 MiB message through the gateway.
//! - `bin/echo-fastwebsockets.rs`, `bin/echo-tungstenite.rs` — the peer echo servers.
//! - `bin/report.rs` — turns every result of one run into `BENCHMARKS.md`.
//!
//! Every measurement is appended as one JSON [`Record`] per line to a results file, so the
//! report is written only from what this run measured.
//!
//! ```
//! let frame = h2ws_bench::ws::masked_frame(0x2, true, b"hi", [1, 2, 3, 4]);
//! assert_eq!(frame, [0x82, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
//! ```

pub mod ws;

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One measured figure.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Which table: `rfc6455`, `http2`, `h2load`, `browser`, `memory`, `package`.
    pub bench: String,
    /// The row: e.g. `100 x 20 B`.
    pub case: String,
    /// The column: `h2ws`, `fastwebsockets`, `tokio-tungstenite`, a transport name...
    pub imp: String,
    /// Unit of `value`: `msgs/s`, `bytes`, `ms`...
    pub metric: String,
    /// `None` when the measurement failed; `note` says why.
    pub value: Option<f64>,
    #[serde(default)]
    pub note: String,
}

impl Record {
    pub fn new(bench: &str, case: &str, imp: &str, metric: &str, value: Option<f64>) -> Self {
        Record {
            bench: bench.into(),
            case: case.into(),
            imp: imp.into(),
            metric: metric.into(),
            value,
            note: String::new(),
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// Appends this record as one JSON line (and echoes it on stdout).
    pub fn append(&self, path: &Path) -> std::io::Result<()> {
        let line = serde_json::to_string(self).map_err(std::io::Error::other)?;
        println!("result {line}");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{line}")
    }
}

/// Reads every record of a results file (unparsable lines are reported, not skipped silently).
pub fn read_records(path: &Path) -> std::io::Result<Vec<Record>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{l:?}: {e}"))
            })
        })
        .collect()
}

/// `VmRSS` and `VmHWM` (peak) of a process, in bytes, from `/proc/PID/status`.
pub fn rss(pid: u32) -> std::io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> std::io::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| std::io::Error::other(format!("no {name} in /proc/{pid}/status")))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// `--key value` command-line options (the benchmark binaries need nothing richer).
pub struct Args {
    pairs: Vec<(String, String)>,
    pub positional: Vec<String>,
}

impl Args {
    pub fn from_env() -> Self {
        let mut pairs = Vec::new();
        let mut positional = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if let Some(key) = a.strip_prefix("--") {
                let value = it.next().unwrap_or_default();
                pairs.push((key.to_string(), value));
            } else {
                positional.push(a);
            }
        }
        Args { pairs, positional }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn req(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("missing --{key}"))
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key} {v:?} is not a number")),
        }
    }
}

/// A human label for a byte size: `20 B`, `1 KiB`, `16 KiB`, `100 MiB`.
pub fn size_label(n: usize) -> String {
    if n >= 1 << 20 && n.trailing_zeros() >= 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n.trailing_zeros() >= 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sizes() {
        assert_eq!(size_label(20), "20 B");
        assert_eq!(size_label(1024), "1 KiB");
        assert_eq!(size_label(16 * 1024), "16 KiB");
        assert_eq!(size_label(100 << 20), "100 MiB");
        assert_eq!(size_label(1500), "1500 B");
    }

    #[test]
    fn records_round_trip() {
        let dir = std::env::temp_dir().join(format!("h2ws-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        let _ = std::fs::remove_file(&path);
        let a = Record::new("rfc6455", "10 x 1 KiB", "h2ws", "msgs/s", Some(1.5));
        let b = Record::new("memory", "x", "h2ws", "bytes", None).note("failed");
        a.append(&path).unwrap();
        b.append(&path).unwrap();
        assert_eq!(read_records(&path).unwrap(), vec![a, b]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_own_rss() {
        let (rss, hwm) = rss(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }
}
