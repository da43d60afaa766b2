-- The event spine. The event log gets lanes (urgent / normal / bulk, read apart so a flood of
-- one never queues another) and idempotency keys; passages get a key that makes a retried write
-- a no-op; an alert key has at most one open alert; each consumer of the alert feed (webhook
-- receivers, MQTT) keeps its own acknowledged position, which replaces the webhook outbox.

ALTER TABLE events ADD COLUMN lane INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN key TEXT;
UPDATE events SET lane = 0 WHERE kind IN ('alarm', 'watchlist_hit', 'ring_crossing');
UPDATE events SET lane = 2 WHERE kind IN ('motion', 'quality_fault', 'quality_cleared', 'passage');
CREATE UNIQUE INDEX events_key ON events (key);
CREATE INDEX events_lane ON events (lane, id);

ALTER TABLE passages ADD COLUMN passage_key TEXT;
CREATE UNIQUE INDEX passages_key ON passages (passage_key);

-- Older versions could leave two open alerts of one key; the newest stays open.
UPDATE alerts SET status = 'resolved', resolved_by = 'system', resolved_at_ms = updated_at_ms,
    resolve_note = 'a newer open alert of the same key supersedes it (migration 0007)'
WHERE status <> 'resolved'
  AND id NOT IN (SELECT MAX(id) FROM alerts WHERE status <> 'resolved' GROUP BY dedupe_key);
CREATE UNIQUE INDEX alerts_open_key ON alerts (dedupe_key) WHERE status <> 'resolved';

-- The alert engine read one cursor over all events; it now keeps one per lane.
INSERT INTO cursors (consumer, position)
    SELECT 'alerts.' || lane_name, position FROM cursors,
        (SELECT 'urgent' AS lane_name UNION ALL SELECT 'normal' UNION ALL SELECT 'bulk') AS lanes
    WHERE consumer = 'alerts.events'
ON CONFLICT (consumer) DO NOTHING;
DELETE FROM cursors WHERE consumer = 'alerts.events';

-- Each webhook receiver resumes at its first undelivered change (or after its last delivered one).
INSERT INTO cursors (consumer, position)
    SELECT 'webhook:' || target, COALESCE(MIN(CASE WHEN delivered_at_ms IS NULL THEN seq END) - 1, MAX(seq))
    FROM outbox WHERE true GROUP BY target
ON CONFLICT (consumer) DO NOTHING;
DROP TABLE outbox;

-- The events a passage raised, so that a retried passage answers what the first one did.
ALTER TABLE passages ADD COLUMN event_ids TEXT;
