"""Peers for bench/redis-bench.sh (not a test): data generation and the two
copy algorithms ferry is compared with, written with the `redis` package.

  gen URL N          N keys of mixed types (70% string, 10% hash, 10% list,
                     5% set, 5% zset), 30% of them with a TTL of 1-2 hours
  seed FROM TO       the seed's hot-migration algorithm: SCAN COUNT 100, a
                     pipeline of TTL + DUMP per page, a pipeline of RESTORE
                     ... REPLACE (the seed's 10 ms sleep is left out, and a
                     key without TTL gets 0 instead of the -1 RESTORE refuses)
  migrate FROM TO    MIGRATE host port "" 0 5000 COPY REPLACE KEYS ... per
                     SCAN page of 1000
"""
import sys
from urllib.parse import urlparse

import redis


def client(url):
    return redis.Redis.from_url(url)


def gen(url, n):
    r = client(url)
    p = r.pipeline(transaction=False)
    for i in range(n):
        kind = i % 20
        key = f"bench:{i}"
        if kind < 14:
            p.set(key, "v" * 64)
        elif kind < 16:
            p.hset(key, mapping={"a": "1", "b": "2", "c": "x" * 32})
        elif kind < 18:
            p.rpush(key, "a", "b", "c", "d")
        elif kind < 19:
            p.sadd(key, "x", "y", "z")
        else:
            p.zadd(key, {"m1": 1, "m2": 2, "m3": 3})
        if i % 10 < 3:
            p.pexpire(key, 3600000 + (i % 3600000))
        if i % 1000 == 999:
            p.execute()
    p.execute()


def seed(src_url, dst_url):
    src, dst = client(src_url), client(dst_url)
    cursor = 0
    while True:
        cursor, keys = src.scan(cursor=cursor, count=100)
        if keys:
            p = src.pipeline(transaction=False)
            for k in keys:
                p.ttl(k)
                p.dump(k)
            got = p.execute()
            w = dst.pipeline(transaction=False)
            for i, k in enumerate(keys):
                ttl, payload = got[2 * i], got[2 * i + 1]
                if payload is None:
                    continue
                w.restore(k, max(ttl, 0) * 1000, payload, replace=True)
            w.execute()
        if cursor == 0:
            break


def migrate(src_url, dst_url):
    src = client(src_url)
    dst = urlparse(dst_url)
    cursor = 0
    while True:
        cursor, keys = src.scan(cursor=cursor, count=1000)
        if keys:
            src.execute_command("MIGRATE", dst.hostname, dst.port, "", 0, 5000, "COPY",
                                "REPLACE", "KEYS", *keys)
        if cursor == 0:
            break


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2], int(sys.argv[3]))
    elif cmd == "seed":
        seed(sys.argv[2], sys.argv[3])
    elif cmd == "migrate":
        migrate(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: redis_peers.py gen|seed|migrate ...")
