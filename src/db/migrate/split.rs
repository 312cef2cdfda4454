//! Splits a migration file into statements, so a failure can name the one that failed.
//!
//! The rule: a statement ends at a `;` that is outside a string literal (`'...'`, and
//! MySQL's `"..."` with backslash escapes), a quoted name (`"..."`, `` `...` ``), a
//! comment (`--`, `/* */`, MySQL's `#`), a PostgreSQL dollar-quoted body (`$$ ... $$`,
//! `$tag$ ... $tag$`), and outside a `BEGIN ... END` block of a `CREATE TRIGGER`,
//! `PROCEDURE`, `FUNCTION` or `EVENT` statement (SQLite and MySQL trigger bodies hold
//! `;`s of their own; `CASE ... END` nests inside them, and MySQL's `END IF`, `END LOOP`,
//! `END WHILE`, `END REPEAT` close nothing). The last statement needs no `;`. A statement
//! runs from its first code to its last (comments inside it are kept, those around it are
//! not); pieces that hold only comments and blanks are no statements. No `DELIMITER`
//! lines: they belong to the `mysql` client, not to SQL.
//!
//! An unterminated literal, quoted name, comment or block is an error naming its line.

use crate::db::translate::{before, dollar_tag, find, skip_line, skip_quoted};
use crate::db::DatabaseKind;

/// One statement of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement<'a> {
    /// The statement, without its `;` and the blanks around it.
    pub(crate) sql: &'a str,
    /// Its first line in the file, from 1.
    pub(crate) line: usize,
}

