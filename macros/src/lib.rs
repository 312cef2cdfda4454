//! Compile-time helpers of `app-kernel`, used through its re-exports: [`migrations!`].
//! No dependencies: the input is one string literal, read by hand.

use std::path::Path;

use proc_macro::{TokenStream, TokenTree};

/// Embeds every `*.sql` file of a folder as an `app_kernel::db::Migrations`.
///
/// The folder is relative to the calling crate's `Cargo.toml` (as with `sqlx::migrate!`),
/// e.g. `app_kernel::migrations!("migrations")`. Each file is an `include_str!`, so an
/// edited file rebuilds the crate; a new file is seen at the next build of the calling
/// file (a `build.rs` with `cargo:rerun-if-changed=migrations` makes that automatic).
/// A missing folder or a file name that is not UTF-8 is a compile error.
#[proc_macro]
pub fn migrations(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(code) => code,
        Err(message) => format!("::core::compile_error!({message:?})").parse().unwrap_or_default(),
    }
}

fn expand(input: TokenStream) -> Result<TokenStream, String> {
    let usage = "migrations!: expected one string literal naming the folder of the migration files, \
                 relative to Cargo.toml, e.g. migrations!(\"migrations\")";
    let mut tokens = input.into_iter();
    let literal = match (tokens.next(), tokens.next()) {
        (Some(TokenTree::Literal(l)), None) => l.to_string(),
        _ => return Err(usage.into()),
    };
    let dir = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|s| !s.contains('\\'))
        .ok_or_else(|| usage.to_owned())?;
    let root =
        std::env::var("CARGO_MANIFEST_DIR").map_err(|_| "migrations!: CARGO_MANIFEST_DIR is not set".to_owned())?;
    let path = Path::new(&root).join(dir);
    let read = |e: std::io::Error| format!("migrations!: cannot read the folder {}: {e}", path.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&path).map_err(read)? {
        let file = entry.map_err(read)?.path();
        if !file.is_file() || file.extension().is_none_or(|e| e != "sql") {
            continue;
        }
        let name = file.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        let full = file.to_str().map(str::to_owned);
        match (name, full) {
            (Some(name), Some(full)) => files.push((name, full)),
            _ => return Err(format!("migrations!: {} is not a UTF-8 path", file.display())),
        }
    }
    files.sort();
    let mut code = String::from("::app_kernel::db::Migrations::from_static(&[");
    for (name, full) in files {
        code.push_str(&format!("({name:?}, ::core::include_str!({full:?})),"));
    }
    code.push_str("])");
    code.parse().map_err(|e| format!("migrations!: {e:?}"))
}
