-- Seed 000's chat application on PostgreSQL: rooms, their members, their
-- messages and per-user message metadata (read receipts).
CREATE TABLE room (
    id          bigint PRIMARY KEY,
    name        text NOT NULL,
    creator_id  bigint NOT NULL,
    is_private  boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE room_member (
    room_id     bigint NOT NULL REFERENCES room (id),
    user_id     bigint NOT NULL,
    role        text NOT NULL DEFAULT 'member',
    joined_at   timestamptz NOT NULL,
    removed_at  timestamptz,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE room_message (
    id            bigint PRIMARY KEY,
    room_id       bigint NOT NULL REFERENCES room (id),
    sender_id     bigint NOT NULL,
    content       text NOT NULL,
    message_type  text NOT NULL DEFAULT 'text',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz
);

CREATE TABLE room_message_meta (
    message_id  bigint NOT NULL REFERENCES room_message (id),
    user_id     bigint NOT NULL,
    room_id     bigint NOT NULL,
    read_at     timestamptz,
    is_deleted  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (message_id, user_id)
);

CREATE INDEX room_message_room_created ON room_message (room_id, created_at DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX room_member_user_room ON room_member (user_id, room_id)
    WHERE removed_at IS NULL;