/// The statements of `sql`, split for `kind`; `Err` names what is unterminated and the
/// line where it opened.
pub(crate) fn split(kind: DatabaseKind, sql: &str) -> Result<Vec<Statement<'_>>, (String, usize)> {
    let b = sql.as_bytes();
    let line_of = |i: usize| b[..i.min(b.len())].iter().filter(|c| **c == b'\n').count() + 1;
    let unterminated = |what: &str, at: usize| (format!("unterminated {what}"), line_of(at));
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // The current statement: where its code starts, its first word, whether it is a
    // routine (trigger, procedure, ...), its BEGIN/CASE depth, and whether an END was
    // just read (what follows decides whether it closes a block).
    let mut code: Option<usize> = None;
    // Where its code ends so far (comments and blanks after it are not sent).
    let mut code_end = 0;
    let mut first_word: Option<String> = None;
    let mut routine = false;
    let mut depth = 0usize;
    let mut pending_end = false;
    while i < b.len() {
        let c = b[i];
        let word_char = c.is_ascii_alphabetic() || c == b'_';
        if pending_end && !word_char && !c.is_ascii_whitespace() {
            depth = depth.saturating_sub(1);
            pending_end = false;
        }
        match c {
            b'\'' | b'"' | b'`' => {
                let backslash = c != b'`' && kind.backslash_escapes(c, before(b, i));
                let what = if c == b'\'' { "string literal" } else { "quoted name" };
                code.get_or_insert(i);
                i = skip_quoted(b, i, c, backslash).ok_or_else(|| unterminated(what, i))?;
                code_end = i;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = skip_line(b, i);
                continue;
            }
            b'#' if kind.hash_comments() => {
                i = skip_line(b, i);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = find(b, i + 2, b"*/").ok_or_else(|| unterminated("comment", i))? + 2;
                continue;
            }
            b'$' if kind.dollar_quotes() && dollar_tag(b, i).is_some() => {
                let len = dollar_tag(b, i).map_or(1, <[u8]>::len);
                code.get_or_insert(i);
                i = find(b, i + len, &b[i..i + len]).ok_or_else(|| unterminated("dollar-quoted string", i))? + len;
                code_end = i;
                continue;
            }
            b';' if depth == 0 => {
                if let Some(from) = code.take() {
                    out.push(Statement { sql: &sql[from..code_end], line: line_of(from) });
                }
                (first_word, routine) = (None, false);
                start = i + 1;
            }
            _ if word_char => {
                let end =
                    b[i..].iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_')).map_or(b.len(), |p| p + i);
                let word = sql[i..end].to_ascii_uppercase();
                code.get_or_insert(i);
                (i, code_end) = (end, end);
                if std::mem::take(&mut pending_end) {
                    match word.as_str() {
                        "IF" | "LOOP" | "WHILE" | "REPEAT" => continue,
                        "CASE" => {
                            depth = depth.saturating_sub(1);
                            continue;
                        }
                        _ => depth = depth.saturating_sub(1),
                    }
                }
                match word.as_str() {
                    "TRIGGER" | "PROCEDURE" | "FUNCTION" | "EVENT" if first_word.as_deref() == Some("CREATE") => {
                        routine = true;
                    }
                    "BEGIN" | "CASE" if routine => depth += 1,
                    "END" if routine && depth > 0 => pending_end = true,
                    _ => {}
                }
                first_word.get_or_insert(word);
                continue;
            }
            c if !c.is_ascii_whitespace() => {
                code.get_or_insert(i);
                code_end = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if pending_end {
        depth = depth.saturating_sub(1);
    }
    if depth > 0 {
        return Err(unterminated("BEGIN ... END block", code.unwrap_or(start)));
    }
    if let Some(from) = code {
        out.push(Statement { sql: &sql[from..code_end], line: line_of(from) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(kind: DatabaseKind, sql: &str) -> Vec<String> {
        split(kind, sql).unwrap().into_iter().map(|s| s.sql.to_owned()).collect()
    }

    #[test]
    fn semicolons_inside_literals_names_and_comments_do_not_split() {
        let sql = "CREATE TABLE a (x TEXT DEFAULT 'a;b');\n-- a comment; still one\n\
                   INSERT INTO a VALUES ('it''s; fine') /* ; */;\nSELECT \"we;ird\" FROM a";
        let got = split(DatabaseKind::Sqlite, sql).unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!((got[1].line, &got[1].sql[..6]), (3, "INSERT"), "a statement starts at its code");
        assert_eq!(got[2].sql, "SELECT \"we;ird\" FROM a");
        assert_eq!(texts(DatabaseKind::Mysql, "SELECT 'a\\';b'; # c;\nSELECT 2;"), ["SELECT 'a\\';b'", "SELECT 2"]);
        assert_eq!(texts(DatabaseKind::Postgres, "SELECT 'a\\'; SELECT 2"), ["SELECT 'a\\'", "SELECT 2"]);
    }

    #[test]
    fn dollar_quoted_bodies_stay_whole() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\nDO $$ BEGIN PERFORM 1; END $$;";
        let got = texts(DatabaseKind::Postgres, sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("LANGUAGE plpgsql"));
    }

    #[test]
    fn trigger_bodies_stay_whole() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE b SET n = CASE WHEN n > 1 THEN 0 ELSE n + 1 END;\n  DELETE FROM c;\nEND;\nINSERT INTO a VALUES (1);";
        let got = texts(DatabaseKind::Sqlite, sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("END"));
        let mysql =
            "CREATE PROCEDURE p() BEGIN IF 1 THEN SELECT 1; END IF; WHILE 0 DO SELECT 2; END WHILE; END;\nSELECT 3";
        assert_eq!(texts(DatabaseKind::Mysql, mysql).len(), 2);
        // A table whose column is called `function` is no routine.
        assert_eq!(texts(DatabaseKind::Sqlite, "CREATE TABLE f (function TEXT); SELECT 1").len(), 2);
        // A transaction's BEGIN opens no block.
        assert_eq!(texts(DatabaseKind::Sqlite, "BEGIN; SELECT 1; COMMIT").len(), 3);
    }

    #[test]
    fn blanks_and_comments_alone_are_no_statements() {
        assert!(split(DatabaseKind::Postgres, " \n-- nothing\n/* here */ ;;\n").unwrap().is_empty());
        assert_eq!(texts(DatabaseKind::Postgres, "SELECT 1;\n\n-- trailing comment\n"), ["SELECT 1"]);
        assert_eq!(texts(DatabaseKind::Sqlite, "SELECT 1 /* kept */ + 1 -- not kept"), ["SELECT 1 /* kept */ + 1"]);
    }

    #[test]
    fn unterminated_pieces_name_their_line() {
        assert_eq!(
            split(DatabaseKind::Sqlite, "SELECT 1;\nSELECT 'oops;\n"),
            Err(("unterminated string literal".into(), 2))
        );
        assert_eq!(split(DatabaseKind::Postgres, "\n\n/* never closed"), Err(("unterminated comment".into(), 3)));
        let block = split(DatabaseKind::Sqlite, "SELECT 1;\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;");
        assert_eq!(block, Err(("unterminated BEGIN ... END block".into(), 2)));
    }
}
