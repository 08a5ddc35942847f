//! The crate's layering, checked from its source: no import cycles between files, arrows
//! that point one way down the layers, Durable Objects reached only through their
//! `client`, and no `worker` types in the pure layers.
//!
//! Run with `cargo test --test layers`. It reads `src/` as text (comments and inline test
//! modules left out) and follows `use crate::…`, `use super::…` and `crate::…` /
//! `super::…` paths in code, file by file. A module's references to its own
//! descendants (declaring or re-exporting its children) are not counted as imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top to bottom: each may import only the ones before it. `lib.rs` (the
/// entry point) may import any, and nothing may import it.
const LAYERS: &[&str] = &[
    "protocol", "auth", "room", "config", "runtime", "store", "authn", "objects", "http",
];
/// Layers with no platform types: host-tested with an injected clock.
const PURE: &[&str] = &["protocol", "auth", "room", "config"];

type Module = Vec<String>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, by module path (`src/a/b.rs` and `src/a/b/mod.rs` are
/// `a::b`; `src/lib.rs` is the root).
fn files() -> BTreeMap<Module, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = src();
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    paths
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut module: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).expect("read source file");
            (module, code_only(&text))
        })
        .collect()
}

/// The text without comments and without inline `#[cfg(test)] mod tests { … }` blocks
/// (whose `super` is the file itself).
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else if rest.starts_with("//") {
            rest = rest.split_once('\n').map_or("", |(_, r)| r);
            out.push('\n');
        } else if rest.starts_with('"') {
            // Skip a string literal (a URL's `//` is not a comment).
            let mut chars = rest.char_indices().skip(1);
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            out.push_str("\"\"");
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path a file refers to, as written: the flattened trees of its `use` items and
/// the `crate::…` / `super::…` / `self::…` paths in its code.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    // `use` trees, groups included.
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before_ok = at == 0 || !is_ident(rest[..at].chars().last().unwrap());
        let tail = &rest[at + 4..];
        let Some(end) = tail.find(';') else { break };
        if before_ok {
            flatten(&[], tail[..end].trim(), &mut found);
        }
        rest = &tail[end..];
    }
    // Inline paths.
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && is_ident(code[..at].chars().last().unwrap()) {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|&c| is_ident(c) || c == ':')
                .collect();
            found.push(
                path.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }
    found
}

/// Appends every path of one `use` tree (`a::b::{c, d::{e, f}}`) to `out`.
fn flatten(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let prefix: Vec<String> = prefix.iter().cloned().chain(head).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let (mut depth, mut last) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    flatten(&prefix, &inner[last..i], out);
                    last = i + 1;
                }
                _ => {}
            }
        }
        flatten(&prefix, &inner[last..], out);
        return;
    }
    let item = tree.split(" as ").next().unwrap_or("").trim();
    if item.is_empty() {
        return;
    }
    let mut path = prefix.to_vec();
    path.extend(item.split("::").map(|s| s.trim().to_owned()));
    out.push(path);
}

/// The file module a path written in `from` names, if it names one of the crate's.
fn resolve(from: &Module, path: &[String], all: &BTreeMap<Module, String>) -> Option<Module> {
    let (base, rest): (Module, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (from.clone(), &path[1..]),
        Some("super") => {
            let mut base = from.clone();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        // Relative to this module: one of its children, or another crate (which resolves
        // to this module itself and is dropped).
        Some(_) => (from.clone(), path),
        None => return None,
    };
    let full: Module = base.into_iter().chain(rest.iter().cloned()).collect();
    (0..=full.len())
        .rev()
        .map(|k| full[..k].to_vec())
        .find(|m| all.contains_key(m))
}

/// File → the files it imports.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let all = files();
    all.iter()
        .map(|(module, code)| {
            let targets = paths_in(code)
                .iter()
                .filter_map(|p| resolve(module, p, &all))
                .filter(|t| t != module && !t.starts_with(module))
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

fn show(m: &Module) -> String {
    if m.is_empty() {
        "lib".to_owned()
    } else {
        m.join("/")
    }
}

#[test]
fn no_file_imports_itself_through_others() {
    let graph = graph();
    // Depth-first search for a back edge.
    fn visit(
        m: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        state: &mut BTreeMap<Module, bool>,
        stack: &mut Vec<Module>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(m.clone(), false);
        stack.push(m.clone());
        for t in graph.get(m).into_iter().flatten() {
            match state.get(t) {
                None => visit(t, graph, state, stack, cycles),
                Some(false) => {
                    let at = stack.iter().position(|s| s == t).unwrap();
                    let ring: Vec<String> = stack[at..].iter().map(show).collect();
                    cycles.push(format!("{} -> {}", ring.join(" -> "), show(t)));
                }
                Some(true) => {}
            }
        }
        stack.pop();
        state.insert(m.clone(), true);
    }
    let (mut state, mut cycles) = (BTreeMap::new(), Vec::new());
    for m in graph.keys() {
        if !state.contains_key(m) {
            visit(m, &graph, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(graph.len() > 40, "read {} files only", graph.len());
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn imports_point_down_the_layers_and_objects_are_reached_through_their_client() {
    let rank = |m: &Module| {
        m.first()
            .and_then(|top| LAYERS.iter().position(|l| l == top))
    };
    let mut wrong = Vec::new();
    let mut edges = 0;
    for (from, targets) in graph() {
        for to in targets {
            edges += 1;
            let (Some(a), Some(b)) = (rank(&from), rank(&to)) else {
                wrong.push(format!("{} imports {}", show(&from), show(&to)));
                continue;
            };
            if a < b {
                wrong.push(format!(
                    "{} imports {} (a lower layer)",
                    show(&from),
                    show(&to)
                ));
            }
            let other_object =
                to.first().map(String::as_str) == Some("objects") && from.get(..2) != to.get(..2);
            if other_object && to.get(2).map(String::as_str) != Some("client") {
                wrong.push(format!("{} reaches into {}", show(&from), show(&to)));
            }
        }
    }
    assert!(edges > 100, "found {edges} imports only");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_pure_layers_use_no_platform_types() {
    let offenders: Vec<String> = files()
        .into_iter()
        .filter(|(m, _)| m.first().is_some_and(|top| PURE.contains(&top.as_str())))
        .filter(|(_, code)| code.contains("worker::") || code.contains("wasm_bindgen"))
        .map(|(m, _)| show(&m))
        .collect();
    assert!(offenders.is_empty(), "platform types in {offenders:?}");
}

#[test]
fn the_reader_sees_imports_as_written() {
    let code = code_only(
        "use crate::a::{b::{C, d}, e as f};\n// use crate::z::Z;\nlet u = \"https://x/crate::y\";\nsuper::g::h();\n",
    );
    let mut paths: Vec<String> = paths_in(&code).iter().map(|p| p.join("::")).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "crate::a",
            "crate::a::b::C",
            "crate::a::b::d",
            "crate::a::e",
            "super::g::h"
        ]
    );
}
