"""Archive jobs: ``vidsort classify MODEL_DIR INPUT... --out PATH [--resume] [--engine local|ray]``.

- `job` — `JobSpec`, `run_job` (inputs past the resume index → an engine → the store),
  `RecordSink` (batched writes), Ctrl-C handling, `JobSummary`.
- `local` / `ray_engine` — the engines: one classifier in this process, or a Ray Data pipeline
  (decode tasks, inference actor pool).
- `store` / `parquet_store` / `arrow` — the durable outputs: JSONL, Parquet parts, one Parquet
  file; the record schema.
- `records` — one record per file and its resume key; `sources` — files, directories and
  ``@list.txt`` inputs, streamed; `progress` — tqdm on a terminal; `command` — the CLI's side.

Nothing heavy at import: pyarrow and Ray are imported by the code that needs them.
"""
