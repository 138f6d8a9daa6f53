//! No import circles between the library crates' modules (issue #15): a test, run by
//! `cargo test -p xtask` (stage `rust`), that reads every `.rs` file of `codec/src`,
//! `h2ws/src` and `wasm/src` with `syn`, builds each crate's module graph and fails on a cycle,
//! naming it with the paths that make it up (file:line). Nothing is skipped silently: a `mod x;`
//! without a file fails, and so does a `.rs` file under `src/` that no declaration reaches.
//!
//! What counts as an edge `A → B`: any path in module `A` that resolves into module `B` —
//! `use crate::…`, `use super::…`, `use self::…`, a `use` of a child module, and the same paths
//! inline in code and types (`crate::b::f()`, `super::B`). Paths inside macro invocations are
//! token streams, not parsed, and are not seen.
//!
//! What does not: test code (`#[cfg(test)]` modules, inline or in files: a test may build the
//! whole stack it tests, e.g. the sessions' tests an `Endpoint`), and the structure of a module
//! tree itself. `mod x;` declarations, a parent's use
//! of its children (re-exports, dispatch) and a child's use of its ancestors' items
//! (`use super::X`) are how Rust modules are built, not circles. So an edge between two modules
//! counts at the level where their paths part: `crate::transport::post → crate::session` is
//! `transport → session`, and an edge between a module and one of its ancestors or descendants
//! is no edge. Seen from outside, a module with submodules is one unit: `session` importing
//! `transport::post` while `transport::stream` imports `session` is the circle
//! `session ↔ transport`.
//!
//! Cycles are found per crate as strongly connected components (Tarjan). [`ALLOWED`] lists
//! two-module circles that stay, each with its reason: today codec `close` ↔ `error` (the
//! `rooms` ↔ `rooms::redis` pair in `h2ws` is parent and child, hence structure).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Two-module circles that are allowed: crate, the two modules (as `a::b`), and why.
pub const ALLOWED: &[(&str, &str, &str, &str)] = &[(
    "codec",
    "close",
    "error",
    "a protocol error names the Close code it ends the connection with \
     (`ProtocolError::close_code`), and parsing a Close payload fails with a protocol error: \
     the two types describe one thing from both ends, and moving either would only move the \
     circle",
)];

/// A module path from the crate root (`[]` = the root).
type ModPath = Vec<String>;

/// One path that makes an edge, for the message.
#[derive(Clone, Debug)]
struct Site {
    file: PathBuf,
    line: usize,
    path: String,
}

/// A crate's modules and the edges between them (lifted to siblings, see the module docs).
#[derive(Debug, Default)]
pub struct Graph {
    modules: BTreeSet<ModPath>,
    /// Every file read, and the test-only module files passed over (`#[cfg(test)] mod x;`).
    files: BTreeSet<PathBuf>,
    test_files: BTreeSet<PathBuf>,
    /// `from → to → an example site`.
    edges: BTreeMap<ModPath, BTreeMap<ModPath, Site>>,
}

/// Reads the crate whose root file is `root` (`src/lib.rs`), following `mod` declarations.
pub fn crate_graph(root: &Path) -> Result<Graph, String> {
    let mut files = Vec::new();
    let mut raw = Vec::new();
    let mut graph = Graph::default();
    collect(root, Vec::new(), &mut files, &mut graph.test_files)?;
    for (file, module, _) in &files {
        graph.modules.insert(module.clone());
        graph.files.insert(file.clone());
    }
    // Inline modules are modules too: collect them before resolving paths.
    for (file, module, ast) in &files {
        let mut v = Collector {
            file: file.clone(),
            module: module.clone(),
            uses: Vec::new(),
            inline_modules: Vec::new(),
        };
        v.visit_file(ast);
        graph.modules.extend(v.inline_modules);
        raw.extend(v.uses);
    }
    for (module, segments, site) in raw {
        let Some(target) = resolve(&graph.modules, &module, &segments) else {
            continue;
        };
        if let Some((from, to)) = lift(&module, &target) {
            graph
                .edges
                .entry(from)
                .or_default()
                .entry(to)
                .or_insert(site);
        }
    }
    Ok(graph)
}

