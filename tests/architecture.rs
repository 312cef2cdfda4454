//! The structure the code promises, checked on its text.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Engine differences live in `db/dialect.rs` (and the engine's own files answer them
/// with exhaustive matches): nowhere else asks `kind == DatabaseKind::X`, so a new
/// engine cannot fall silently into a default branch.
#[test]
fn engine_differences_are_asked_only_in_the_dialect() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let allowed = ["db/dialect.rs", "db/settings.rs"];
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if allowed.contains(&rel.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let compact: String = line.split_whitespace().collect();
            let compares = compact.contains("==DatabaseKind::") || compact.contains("!=DatabaseKind::");
            if compares || (compact.contains("matches!(") && compact.contains("DatabaseKind::")) {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "engine comparisons outside the dialect:\n{}", found.join("\n"));
}

/// State flows down: no module below `service` names it. The service wires the
/// concepts; they take what they need as values or as `FromRef` sub-state (the test
/// kit, which builds a service as an app does, lives in `service/testing`).
#[test]
fn no_module_reaches_up_into_service() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("service/") || rel == "lib.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        if text.contains("crate::service") || text.contains("app_kernel::service") {
            found.push(rel);
        }
    }
    assert!(found.is_empty(), "modules below service that name it: {found:?}");
}

/// The modules `src/` names with `crate::...` outside tests and comments, per
/// top-level module (the crate root's re-exports are its API, not a dependency).
fn module_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "lib.rs" {
            continue;
        }
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let targets = graph.entry(module.clone()).or_default();
        for line in code.lines().map(|l| l.split("//").next().unwrap()) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                assert!(!rest.starts_with('{'), "{rel}: name each module in its own `use crate::..` line: {line}");
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if name != module && name.chars().next().is_some_and(char::is_lowercase) {
                    targets.insert(name);
                }
            }
        }
    }
    graph
}

/// The modules of `src/` depend on each other in one direction: no cycle, so each
/// can be read, tested and changed knowing only what is below it.
#[test]
fn the_module_graph_has_no_cycle() {
    let graph = module_graph();
    assert!(graph["service"].contains("auth"), "the graph is read: {graph:?}");
    // Depth-first search; a module met again on the current path closes a cycle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|p| *p == m) {
            panic!("import cycle: {} -> {m}", path[at..].join(" -> "));
        }
        if !done.insert(m) {
            return;
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = std::collections::BTreeSet::new();
    for m in graph.keys() {
        visit(m, &graph, &mut Vec::new(), &mut done);
    }
}

/// A test that needs a server gets its URL from the harness (`tests/common/trials.rs`),
/// which reports the test as ignored when the URL is unset: no test file reads a
/// `KERNEL_TEST_*` variable itself, so none can skip silently by returning early
/// (`KERNEL_TEST_SOAK_SECONDS`, a duration, is not a service).
#[test]
fn tests_reach_services_only_through_the_harness() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    rust_files(&tests, &mut files);
    let needle = ["env::var", "(\"KERNEL_TEST_"].concat();
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&tests).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("common/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let compact: String = line.split_whitespace().collect();
            if compact.replace("var_os", "var").contains(&needle) && !compact.contains("KERNEL_TEST_SOAK_SECONDS") {
                found.push(format!("tests/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "KERNEL_TEST_ variables read outside tests/common:\n{}", found.join("\n"));
}

/// A test target on a harness of its own (`harness = false` in Cargo.toml) runs only the
/// trials its `main` lists: a `#[test]` or `#[tokio::test]` in one of its files would
/// compile and never run, so there is none.
#[test]
fn own_harness_targets_have_no_libtest_attributes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut own_harness = Vec::new();
    for block in manifest.split("[[").filter(|b| b.starts_with("test]]")) {
        let name = block.lines().find_map(|l| l.strip_prefix("name = \"")).map(|n| n.trim_end_matches('"'));
        if block.lines().any(|l| l.replace(' ', "") == "harness=false") {
            own_harness.push(name.expect("a [[test]] has a name").to_owned());
        }
    }
    assert!(own_harness.len() > 1, "Cargo.toml lists the targets on libtest-mimic: {own_harness:?}");
    let mut found = Vec::new();
    for name in own_harness {
        let mut files = Vec::new();
        let dir = root.join("tests").join(&name);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        files.push(root.join("tests").join(format!("{name}.rs")));
        for file in files.iter().filter(|f| f.exists()) {
            let text = std::fs::read_to_string(file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("#[test]") || line.trim_start().starts_with("#[tokio::test") {
                    found.push(format!("{}:{}", file.strip_prefix(root).unwrap().display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "libtest attributes in targets on their own harness (list them in main):\n{}",
        found.join("\n")
    );
}
