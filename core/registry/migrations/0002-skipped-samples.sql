-- Samples the data loaders skipped (a corrupt or unreadable video, too few frames), per run, epoch and
-- split, with the reason. Replaying an epoch after a resume writes the same rows again.

CREATE TABLE skipped_samples (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  split TEXT NOT NULL CHECK (split IN ('train', 'val')),
  path TEXT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (run_id, epoch, split, path)
) WITHOUT ROWID;
