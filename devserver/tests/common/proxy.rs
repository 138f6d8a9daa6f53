//! Real reverse proxies (HAProxy, nginx) and other helper daemons (redis-server, devserver
//! processes) as child processes of a test, on ephemeral 127.0.0.1 ports.
//!
//! Why a fixture of its own: the recipes in `deploy/` are what users copy, so the tests run
//! exactly those files, changed only where a test must (listening ports, back-end addresses,
//! certificate paths) by literal [`Subst`]itutions that must each match at least once (a recipe
//! edited so that a substitution no longer applies fails loudly instead of testing something
//! else).
//!
//! ```ignore
//! let front = free_port();
//! let conf = render(&deploy("haproxy/haproxy.cfg"), &[
//!     Subst::new("127.0.0.1:8443", backend.to_string()),
//!     Subst::new(":443", format!("127.0.0.1:{front}")),
//!     Subst::new("/etc/haproxy/site.pem", cert.display().to_string()),
//! ])?;
//! let proxy = Service::haproxy(&conf, &[front])?;   // waits until port `front` accepts
//! // ... on failure: panic!("{}", proxy.logs())
//! ```
//!
//! Every [`Service`] is killed (SIGKILL) and reaped on drop and its temporary directory
//! removed; [`Service::logs`] returns its stdout/stderr and log files for failure messages.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a child may take until its ports accept connections.
pub const START_LIMIT: Duration = Duration::from_secs(15);

pub const HAPROXY: &str = "/usr/sbin/haproxy";
pub const NGINX: &str = "/usr/sbin/nginx";
pub const REDIS: &str = "/usr/bin/redis-server";

/// The repository's `deploy/` directory joined with `rel` (e.g. `"nginx/nginx.conf"`).
pub fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(rel)
}

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it in between,
/// which on a test machine's loopback is rare enough; a clash shows up as a start error).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// One literal replacement in a config template.
#[derive(Clone, Debug)]
pub struct Subst {
    pub from: String,
    pub to: String,
}

impl Subst {
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Subst {
            from: from.into(),
            to: to.into(),
        }
    }
}

/// The template's text with every substitution applied (all occurrences, in order); an error
/// names a substitution that matched nothing.
pub fn render(template: &Path, substs: &[Subst]) -> Result<String, String> {
    let mut text = std::fs::read_to_string(template)
        .map_err(|e| format!("reading {}: {e}", template.display()))?;
    for s in substs {
        if !text.contains(&s.from) {
            return Err(format!(
                "{}: substitution {:?} → {:?} matches nothing (recipe changed?)",
                template.display(),
                s.from,
                s.to
            ));
        }
        text = text.replace(&s.from, &s.to);
    }
    Ok(text)
}

/// A child process on loopback ports: killed and reaped on drop, its directory removed.
pub struct Service {
    pub name: String,
    child: Child,
    /// Its private temporary directory (config, pid and log files).
    pub dir: PathBuf,
    /// The ports it was waited for.
    pub ports: Vec<u16>,
}

fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "svc-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create service dir");
    dir
}

