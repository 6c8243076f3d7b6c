-- Initial schema of the run registry. Times are ISO-8601 UTC strings; JSON columns hold plain JSON.

CREATE TABLE datasets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  root TEXT NOT NULL,
  train_ann TEXT NOT NULL,
  val_ann TEXT,
  class_names TEXT NOT NULL DEFAULT '[]',
  num_classes INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (root, train_ann, val_ann)
);

CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('created', 'running', 'paused', 'completed', 'stopped', 'failed', 'interrupted')),
  config TEXT NOT NULL,
  config_path TEXT,
  dataset_id INTEGER REFERENCES datasets (id) ON DELETE SET NULL,
  project_version TEXT NOT NULL,
  backend TEXT NOT NULL,
  seed INTEGER NOT NULL,
  git_commit TEXT,
  run_dir TEXT NOT NULL,
  host TEXT,
  pid INTEGER,
  epochs INTEGER NOT NULL,
  epochs_done INTEGER NOT NULL DEFAULT 0,
  iteration INTEGER NOT NULL DEFAULT 0,
  message TEXT,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  heartbeat_at TEXT
);
CREATE INDEX runs_by_status ON runs (status);

-- One row per (run, scope, split, step, metric). `step` is the global micro-batch iteration for
-- scope 'iteration' and the 1-based epoch for scope 'epoch'.
CREATE TABLE metrics (
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  scope TEXT NOT NULL CHECK (scope IN ('iteration', 'epoch')),
  split TEXT NOT NULL CHECK (split IN ('train', 'val')),
  step INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  name TEXT NOT NULL,
  value REAL,
  PRIMARY KEY (run_id, scope, split, step, name)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
  id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  epoch INTEGER NOT NULL,
  iteration INTEGER NOT NULL,
  path TEXT NOT NULL,
  state_path TEXT,
  reasons TEXT NOT NULL,
  metric_name TEXT,
  metric_value REAL,
  created_at TEXT NOT NULL,
  deleted_at TEXT
);
CREATE INDEX checkpoints_by_run ON checkpoints (run_id, epoch);

CREATE TABLE evaluations (
  id INTEGER PRIMARY KEY,
  run_id TEXT REFERENCES runs (id) ON DELETE SET NULL,
  checkpoint_path TEXT NOT NULL,
  ann_file TEXT NOT NULL,
  root TEXT NOT NULL,
  clips INTEGER NOT NULL,
  crops INTEGER NOT NULL,
  top1 REAL NOT NULL,
  top5 REAL NOT NULL,
  mean_class_accuracy REAL NOT NULL,
  count INTEGER NOT NULL,
  per_class TEXT NOT NULL,
  confusion TEXT NOT NULL,
  class_names TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE predictions (
  evaluation_id INTEGER NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
  video_index INTEGER NOT NULL,
  video TEXT NOT NULL,
  label INTEGER NOT NULL,
  top_classes TEXT NOT NULL,
  top_scores TEXT NOT NULL,
  PRIMARY KEY (evaluation_id, video_index)
) WITHOUT ROWID;
