-- ferry:up
-- A partial index for the new column. On a large PostgreSQL table write
-- CREATE INDEX CONCURRENTLY instead: ferry sees that it cannot run in a
-- transaction and runs the file statement by statement.
-- ferry:lint-ignore create-index-non-concurrently the quickstart runs on SQLite (./ferry.db), which has no CONCURRENTLY
CREATE INDEX idx_users_email_verified_v2 ON users (email_verified_v2)
  WHERE email_verified_v2 IS NOT NULL;

-- ferry:down
DROP INDEX idx_users_email_verified_v2;
