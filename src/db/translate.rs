//! Portable SQL: `[field]` becomes the engine's quoted identifier and `?` its placeholder.
//!
//! The scanner knows string literals (`'...'`, MySQL's `"..."` and backslash escapes,
//! PostgreSQL's `E'...'` and `$tag$...$tag$`), quoted identifiers and comments (`--`,
//! `/* */`, MySQL's `#`); nothing inside them is rewritten, so a `?` in a literal stays a
//! `?`. Inside `[...]` only a plain identifier is accepted: `[` is reserved for names.
//!
//! ```text
//! SELECT * FROM [projects] WHERE [owner] = ? AND note <> '?'
//!   PostgreSQL: SELECT * FROM "projects" WHERE "owner" = $1 AND note <> '?'
//!   MySQL:      SELECT * FROM `projects` WHERE `owner` = ? AND note <> '?'
//! ```

use crate::db::dialect::{quote_unchecked, validate_identifier};
use crate::db::{DatabaseKind, DbError};

/// A statement in the engine's own syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Translated {
    /// The rewritten SQL.
    pub(crate) sql: String,
    /// How many `?` placeholders it had.
    pub(crate) placeholders: usize,
}

/// Rewrites `sql` for `kind`.
///
/// # Errors
/// [`DbError::InvalidIdentifier`] for a `[...]` that is not a plain identifier,
/// [`DbError::MalformedSql`] for an unterminated literal, comment or bracket.
pub(crate) fn translate(kind: DatabaseKind, sql: &str) -> Result<Translated, DbError> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut placeholders = 0;
    let mut i = 0;
    // Start of the text not yet copied to `out`: literals and comments are copied whole.
    let mut copied = 0;
    let unterminated = |what: &str| DbError::MalformedSql(format!("unterminated {what}"));
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let backslash = kind.backslash_escapes(b'\'', before(b, i));
                i = skip_quoted(b, i, b'\'', backslash).ok_or_else(|| unterminated("string literal"))?;
            }
            b'"' => {
                let backslash = kind.backslash_escapes(b'"', before(b, i));
                i = skip_quoted(b, i, b'"', backslash).ok_or_else(|| unterminated("quoted identifier"))?;
            }
            b'`' => i = skip_quoted(b, i, b'`', false).ok_or_else(|| unterminated("quoted identifier"))?,
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_line(b, i),
            b'#' if kind.hash_comments() => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = find(b, i + 2, b"*/").ok_or_else(|| unterminated("comment"))?;
                i = end + 2;
            }
            b'$' if kind.dollar_quotes() => match dollar_tag(b, i) {
                Some(tag) => {
                    let end = find(b, i + tag.len(), tag).ok_or_else(|| unterminated("dollar-quoted string"))?;
                    i = end + tag.len();
                }
                None => i += 1,
            },
            b'[' => {
                let end = find(b, i + 1, b"]").ok_or_else(|| unterminated("[identifier]"))?;
                let name = &sql[i + 1..end];
                validate_identifier(name)?;
                out.push_str(&sql[copied..i]);
                out.push_str(&quote_unchecked(kind, name));
                i = end + 1;
                copied = i;
            }
            b'?' => {
                placeholders += 1;
                if kind.numbered_placeholders() {
                    out.push_str(&sql[copied..i]);
                    out.push('$');
                    out.push_str(&placeholders.to_string());
                    copied = i + 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Ok(Translated { sql: out, placeholders })
}

/// Checks that a filter clause is one condition: parentheses and `[...]` balanced
/// outside literals, no `;`, no comment (which could end the statement early or hide
/// the soft-delete condition that follows the clause).
///
/// # Errors
/// [`DbError::UnsafeFilter`] saying what was found.
pub(crate) fn check_clause(kind: DatabaseKind, clause: &str) -> Result<(), DbError> {
    let b = clause.as_bytes();
    let refuse = |why: &str| Err(DbError::UnsafeFilter(why.to_owned()));
    let unterminated = || DbError::UnsafeFilter("an unterminated literal or quoted name".to_owned());
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                i = skip_quoted(b, i, b'\'', kind.backslash_escapes(b'\'', before(b, i))).ok_or_else(unterminated)?;
                continue;
            }
            b'"' => {
                i = skip_quoted(b, i, b'"', kind.backslash_escapes(b'"', before(b, i))).ok_or_else(unterminated)?;
                continue;
            }
            b'`' => {
                i = skip_quoted(b, i, b'`', false).ok_or_else(unterminated)?;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => return refuse("a comment (--)"),
            b'/' if b.get(i + 1) == Some(&b'*') => return refuse("a comment (/*)"),
            b'#' => return refuse("a # (a comment on MySQL)"),
            b'$' if kind.dollar_quotes() && dollar_tag(b, i).is_some() => return refuse("a dollar-quoted string"),
            b';' => return refuse("a ;"),
            b'(' => depth += 1,
            b')' if depth == 0 => return refuse("a ) without its ("),
            b')' => depth -= 1,
            b'[' => {
                let end = find(b, i + 1, b"]").ok_or_else(|| DbError::UnsafeFilter("a [ without its ]".into()))?;
                validate_identifier(&clause[i + 1..end])?;
                i = end;
            }
            b']' => return refuse("a ] without its ["),
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return refuse("a ( without its )");
    }
    Ok(())
}

/// The byte before index `i`, if any.
pub(crate) fn before(b: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).map(|p| b[p])
}

/// The index after the closing `quote` of the literal opening at `start`.
pub(crate) fn skip_quoted(b: &[u8], start: usize, quote: u8, backslash: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if backslash => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

pub(crate) fn skip_line(b: &[u8], start: usize) -> usize {
    find(b, start, b"\n").map_or(b.len(), |end| end + 1)
}

pub(crate) fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > b.len() {
        return None;
    }
    b[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// `$tag$` or `$$` opening a PostgreSQL dollar-quoted string at `start`.
pub(crate) fn dollar_tag(b: &[u8], start: usize) -> Option<&[u8]> {
    let rest = &b[start + 1..];
    let len = rest.iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))?;
    let starts_with_digit = rest.first().is_some_and(u8::is_ascii_digit);
    (rest[len] == b'$' && !starts_with_digit).then(|| &b[start..start + len + 2])
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
