-- Roles one node holds at a time (the alert writer): the holder, an epoch that rises every time
-- the role changes hands (the fencing token of the holder's writes), and when the hold lapses
-- unless renewed.
CREATE TABLE roles (
    name       TEXT PRIMARY KEY,
    holder     TEXT,
    epoch      INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

-- Operators' changes to alerts made on a node that is not the alert writer: queued here, applied
-- in order by the writer (in the transaction of the change itself), their outcome read back.
CREATE TABLE alert_commands (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   INTEGER NOT NULL,
    op         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    done_ms    INTEGER,
    outcome    TEXT
);
CREATE INDEX alert_commands_pending ON alert_commands (id) WHERE done_ms IS NULL;
