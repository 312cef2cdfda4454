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
/// concepts; they take what they need as values or as `FromRef` sub-state. The test
/// kit (`testing/`) is above the service, as an app is: it builds one.
#[test]
fn no_module_reaches_up_into_service() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("service/") || rel.starts_with("testing/") || rel == "lib.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        if text.contains("crate::service") || text.contains("app_kernel::service") {
            found.push(rel);
        }
    }
    assert!(found.is_empty(), "modules below service that name it: {found:?}");
}