/// Every file of the crate: path, module path, syntax tree.
fn collect(
    file: &Path,
    module: ModPath,
    out: &mut Vec<(PathBuf, ModPath, syn::File)>,
    test_files: &mut BTreeSet<PathBuf>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let ast = syn::parse_file(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    // Where `mod x;` of this file looks: next to a `lib.rs` / `main.rs` / `mod.rs`, else in a
    // directory named like the file.
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let base = file.parent().unwrap_or(Path::new("."));
    let dir = if matches!(name, "lib.rs" | "main.rs" | "mod.rs") {
        base.to_path_buf()
    } else {
        base.join(name.trim_end_matches(".rs"))
    };
    let mut children = Vec::new();
    declared_files(&ast.items, &dir, &module, &mut children)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    out.push((file.to_path_buf(), module, ast));
    for (child_file, child_module, test_only) in children {
        if test_only {
            test_files.insert(child_file);
        } else {
            collect(&child_file, child_module, out, test_files)?;
        }
    }
    Ok(())
}

/// The files of the `mod x;` declarations in `items` (inline modules searched too), each with
/// whether it is test-only. A declared module without a file is an error (nothing unread).
fn declared_files(
    items: &[syn::Item],
    dir: &Path,
    module: &ModPath,
    out: &mut Vec<(PathBuf, ModPath, bool)>,
) -> Result<(), String> {
    for item in items {
        let syn::Item::Mod(m) = item else { continue };
        let mut child = module.clone();
        child.push(m.ident.to_string());
        match &m.content {
            Some(_) if is_test_only(&m.attrs) => {}
            Some((_, inner)) => declared_files(inner, &dir.join(m.ident.to_string()), &child, out)?,
            None => {
                let file = path_attr(&m.attrs).map(|p| dir.join(p)).or_else(|| {
                    let flat = dir.join(format!("{}.rs", m.ident));
                    let nested = dir.join(m.ident.to_string()).join("mod.rs");
                    [flat, nested].into_iter().find(|f| f.exists())
                });
                let file = file.ok_or_else(|| format!("no file for `mod {};`", m.ident))?;
                out.push((file, child, is_test_only(&m.attrs)));
            }
        }
    }
    Ok(())
}

/// The `.rs` files under `dir` that the crate graph neither read nor passed over as test-only
/// (a module the check would silently miss).
#[cfg(test)]
fn unread_files(graph: &Graph, dir: &Path) -> Vec<PathBuf> {
    let mut unread = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !graph.files.contains(&path)
                && !graph.test_files.iter().any(|t| {
                    // A test module's file, or a file below its directory.
                    path == *t || path.starts_with(t.with_extension(""))
                })
            {
                unread.push(path);
            }
        }
    }
    unread.sort();
    unread
}

/// `#[cfg(test)]`, alone or within `all(…)` / `any(…)`.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta.require_list().is_ok_and(|l| {
                l.tokens
                    .clone()
                    .into_iter()
                    .any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "test"))
                    && !l.tokens.to_string().contains("not")
            })
    })
}

