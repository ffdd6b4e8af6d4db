-- Which process a conductor row belongs to: the host it runs on and its process id, so that a
-- process refuses to start under the name of a live one, and a restart after a crash on the
-- same host is not mistaken for a live twin.
ALTER TABLE conductors ADD COLUMN host TEXT;
ALTER TABLE conductors ADD COLUMN pid BIGINT;
