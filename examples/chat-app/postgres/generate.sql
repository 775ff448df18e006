-- Realistic chat data for examples/chat-app (psql variables, all optional):
--   psql "$DATABASE_URL" -v rooms=1000 -v messages=100000 -f generate.sql
-- Message counts per room are skewed (a few busy rooms, a long tail), as in
-- a real chat: room = 1 + floor(rooms * random()^3). Times are whole
-- milliseconds (CQL timestamps hold milliseconds) over the last 90 days.
-- Deterministic: setseed() makes every run produce the same rows.
\if :{?rooms} \else \set rooms 100 \endif
\if :{?messages} \else \set messages 10000 \endif
\if :{?users} \else \set users 5000 \endif
SELECT setseed(0.42) \gset

INSERT INTO room (id, name, creator_id, is_private, created_at, updated_at)
SELECT r, 'room ' || r, 1 + (r * 7919) % :users, r % 5 = 0,
       date_trunc('milliseconds', timestamptz '2026-09-01 00:00:00+00' + r * interval '1 minute'),
       date_trunc('milliseconds', timestamptz '2026-09-01 00:00:00+00' + r * interval '1 minute')
FROM generate_series(1, :rooms) AS r;

INSERT INTO room_member (room_id, user_id, role, joined_at)
SELECT r, 1 + (r * 31 + m * 7919) % :users, CASE WHEN m = 0 THEN 'owner' ELSE 'member' END,
       date_trunc('milliseconds', timestamptz '2026-09-01 00:00:00+00' + (r + m) * interval '1 minute')
FROM generate_series(1, :rooms) AS r, generate_series(0, 4) AS m
ON CONFLICT DO NOTHING;

INSERT INTO room_message (id, room_id, sender_id, content, message_type, created_at, updated_at)
SELECT i, room_id, 1 + (i::bigint * 104729) % :users,
       'message ' || i || ' ' || repeat(chr(97 + (i % 26)), 1 + (i % 120)),
       CASE WHEN i % 50 = 0 THEN 'image' WHEN i % 97 = 0 THEN 'system' ELSE 'text' END,
       created_at, created_at
FROM (SELECT i, 1 + floor(:rooms * power(random(), 3))::bigint AS room_id,
             date_trunc('milliseconds', timestamptz '2026-09-01 00:00:00+00'
                        + random() * interval '90 days') AS created_at
      FROM generate_series(1, :messages) AS i) AS g;

INSERT INTO room_message_meta (message_id, user_id, room_id, read_at, is_deleted)
SELECT id, 1 + (id * 13) % :users, room_id,
       CASE WHEN id % 3 = 0 THEN NULL ELSE created_at + interval '5 minutes' END, false
FROM room_message WHERE id % 4 = 0;

ANALYZE room, room_member, room_message, room_message_meta;
