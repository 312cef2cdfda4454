//! What differs between engines: identifier quoting, placeholders, literals, column
//! types, `RETURNING`, upserts, DDL options, notifications, schema locks.
//!
//! This is the one place that asks which engine it is: every difference is a function
//! or a method of [`DatabaseKind`] here with an exhaustive `match`, so a new engine does
//! not compile until each one is answered (a test keeps `== DatabaseKind::` out of
//! the rest of `src/`).
//!
//! Invariant: every table or column name that reaches SQL has passed
//! [`validate_identifier`] and is quoted; every value is bound, never interpolated.

use crate::db::value::ColumnKind;
use crate::db::{DatabaseKind, DbError};

/// The longest accepted table or column name: PostgreSQL's limit (it truncates longer
/// names, so two long fields could land in one column), and within MySQL's 64.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Checks that `name` is a plain identifier: ASCII letters, digits and underscores,
/// not starting with a digit, 1 to 63 characters.
///
/// # Errors
/// [`DbError::InvalidIdentifier`] naming the rejected value.
pub fn validate_identifier(name: &str) -> Result<(), DbError> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_IDENTIFIER_LEN
        && !bytes[0].is_ascii_digit()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DbError::InvalidIdentifier { name: name.to_owned() })
    }
}

/// The prefix of the kernel's own tables, which the entity API does not reach.
pub(crate) const KERNEL_TABLE_PREFIX: &str = "kernel_";

/// Checks that `table` is a plain identifier and not one of the kernel's own tables.
pub(crate) fn validate_entity_table(table: &str) -> Result<(), DbError> {
    validate_identifier(table)?;
    let reserved = table.len() >= KERNEL_TABLE_PREFIX.len()
        && table.as_bytes()[..KERNEL_TABLE_PREFIX.len()].eq_ignore_ascii_case(KERNEL_TABLE_PREFIX.as_bytes());
    if reserved {
        return Err(DbError::ReservedTable { table: table.to_owned() });
    }
    Ok(())
}

/// How schema changes are serialised across processes: the statement that takes the
/// lock inside the transaction making the change, and the one that frees it before the
/// transaction ends (bound to the table's name); `None` where the transaction itself
/// holds the database's one write lock (SQLite's `BEGIN IMMEDIATE`).
pub(crate) fn ddl_lock(kind: DatabaseKind) -> Option<(&'static str, Option<&'static str>)> {
    match kind {
        DatabaseKind::Sqlite => None,
        // Freed with the transaction.
        DatabaseKind::Postgres => Some(("SELECT pg_advisory_xact_lock(hashtext('kernel_ddl:' || $1))", None)),
        // A session lock (MySQL DDL commits any transaction), freed explicitly and when the
        // connection closes; the name stays within MySQL's 64 characters.
        DatabaseKind::Mysql => Some((
            "SELECT GET_LOCK(CONCAT('kernel_ddl:', MD5(?)), 30) AS locked",
            Some("SELECT RELEASE_LOCK(CONCAT('kernel_ddl:', MD5(?))) AS released"),
        )),
    }
}

/// Whether an index named `index` exists on `table` (the query and its parameters).
pub(crate) fn index_exists_sql(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Sqlite => "SELECT 1 AS found FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?",
        DatabaseKind::Postgres => {
            "SELECT 1 AS found FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname = $2"
        }
        DatabaseKind::Mysql => {
            "SELECT 1 AS found FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ? LIMIT 1"
        }
    }
}

/// One column of an index: MySQL indexes only a prefix of a text column.
pub(crate) fn index_column(kind: DatabaseKind, name: &str, column_kind: ColumnKind) -> String {
    match (kind, column_kind) {
        (DatabaseKind::Mysql, ColumnKind::Text | ColumnKind::Json) => format!("`{name}`(191)"),
        _ => quote_unchecked(kind, name),
    }
}

/// Quotes a name already validated: `"name"` or `` `name` ``.
pub(crate) fn quote_unchecked(kind: DatabaseKind, name: &str) -> String {
    match kind {
        DatabaseKind::Mysql => format!("`{name}`"),
        DatabaseKind::Sqlite | DatabaseKind::Postgres => format!("\"{name}\""),
    }
}

