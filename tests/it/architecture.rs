//! The dependency rules of `docs/architecture.md` hold in the code: every
//! `crate::` path in `src/` (in `use` items, grouped or not, and in code)
//! names a top-level module its own top-level module may use.

use crate::common;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level module → the modules it may use, from the block after the
/// `<!-- dependency-rules -->` marker in docs/architecture.md.
fn rules() -> BTreeMap<String, BTreeSet<String>> {
    let path = common::root().join("docs/architecture.md");
    let text = fs::read_to_string(&path).expect("docs/architecture.md is readable");
    let after_marker = text
        .split_once("<!-- dependency-rules -->")
        .expect("docs/architecture.md has a `<!-- dependency-rules -->` block")
        .1;
    let block = after_marker
        .split("```")
        .nth(1)
        .expect("the dependency rules are in a fenced block after their marker");
    let mut rules = BTreeMap::new();
    for line in block.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (module, allowed) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("rule `{line}` is not `module: allowed modules`"));
        let allowed = allowed.split_whitespace().map(str::to_string).collect();
        let previous = rules.insert(module.trim().to_string(), allowed);
        assert!(previous.is_none(), "module `{module}` has two rules");
    }
    rules
}

/// A `crate::MODULE` reference at a line of a file.
#[derive(Debug, PartialEq)]
struct Reference {
    line: usize,
    module: String,
}

