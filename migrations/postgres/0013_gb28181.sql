-- GB/T 28181 devices (NVRs, IP cameras, lower platforms) that register to this platform over SIP.
-- Their channels are cameras (config_source 'gb28181:<device id>'). A device's presence is kept
-- here so that a restarted platform knows who was online and until when their registration runs.
CREATE TABLE gb_devices (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    transport         TEXT NOT NULL,
    remote_addr       TEXT NOT NULL,
    online            BIGINT NOT NULL,
    status_reason     TEXT NOT NULL,
    registered_at_ms  BIGINT NOT NULL,
    expires_at_ms     BIGINT NOT NULL,
    last_alive_ms     BIGINT NOT NULL,
    manufacturer      TEXT NOT NULL,
    model             TEXT NOT NULL,
    firmware          TEXT NOT NULL,
    channels          BIGINT NOT NULL,
    catalog_at_ms     BIGINT,
    catalog_note      TEXT NOT NULL,
    updated_at_ms     BIGINT NOT NULL
);
