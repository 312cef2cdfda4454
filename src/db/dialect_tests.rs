//! Tests of the dialect: identifiers, quoting, clauses.

use super::*;

#[test]
fn identifiers() {
    for ok in ["a", "_x", "Projects_2", &"a".repeat(63)] {
        assert!(validate_identifier(ok).is_ok(), "{ok}");
    }
    for bad in ["", "1a", "a b", "a;b", "a\"b", "a`b", "é", "a-b", &"a".repeat(64), "x'--"] {
        assert!(matches!(validate_identifier(bad), Err(DbError::InvalidIdentifier { .. })), "{bad}");
    }
}

#[test]
fn order_by_is_validated_and_quoted() {
    let pg = DatabaseKind::Postgres;
    assert_eq!(order_by(pg, "[created_at] DESC").unwrap(), "\"created_at\" DESC");
    assert_eq!(order_by(DatabaseKind::Mysql, "a, [b] desc").unwrap(), "`a` ASC, `b` DESC");
    for bad in ["", "a;drop table x", "a DESC, ", "[a b]", "a DESC NULLS", "(select 1)", "a ASCX"] {
        assert!(matches!(order_by(pg, bad), Err(DbError::InvalidOrderBy { .. })), "{bad}");
    }
}

#[test]
fn declared_types_map_to_kinds() {
    assert_eq!(kind_of_declared("JSON_TEXT", ""), ColumnKind::Json);
    assert_eq!(kind_of_declared("longtext", "kernel:json"), ColumnKind::Json);
    assert_eq!(kind_of_declared("tinyint(1)", ""), ColumnKind::Bool);
    assert!(sqlite_keeps_bound_values(ColumnKind::Text, "VARCHAR(20)"));
    assert!(sqlite_keeps_bound_values(ColumnKind::Json, "JSON_TEXT"));
    assert!(!sqlite_keeps_bound_values(ColumnKind::Json, "JSON"), "NUMERIC affinity turns '1.0' into 1");
    assert!(!sqlite_keeps_bound_values(ColumnKind::Text, "DATETIME"), "NUMERIC affinity turns '2024' into 2024");
    assert!(sqlite_keeps_bound_values(ColumnKind::Integer, "BIGINT"));
    assert!(sqlite_keeps_bound_values(ColumnKind::Bool, "BOOLEAN"));
    assert!(!sqlite_keeps_bound_values(ColumnKind::Bool, "REAL"));
    assert!(sqlite_keeps_bound_values(ColumnKind::Float, "NUMERIC"));
    assert!(!sqlite_keeps_bound_values(ColumnKind::Float, "TEXT"));
    assert_eq!(kind_of_declared("bigint", ""), ColumnKind::Integer);
    assert_eq!(kind_of_declared("double precision", ""), ColumnKind::Float);
    assert_eq!(kind_of_declared("character varying", ""), ColumnKind::Text);
}
