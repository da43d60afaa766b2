-- Each worker's lease generation: it rises in the transaction of every placement round that
-- gives the worker a camera or takes one from it (the only changes a live worker's leases see).
-- A heartbeat that names the generation the worker last heard answers "unchanged" instead of
-- reading back every lease the worker holds (~1,500 rows at a city's scale). Raised by the round
-- once per worker, not by a trigger per lease row: on PostgreSQL a row updated once per camera
-- claimed bloated the 50-row table and made every heartbeat six times slower.
ALTER TABLE workers ADD COLUMN lease_gen BIGINT NOT NULL DEFAULT 0;
