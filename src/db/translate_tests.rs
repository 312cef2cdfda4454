use super::*;
use proptest::prelude::*;

const PG: DatabaseKind = DatabaseKind::Postgres;
const MY: DatabaseKind = DatabaseKind::Mysql;
const LITE: DatabaseKind = DatabaseKind::Sqlite;

fn pg(sql: &str) -> String {
    translate(PG, sql).unwrap().sql
}

#[test]
fn brackets_and_placeholders() {
    let sql = "SELECT * FROM [t] WHERE [a] = ? AND [b] > ?";
    assert_eq!(pg(sql), r#"SELECT * FROM "t" WHERE "a" = $1 AND "b" > $2"#);
    assert_eq!(translate(MY, sql).unwrap().sql, "SELECT * FROM `t` WHERE `a` = ? AND `b` > ?");
    assert_eq!(translate(LITE, sql).unwrap(), Translated { sql: sql.replace(['[', ']'], "\""), placeholders: 2 });
}

#[test]
fn literals_identifiers_and_comments_are_kept() {
    assert_eq!(pg("[a] = '?' AND b = ?"), r#""a" = '?' AND b = $1"#);
    assert_eq!(pg("a = 'it''s ?' OR b = ?"), "a = 'it''s ?' OR b = $1");
    assert_eq!(pg(r#""we?ird" = ?"#), r#""we?ird" = $1"#);
    assert_eq!(pg("a = ? -- why?\n AND b = ?"), "a = $1 -- why?\n AND b = $2");
    assert_eq!(pg("a = ? /* [not] ? */ AND b = ?"), "a = $1 /* [not] ? */ AND b = $2");
    assert_eq!(pg("a = $$ ? [x $$ || ?"), "a = $$ ? [x $$ || $1");
    assert_eq!(pg("a = $t$ ? $t$ || E'\\' ?' || ?"), "a = $t$ ? $t$ || E'\\' ?' || $1");
    assert_eq!(translate(MY, "a = 'x\\' ?' # ?\n AND b = \"?\" AND c = ?").unwrap().placeholders, 1);
    assert_eq!(translate(LITE, "a = '[x]'").unwrap().sql, "a = '[x]'");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    for sql in ["a = 'open", "[a", "/* open", "\"open", "$$ open"] {
        assert!(matches!(translate(PG, sql), Err(DbError::MalformedSql(_))), "{sql}");
    }
    for sql in ["[a b]", "[a;drop]", "[]", "[1a]", "[a\"]"] {
        assert!(matches!(translate(LITE, sql), Err(DbError::InvalidIdentifier { .. })), "{sql}");
    }
}

#[derive(Debug, Clone)]
enum Token {
    Ident(String),
    Placeholder,
    Literal(String),
    Comment(String),
    Word(&'static str),
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,20}".prop_map(Token::Ident),
        Just(Token::Placeholder),
        "[^'\\\\]{0,12}".prop_map(Token::Literal),
        "[^*]{0,12}".prop_map(Token::Comment),
        prop::sample::select(vec![" ", " = ", " AND ", ",", "(", ")", " SELECT ", "x", " 1 "]).prop_map(Token::Word),
    ]
}

proptest! {
    #[test]
    fn placeholders_are_numbered_in_order_and_literals_survive(tokens in prop::collection::vec(token(), 0..40)) {
        let (mut input, mut expected, mut n) = (String::new(), String::new(), 0);
        for t in &tokens {
            let (i, e) = match t {
                Token::Ident(name) => (format!("[{name}]"), format!("\"{name}\"")),
                Token::Placeholder => { n += 1; ("?".to_owned(), format!("${n}")) }
                Token::Literal(s) => { let l = format!("'{}'", s.replace('\'', "''")); (l.clone(), l) }
                Token::Comment(s) => { let c = format!("/*{s}*/"); (c.clone(), c) }
                Token::Word(w) => ((*w).to_owned(), (*w).to_owned()),
            };
            input.push_str(&i);
            expected.push_str(&e);
        }
        let out = translate(PG, &input).unwrap();
        prop_assert_eq!(out.placeholders, n);
        prop_assert_eq!(out.sql, expected);
        let lite = translate(LITE, &input).unwrap();
        prop_assert_eq!(lite.placeholders, n);
    }

    #[test]
    fn any_input_translates_or_fails_cleanly(sql in "\\PC{0,64}") {
        for kind in [PG, MY, LITE] {
            let _ = translate(kind, &sql);
        }
    }

    #[test]
    fn sql_without_brackets_is_unchanged_outside_postgres(sql in "[^\\[]{0,64}") {
        if let Ok(out) = translate(MY, &sql) {
            prop_assert_eq!(out.sql, sql);
        }
    }
}

#[test]
fn filter_clauses_hold_one_condition() {
    use super::check_clause;
    for kind in [DatabaseKind::Sqlite, DatabaseKind::Postgres, DatabaseKind::Mysql] {
        for ok in ["[owner] = ?", "([a] = ? OR [b] = ?) AND [c] <> ')'", "[note] = '--; (#'", "\"x\" IN (?, ?)"] {
            assert!(check_clause(kind, ok).is_ok(), "{kind:?} {ok}");
        }
        for bad in [
            "[owner] = ?) OR (1 = 1",
            "[owner] = ? OR 1 = 1 --",
            "1 = 1 /* x */",
            "[a] = ?; DROP TABLE w",
            "(([a] = ?)",
            "owner] IS NOT NULL OR [owner",
            "[a] = 'open",
            "[a b] = ?",
        ] {
            assert!(check_clause(kind, bad).is_err(), "{kind:?} {bad}");
        }
    }
    // A backslash ends no MySQL literal: `'\'` is unterminated there.
    assert!(check_clause(DatabaseKind::Mysql, r"[a] = '\' ) OR (1=1").is_err());
}
