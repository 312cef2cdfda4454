//! Versioned migrations (issue 15): applied in order and once, refused when an applied
//! file changed or is gone, a failing file named with its statement, and four instances
//! starting at once on an empty database applying each file exactly once.

use super::*;
use app_kernel::db::{MigrateError, MigrationState, Migrations};

const NOTES: &str = "-- the first table\nCREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR(100) NOT NULL);\n";
const SEED: &str = "INSERT INTO notes (id, body) VALUES (1, 'a; b -- not a comment');\n\
                    /* two rows; one file */\nINSERT INTO notes (id, body) VALUES (2, 'it''s');";

const AUDIT_SQLITE: &str = "CREATE TABLE audit (n INTEGER);
CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN
  INSERT INTO audit (n) VALUES (NEW.id);
  UPDATE audit SET n = CASE WHEN n > 100 THEN 0 ELSE n END;
END;
INSERT INTO notes (id, body) VALUES (10, 'x');";
const AUDIT_MYSQL: &str = "CREATE TABLE audit (n INTEGER);
CREATE TRIGGER notes_audit AFTER INSERT ON notes FOR EACH ROW BEGIN
  INSERT INTO audit (n) VALUES (NEW.id);
  IF NEW.id > 100 THEN
    INSERT INTO audit (n) VALUES (0);
  END IF;
END;
INSERT INTO notes (id, body) VALUES (10, 'x');";
const AUDIT_POSTGRES: &str = "CREATE TABLE audit (n INTEGER);
CREATE FUNCTION notes_audit() RETURNS trigger AS $$
BEGIN
  INSERT INTO audit (n) VALUES (NEW.id);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER notes_audit AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION notes_audit();
INSERT INTO notes (id, body) VALUES (10, 'x');";

/// Two files, listed out of order.
fn base() -> Migrations {
    Migrations::new().file("0002_seed.sql", SEED).file("0001_notes.sql", NOTES)
}

async fn count(db: &Db, table: &str) -> i64 {
    let row = db.fetch_optional(&format!("SELECT COUNT(*) AS n FROM [{table}]"), &[]).await.unwrap().unwrap();
    row["n"].as_i64().unwrap_or_else(|| panic!("{row:?}"))
}

async fn states(db: &Db, migrations: &Migrations) -> Vec<(u64, MigrationState)> {
    db.migration_status(migrations).await.unwrap().into_iter().map(|s| (s.version, s.state)).collect()
}

pub(crate) async fn migrations_apply_in_order_and_once(t: TestDb) -> TestDb {
    assert_eq!(states(&t.db, &base()).await, [(1, MigrationState::Pending), (2, MigrationState::Pending)]);
    let applied = t.db.migrate(&base()).await.unwrap();
    let files: Vec<&str> = applied.iter().map(|a| a.file.as_str()).collect();
    assert_eq!(files, ["0001_notes.sql", "0002_seed.sql"]);
    assert!(t.db.migrate(&base()).await.unwrap().is_empty(), "a second run applies nothing");
    let notes = t.db.fetch_all("SELECT [id], [body] FROM [notes] ORDER BY [id]", &[]).await.unwrap();
    let bodies: Vec<&Value> = notes.iter().map(|r| &r["body"]).collect();
    assert_eq!(
        bodies,
        [&json!("a; b -- not a comment"), &json!("it's")],
        "`;` and `--` inside a literal split nothing"
    );

    let recorded = t
        .db
        .fetch_all("SELECT [version], [name], [checksum], [applied_at], [duration_ms] FROM [kernel_migrations] ORDER BY [version]", &[])
        .await
        .unwrap();
    assert_eq!(recorded.len(), 2);
    assert_eq!((&recorded[0]["name"], &recorded[1]["name"]), (&json!("notes"), &json!("seed")));
    for r in &recorded {
        let sum = r["checksum"].as_str().unwrap();
        assert!(sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()), "{r:?}");
        assert!(r["applied_at"].as_str().unwrap().ends_with('Z'), "{r:?}");
    }

    // A later file applies alone; an engine's own file wins over the shared one (MySQL's
    // would fail anywhere else, the shared one nowhere).
    let more = base()
        .file("0003_tags.sql", "CREATE TABLE tags (n VARCHAR(10)) -- the last statement needs no ;")
        .file("0003_tags.mysql.sql", "CREATE TABLE tags (n VARCHAR(10)) ENGINE=InnoDB");
    // Trigger bodies and dollar-quoted functions hold `;`s that end no statement.
    let more = more
        .file("0004_audit.sqlite.sql", AUDIT_SQLITE)
        .file("0004_audit.mysql.sql", AUDIT_MYSQL)
        .file("0004_audit.postgres.sql", AUDIT_POSTGRES);
    let applied = t.db.migrate(&more).await.unwrap();
    assert_eq!(applied.len(), 2);
    assert_eq!(count(&t.db, "audit").await, 1, "the trigger ran once for the file's own insert");
    let expected = match t.db.kind() {
        DatabaseKind::Mysql => "0003_tags.mysql.sql",
        DatabaseKind::Postgres | DatabaseKind::Sqlite => "0003_tags.sql",
    };
    assert_eq!((applied[0].version, applied[0].file.as_str()), (3, expected));
    let status = t.db.migration_status(&more).await.unwrap();
    assert_eq!(status.len(), 4, "{status:?}");
    assert!(status.iter().all(|s| s.state == MigrationState::Applied && s.applied_at.is_some()), "{status:?}");
    t
}

