-- When the last placement round ran: every worker may ask for a round on every heartbeat, and the
-- registry runs one per period, on whichever node asks first (no node is the placer).
CREATE TABLE placement_rounds (
    id      BIGINT PRIMARY KEY,
    last_ms BIGINT NOT NULL
);
