-- ferry:up
-- Step 5, in a LATER release, once every running application version reads
-- the new columns (step 4). Move this file into migrations/ then.
DROP INDEX IF EXISTS idx_users_email_verified_v2;
ALTER TABLE users DROP COLUMN email_verified;
ALTER TABLE users DROP COLUMN verification_token;
ALTER TABLE users RENAME COLUMN email_verified_v2 TO email_verified;
ALTER TABLE users RENAME COLUMN verification_token_v2 TO verification_token;
ALTER TABLE users RENAME COLUMN verified_at_v2 TO verified_at;
CREATE INDEX idx_users_email_verified ON users (email_verified) WHERE email_verified;
