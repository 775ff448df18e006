-- ferry:up
-- The application's users, as they were before the email-verification change.
CREATE TABLE users (
  id integer PRIMARY KEY,
  email text NOT NULL UNIQUE,
  email_verified boolean NOT NULL DEFAULT false,
  verification_token varchar(255),
  created_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);
INSERT INTO users (id, email, email_verified, verification_token) VALUES
  (1, 'ana@example.com', true, NULL),
  (2, 'bo@example.com', false, 'tok-2'),
  (3, 'chen@example.com', true, NULL);

-- ferry:down
DROP TABLE users;