/// The column type the kernel creates for values of `column_kind`.
pub(crate) fn column_type(kind: DatabaseKind, column_kind: ColumnKind) -> &'static str {
    use ColumnKind as K;
    match (kind, column_kind) {
        (DatabaseKind::Sqlite, K::Integer) => "INTEGER",
        (DatabaseKind::Sqlite, K::Float) => "REAL",
        (DatabaseKind::Sqlite, K::Text) => "TEXT",
        // The TEXT in the name gives TEXT affinity, so a JSON text is never converted to a number.
        (DatabaseKind::Sqlite, K::Json) => "JSON_TEXT",
        (DatabaseKind::Postgres, K::Integer) | (DatabaseKind::Mysql, K::Integer) => "BIGINT",
        (DatabaseKind::Postgres, K::Float) => "DOUBLE PRECISION",
        (DatabaseKind::Mysql, K::Float) => "DOUBLE",
        (DatabaseKind::Postgres, K::Text) => "TEXT",
        (DatabaseKind::Postgres, K::Json) => "JSONB",
        (DatabaseKind::Mysql, K::Text) => "LONGTEXT",
        // MariaDB reports JSON columns as LONGTEXT; the comment tells the kernel they hold JSON.
        (DatabaseKind::Mysql, K::Json) => "LONGTEXT COMMENT 'kernel:json'",
        (_, K::Bool) => "BOOLEAN",
    }
}

/// The type of the `id` primary key the kernel creates (MySQL cannot index plain TEXT).
pub(crate) fn key_type(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Mysql => "VARCHAR(191)",
        _ => "TEXT",
    }
}

/// The kind of a column from its declared type (and, on MySQL, its comment).
pub(crate) fn kind_of_declared(declared: &str, comment: &str) -> ColumnKind {
    let t = declared.to_ascii_lowercase();
    if t.contains("json") || comment == "kernel:json" {
        ColumnKind::Json
    } else if t.contains("bool") || t == "tinyint(1)" {
        ColumnKind::Bool
    } else if t.contains("int") {
        ColumnKind::Integer
    } else if ["real", "floa", "doub", "numeric", "decimal"].iter().any(|p| t.contains(p)) {
        ColumnKind::Float
    } else {
        ColumnKind::Text
    }
}

/// Whether SQLite's type affinity for a column declared `declared` stores every value
/// the kernel binds for `kind` unchanged (so it reads back as bound). The affinity
/// follows SQLite's rules (section 3.1 of its datatype documentation): `INT` gives
/// INTEGER; `CHAR`, `CLOB` or `TEXT` give TEXT; `BLOB` or no type give none; `REAL`,
/// `FLOA` or `DOUB` give REAL; anything else NUMERIC.
pub(crate) fn sqlite_keeps_bound_values(kind: ColumnKind, declared: &str) -> bool {
    let t = declared.to_ascii_uppercase();
    let has = |p: &str| t.contains(p);
    let affinity = if has("INT") {
        "integer"
    } else if has("CHAR") || has("CLOB") || has("TEXT") {
        "text"
    } else if has("BLOB") || t.trim().is_empty() {
        "none"
    } else if has("REAL") || has("FLOA") || has("DOUB") {
        "real"
    } else {
        "numeric"
    };
    match kind {
        // Text and JSON text: a numeric affinity would turn "12" into 12.
        ColumnKind::Text | ColumnKind::Json => matches!(affinity, "text" | "none"),
        // Integers stay integers except under TEXT (and REAL, which makes them floats).
        ColumnKind::Integer | ColumnKind::Bool => matches!(affinity, "integer" | "numeric" | "none"),
        // Floats may come back as integers (NUMERIC), which reading restores; not as text.
        ColumnKind::Float => affinity != "text",
    }
}

/// Whether the engine hands JSON columns back as text to parse.
pub(crate) fn json_as_text(kind: DatabaseKind) -> bool {
    match kind {
        DatabaseKind::Postgres => false,
        DatabaseKind::Sqlite | DatabaseKind::Mysql => true,
    }
}