pub(crate) async fn changed_gone_or_late_files_are_refused(t: TestDb) -> TestDb {
    t.db.migrate(&base()).await.unwrap();
    let edited = Migrations::new().file("0001_notes.sql", NOTES.replace("100", "200")).file("0002_seed.sql", SEED);
    let err = t.db.migrate(&edited).await.unwrap_err();
    assert!(matches!(&err, MigrateError::Changed { file, .. } if file == "0001_notes.sql"), "{err}");
    assert!(err.to_string().contains("`0001_notes.sql` was changed after it was applied"), "{err}");
    assert_eq!(states(&t.db, &edited).await, [(1, MigrationState::Changed), (2, MigrationState::Applied)]);
    // Line endings alone change nothing.
    let crlf = Migrations::new().file("0001_notes.sql", NOTES.replace('\n', "\r\n")).file("0002_seed.sql", SEED);
    assert!(t.db.migrate(&crlf).await.unwrap().is_empty());

    let gone = Migrations::new().file("0001_notes.sql", NOTES);
    let err = t.db.migrate(&gone).await.unwrap_err();
    assert!(matches!(&err, MigrateError::Missing { version: 2, name } if name == "seed"), "{err}");
    let status = t.db.migration_status(&gone).await.unwrap();
    assert_eq!((status[1].state, status[1].file.as_ref()), (MigrationState::Missing, None));

    let later = base().file("0004_four.sql", "INSERT INTO notes (id, body) VALUES (4, 'four')");
    t.db.migrate(&later).await.unwrap();
    let late = later.clone().file("0003_three.sql", "INSERT INTO notes (id, body) VALUES (3, 'three')");
    let err = t.db.migrate(&late).await.unwrap_err();
    assert!(matches!(&err, MigrateError::OutOfOrder { file, applied: 4 } if file == "0003_three.sql"), "{err}");
    assert_eq!(count(&t.db, "notes").await, 3, "a refused run changes nothing");
    t
}

