-- Runs handed to mmaction2 on a cluster (core/cluster): the clusters the user configured, the
-- jobs (one row per submission of a run; a resume is a new attempt in the same remote folder) and
-- how far each remote log has been read. The run itself, its metrics and its checkpoints live in
-- the ordinary tables, so every run view treats a cluster run like a local one.
-- IF NOT EXISTS: registries of earlier workbenches got these tables from the cluster store directly.
CREATE TABLE IF NOT EXISTS clusters (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('slurm', 'torchrun')),
  settings TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS cluster_jobs (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  attempt INTEGER NOT NULL,
  cluster TEXT NOT NULL,
  job_id TEXT NOT NULL,
  flavor TEXT NOT NULL CHECK (flavor IN ('0.x', '1.x')),
  remote_dir TEXT NOT NULL,
  gpus INTEGER NOT NULL,
  nodes INTEGER NOT NULL,
  iters_per_epoch INTEGER NOT NULL,
  logged_lr_to_base REAL NOT NULL,
  state TEXT NOT NULL,
  scheduler_state TEXT NOT NULL,
  reason TEXT,
  exit_code INTEGER,
  message TEXT,
  submitted_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  finished_at TEXT,
  PRIMARY KEY (run_id, attempt)
);
CREATE INDEX IF NOT EXISTS cluster_jobs_by_state ON cluster_jobs (state);

-- Byte offset of the first unread byte of each remote log (always at a line start), and the
-- global iteration of the file's first train line once seen (where a resumed run took over).
CREATE TABLE IF NOT EXISTS cluster_logs (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  offset INTEGER NOT NULL,
  lines INTEGER NOT NULL,
  first_step INTEGER,
  PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