/// What [`DatabaseKind::change_feed`] delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeFeed {
    /// A message per notification sent on the channel.
    Notifications,
    /// An item after any commit by another connection.
    Commits,
    /// Nothing to subscribe to: the worker asks whether a job is due, every few
    /// milliseconds, with one indexed read.
    DueChecks,
}

impl DatabaseKind {
    /// Whether a backslash escapes the next character inside a `'...'` literal that
    /// follows `before` (MySQL always; PostgreSQL in an `E'...'` string).
    pub(crate) fn backslash_escapes(self, quote: u8, before: Option<u8>) -> bool {
        match self {
            Self::Mysql => true,
            Self::Postgres => quote == b'\'' && matches!(before, Some(b'E' | b'e')),
            Self::Sqlite => false,
        }
    }

    /// Whether `#` starts a comment to the end of the line.
    pub(crate) fn hash_comments(self) -> bool {
        match self {
            Self::Mysql => true,
            Self::Sqlite | Self::Postgres => false,
        }
    }

    /// Whether `$tag$ ... $tag$` quotes a string.
    pub(crate) fn dollar_quotes(self) -> bool {
        match self {
            Self::Postgres => true,
            Self::Sqlite | Self::Mysql => false,
        }
    }

    /// Whether placeholders are numbered (`$1`) rather than `?`.
    pub(crate) fn numbered_placeholders(self) -> bool {
        match self {
            Self::Postgres => true,
            Self::Sqlite | Self::Mysql => false,
        }
    }

    /// Whether `INSERT ... RETURNING *` gives the stored row.
    pub(crate) fn returning(self) -> bool {
        match self {
            Self::Sqlite | Self::Postgres => true,
            Self::Mysql => false,
        }
    }

    /// The tail that turns `insert` (of `id` and other columns) into an upsert by `id`,
    /// updating `updates` (quoted column names); with `RETURNING *` where there is one.
    pub(crate) fn upsert(self, insert: &str, updates: &[&str]) -> String {
        match self {
            Self::Mysql => {
                let set: Vec<String> = updates.iter().map(|q| format!("{q} = VALUES({q})")).collect();
                format!("{insert} ON DUPLICATE KEY UPDATE {}", set.join(", "))
            }
            Self::Sqlite | Self::Postgres => {
                let set: Vec<String> = updates.iter().map(|q| format!("{q} = excluded.{q}")).collect();
                let id = quote_unchecked(self, "id");
                format!("{insert} ON CONFLICT ({id}) DO UPDATE SET {} RETURNING *", set.join(", "))
            }
        }
    }

    /// Whether several instances of a service usually share this database (a server
    /// engine), so what they must agree on (idempotency records, stream leases) can
    /// live in it when there is no Redis.
    pub(crate) fn shared_by_instances(self) -> bool {
        match self {
            Self::Postgres | Self::Mysql => true,
            Self::Sqlite => false,
        }
    }

