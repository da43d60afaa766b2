-- Camera assignment by lease (scale-out). Workers heartbeat; each camera is held by at most one
-- live worker through a lease whose epoch (the fencing token) rises every time the camera changes
-- hands. A lease row stays when its holder goes (worker_id NULL or expires_ms in the past), so
-- the next holder's epoch is always above every earlier one. Load is counted from live leases.

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    cores        BIGINT NOT NULL,
    max_cameras  BIGINT NOT NULL,
    profiles     TEXT NOT NULL,
    cpu_share    DOUBLE PRECISION NOT NULL,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);

CREATE TABLE camera_leases (
    camera_id   TEXT PRIMARY KEY,
    worker_id   TEXT,
    epoch       BIGINT NOT NULL,
    acquired_ms BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX camera_leases_worker ON camera_leases (worker_id, expires_ms);
