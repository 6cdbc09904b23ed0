-- Video filtering learned from designers' accept/reject labels (`python -m curation calibrate`): one row per
-- calibration, kept so the app can show what a rule label (annotator 'rule:<id>') was decided by. The JSON
-- columns are written and read by storage/calibrations.py only.
CREATE SEQUENCE seq_calibrations START 1;

CREATE TABLE calibrations (
    id           BIGINT PRIMARY KEY DEFAULT nextval('seq_calibrations'),
    version      VARCHAR NOT NULL,            -- of the procedure (curation.calibrate.VERSION)
    item_kind    VARCHAR NOT NULL,            -- what was labelled: 'video'
    n_labels     INTEGER NOT NULL,
    label_counts JSON NOT NULL,               -- {"accept", "reject", "no_metrics"}
    label_hash   VARCHAR NOT NULL,            -- of the training labels (item id : label), to spot stale ones
    metric_keys  JSON NOT NULL,               -- the current result keys the features were read under
    thresholds   JSON NOT NULL,               -- feature -> fitted threshold, direction, curves, operating points
    model        JSON NOT NULL,               -- the logistic model: features, medians, scaler, coefficients
    cv_metrics   JSON NOT NULL,               -- folds, seed, the model's out-of-fold curves and operating points
    created_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);