fn path_attr(attrs: &[syn::Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// Collects the paths of one file: `use` trees and every path in code and types.
struct Collector {
    file: PathBuf,
    module: ModPath,
    uses: Vec<(ModPath, Vec<String>, Site)>,
    inline_modules: Vec<ModPath>,
}

impl Collector {
    fn record(&mut self, segments: Vec<String>, line: usize) {
        let path = segments.join("::");
        self.uses.push((
            self.module.clone(),
            segments,
            Site {
                file: self.file.clone(),
                line,
                path,
            },
        ));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.use_leaf(prefix, &n.ident),
            syn::UseTree::Rename(r) => self.use_leaf(prefix, &r.ident),
            syn::UseTree::Glob(g) => {
                let line = g.star_token.spans[0].start().line;
                self.record(prefix.clone(), line);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], ident: &syn::Ident) {
        let mut segments = prefix.to_vec();
        // `use a::b::{self}` names `a::b`.
        if ident != "self" {
            segments.push(ident.to_string());
        }
        self.record(segments, ident.span().start().line);
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() && !is_test_only(&m.attrs) {
            self.module.push(m.ident.to_string());
            self.inline_modules.push(self.module.clone());
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() && p.segments.len() > 1 {
            let segments = p.segments.iter().map(|s| s.ident.to_string()).collect();
            let line = p.segments[0].ident.span().start().line;
            self.record(segments, line);
        }
        syn::visit::visit_path(self, p);
    }
}

/// The module a path in `module` lands in (its longest prefix that is a module), if it is one
/// of this crate's.
fn resolve(modules: &BTreeSet<ModPath>, module: &ModPath, segments: &[String]) -> Option<ModPath> {
    let (mut base, rest): (ModPath, &[String]) = match segments.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &segments[1..]),
        Some("self") => (module.clone(), &segments[1..]),
        Some("super") => {
            let mut base = module.clone();
            let mut rest = segments;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        // A child module used by its bare name (2018 paths).
        Some(first) => {
            let mut child = module.clone();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
            (module.clone(), segments)
        }
        None => return None,
    };
    let mut target = base.clone();
    for s in rest {
        base.push(s.clone());
        if modules.contains(&base) {
            target = base.clone();
        } else {
            break;
        }
    }
    Some(target)
}

/// An edge at the level where the two paths part (`None` for a module and its ancestor or
/// descendant, or itself).
fn lift(from: &ModPath, to: &ModPath) -> Option<(ModPath, ModPath)> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    if common == from.len() || common == to.len() {
        return None;
    }
    Some((from[..=common].to_vec(), to[..=common].to_vec()))
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

impl Graph {
    /// Every circle not in [`ALLOWED`] for `krate`, each described with its edges' sites.
    pub fn cycles(&self, krate: &str) -> Vec<String> {
        let mut out = Vec::new();
        for scc in self.components() {
            if scc.len() < 2 {
                continue;
            }
            if scc.len() == 2 {
                let (a, b) = (name(&scc[0]), name(&scc[1]));
                if ALLOWED.iter().any(|(c, x, y, _)| {
                    *c == krate && ((*x == a && *y == b) || (*x == b && *y == a))
                }) {
                    continue;
                }
            }
            out.push(self.describe(krate, &scc));
        }
        out
    }

    /// One circle through the component, edge by edge.
    fn describe(&self, krate: &str, scc: &[ModPath]) -> String {
        let members: BTreeSet<&ModPath> = scc.iter().collect();
        // Walk from the first module, always to the next member not yet seen, until a step
        // returns to one on the walk: that stretch is a circle.
        let mut walk: Vec<&ModPath> = vec![&scc[0]];
        loop {
            let here = walk[walk.len() - 1];
            let next = self.edges[here]
                .keys()
                .filter(|t| members.contains(t))
                .min_by_key(|t| walk.contains(t))
                .expect("a member of a component has an edge inside it");
            if let Some(start) = walk.iter().position(|m| *m == next) {
                let circle = &walk[start..];
                let names: Vec<String> = circle.iter().map(|m| name(m)).collect();
                let mut text = format!(
                    "import circle in {krate}: {} -> {}",
                    names.join(" -> "),
                    names[0]
                );
                for (i, from) in circle.iter().enumerate() {
                    let to = circle[(i + 1) % circle.len()];
                    let site = &self.edges[*from][to];
                    text.push_str(&format!(
                        "\n  {} -> {}: `{}` at {}:{}",
                        name(from),
                        name(to),
                        site.path,
                        site.file.display(),
                        site.line
                    ));
                }
                return text;
            }
            walk.push(next);
        }
    }

    /// Strongly connected components (Tarjan, recursive: module trees are shallow).
    fn components(&self) -> Vec<Vec<ModPath>> {
        struct State<'g> {
            graph: &'g Graph,
            index: BTreeMap<&'g ModPath, usize>,
            low: BTreeMap<&'g ModPath, usize>,
            stack: Vec<&'g ModPath>,
            on_stack: BTreeSet<&'g ModPath>,
            out: Vec<Vec<ModPath>>,
        }
        fn visit<'g>(s: &mut State<'g>, v: &'g ModPath) {
            let i = s.index.len();
            s.index.insert(v, i);
            s.low.insert(v, i);
            s.stack.push(v);
            s.on_stack.insert(v);
            for w in s.graph.edges.get(v).into_iter().flat_map(|e| e.keys()) {
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
            if s.low[v] == s.index[v] {
                let mut component = Vec::new();
                while let Some(w) = s.stack.pop() {
                    s.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                component.sort();
                s.out.push(component);
            }
        }
        let mut s = State {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !s.index.contains_key(v) {
                visit(&mut s, v);
            }
        }
        s.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a small crate into a temporary directory and returns its `lib.rs`.
    fn synthetic(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("h2ws-modgraph-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(&file, text).expect("write");
        }
        dir.join("lib.rs")
    }

    #[test]
    fn a_circle_through_use_super_and_an_inline_path_is_caught_and_named() {
        // a -> b by `use crate::`, b -> c by an inline `super::` call, c -> a by an inline
        // `crate::` path in an expression.
        let root = synthetic(
            "circle",
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
                ("a.rs", "use crate::b::B;\npub fn h() {}\n"),
                (
                    "b.rs",
                    "pub struct B;\npub fn f() {\n    super::c::g();\n}\n",
                ),
                ("c.rs", "pub fn g() {\n    crate::a::h();\n}\n#[cfg(test)]\nmod tests { use crate::b; }\n"),
            ],
        );
        let cycles = crate_graph(&root).expect("parses").cycles("synthetic");
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        let c = &cycles[0];
        assert!(
            c.starts_with("import circle in synthetic: a -> b -> c -> a"),
            "{c}"
        );
        assert!(c.contains("`crate::b::B` at"), "{c}");
        assert!(
            c.contains("b -> c: `super::c::g`") && c.contains("b.rs:3"),
            "{c}"
        );
        assert!(
            c.contains("c -> a: `crate::a::h`") && c.contains("c.rs:2"),
            "{c}"
        );
    }

    #[test]
    fn a_directory_module_counts_as_one_and_a_self_path_is_seen() {
        // `session` uses `transport::post`, `transport::stream` uses `session`: the circle is
        // `session <-> transport` (the wasm crate's shape before issue #15).
        let root = synthetic(
            "dir",
            &[
                ("lib.rs", "mod session;\nmod transport;\n"),
                (
                    "session.rs",
                    "use self::inner::*;\nmod inner { pub use crate::transport::post::P; }\n",
                ),
                ("transport/mod.rs", "pub mod post;\npub mod stream;\n"),
                ("transport/post.rs", "pub struct P;\n"),
                ("transport/stream.rs", "fn f(_: &crate::session::S) {}\n"),
            ],
        );
        let cycles = crate_graph(&root).expect("parses").cycles("synthetic");
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert!(
            cycles[0].contains("session -> transport -> session"),
            "{}",
            cycles[0]
        );
    }

    #[test]
    fn parent_and_child_structure_is_no_circle() {
        // A parent re-exports and calls its children; children use the parent's items, by
        // `super::` and by `crate::`; a test module uses `super::*`.
        let root = synthetic(
            "tree",
            &[
                (
                    "lib.rs",
                    "pub mod h;\npub use h::x::X;\nfn root_item() {}\n#[cfg(test)]\nmod tests { use super::*; }\n",
                ),
                // Test code may use anything: `x`'s tests use `y`, which uses `x`.
                ("h/x/tests.rs", "use crate::h::y;\n"),
                ("h/mod.rs", "pub mod x;\npub mod y;\npub(crate) fn shared() { x::f(); }\n"),
                (
                    "h/x.rs",
                    "use super::shared;\npub struct X;\npub fn f() { crate::root_item(); }\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nmod inline { fn t() { crate::h::y::g; } }\n",
                ),
                ("h/y.rs", "use super::x::X;\nfn g(_: X) { super::shared() }\n"),
            ],
        );
        let graph = crate_graph(&root).expect("parses");
        assert_eq!(graph.cycles("synthetic"), Vec::<String>::new());
        // `y -> x` is an edge (siblings), the rest is structure.
        let edges: Vec<(String, String)> = graph
            .edges
            .iter()
            .flat_map(|(f, t)| t.keys().map(move |t| (name(f), name(t))))
            .collect();
        assert_eq!(edges, vec![("h::y".to_string(), "h::x".to_string())]);
        // Every file was read or passed over as test code.
        let dir = root.parent().expect("a directory");
        assert_eq!(unread_files(&graph, dir), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_declared_module_without_a_file_and_a_file_never_declared_are_reported() {
        let root = synthetic(
            "missing",
            &[
                (
                    "lib.rs",
                    "mod a;
mod gone;
",
                ),
                ("a.rs", ""),
            ],
        );
        let err = crate_graph(&root).expect_err("mod gone; has no file");
        assert!(err.contains("no file for `mod gone;`"), "{err}");
        let root = synthetic(
            "stray",
            &[
                (
                    "lib.rs", "mod a;
",
                ),
                ("a.rs", ""),
                ("b.rs", ""),
            ],
        );
        let graph = crate_graph(&root).expect("parses");
        let dir = root.parent().expect("a directory");
        assert_eq!(unread_files(&graph, dir), vec![dir.join("b.rs")]);
    }

    #[test]
    fn the_library_crates_have_no_import_circles() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask sits in the workspace");
        let mut found = Vec::new();
        for krate in ["codec", "h2ws", "wasm"] {
            let graph = crate_graph(&workspace.join(krate).join("src/lib.rs"))
                .unwrap_or_else(|e| panic!("{krate}: {e}"));
            assert!(
                graph.modules.len() > 5,
                "{krate}: modules found: {:?}",
                graph.modules
            );
            found.extend(graph.cycles(krate));
        }
        assert!(
            found.is_empty(),
            "module import circles (see xtask/src/modgraph.rs for what counts):\n{}",
            found.join("\n")
        );
    }
}
