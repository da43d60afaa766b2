-- Work orders for maintenance crews and their log (crew notes, photos, and what the system did).
-- One active order (open or closed awaiting verification) per camera and cause.
CREATE TABLE work_orders (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id      TEXT NOT NULL REFERENCES cameras (id),
    cause          TEXT NOT NULL,
    state          TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    crew           TEXT,
    detail         TEXT NOT NULL,
    opened_at_ms   INTEGER NOT NULL,
    due_at_ms      INTEGER NOT NULL,
    closed_at_ms   INTEGER,
    closed_by      TEXT,
    verified_at_ms INTEGER,
    reopen_count   INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL
);
CREATE UNIQUE INDEX work_orders_active ON work_orders (camera_id, cause) WHERE state <> 'verified';
CREATE INDEX work_orders_state ON work_orders (state, due_at_ms);
CREATE INDEX work_orders_camera ON work_orders (camera_id, opened_at_ms);

CREATE TABLE work_order_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id INTEGER NOT NULL REFERENCES work_orders (id),
    at_ms    INTEGER NOT NULL,
    author   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    text     TEXT NOT NULL,
    photo    TEXT
);
CREATE INDEX work_order_log_order ON work_order_log (order_id, id);
