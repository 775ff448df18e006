-- ferry:up
-- Step 1 of the five-step change (seed 001): new columns, all nullable and
-- without defaults, so adding them is instant and the running application
-- (which does not know them) keeps working.
ALTER TABLE users ADD COLUMN email_verified_v2 boolean;
ALTER TABLE users ADD COLUMN verification_token_v2 varchar(255);
ALTER TABLE users ADD COLUMN verified_at_v2 timestamp;

-- ferry:down
ALTER TABLE users DROP COLUMN verified_at_v2;
ALTER TABLE users DROP COLUMN verification_token_v2;
ALTER TABLE users DROP COLUMN email_verified_v2;
