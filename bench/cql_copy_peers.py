#!/usr/bin/env python3
"""Peers for bench/cql-copy-bench.sh (not part of ferry).

  seed PG_DSN CQL_HOST CQL_PORT USER PASSWORD [--workers N] [--batch N]
      Seed 000's migrator as its guide writes it: a producer reads messages
      from PostgreSQL in pages of --batch rows (ORDER BY id OFFSET/LIMIT, as
      GetMessagesBatch does) and hands each page to one of --workers worker
      threads, which write every message with one prepared INSERT and wait
      for it before the next (session.execute). Python driver for Cassandra.

  count CQL_HOST CQL_PORT USER PASSWORD [--table KS.TABLE]
      Prints the number of rows in KS.TABLE (chat_keyspace.messages_by_room).
"""
import argparse
import queue
import sys
import threading

import psycopg
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster

INSERT = ("INSERT INTO chat_keyspace.messages_by_room "
          "(room_id, bucket, created_at, message_id, sender_id, content, type, updated_at, deleted_at) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
SELECT = ("SELECT room_id, created_at, id, sender_id, content, message_type, updated_at, deleted_at "
          "FROM room_message ORDER BY id OFFSET %s LIMIT %s")


def session_for(host, port, user, password):
    cluster = Cluster([host], port=port, auth_provider=PlainTextAuthProvider(user, password),
                      protocol_version=4)
    return cluster, cluster.connect()


def seed(args):
    cluster, session = session_for(args.host, args.port, args.user, args.password)
    insert = session.prepare(INSERT)
    work = queue.Queue(maxsize=args.workers * 2)
    errors = []
    done = [0]
    lock = threading.Lock()

    def worker():
        while True:
            batch = work.get()
            if batch is None:
                return
            for (room_id, created_at, mid, sender, content, mtype, updated, deleted) in batch:
                try:
                    session.execute(insert, (room_id, created_at.date(), created_at, mid, sender,
                                             content, mtype, updated, deleted))
                except Exception as e:  # the seed logs and counts failures
                    with lock:
                        errors.append(str(e))
            with lock:
                done[0] += len(batch)

    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for t in threads:
        t.start()
    with psycopg.connect(args.dsn) as pg:
        offset = 0
        while True:
            rows = pg.execute(SELECT, (offset, args.batch)).fetchall()
            if not rows:
                break
            work.put(rows)
            offset += args.batch
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join()
    cluster.shutdown()
    print(f"seed migrator: {done[0]} messages, {len(errors)} failed")
    return 1 if errors else 0


def count(args):
    cluster, session = session_for(args.host, args.port, args.user, args.password)
    session.default_timeout = 600
    row = session.execute(f"SELECT count(*) FROM {args.table}").one()
    cluster.shutdown()
    print(row[0])
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed")
    s.add_argument("dsn")
    c = sub.add_parser("count")
    for a in (s, c):
        a.add_argument("host")
        a.add_argument("port", type=int)
        a.add_argument("user")
        a.add_argument("password")
    s.add_argument("--workers", type=int, default=10)
    s.add_argument("--batch", type=int, default=1000)
    c.add_argument("--table", default="chat_keyspace.messages_by_room")
    args = p.parse_args()
    return seed(args) if args.cmd == "seed" else count(args)


if __name__ == "__main__":
    sys.exit(main())
