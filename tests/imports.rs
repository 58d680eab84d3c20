//! The design card's rule for `src/`: no two files import each other, directly or through others.
//! Edges come from `use crate::…`, `crate::…`, `super::…` and `self::…` paths and a module's
//! paths into its children (`mod.rs` or `foo.rs` naming `child::…`); a name re-exported at the
//! crate root (`crate::LogBuffer`) counts as the file that defines it. Comments and each file's
//! `#[cfg(test)] mod tests` are left out: tests may reach anywhere. `src/bin` is the command, not
//! the library, and is left out too.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// `src/http/mod.rs` is `http`, `src/http/sse.rs` is `http::sse`, `src/lib.rs` the root.
fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code of a file without comments and without its unit tests.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path that starts with `prefix::` in `code`, as its segments after the prefix, with a
/// `{a, b::c}` group expanded into one path per item.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let needle = format!("{prefix}::");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(&needle) {
        let start = from + at;
        from = start + needle.len();
        if code[..start]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident(c) || c == ':')
        {
            continue;
        }
        let rest = &code[from..];
        let mut segments = Vec::new();
        let mut tail = rest;
        loop {
            let ident: String = tail.chars().take_while(|&c| is_ident(c)).collect();
            if ident.is_empty() {
                break;
            }
            tail = &tail[ident.len()..];
            segments.push(ident);
            match tail.strip_prefix("::") {
                Some(next) => tail = next,
                None => break,
            }
        }
        if let Some(group) = tail.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item: Vec<String> = item
                    .split("::")
                    .map(|part| part.trim().to_owned())
                    .filter(|part| !part.is_empty() && part.chars().all(is_ident))
                    .collect();
                if !item.is_empty() {
                    found.push(segments.iter().cloned().chain(item).collect());
                }
            }
        } else if !segments.is_empty() {
            found.push(segments);
        }
    }
    found
}

#[test]
fn no_file_in_src_imports_itself_back_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Module, String> = files
        .iter()
        .map(|file| {
            (
                module_of(&src, file),
                code(&fs::read_to_string(file).unwrap()),
            )
        })
        .collect();
    // Names re-exported at the crate root, to the module that defines them.
    let mut reexports: BTreeMap<String, Module> = BTreeMap::new();
    for path in paths_after(&modules[&Vec::new()], "crate") {
        if let Some((name, module)) = path.split_last() {
            reexports.insert(name.clone(), module.to_vec());
        }
    }
    let resolve = |path: &[String]| -> Option<Module> {
        if let [name] = path {
            if let Some(module) = reexports.get(name) {
                return Some(module.clone());
            }
        }
        (1..=path.len())
            .rev()
            .map(|len| path[..len].to_vec())
            .find(|prefix| modules.contains_key(prefix))
    };
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, code) in &modules {
        if module.is_empty() {
            continue;
        }
        let mut targets = BTreeSet::new();
        let parent: Module = module[..module.len() - 1].to_vec();
        let mut add = |path: Vec<String>| {
            if let Some(target) = resolve(&path).filter(|t| !t.is_empty() && t != module) {
                targets.insert(target);
            }
        };
        for path in paths_after(code, "crate") {
            add(path);
        }
        for path in paths_after(code, "super") {
            add(parent.iter().cloned().chain(path).collect());
        }
        for path in paths_after(code, "self") {
            add(module.iter().cloned().chain(path).collect());
        }
        for child in modules
            .keys()
            .filter(|child| child.len() == module.len() + 1 && child.starts_with(module))
        {
            let name = child.last().unwrap();
            if !paths_after(code, name).is_empty() {
                targets.insert(child.clone());
            }
        }
        edges.insert(module.clone(), targets);
    }
    // A module that reaches itself back through its imports is in a circle.
    let mut circles = Vec::new();
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&Module> = edges[start].iter().collect();
        while let Some(next) = stack.pop() {
            if next == start {
                circles.push(start.join("::"));
                break;
            }
            if seen.insert(next) {
                stack.extend(edges.get(next).into_iter().flatten());
            }
        }
    }
    assert!(
        circles.is_empty(),
        "these files import themselves back through others: {circles:?}"
    );
    // The check sees edges: the handle depends on the core, not the other way round.
    let core: Module = vec!["core".into()];
    assert!(edges[&vec!["buffer".to_owned()]].contains(&core));
    assert!(!edges[&core].contains(&vec!["buffer".to_owned()]));
}
