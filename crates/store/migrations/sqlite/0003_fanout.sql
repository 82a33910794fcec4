-- Fan-out of one signal to many users (issue 4). Keep it in step with ../postgres/0003_fanout.sql.
--
-- The router decides a signal's recipients in memory and makes the decision durable as one row here, the
-- signal's audience, in a transaction fenced by the router lease. The per-user rows of signal_notifications
-- are written from it afterwards, in batches ("materialised"); UNIQUE (signal_id, user_id) there stays the
-- final guard against a second notification.

CREATE TABLE signal_audiences (
    signal_id       INTEGER PRIMARY KEY REFERENCES signals (id),
    -- Copied from the signal, as on every notification written from it.
    symbol          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    -- The recipients' user ids, ascending, each as the LEB128 varint of its difference from the previous one.
    recipients      BLOB NOT NULL,
    recipient_count INTEGER NOT NULL,
    -- How many recipients, in order, have their notification row: the materialiser's progress.
    materialised    INTEGER NOT NULL DEFAULT 0 CHECK (materialised BETWEEN 0 AND recipient_count),
    routed_at       TEXT NOT NULL
);

CREATE INDEX signal_audiences_pending ON signal_audiences (signal_id) WHERE materialised < recipient_count;

-- At most one router routes at a time: it holds the row's current epoch. Taking the lease over bumps the
-- epoch, and every routing write checks its epoch in its own transaction, so a router that lost the lease
-- writes nothing.
CREATE TABLE router_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    expires_at TEXT NOT NULL
);

-- Bumped whenever a user or their settings change, so the router knows when its cached list is stale.
CREATE TABLE routing_versions (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO routing_versions (name, value) VALUES ('users', 0);

CREATE TRIGGER users_insert_routing_version AFTER INSERT ON users
BEGIN UPDATE routing_versions SET value = value + 1 WHERE name = 'users'; END;
CREATE TRIGGER users_update_routing_version AFTER UPDATE ON users
BEGIN UPDATE routing_versions SET value = value + 1 WHERE name = 'users'; END;
CREATE TRIGGER users_delete_routing_version AFTER DELETE ON users
BEGIN UPDATE routing_versions SET value = value + 1 WHERE name = 'users'; END;
CREATE TRIGGER user_settings_insert_routing_version AFTER INSERT ON user_settings
BEGIN UPDATE routing_versions SET value = value + 1 WHERE name = 'users'; END;
CREATE TRIGGER user_settings_update_routing_version AFTER UPDATE ON user_settings
BEGIN UPDATE routing_versions SET value = value + 1 WHERE name = 'users'; END;
CREATE TRIGGER user_settings_delete_routing_version AFTER DELETE ON user_settings
BEGIN UPDATE routing_versions SET value = value + 1 WHERE name = 'users'; END;

-- Changes to what counts toward the cap and the cooldown that the router did not make itself: a
-- notification given up on (or taken back from given up), and one written other than from an audience.
-- The lease holder consumes them; counts says whether the notification now counts.
CREATE TABLE routing_limit_changes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    signal_id  INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    symbol     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    counts     INTEGER NOT NULL
);

CREATE TRIGGER signal_notifications_status_limit_change AFTER UPDATE OF status ON signal_notifications
WHEN (OLD.status = 'failed') <> (NEW.status = 'failed')
BEGIN
    INSERT INTO routing_limit_changes (signal_id, user_id, symbol, created_at, counts)
    VALUES (NEW.signal_id, NEW.user_id, NEW.symbol, NEW.created_at, NEW.status <> 'failed');
END;

CREATE TRIGGER signal_notifications_insert_limit_change AFTER INSERT ON signal_notifications
WHEN NEW.status <> 'failed' AND NOT EXISTS (SELECT 1 FROM signal_audiences a WHERE a.signal_id = NEW.signal_id)
BEGIN
    INSERT INTO routing_limit_changes (signal_id, user_id, symbol, created_at, counts)
    VALUES (NEW.signal_id, NEW.user_id, NEW.symbol, NEW.created_at, 1);
END;
