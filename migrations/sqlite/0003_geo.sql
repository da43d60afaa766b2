-- Geography: road network, cell outlines, entrances, checkpoint rings and their states; the
-- event log other parts consume; checkpoint passages; interceptions.
-- Coordinates are WGS84; lists of points are JSON arrays of [lon, lat].

ALTER TABLE grid_cells ADD COLUMN outline TEXT;
-- 'config' (from the configuration directory; sync retires what it no longer lists) or
-- 'import:<file>' (from an import; config sync leaves it alone).
ALTER TABLE grid_cells ADD COLUMN source TEXT NOT NULL DEFAULT 'config';

CREATE TABLE roads (
    id             TEXT PRIMARY KEY,
    name           TEXT,
    class          TEXT NOT NULL,
    oneway         TEXT NOT NULL,
    coords         TEXT NOT NULL,
    node_ids       TEXT,
    source         TEXT NOT NULL,
    imported_at_ms INTEGER NOT NULL
);

CREATE TABLE entrances (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    road           TEXT,
    lon            REAL NOT NULL,
    lat            REAL NOT NULL,
    grid_cell_id   TEXT,
    source         TEXT NOT NULL,
    imported_at_ms INTEGER NOT NULL
);

CREATE TABLE rings (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    level         INTEGER NOT NULL,
    members       TEXT NOT NULL,
    outline       TEXT,
    source        TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

-- Last known open/closed state of each ring, so that a change is reported once, across restarts.
CREATE TABLE ring_states (
    ring_id  TEXT PRIMARY KEY,
    open     INTEGER NOT NULL,
    since_ms INTEGER NOT NULL,
    detail   TEXT NOT NULL
);

-- Events for the alert engine (ring opened/closed, ring crossings, watchlist hits, …).
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    camera_id TEXT,
    ring_id   TEXT,
    payload   TEXT NOT NULL
);
CREATE INDEX events_kind ON events (kind, at_ms);

-- A vehicle read at a checkpoint (GA/T 1400 MotorVehicle: PassTime, PlateNo, PlateColor,
-- PlateReliability, Direction).
CREATE TABLE passages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id     TEXT NOT NULL,
    pass_time_ms  INTEGER NOT NULL,
    plate_no      TEXT,
    plate_color   TEXT,
    reliability   REAL,
    direction     TEXT,
    heading_deg   REAL,
    source        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX passages_camera ON passages (camera_id, pass_time_ms);
CREATE INDEX passages_plate ON passages (plate_no, pass_time_ms);

-- 围堵截: an incident, the rings and checkpoints armed for it, until it expires or is closed.
CREATE TABLE interceptions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at_ms  INTEGER NOT NULL,
    incident_at_ms INTEGER NOT NULL,
    lon            REAL NOT NULL,
    lat            REAL NOT NULL,
    plate          TEXT,
    note           TEXT NOT NULL,
    status         TEXT NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    closed_at_ms   INTEGER,
    closed_by      TEXT,
    plan           TEXT NOT NULL
);
CREATE INDEX interceptions_status ON interceptions (status);
