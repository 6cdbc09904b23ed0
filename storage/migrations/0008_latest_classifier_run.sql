-- The latest classifier run (issue 16), defined once: the newest run that has predictions. Runs are now written
-- in one transaction with their predictions; requiring predictions also skips a run row that an older version
-- committed before it crashed while writing the predictions.
CREATE VIEW latest_classifier_run AS
SELECT r.*
FROM classifier_runs r
WHERE r.id = (SELECT max(c.id) FROM classifier_runs c WHERE c.id IN (SELECT p.run_id FROM predictions p));
