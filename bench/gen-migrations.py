#!/usr/bin/env python3
"""Generates N realistic migrations in one tool's file format.

usage: bench/gen-migrations.py N DIR TOOL
  TOOL: ferry | dbmate | sql-migrate | node-pg-migrate | psql

Every tool gets the same SQL in the same order. Migrations come in groups of
four about one table t<k> (k = i // 4):

  0  CREATE TABLE t<k> (id, name, created_at, amount, a foreign key to t<k-1>)
  1  ALTER TABLE t<k> ADD COLUMN ... (two columns)
  2  CREATE INDEX on t<k>
  3  INSERT a few rows into t<k>

Versions are 14-digit timestamps one minute apart from 2024-01-01 00:00 UTC
(YYYYMMDDHHMMSS), the default style of ferry and dbmate; sql-migrate and
node-pg-migrate order by the same numeric prefix. DIR is created and must be
empty (or missing).

File formats:
  ferry            VERSION_name.sql    -- ferry:up / -- ferry:down
  dbmate           VERSION_name.sql    -- migrate:up / -- migrate:down
  sql-migrate      VERSION_name.sql    -- +migrate Up / -- +migrate Down
  node-pg-migrate  VERSION_name.sql    -- Up Migration / -- Down Migration
  psql             VERSION_name.sql    the up SQL only, for `psql -1 -f ... -f ...`
"""
import datetime
import os
import sys

MARKERS = {
    "ferry": ("-- ferry:up", "-- ferry:down"),
    "dbmate": ("-- migrate:up", "-- migrate:down"),
    "sql-migrate": ("-- +migrate Up", "-- +migrate Down"),
    "node-pg-migrate": ("-- Up Migration", "-- Down Migration"),
    "psql": (None, None),
}

BASE = datetime.datetime(2024, 1, 1, 0, 0, 0)


def version(i):
    return (BASE + datetime.timedelta(minutes=i)).strftime("%Y%m%d%H%M%S")


def migration(i):
    """(name, up_sql, down_sql) of migration i (0-based)."""
    k, step = divmod(i, 4)
    t = f"t{k:05d}"
    if step == 0:
        parent = f",\n  parent_id bigint REFERENCES t{k - 1:05d} (id)" if k > 0 else ""
        up = (
            f"CREATE TABLE {t} (\n"
            f"  id bigserial PRIMARY KEY,\n"
            f"  name text NOT NULL,\n"
            f"  created_at timestamptz NOT NULL DEFAULT now(),\n"
            f"  amount numeric(12, 2) NOT NULL DEFAULT 0{parent}\n"
            f");\n"
        )
        down = f"DROP TABLE {t};\n"
        name = f"create_{t}"
    elif step == 1:
        up = (
            f"ALTER TABLE {t} ADD COLUMN email text;\n"
            f"ALTER TABLE {t} ADD COLUMN active boolean NOT NULL DEFAULT true;\n"
        )
        down = f"ALTER TABLE {t} DROP COLUMN active;\nALTER TABLE {t} DROP COLUMN email;\n"
        name = f"add_email_active_to_{t}"
    elif step == 2:
        up = f"CREATE INDEX {t}_name_created_idx ON {t} (name, created_at);\n"
        down = f"DROP INDEX {t}_name_created_idx;\n"
        name = f"index_{t}_name"
    else:
        up = (
            f"INSERT INTO {t} (name, amount, email) VALUES\n"
            f"  ('alpha', 10.50, 'alpha@example.com'),\n"
            f"  ('beta', 20.00, 'beta@example.com'),\n"
            f"  ('gamma', 3.25, NULL);\n"
        )
        down = f"DELETE FROM {t} WHERE name IN ('alpha', 'beta', 'gamma');\n"
        name = f"seed_{t}"
    return name, up, down


def main(argv):
    if len(argv) != 4 or argv[3] not in MARKERS:
        sys.stderr.write(__doc__)
        return 2
    n, out, tool = int(argv[1]), argv[2], argv[3]
    os.makedirs(out, exist_ok=True)
    if os.listdir(out):
        sys.stderr.write(f"gen-migrations: {out} is not empty\n")
        return 1
    up_marker, down_marker = MARKERS[tool]
    for i in range(n):
        name, up, down = migration(i)
        if up_marker is None:
            text = up
        else:
            text = f"{up_marker}\n{up}\n{down_marker}\n{down}"
        with open(os.path.join(out, f"{version(i)}_{name}.sql"), "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
