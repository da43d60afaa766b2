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
    status_since_ms BIGINT NOT NULL,
    alert_id        BIGINT,
    created_at_ms   BIGINT NOT NULL,
    retired_at_ms   BIGINT,
    at_ms           BIGINT,
    lon             DOUBLE PRECISION,
    lat             DOUBLE PRECISION,
    speed_mps       DOUBLE PRECISION,
    heading_deg     DOUBLE PRECISION,
    accuracy_m      DOUBLE PRECISION
);

-- One row per position a unit reported, by the time it was taken: a tracker that sends the same
-- position again (a retry, a replay) adds nothing. received_ms is when it reached the registry.
CREATE TABLE unit_positions (
    unit_id     TEXT NOT NULL,
    at_ms       BIGINT NOT NULL,
    lon         DOUBLE PRECISION NOT NULL,
    lat         DOUBLE PRECISION NOT NULL,
    speed_mps   DOUBLE PRECISION,
    heading_deg DOUBLE PRECISION,
    accuracy_m  DOUBLE PRECISION,
    source      TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (unit_id, at_ms)
);
CREATE INDEX unit_positions_at ON unit_positions (at_ms);