    /// The tail of a `SELECT` that locks the rows it reads until the transaction
    /// ends; none on SQLite, whose transactions hold the write lock from their start.
    pub(crate) fn lock_rows(self) -> &'static str {
        match self {
            Self::Postgres | Self::Mysql => " FOR UPDATE",
            Self::Sqlite => "",
        }
    }

    /// `insert` (one row) made a no-op when a row with its key exists: it then
    /// affects 0 rows, else 1.
    pub(crate) fn insert_if_absent(self, insert: &str) -> String {
        match self {
            Self::Mysql => insert.replacen("INSERT INTO", "INSERT IGNORE INTO", 1),
            Self::Sqlite | Self::Postgres => format!("{insert} ON CONFLICT DO NOTHING"),
        }
    }

    /// Whether the engine can notify other connections (PostgreSQL `NOTIFY`).
    pub(crate) fn notifies(self) -> bool {
        match self {
            Self::Postgres => true,
            Self::Sqlite | Self::Mysql => false,
        }
    }

    /// How an idle job worker hears of new work without polling, if it can: a
    /// notification the enqueue sends (PostgreSQL), any commit to the database file,
    /// which the worker then checks for due jobs (SQLite), or a short-interval check for
    /// due jobs (MySQL/MariaDB, which can notify no one).
    pub(crate) fn change_feed(self) -> Option<ChangeFeed> {
        match self {
            Self::Postgres => Some(ChangeFeed::Notifications),
            Self::Sqlite => Some(ChangeFeed::Commits),
            Self::Mysql => Some(ChangeFeed::DueChecks),
        }
    }

    /// Whether the engine runs DDL inside a transaction (MySQL commits it instead).
    pub(crate) fn transactional_ddl(self) -> bool {
        match self {
            Self::Sqlite | Self::Postgres => true,
            Self::Mysql => false,
        }
    }

    /// The type of unbounded text in the kernel's own tables (MySQL's TEXT stops at 64 KiB).
    pub(crate) fn long_text(self) -> &'static str {
        match self {
            Self::Mysql => "LONGTEXT",
            Self::Sqlite | Self::Postgres => "TEXT",
        }
    }

    /// An index on `columns` of a kernel table: inside its `CREATE TABLE` on MySQL (which
    /// has no `CREATE INDEX IF NOT EXISTS`), else a statement of its own. Returns the
    /// clause for the table and the statement to run after it.
    pub(crate) fn kernel_index(self, table: &str, name: &str, columns: &str) -> (String, Option<String>) {
        match self {
            Self::Mysql => (format!(", INDEX {name} ({columns})"), None),
            Self::Sqlite | Self::Postgres => {
                (String::new(), Some(format!("CREATE INDEX IF NOT EXISTS {name} ON [{table}] ({columns})")))
            }
        }
    }

    /// How migration runners take turns: the statement that takes the lock inside a
    /// file's transaction (answering `locked` = 1 once held) and, for a session lock, the
    /// one that frees it once the transaction has ended; `None` where the transaction
    /// itself holds the database's one write lock (SQLite's `BEGIN IMMEDIATE`). The lock
    /// is per schema on PostgreSQL and per database on MySQL, so other schemas' runners
    /// do not wait.
    pub(crate) fn migration_lock(self) -> Option<(&'static str, Option<&'static str>)> {
        match self {
            Self::Sqlite => None,
            // Freed with the transaction; waits as long as the runner ahead takes.
            Self::Postgres => {
                Some(("SELECT pg_advisory_xact_lock(hashtext('kernel_migrations:' || current_schema()))", None))
            }
            // A session lock (MySQL DDL commits the transaction), freed explicitly and when
            // the connection closes; a runner waits up to an hour for the one ahead.
            Self::Mysql => Some((
                "SELECT GET_LOCK(CONCAT('kernel_migrations:', MD5(DATABASE())), 3600) AS locked",
                Some("SELECT RELEASE_LOCK(CONCAT('kernel_migrations:', MD5(DATABASE()))) AS released"),
            )),
        }
    }

    /// Whether SQLite's declared types decide what a read returns (type affinity).
    pub(crate) fn has_type_affinity(self) -> bool {
        match self {
            Self::Sqlite => true,
            Self::Postgres | Self::Mysql => false,
        }
    }
}

/// `CREATE TABLE` options after the column list.
pub(crate) fn table_options(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Mysql => " DEFAULT CHARSET=utf8mb4",
        _ => "",
    }
}

/// A validated `order_by` clause rewritten with quoted identifiers.
///
/// Accepts `[col]` or `col`, each optionally followed by `ASC` or `DESC`, separated by commas.
pub(crate) fn order_by(kind: DatabaseKind, clause: &str) -> Result<String, DbError> {
    let bad = || DbError::InvalidOrderBy { clause: clause.to_owned() };
    let mut parts = Vec::new();
    for item in clause.split(',') {
        let mut words = item.split_whitespace();
        let column = words.next().ok_or_else(bad)?;
        let column = column.strip_prefix('[').and_then(|c| c.strip_suffix(']')).unwrap_or(column);
        validate_identifier(column).map_err(|_| bad())?;
        let direction = match words.next().map(str::to_ascii_uppercase).as_deref() {
            None | Some("ASC") => "ASC",
            Some("DESC") => "DESC",
            Some(_) => return Err(bad()),
        };
        if words.next().is_some() {
            return Err(bad());
        }
        parts.push(format!("{} {direction}", quote_unchecked(kind, column)));
    }
    Ok(parts.join(", "))
}

#[cfg(test)]
#[path = "dialect_tests.rs"]
mod tests;
