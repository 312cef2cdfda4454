-- As 0001_create_projects.sql, in MySQL's types: keys and indexed columns are VARCHAR.
CREATE TABLE projects (
    id VARCHAR(191) PRIMARY KEY,
    created_at VARCHAR(40),
    updated_at VARCHAR(40),
    deleted_at VARCHAR(40),
    workspace_id VARCHAR(191) NOT NULL,
    name LONGTEXT NOT NULL,
    processed BOOLEAN
) DEFAULT CHARSET=utf8mb4;

CREATE INDEX projects_workspace_id_created_at_idx ON projects (workspace_id, created_at);
