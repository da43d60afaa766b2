-- What is wrong with a camera as the worker that runs it sees it: offline, a quality fault, a low
-- frame rate, each with the time it began. Written by the camera's lease holder whenever the set
-- changes (fenced like every write of a worker), read by the serve node that opens work orders
-- (it runs no cameras itself). Rows of a camera whose holder is gone are ignored, and replaced by
-- its next holder's.
CREATE TABLE camera_problems (
    camera_id   TEXT NOT NULL,
    cause       TEXT NOT NULL,
    since_ms    BIGINT NOT NULL,
    detail      TEXT NOT NULL,
    reported_ms BIGINT NOT NULL,
    PRIMARY KEY (camera_id, cause)
);
