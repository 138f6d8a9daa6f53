//! `cargo xtask`: the project's commands, so the README's two lines work on a fresh machine.
//!
//! - `cargo xtask dev`  — builds the npm package and serves the demo on https://localhost:8443
//! - `cargo xtask test` — installs what the tests need, then runs every test
//!
//! Plain `std` only: this crate compiles in a second, before anything else is installed. Its
//! tests use `syn` (a dev-dependency): [`modgraph`] keeps the library crates free of import
//! circles.

mod bench;
mod conformance;
mod dev;
#[cfg(test)]
mod modgraph;
mod run;
mod server;
mod setup;
mod soak;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  dev [--release] [-- DEVSERVER_ARGS...]   build the npm package, run the devserver with the demo
  test [--stage NAME]...                   install what is missing, then run every test stage
  setup                                    only install the tools the tests need
  pkg [--release]                          only build the npm package into wasm/pkg
  conformance [--quick]                    Autobahn|Testsuite on /ws/echo and through the gateway (all 517 cases, as the test stage; --quick: a 361-case sample)
  bench [--smoke] [--only STEP,...]        every benchmark side by side with peers -> BENCHMARKS.md (--only echo,http2: those steps -> target/bench/BENCHMARKS-partial.md)
  soak [--release] [SOAK_ARGS...]          sequenced messages on every transport at once (h2ws-soak --help)
  stages                                   list the test stages
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("dev") => dev::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("setup") => setup::all(),
        Some("soak") => soak::run(&args[1..]),
        Some("pkg") => dev::build_pkg(args[1..].iter().any(|a| a == "--release")),
        Some("conformance") => conformance::run(if args[1..].iter().any(|a| a == "--quick") {
            conformance::Scope::Quick
        } else {
            conformance::Scope::Full
        }),
        Some("stages") => {
            for stage in test::STAGES {
                println!("{:<16} {}", stage.name, stage.what);
            }
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}

pub type Result<T = ()> = std::result::Result<T, String>;
