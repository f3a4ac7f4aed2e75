-- The git repository a project was created from: its clone URL (no credential: the token is the
-- owner's forge connection's) and the branch or tag; both empty for a project from a prompt.
ALTER TABLE projects ADD COLUMN repository_url TEXT NOT NULL DEFAULT '';
--bun:split
ALTER TABLE projects ADD COLUMN repository_ref TEXT NOT NULL DEFAULT '';
