-- A change after the first release: projects get an optional description. One file for
-- every engine: this statement reads the same on all three.
ALTER TABLE projects ADD COLUMN description TEXT;