impl Service {
    /// Spawns `cmd` (stdout/stderr go to `dir/stdout.log`, `dir/stderr.log`) and waits up to
    /// [`START_LIMIT`] until every port in `ports` accepts a TCP connection on 127.0.0.1. The
    /// closure gets the service's directory to put files there first.
    pub fn spawn(
        name: &str,
        ports: &[u16],
        build: impl FnOnce(&Path) -> Result<Command, String>,
    ) -> Result<Service, String> {
        let dir = temp_dir(name);
        let mut cmd = build(&dir)?;
        let out = std::fs::File::create(dir.join("stdout.log")).map_err(|e| e.to_string())?;
        let err = std::fs::File::create(dir.join("stderr.log")).map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {name} ({:?}): {e}", cmd.get_program()))?;
        let mut svc = Service {
            name: name.into(),
            child,
            dir,
            ports: ports.to_vec(),
        };
        svc.wait_listening()?;
        Ok(svc)
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_LIMIT;
        for &port in &self.ports.clone() {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!(
                        "{} exited ({status}) before listening on {port}:\n{}",
                        self.name,
                        self.logs()
                    ));
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "{} not listening on {port} after {START_LIMIT:?}:\n{}",
                        self.name,
                        self.logs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// HAProxy with this configuration text, in the foreground (`-db`), waiting for `ports`.
    pub fn haproxy(config: &str, ports: &[u16]) -> Result<Service, String> {
        let config = config.to_owned();
        Service::spawn("haproxy", ports, move |dir| {
            let path = dir.join("haproxy.cfg");
            std::fs::write(&path, config).map_err(|e| e.to_string())?;
            // -c first: a config error is reported as such, not as "not listening".
            let check = Command::new(HAPROXY)
                .arg("-c")
                .arg("-f")
                .arg(&path)
                .output()
                .map_err(|e| format!("{HAPROXY}: {e}"))?;
            if !check.status.success() {
                return Err(format!(
                    "haproxy -c rejects the config:\n{}{}",
                    String::from_utf8_lossy(&check.stdout),
                    String::from_utf8_lossy(&check.stderr)
                ));
            }
            let mut cmd = Command::new(HAPROXY);
            cmd.arg("-db").arg("-f").arg(&path);
            Ok(cmd)
        })
    }

    /// nginx with this configuration text, prefix = the service's directory, in the foreground;
    /// its pid and error log go there (`-g 'daemon off; master_process off; pid …; error_log …;'`),
    /// so no system paths are needed beyond the package's temp directories. One process without
    /// a master: killing it leaves no orphaned workers holding the port.
    pub fn nginx(config: &str, ports: &[u16]) -> Result<Service, String> {
        let config = config.to_owned();
        Service::spawn("nginx", ports, move |dir| {
            let path = dir.join("nginx.conf");
            std::fs::write(&path, config).map_err(|e| e.to_string())?;
            let globals = format!(
                "daemon off; master_process off; pid {}; error_log {} info;",
                dir.join("nginx.pid").display(),
                dir.join("error.log").display()
            );
            let check = Command::new(NGINX)
                .arg("-t")
                .arg("-q")
                .arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&path)
                .arg("-g")
                .arg(&globals)
                .output()
                .map_err(|e| format!("{NGINX}: {e}"))?;
            if !check.status.success() {
                return Err(format!(
                    "nginx -t rejects the config:\n{}{}",
                    String::from_utf8_lossy(&check.stdout),
                    String::from_utf8_lossy(&check.stderr)
                ));
            }
            let mut cmd = Command::new(NGINX);
            cmd.arg("-p")
                .arg(dir)
                .arg("-c")
                .arg(&path)
                .arg("-g")
                .arg(&globals);
            Ok(cmd)
        })
    }

    /// redis-server on `port` (127.0.0.1 only, no persistence).
    pub fn redis(port: u16) -> Result<Service, String> {
        Service::spawn("redis", &[port], move |dir| {
            let mut cmd = Command::new(REDIS);
            cmd.args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir);
            Ok(cmd)
        })
    }

    /// The devserver binary (target/debug/h2ws-devserver, built by cargo for this test) with
    /// `args`, waiting for `ports` (pass the ports you gave it in `--addr`/`--http-addr`).
    pub fn devserver(args: &[String], ports: &[u16]) -> Result<Service, String> {
        let args = args.to_vec();
        Service::spawn("devserver", ports, move |_| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_h2ws-devserver"));
            cmd.args(&args).env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            );
            Ok(cmd)
        })
    }

    /// Everything the service wrote: stdout, stderr and every `*.log` in its directory.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
        {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            // The tail is what explains a failure; whole logs of a long test drown it.
            let tail: String = if text.len() > 8000 {
                text[text.len() - 8000..].to_owned()
            } else {
                text
            };
            out.push_str(&format!(
                "--- {} {}\n{tail}\n",
                self.name,
                p.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
        out
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL now and reap (also what drop does).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
        if std::env::var_os("H2WS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
