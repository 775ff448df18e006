-- ferry:up
-- Step 3: copy the old values into the new columns (step 2, dual writes, is
-- an application deploy). This table is small; for millions of rows use a
-- batched backfill instead of one UPDATE.
UPDATE users
   SET email_verified_v2 = email_verified,
       verification_token_v2 = verification_token,
       verified_at_v2 = CASE WHEN email_verified THEN created_at ELSE NULL END
 WHERE email_verified_v2 IS NULL;

-- ferry:down
UPDATE users SET email_verified_v2 = NULL, verification_token_v2 = NULL, verified_at_v2 = NULL;
