-- The projects of each workspace, with the entity API's own columns (id, created_at,
-- updated_at) and deleted_at for soft deletes. PostgreSQL and SQLite; MySQL has its own
-- file (0001_create_projects.mysql.sql), since it cannot index or key a TEXT column.
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    created_at TEXT,
    updated_at TEXT,
    deleted_at TEXT,
    workspace_id TEXT NOT NULL,
    name TEXT NOT NULL,
    processed BOOLEAN
);

-- The list route filters by workspace and sorts by creation.
CREATE INDEX projects_workspace_id_created_at_idx ON projects (workspace_id, created_at);
