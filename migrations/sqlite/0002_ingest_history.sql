-- Every ingest state transition of a camera (connecting, streaming, stalled, backoff, disabled).
-- Identical failures in a row are recorded once; the supervisor's retries are implied.
CREATE TABLE camera_ingest_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id  TEXT NOT NULL REFERENCES cameras (id),
    at_ms      INTEGER NOT NULL,
    from_state TEXT NOT NULL,
    to_state   TEXT NOT NULL,
    reason     TEXT NOT NULL
);
CREATE INDEX camera_ingest_history_camera ON camera_ingest_history (camera_id, at_ms);
