-- Alerts for the monitoring room: the alerts, their audit trail, the change feed that SSE, MQTT
-- and webhooks read (its sequence number is the SSE event id), the webhook outbox, consumer
-- cursors, and API tokens (stored hashed).

CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL,
    title            TEXT NOT NULL,
    cameras          TEXT NOT NULL,
    grid_cell_id     TEXT,
    ring_id          TEXT,
    detail           TEXT NOT NULL,
    count            INTEGER NOT NULL,
    escalation_level INTEGER NOT NULL,
    first_at_ms      INTEGER NOT NULL,
    last_at_ms       INTEGER NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL,
    assignee         TEXT,
    ack_by           TEXT,
    ack_at_ms        INTEGER,
    resolved_by      TEXT,
    resolved_at_ms   INTEGER,
    resolve_note     TEXT
);
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_key ON alerts (dedupe_key, status);
CREATE INDEX alerts_kind ON alerts (kind, id);

CREATE TABLE alert_audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at_ms    INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX alert_audit_alert ON alert_audit (alert_id, id);

CREATE TABLE alert_feed (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at_ms    INTEGER NOT NULL,
    change   TEXT NOT NULL,
    payload  TEXT NOT NULL
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    seq             INTEGER NOT NULL,
    target          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    delivered_at_ms INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox (delivered_at_ms, next_attempt_ms);

CREATE TABLE cursors (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL,
    hash            TEXT NOT NULL UNIQUE,
    created_at_ms   INTEGER NOT NULL,
    revoked_at_ms   INTEGER,
    last_used_at_ms INTEGER
);
