-- The calibrated model's P(accept) for every scored video, written with its calibration (storage/calibrations.py,
-- one transaction): out of fold for the videos the calibration learnt from (a model scores what it was fitted on
-- too well), the final model's for the rest. The video queue's "Metric vs designer" order reads the newest
-- calibration's scores. Never changed once written, like the calibration itself.
CREATE TABLE calibration_scores (
    calibration_id BIGINT NOT NULL,           -- calibrations.id
    video_id       BIGINT NOT NULL,
    p_accept       DOUBLE NOT NULL,
    out_of_fold    BOOLEAN NOT NULL,          -- true: a video the calibration learnt from, scored by the fold without it
    PRIMARY KEY (calibration_id, video_id)
);
