//! The layering ARCHITECTURE.md promises, read from the source: every
//! reference between top-level modules of `src/` points down the layers
//! (or sideways without a cycle), and the modules that must name no AWS
//! service or runtime do not.
//!
//! References are `crate::…` paths (in `use` trees and inline) and
//! `super::…` paths that climb to the crate root, read after comments and
//! literals are removed, so a doc link or a string never counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may use modules of its own layer or
/// below; within a layer, references must not form a cycle.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations",
        &[
            "suggest", "yaml", "diag", "duration", "redact", "detect", "shipped", "input",
        ],
    ),
    ("language", &["catalogue", "runbook"]),
    ("config", &["config"]),
    ("state", &["ha", "journal"]),
    ("engine", &["engine"]),
    ("aws", &["pacing", "aws"]),
    ("actions", &["iam", "actions"]),
    (
        "operations",
        &[
            "measure", "report", "metrics", "exposure", "verify", "probe", "trigger", "notify",
            "archive", "logging",
        ],
    ),
    (
        "processes",
        &["control", "web", "daemon", "demo", "emulator", "cli"],
    ),
];

/// What a module must never name: crates (by prefix) and modules of this
/// crate, whatever its layer would allow.
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "engine",
        &["aws_", "crate::aws", "crate::actions", "reqwest"],
    ),
    ("journal", &["aws_", "tokio::", "reqwest"]),
    ("runbook", &["aws_", "tokio::", "reqwest"]),
    ("catalogue", &["aws_", "tokio::", "reqwest"]),
    ("config", &["aws_", "tokio::", "reqwest"]),
    ("yaml", &["aws_", "tokio::", "reqwest"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` with comments, string and character literals blanked out
/// (newlines kept, so line numbers hold).
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && matches!(next, Some('"') | Some('#'))
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
        {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= c.len() {
                    break;
                }
                if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &ch in &c[i..j.min(c.len())] {
                blank(&mut out, ch);
            }
            i = j;
        } else if c[i] == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime.
            let end = if next == Some('\\') {
                (i + 2..c.len()).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for &ch in &c[i..=end] {
                        blank(&mut out, ch);
                    }
                    i = end + 1;
                }
                None => {
                    out.push(c[i]);
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn ident_at(c: &[char], mut i: usize) -> (String, usize) {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    let start = i;
    while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
        i += 1;
    }
    (c[start..i].iter().collect(), i)
}

fn skip_path_sep(c: &[char], mut i: usize) -> Option<usize> {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    (c.get(i) == Some(&':') && c.get(i + 1) == Some(&':')).then_some(i + 2)
}

/// The first names of the items of a `{ … }` use group starting at `i`.
fn group_heads(c: &[char], i: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    let mut j = i;
    while j < c.len() {
        match c[j] {
            '{' => {
                depth += 1;
                expect_head = depth == 1;
                j += 1;
            }
            '}' => {
                depth -= 1;
                j += 1;
                if depth == 0 {
                    break;
                }
            }
            ',' => {
                expect_head = depth == 1;
                j += 1;
            }
            ch if ch.is_alphanumeric() || ch == '_' => {
                let (name, end) = ident_at(c, j);
                if expect_head {
                    heads.push(name);
                    expect_head = false;
                }
                j = end;
            }
            _ => j += 1,
        }
    }
    heads
}

/// The top-level modules `code` names, with the line of each reference.
/// `depth` is how deep the file sits below its top-level module (0 for
/// `src/x.rs` and `src/x/mod.rs`), for `super::` paths.
fn references(code: &str, depth: usize) -> Vec<(String, usize)> {
    let c: Vec<char> = code.chars().collect();
    let line_of = |i: usize| c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    let boundary = |i: usize| i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_');
    let mut refs = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let (word, end) = if boundary(i) && (c[i].is_alphabetic() || c[i] == '_') {
            ident_at(&c, i)
        } else {
            (String::new(), i + 1)
        };
        if word == "crate" || word == "super" {
            // Climb `super::super::…`; reaching past the top-level module
            // lands at the crate root.
            let mut supers = usize::from(word == "super");
            let mut at = end;
            let mut rooted = word == "crate";
            while let Some(after) = skip_path_sep(&c, at) {
                let (next, next_end) = ident_at(&c, after);
                if next == "super" {
                    supers += 1;
                    at = next_end;
                    continue;
                }
                if !rooted && supers > depth {
                    rooted = true;
                }
                if rooted {
                    if next.is_empty()
                        && c.get(after..)
                            .is_some_and(|r| r.iter().find(|ch| !ch.is_whitespace()) == Some(&'{'))
                    {
                        let open = (after..c.len())
                            .find(|&k| c[k] == '{')
                            .expect("the group's brace");
                        for head in group_heads(&c, open) {
                            refs.push((head, line_of(i)));
                        }
                    } else if !next.is_empty() {
                        refs.push((next, line_of(i)));
                    }
                }
                break;
            }
            i = at.max(end);
        } else {
            i = end;
        }
    }
    refs
}

struct Source {
    module: String,
    path: PathBuf,
    code: String,
}

fn sources() -> Vec<Source> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(&root).expect("under src/").to_path_buf();
            let first = rel.components().next()?.as_os_str().to_str()?.to_string();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                return None;
            }
            let code = code_only(&std::fs::read_to_string(&path).expect("a readable source file"));
            Some(Source {
                module,
                path: rel,
                code,
            })
        })
        .collect()
}

/// How deep `rel` sits below its top-level module, for `super::`.
fn depth_of(rel: &Path) -> usize {
    let parts = rel.components().count();
    let file = rel.file_name().and_then(|f| f.to_str()).unwrap_or("");
    // src/x.rs and src/x/mod.rs are the module itself; src/x/y.rs is one
    // below, src/x/y/mod.rs too, and so on.
    match (parts, file) {
        (1, _) => 0,
        (n, "mod.rs") => n - 2,
        (n, _) => n - 1,
    }
}

/// Module → module → one place that refers (file:line).
fn graph(
    sources: &[Source],
    modules: &BTreeSet<String>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in sources {
        for (target, line) in references(&s.code, depth_of(&s.path)) {
            if target != s.module && modules.contains(&target) {
                edges
                    .entry(s.module.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| format!("src/{}:{line}", s.path.display()));
            }
        }
    }
    edges
}

/// The cycles of `edges` (strongly connected components of more than one
/// module), each sorted.
fn cycles(edges: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    // Kosaraju, iteratively: order by finish time, then sweep the reverse.
    let nodes: BTreeSet<&String> = edges
        .iter()
        .flat_map(|(a, targets)| std::iter::once(a).chain(targets.keys()))
        .collect();
    let next_of = |node: &String| -> Vec<&String> {
        edges.get(node).into_iter().flat_map(|t| t.keys()).collect()
    };
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for &start in &nodes {
        if !seen.insert(start) {
            continue;
        }
        // (node, its successors, how many of them were visited)
        let mut stack = vec![(start, next_of(start), 0)];
        while let Some((node, next, i)) = stack.last_mut() {
            if let Some(&n) = next.get(*i) {
                *i += 1;
                if seen.insert(n) {
                    stack.push((n, next_of(n), 0));
                }
            } else {
                order.push(*node);
                stack.pop();
            }
        }
    }
    let mut reverse: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (a, targets) in edges {
        for b in targets.keys() {
            reverse.entry(b).or_default().push(a);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for &start in order.iter().rev() {
        if !assigned.insert(start) {
            continue;
        }
        let mut component = vec![start.clone()];
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for &prev in reverse.get(node).into_iter().flatten() {
                if assigned.insert(prev) {
                    component.push(prev.clone());
                    stack.push(prev);
                }
            }
        }
        if component.len() > 1 {
            component.sort();
            out.push(component);
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

#[test]
fn modules_refer_only_down_the_layers_and_never_in_a_cycle() {
    let sources = sources();
    let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
    let unplaced: Vec<_> = modules.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "top-level modules in no layer (add them to LAYERS and ARCHITECTURE.md): {unplaced:?}"
    );
    let edges = graph(&sources, &modules);
    let mut upward = Vec::new();
    for (from, targets) in &edges {
        for (to, at) in targets {
            let (a, b) = (
                layer_of(from).expect("placed above"),
                layer_of(to).expect("placed above"),
            );
            if b > a {
                upward.push(format!(
                    "{at}: `{from}` ({}) uses `{to}` ({}), a layer above",
                    LAYERS[a].0, LAYERS[b].0
                ));
            }
        }
    }
    assert!(upward.is_empty(), "{}", upward.join("\n"));
    let cycles = cycles(&edges);
    let explained: Vec<String> = cycles
        .iter()
        .map(|c| {
            let members: BTreeSet<&String> = c.iter().collect();
            let links: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    edges[a]
                        .iter()
                        .filter(|(b, _)| members.contains(b))
                        .map(move |(b, at)| format!("  {a} -> {b} ({at})"))
                })
                .collect();
            format!("cycle among {c:?}:\n{}", links.join("\n"))
        })
        .collect();
    assert!(cycles.is_empty(), "{}", explained.join("\n"));
}

#[test]
fn the_engine_and_the_pure_modules_name_no_aws_service_or_runtime() {
    let mut found = Vec::new();
    for s in sources() {
        let Some((_, banned)) = FORBIDDEN.iter().find(|(m, _)| *m == s.module) else {
            continue;
        };
        for (n, line) in s.code.lines().enumerate() {
            for name in *banned {
                let hit = line.match_indices(name).any(|(i, _)| {
                    let starts_word = line[..i]
                        .chars()
                        .next_back()
                        .is_none_or(|before| !(before.is_alphanumeric() || before == '_'));
                    // A crate named by prefix (`aws_`) counts only as a
                    // path (`aws_sdk_ec2::…`), not as a field (`aws_api`).
                    let rest = &line[i + name.len()..];
                    let word_end = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    let as_path = !name.ends_with('_') || rest[word_end..].starts_with("::");
                    starts_word && as_path
                });
                if hit {
                    found.push(format!(
                        "src/{}:{}: `{}` names `{name}`",
                        s.path.display(),
                        n + 1,
                        s.module
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The modules a file of `src/cli/` names among its siblings: `super::X`
/// (and `super::{X, …}`) and `crate::cli::X`.
fn sibling_references(code: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = code.chars().collect();
    let line_of = |i: usize| c[..i].iter().filter(|&&ch| ch == '\n').count() + 1;
    let boundary =
        |i: usize| i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_' || c[i - 1] == ':');
    let mut refs = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if !boundary(i) || !(c[i].is_alphabetic()) {
            i += 1;
            continue;
        }
        let (word, end) = ident_at(&c, i);
        let after = match word.as_str() {
            "super" => skip_path_sep(&c, end),
            "crate" => skip_path_sep(&c, end).and_then(|a| {
                let (next, next_end) = ident_at(&c, a);
                (next == "cli")
                    .then(|| skip_path_sep(&c, next_end))
                    .flatten()
            }),
            _ => None,
        };
        if let Some(after) = after {
            let (next, _) = ident_at(&c, after);
            if next.is_empty() {
                if let Some(open) = (after..c.len()).find(|&k| !c[k].is_whitespace())
                    && c[open] == '{'
                {
                    refs.extend(group_heads(&c, open).into_iter().map(|h| (h, line_of(i))));
                }
            } else if next != "super" {
                refs.push((next, line_of(i)));
            }
        }
        i = end.max(i + 1);
    }
    refs
}

#[test]
fn a_cli_command_file_uses_the_shared_cli_modules_never_another_command() {
    const SHARED: &[&str] = &["args", "error", "shared"];
    let dir = src().join("cli");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("src/cli/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let names: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .collect();
    assert!(
        names.contains("shared"),
        "src/cli/shared.rs is where shared code lives"
    );
    let mut found = Vec::new();
    for path in &files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if name == "mod" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(path).expect("a readable file"));
        for (target, line) in sibling_references(&code) {
            let allowed = SHARED.contains(&target.as_str())
                && !(SHARED.contains(&name)
                    && SHARED.iter().position(|s| *s == target)
                        > SHARED.iter().position(|s| *s == name));
            if names.contains(&target) && target != name && !allowed {
                found.push(format!("src/cli/{name}.rs:{line}: uses `{target}`"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "command files may use only {SHARED:?} (in that order among themselves):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_reader_sees_paths_in_code_not_in_comments_or_literals() {
    let code = code_only(
        "use crate::{a, b::{c, d}, e as f};\n// crate::comment\nlet s = \"crate::string\";\nlet r = r#\"crate::raw\"#;\nlet c = '\"'; crate::g::h();\n/* crate::block /* nested */ */ fn x<'a>(_: &'a str) { super::super::i::j(); }",
    );
    let found: Vec<String> = references(&code, 1).into_iter().map(|(m, _)| m).collect();
    assert_eq!(found, ["a", "b", "e", "g", "i"]);
    // From a top-level module's own file, one `super` is the crate root.
    let found: Vec<String> = references("use super::k;", 0)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(found, ["k"]);
    let edges: BTreeMap<String, BTreeMap<String, String>> = [
        ("x", &["y"][..]),
        ("y", &["z"][..]),
        ("z", &["x"][..]),
        ("w", &["x"][..]),
    ]
    .into_iter()
    .map(|(a, bs)| {
        (
            a.to_string(),
            bs.iter().map(|b| (b.to_string(), String::new())).collect(),
        )
    })
    .collect();
    assert_eq!(cycles(&edges), [["x", "y", "z"]]);
    let found: Vec<String> = sibling_references(&code_only(
        "use super::args::Output;\nuse super::{error::CliError, shared};\nfn f() { crate::cli::run::x(); crate::runbook::y(); super::super::z(); }",
    ))
    .into_iter()
    .map(|(m, _)| m)
    .collect();
    assert_eq!(found, ["args", "error", "shared", "run"]);
}
