-- Each worker's lease generation: it rises whenever the set of leases the worker holds, or the
-- epoch of one of them, changes (a claim, a release, a lapse, a hand-off), by the trigger below,
-- whoever makes the change. A heartbeat that names the generation the worker last saw answers
-- "unchanged" instead of reading back every lease the worker holds (~1,500 rows at a city's scale).
ALTER TABLE workers ADD COLUMN lease_gen BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION camera_leases_gen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.worker_id IS NOT NULL THEN
        UPDATE workers SET lease_gen = lease_gen + 1 WHERE id = OLD.worker_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.worker_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.worker_id IS DISTINCT FROM OLD.worker_id) THEN
        UPDATE workers SET lease_gen = lease_gen + 1 WHERE id = NEW.worker_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER camera_leases_gen AFTER INSERT OR DELETE OR UPDATE OF worker_id, epoch ON camera_leases
    FOR EACH ROW EXECUTE FUNCTION camera_leases_gen();
