//! Running child commands: echo them, bound them in time, and tally the tests they report.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Result;

/// Test counts read off a runner's own summary lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }

    /// Reads the summary lines of the runners we use: cargo test / wasm-bindgen-test
    /// (`test result: ok. 3 passed; 0 failed; 1 ignored`), node --test (`# pass 3`, `# fail 0`,
    /// `# skipped 0`) and the Autobahn summary (`517 passed, 0 failed`).
    pub fn scan_line(&mut self, line: &str) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match kind {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        } else if let Some(n) = line.strip_prefix("# pass ") {
            self.passed += n.trim().parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("# fail ") {
            self.failed += n.trim().parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("# skipped ") {
            self.ignored += n.trim().parse().unwrap_or(0);
        } else if let Some((p, rest)) = line.split_once(" passed, ") {
            // Autobahn's summary.py: "N passed, M failed [(...)]"
            if let (Ok(p), Some(f)) = (
                p.parse::<u64>(),
                rest.strip_suffix(" failed")
                    .or_else(|| rest.split_once(" failed").map(|(f, _)| f)),
            ) {
                if let Ok(f) = f.parse::<u64>() {
                    self.passed += p;
                    self.failed += f;
                }
            }
        }
    }
}

/// Every test count any step reported, passing or failing, for the closing line.
static SEEN: Mutex<Tally> = Mutex::new(Tally {
    passed: 0,
    failed: 0,
    ignored: 0,
});

/// The tests counted so far by all steps of this process.
pub fn seen() -> Tally {
    *SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A command line for `sh -c`, with a time limit so no stage can hang CI.
pub struct Step<'a> {
    pub script: &'a str,
    pub timeout: Duration,
    pub envs: Vec<(&'a str, String)>,
}

impl<'a> Step<'a> {
    pub fn new(script: &'a str, timeout_secs: u64) -> Self {
        Step {
            script,
            timeout: Duration::from_secs(timeout_secs),
            envs: Vec::new(),
        }
    }

    pub fn env(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.envs.push((key, value.into()));
        self
    }

    /// Runs in the workspace root, streams output through, returns the tally it reported.
    pub fn run(&self) -> Result<Tally> {
        println!("\n$ {}", self.script);
        let started = Instant::now();
        // `timeout` (coreutils) kills the whole command, grandchildren included, at the limit.
        let wrapped = format!(
            "exec timeout --kill-after=15 {} sh -c {} 2>&1",
            self.timeout.as_secs(),
            shell_quote(self.script)
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&wrapped)
            .current_dir(crate::root())
            .envs(self.envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start sh: {e}"))?;
        let mut tally = Tally::default();
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                println!("{line}");
                tally.scan_line(&line);
            }
        }
        SEEN.lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .add(tally);
        let status = child
            .wait()
            .map_err(|e| format!("waiting for `{}`: {e}", self.script))?;
        let secs = started.elapsed().as_secs_f32();
        match status.code() {
            Some(0) => Ok(tally),
            Some(124) | Some(137) => Err(format!(
                "`{}` timed out after {}s",
                self.script,
                self.timeout.as_secs()
            )),
            _ => Err(format!(
                "`{}` failed ({status}) after {secs:.0}s",
                self.script
            )),
        }
    }
}

/// Runs a command quietly and says whether it succeeded (for probes such as `which`).
pub fn probe(script: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a command and returns its trimmed stdout, or None when it fails.
pub fn output(script: &str) -> Option<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(lines: &[&str]) -> Tally {
        let mut t = Tally::default();
        for l in lines {
            t.scan_line(l);
        }
        t
    }

    #[test]
    fn reads_cargo_test_summaries() {
        let t = tally_of(&[
            "test result: ok. 12 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        ]);
        assert_eq!(
            t,
            Tally {
                passed: 15,
                failed: 1,
                ignored: 2
            }
        );
    }

    #[test]
    fn reads_node_test_and_autobahn_summaries() {
        let t = tally_of(&[
            "# tests 5",
            "# pass 4",
            "# fail 1",
            "# skipped 0",
            "517 passed, 0 failed",
        ]);
        assert_eq!(
            t,
            Tally {
                passed: 521,
                failed: 1,
                ignored: 0
            }
        );
        let t = tally_of(&["301 passed, 0 failed (216 unimplemented)"]);
        assert_eq!(
            t,
            Tally {
                passed: 301,
                failed: 0,
                ignored: 0
            }
        );
    }

    #[test]
    fn ignores_unrelated_lines() {
        let t = tally_of(&["running 3 tests", "passed, failed", "x passed, y failed"]);
        assert_eq!(t, Tally::default());
    }

    #[test]
    fn steps_count_what_they_report_even_when_they_fail() {
        let before = seen();
        let ok = Step::new("echo 'test result: ok. 2 passed; 0 failed; 1 ignored'", 30).run();
        assert_eq!(
            ok,
            Ok(Tally {
                passed: 2,
                failed: 0,
                ignored: 1
            })
        );
        let failed = Step::new("echo '# pass 3'; echo '# fail 1'; exit 1", 30).run();
        assert!(failed.is_err());
        let after = seen();
        assert!(after.passed >= before.passed + 5, "{before:?} -> {after:?}");
        assert!(after.failed > before.failed, "{before:?} -> {after:?}");
    }

    #[test]
    fn quotes_for_sh() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
