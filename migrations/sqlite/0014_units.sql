-- Patrol units (patrol cars, motorcycles, foot patrols, checkpoint posts) with the station and
-- grid cell they belong to and their status, and the track of positions each one reports. The
-- newest position (by its own time) is kept on the unit's row too, for the map and for dispatch,
-- so that neither reads the tracks.
CREATE TABLE units (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    station         TEXT NOT NULL,
    grid_cell       TEXT,
    status          TEXT NOT NULL,
    status_since_ms INTEGER NOT NULL,
    alert_id        INTEGER,
    created_at_ms   INTEGER NOT NULL,
    retired_at_ms   INTEGER,
    at_ms           INTEGER,
    lon             REAL,
    lat             REAL,
    speed_mps       REAL,
    heading_deg     REAL,
    accuracy_m      REAL
);

-- One row per position a unit reported, by the time it was taken: a tracker that sends the same
-- position again (a retry, a replay) adds nothing. received_ms is when it reached the registry.
CREATE TABLE unit_positions (
    unit_id     TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    lon         REAL NOT NULL,
    lat         REAL NOT NULL,
    speed_mps   REAL,
    heading_deg REAL,
    accuracy_m  REAL,
    source      TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (unit_id, at_ms)
);
CREATE INDEX unit_positions_at ON unit_positions (at_ms);
