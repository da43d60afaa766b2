-- Detection: watchlists (布控) of plates, and what a plate reader knows about a passage beyond
-- the plate itself (per-character confidences, crops, its track, the lane).

-- A plate (or a pattern of plates) to watch for. Revoking keeps the row: who watched for what,
-- when and why stays on record.
CREATE TABLE watchlists (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Normalised plate ('exact', 'fuzzy') or pattern with * and ? ('wildcard').
    pattern        TEXT NOT NULL,
    -- 'exact', 'wildcard' or 'fuzzy'.
    match_kind     TEXT NOT NULL,
    -- Fuzzy entries: the largest weighted edit distance that still hits; NULL otherwise.
    max_distance   REAL,
    reason         TEXT NOT NULL,
    -- 'low', 'medium', 'high' or 'critical'.
    priority       TEXT NOT NULL,
    valid_from_ms  INTEGER NOT NULL,
    valid_until_ms INTEGER,
    owner          TEXT,
    created_at_ms  INTEGER NOT NULL,
    created_by     TEXT,
    updated_at_ms  INTEGER,
    updated_by     TEXT,
    revoked_at_ms  INTEGER,
    revoked_by     TEXT
);
CREATE INDEX watchlists_live ON watchlists (revoked_at_ms, valid_until_ms);

-- GA/T 1400 MotorVehicle: PlateReliability per character, plate and scene pictures, lane.
ALTER TABLE passages ADD COLUMN plate_reliabilities TEXT;
ALTER TABLE passages ADD COLUMN plate_image TEXT;
ALTER TABLE passages ADD COLUMN context_image TEXT;
ALTER TABLE passages ADD COLUMN track_id TEXT;
ALTER TABLE passages ADD COLUMN frames INTEGER;
ALTER TABLE passages ADD COLUMN lane_no INTEGER;
-- Passage queries without a plate or camera: newest first.
CREATE INDEX passages_time ON passages (pass_time_ms, id);
