-- Cameras, the grid they sit in, and every change of their status.
-- Times are milliseconds since the Unix epoch (UTC) in *_ms columns.

CREATE TABLE grid_cells (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    level         INTEGER NOT NULL CHECK (level BETWEEN 1 AND 3),
    parent_id     TEXT,
    retired_at_ms INTEGER,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX grid_cells_parent ON grid_cells (parent_id);

CREATE TABLE cameras (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    url                  TEXT NOT NULL,
    has_credentials      INTEGER NOT NULL,
    codec                TEXT NOT NULL,
    transport            TEXT NOT NULL,
    lon                  REAL NOT NULL,
    lat                  REAL NOT NULL,
    mounting_height_m    REAL NOT NULL,
    bearing_deg          REAL NOT NULL,
    hfov_deg             REAL NOT NULL,
    width_px             INTEGER NOT NULL,
    height_px            INTEGER NOT NULL,
    kind                 TEXT NOT NULL,
    owner                TEXT NOT NULL,
    grid_cell_id         TEXT,
    profile              TEXT NOT NULL,
    enabled              INTEGER NOT NULL,
    status               TEXT NOT NULL,
    status_reason        TEXT NOT NULL,
    status_since_ms      INTEGER NOT NULL,
    config_source        TEXT NOT NULL,
    config_hash          TEXT NOT NULL,
    created_at_ms        INTEGER NOT NULL,
    updated_at_ms        INTEGER NOT NULL,
    decommissioned_at_ms INTEGER
);
CREATE INDEX cameras_kind ON cameras (kind);
CREATE INDEX cameras_status ON cameras (status);
CREATE INDEX cameras_grid_cell ON cameras (grid_cell_id);
CREATE INDEX cameras_position ON cameras (lat, lon);

CREATE TABLE camera_status_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id   TEXT NOT NULL REFERENCES cameras (id),
    at_ms       INTEGER NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX camera_status_history_camera ON camera_status_history (camera_id, at_ms);