pub(crate) async fn a_failing_migration_names_its_file_and_statement(t: TestDb) -> TestDb {
    t.db.migrate(&base()).await.unwrap();
    let unterminated = base().file("0003_open.sql", "SELECT 1;\nINSERT INTO notes (id, body) VALUES (3, 'oops);");
    let err = t.db.migrate(&unterminated).await.unwrap_err();
    assert!(matches!(&err, MigrateError::Malformed { file, line: 2, .. } if file == "0003_open.sql"), "{err}");

    let broken = "CREATE TABLE extra (n INTEGER);\nINSERT INTO notes (id, body) VALUES (3, 'kept?');\n\n\
                  INSERT INTO no_such_table (n) VALUES (1);\nINSERT INTO notes (id, body) VALUES (4, 'never');\n";
    let err = t.db.migrate(&base().file("0003_broken.sql", broken)).await.unwrap_err();
    match &err {
        MigrateError::Failed { file, index, line, statement, .. } => {
            assert_eq!((file.as_str(), *index, *line), ("0003_broken.sql", 3, 4));
            assert_eq!(statement, "INSERT INTO no_such_table (n) VALUES (1)");
        }
        other => panic!("{other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("`0003_broken.sql` failed at statement 3 (line 4): INSERT INTO no_such_table"),
        "{message}"
    );
    let broken_status = t.db.migration_status(&base().file("0003_broken.sql", broken)).await.unwrap();
    assert_eq!(broken_status[2].state, MigrationState::Pending, "a failed file is not recorded");
    let extra = t.db.fetch_all("SELECT * FROM [extra]", &[]).await;
    match t.db.kind() {
        // MySQL commits the CREATE TABLE as it runs, and the INSERT after it with it.
        DatabaseKind::Mysql => {
            assert!(message.contains("MySQL commits DDL as it runs"), "{message}");
            assert!(extra.is_ok());
            assert_eq!(count(&t.db, "notes").await, 3);
        }
        DatabaseKind::Postgres | DatabaseKind::Sqlite => {
            assert!(message.contains("the database is as it was before it"), "{message}");
            assert!(extra.is_err(), "the file's CREATE TABLE was rolled back");
            assert_eq!(count(&t.db, "notes").await, 2, "the file's INSERT was rolled back");
        }
    }
    // Fixed (and safe to run again, for MySQL), it applies.
    let fixed = "CREATE TABLE IF NOT EXISTS extra (n INTEGER);\nDELETE FROM notes WHERE id = 3;\n\
                 INSERT INTO notes (id, body) VALUES (3, 'fixed');";
    assert_eq!(t.db.migrate(&base().file("0003_broken.sql", fixed)).await.unwrap().len(), 1);
    assert_eq!(count(&t.db, "notes").await, 3);
    t
}

pub(crate) async fn instances_starting_together_apply_each_file_once(t: TestDb) -> TestDb {
    // The first file takes a while, so the others start while it runs.
    let counter = "CREATE TABLE counter (runner VARCHAR(20) NOT NULL);\n";
    let files = Migrations::new()
        .file("0001_counter.postgres.sql", format!("{counter}SELECT pg_sleep(0.3);"))
        .file("0001_counter.mysql.sql", format!("{counter}DO SLEEP(0.3);"))
        .file(
            "0001_counter.sqlite.sql",
            format!("{counter}WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300000) SELECT COUNT(*) FROM c;"),
        )
        .file("0002_first.sql", "INSERT INTO counter (runner) VALUES ('first');")
        .file(
            "0003_second.sql",
            "INSERT INTO counter (runner) VALUES ('second');\nINSERT INTO counter (runner) VALUES ('second');",
        );
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(4));
    let mut instances = Vec::new();
    for _ in 0..4 {
        let db = t.connect(SchemaPolicy::default()).await;
        let (files, start) = (files.clone(), start.clone());
        instances.push(tokio::spawn(async move {
            start.wait().await;
            let applied = db.migrate(&files).await.unwrap();
            // Whoever applied them, each instance finds every file applied once it returns.
            let seen = count(&db, "kernel_migrations").await;
            db.close().await;
            (applied.into_iter().map(|a| a.version).collect::<Vec<_>>(), seen)
        }));
    }
    let mut versions = Vec::new();
    for instance in instances {
        let (applied, seen) = instance.await.unwrap();
        assert_eq!(seen, 3);
        versions.extend(applied);
    }
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3], "exactly one instance applied each file");
    assert_eq!(count(&t.db, "kernel_migrations").await, 3);
    let runs =
        t.db.fetch_all("SELECT [runner], COUNT(*) AS n FROM [counter] GROUP BY [runner] ORDER BY [runner]", &[])
            .await
            .unwrap();
    let runs: Vec<(&Value, &Value)> = runs.iter().map(|r| (&r["runner"], &r["n"])).collect();
    assert_eq!(runs, [(&json!("first"), &json!(1)), (&json!("second"), &json!(2))], "each file's effect happened once");
    t
}

pub(crate) async fn a_service_runs_migrations_before_its_tables_and_schema_init(t: TestDb) -> TestDb {
    use app_kernel::db::{ColumnKind, EntityTable};
    let mut settings = app_kernel::KernelSettings::default();
    settings.auth.token_secret = Some(common::TEST_SECRET.to_owned().into());
    settings.database = t.settings().clone();
    settings.database.schema = SchemaPolicy::default();
    settings.observability.log_level = "warn".into();
    for start in 0..2 {
        let service = app_kernel::Service::builder("test_service")
            .settings(settings.clone())
            .migrations(app_kernel::migrations!("examples/migrations/projects"))
            // A declared table completes what the migrations made.
            .table(EntityTable::new("projects").field("priority", ColumnKind::Integer))
            .schema_init(|db| async move {
                // The migrations' table is there when schema_init runs.
                db.execute("DELETE FROM [projects] WHERE [id] = ?", &[json!("seed")]).await?;
                let seed = "INSERT INTO [projects] ([id], [workspace_id], [name]) VALUES (?, ?, ?)";
                db.execute(seed, &[json!("seed"), json!("w0"), json!("seeded")]).await?;
                Ok(())
            })
            .build()
            .await
            .unwrap_or_else(|e| panic!("start {start}: {e}"));
        let db = service.kernel().db().clone();
        let status = db.migration_status(&app_kernel::migrations!("examples/migrations/projects")).await.unwrap();
        assert_eq!(status.len(), 2, "the example's two files: {status:?}");
        assert!(status.iter().all(|s| s.state == MigrationState::Applied), "{status:?}");
        if start == 0 {
            // The entity API works on the migrated table under the closed schema policy.
            let saved = db
                .save_entity("projects", json!({"workspace_id": "w1", "name": "apollo", "description": "moon", "processed": true, "priority": 2}))
                .await
                .unwrap();
            let read = db.get_entity("projects", saved["id"].as_str().unwrap()).await.unwrap().unwrap();
            assert_eq!(
                (&read["processed"], &read["priority"], &read["description"]),
                (&json!(true), &json!(2), &json!("moon"))
            );
        }
        assert_eq!(count(&db, "projects").await, 2, "start {start}");
        db.close().await;
    }
    assert_eq!(count(&t.db, "kernel_migrations").await, 2, "the second start applied nothing");
    t
}