/// The text with comments blanked out (line lengths kept, so offsets still
/// give line numbers). Doc comments name modules in links that are no
/// dependency.
fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(start) => format!("{}{}", &line[..start], " ".repeat(line.len() - start)),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier_at(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Every `crate::x` and every `x` of `crate::{x::..., y}` in `source`.
fn crate_references(source: &str) -> Vec<Reference> {
    let text = without_comments(source);
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut references = Vec::new();
    for (position, _) in text.match_indices("crate::") {
        let preceded_by_identifier = text[..position]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if preceded_by_identifier {
            continue;
        }
        let after = position + "crate::".len();
        if !text[after..].starts_with('{') {
            references.push(Reference {
                line: line_of(position),
                module: identifier_at(&text, after).to_string(),
            });
            continue;
        }
        // A group: the first name of each top-level item, `self` aside.
        let mut depth = 0;
        let mut item_start = after + 1;
        for (offset, character) in text[after..].char_indices() {
            let absolute = after + offset;
            match character {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    let item = &text[item_start..absolute];
                    let item_offset = item_start + (item.len() - item.trim_start().len());
                    let name = identifier_at(&text, item_offset);
                    if !name.is_empty() && name != "self" {
                        references.push(Reference {
                            line: line_of(item_offset),
                            module: name.to_string(),
                        });
                    }
                    item_start = absolute + 1;
                    if character == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    references
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(directory).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// `src/layer/walk.rs` → `layer`, `src/progress.rs` → `progress`; `None`
/// for the crate roots, which declare the modules.
fn top_level_module(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        file if file.ends_with(".rs") => Some(file.trim_end_matches(".rs").to_string()),
        directory => Some(directory.to_string()),
    }
}

#[test]
fn modules_use_only_what_the_dependency_rules_allow() {
    let rules = rules();
    let source_root = common::root().join("src");
    let mut files = Vec::new();
    rust_files(&source_root, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&source_root).expect("a file under src/");
        let Some(module) = top_level_module(relative) else {
            continue;
        };
        let Some(allowed) = rules.get(&module) else {
            violations.push(format!(
                "src/{}: module `{module}` has no line in the dependency rules of \
                 docs/architecture.md; add one saying what it may use",
                relative.display()
            ));
            continue;
        };
        let source = fs::read_to_string(file).expect("a readable source file");
        for reference in crate_references(&source) {
            checked += 1;
            if reference.module != module && !allowed.contains(&reference.module) {
                violations.push(format!(
                    "src/{}:{}: `{module}` uses `crate::{}`, which docs/architecture.md does not \
                     allow (`{module}` may use: {})",
                    relative.display(),
                    reference.line,
                    reference.module,
                    allowed.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    // The crate does use crate:: paths; finding none would mean the scanner is blind.
    assert!(checked > 100, "only {checked} crate:: paths found in src/");
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn dependency_rules_have_no_cycle() {
    let rules = rules();
    // Kahn's algorithm: repeatedly take modules whose allowed modules are all taken.
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = rules
            .iter()
            .filter(|(module, _)| !placed.contains(module.as_str()))
            .filter(|(_, allowed)| allowed.iter().all(|used| placed.contains(used.as_str())))
            .map(|(module, _)| module.as_str())
            .collect();
        if ready.is_empty() {
            break;
        }
        placed.extend(ready);
    }
    let unplaced: Vec<String> = rules
        .iter()
        .filter(|(module, _)| !placed.contains(module.as_str()))
        .map(|(module, allowed)| format!("{module}: {allowed:?}"))
        .collect();
    assert!(
        unplaced.is_empty(),
        "these rules use a module that is not in the rules, or form a cycle:\n{}",
        unplaced.join("\n")
    );
}

#[test]
fn scanner_finds_plain_grouped_and_inline_paths_and_skips_comments() {
    let source = "\
//! Links to [`crate::cli`] in docs are not dependencies.
use crate::oci::Digest;
pub(crate) use crate::{
    image::{Blob, Image},
    self as root,
    progress,
};
fn f() -> crate::layer::Compression { todo!() } // crate::build in a comment
macro_rules! m { () => { $crate::sink::x() } }
";
    let found: Vec<(usize, String)> = crate_references(source)
        .into_iter()
        .map(|reference| (reference.line, reference.module))
        .collect();
    let expected: Vec<(usize, String)> = [(2, "oci"), (4, "image"), (6, "progress"), (8, "layer")]
        .into_iter()
        .map(|(line, module)| (line, module.to_string()))
        .collect();
    assert_eq!(found, expected);
}

/// `src/registry/repository/mod.rs` → `registry::repository`,
/// `src/registry/client.rs` → `registry::client`; empty for the roots.
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .with_extension("")
        .components()
        .filter_map(|component| component.as_os_str().to_str().map(str::to_string))
        .collect();
    if matches!(
        path.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        path.pop();
    }
    path
}

/// The module paths `source`, the file of module `own`, names through
/// `crate::…` and `super::…`, resolved from the crate root, each with its
/// line. Code after `#[cfg(test)]` is left out: tests may reach anywhere.
fn named_modules(source: &str, own: &[String]) -> Vec<(usize, Vec<String>)> {
    let text = without_comments(source);
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (position, prefix) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        let before = text[..position].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '$') {
            continue;
        }
        let mut base: Vec<String> = own.to_vec();
        let mut rest = &text[position..];
        if prefix == "crate::" {
            base.clear();
            rest = &rest["crate::".len()..];
        } else {
            while let Some(after) = rest.strip_prefix("super::") {
                base.pop();
                rest = after;
            }
        }
        let mut segments = base;
        loop {
            let name = identifier_at(rest, 0);
            if name.is_empty() {
                break;
            }
            segments.push(name.to_string());
            match rest[name.len()..].strip_prefix("::") {
                Some(after) if !after.starts_with('{') => rest = after,
                Some(after) => {
                    // A group: each item's first name is a path of its own.
                    let group = &after[1..after.find('}').unwrap_or(after.len())];
                    for item in group.split(',') {
                        let name = identifier_at(item.trim_start(), 0);
                        if !name.is_empty() && name != "self" {
                            let mut item_path = segments.clone();
                            item_path.push(name.to_string());
                            found.push((line_of(position), item_path));
                        }
                    }
                    break;
                }
                None => break,
            }
        }
        found.push((line_of(position), segments));
    }
    found
}

/// Within every module, the files and folders side by side (the children of
/// one parent) use each other in one direction only: a child may use its
/// parent and its siblings below it, never a sibling that uses it back.
#[test]
fn sibling_modules_use_each_other_without_cycles() {
    let source_root = common::root().join("src");
    let mut files = Vec::new();
    rust_files(&source_root, &mut files);
    files.sort();
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .map(|file| module_path(file.strip_prefix(&source_root).expect("under src/")))
        .collect();
    // parent → (user child → used child → where).
    let mut edges: BTreeMap<Vec<String>, BTreeMap<String, BTreeMap<String, String>>> =
        BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&source_root).expect("under src/");
        let own = module_path(relative);
        let source = fs::read_to_string(file).expect("a readable source file");
        for (line, mut named) in named_modules(&source, &own) {
            while !named.is_empty() && !modules.contains(&named) {
                named.pop();
            }
            let shared = own.iter().zip(&named).take_while(|(a, b)| a == b).count();
            if shared == own.len() || shared == named.len() {
                continue; // an ancestor or a descendant, not a sibling
            }
            edges
                .entry(own[..shared].to_vec())
                .or_default()
                .entry(own[shared].clone())
                .or_default()
                .entry(named[shared].clone())
                .or_insert_with(|| format!("src/{}:{line}", relative.display()));
        }
    }
    assert!(
        edges
            .get(&vec!["registry".to_string()])
            .is_some_and(|children| children.len() > 5),
        "the scanner sees no uses between the files of registry/"
    );
    let mut cycles = Vec::new();
    for (parent, children) in &edges {
        for (child, used) in children {
            for (sibling, place) in used {
                if let Some(back) = children.get(sibling).and_then(|uses| {
                    reaches(children, sibling, child, &mut BTreeSet::new())
                        .then(|| uses.get(child).cloned().unwrap_or_default())
                }) && child < sibling
                {
                    cycles.push(format!(
                        "{}: `{child}` uses `{sibling}` ({place}) and `{sibling}` leads back to \
                         `{child}` {back}; move what both need below them",
                        parent.join("::")
                    ));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "{}", cycles.join("\n"));
}

/// Whether `from` uses `to`, directly or through other siblings.
fn reaches(
    children: &BTreeMap<String, BTreeMap<String, String>>,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> bool {
    if from == to {
        return true;
    }
    if !seen.insert(from.to_string()) {
        return false;
    }
    children
        .get(from)
        .is_some_and(|uses| uses.keys().any(|next| reaches(children, next, to, seen)))
}
