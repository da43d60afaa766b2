-- Each worker's lease generation: it rises whenever the set of leases the worker holds, or the
-- epoch of one of them, changes (a claim, a release, a lapse, a hand-off), by the triggers below,
-- whoever makes the change. A heartbeat that names the generation the worker last saw answers
-- "unchanged" instead of reading back every lease the worker holds (~1,500 rows at a city's scale).
ALTER TABLE workers ADD COLUMN lease_gen BIGINT NOT NULL DEFAULT 0;

CREATE TRIGGER camera_leases_gen_update AFTER UPDATE OF worker_id, epoch ON camera_leases
BEGIN
    UPDATE workers SET lease_gen = lease_gen + 1 WHERE id = OLD.worker_id OR id = NEW.worker_id;
END;

CREATE TRIGGER camera_leases_gen_insert AFTER INSERT ON camera_leases
BEGIN
    UPDATE workers SET lease_gen = lease_gen + 1 WHERE id = NEW.worker_id;
END;

CREATE TRIGGER camera_leases_gen_delete AFTER DELETE ON camera_leases
BEGIN
    UPDATE workers SET lease_gen = lease_gen + 1 WHERE id = OLD.worker_id;
END;
