-- Image curation (issue #5): perceptual hashes for near-duplicate grouping (computed once per image
-- content; the grouping itself is stored in images.dup_group).
CREATE TABLE image_hashes (
    image_id    BIGINT PRIMARY KEY,
    sha256      VARCHAR NOT NULL,
    phash       UBIGINT NOT NULL,          -- 64-bit DCT perceptual hash (grey structure)
    colour      FLOAT[] NOT NULL,          -- 4x4 grid of mean CIELAB colours (48 values; pHash ignores colour)
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The newest filter verdicts of each image in one row (maintained by storage.curation_store whenever
-- filter results are written) so the review queue filters on failed filters without aggregating
-- filter_results (which keeps every params hash as a cache).
CREATE TABLE image_filter_state (
    image_id   BIGINT NOT NULL,
    failed     VARCHAR[] NOT NULL,        -- filters whose newest result fails, by name
    reasons    VARCHAR[] NOT NULL,        -- their reasons, same order
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
INSERT INTO image_filter_state (image_id, failed, reasons)
SELECT image_id, coalesce(list(filter ORDER BY filter) FILTER (WHERE passed = false), []),
       coalesce(list(reason ORDER BY filter) FILTER (WHERE passed = false), [])
FROM (SELECT image_id, filter, arg_max(passed, computed_at) AS passed, arg_max(reason, computed_at) AS reason
      FROM filter_results GROUP BY image_id, filter)
GROUP BY image_id;
