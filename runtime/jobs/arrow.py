"""Records ↔ Arrow tables: the Parquet schema of a job's output.

One typed column per field of a ``--json`` record, so the output can be queried as it is
(``pyarrow``, ``pandas``, DuckDB, Spark). Fields the schema does not name (e.g. what a future
option adds) go into ``extra`` as JSON text, so a record read back equals the one written.
pyarrow comes from the ``parquet`` (or ``ray``) extra and is imported on first use.
"""

from __future__ import annotations

import json
from typing import Any

from vidsort.errors import import_extra

#: fields every record has, even as null (a file that could not be stat'ed has no size)
ALWAYS = ("video", "size", "mtime")


def pa():
    """The pyarrow module, or a one-line `MissingExtraError`."""
    return import_extra("pyarrow", "parquet")


def schema():
    """The Arrow schema of job records (column order as in a ``--json`` line)."""
    pyarrow = pa()
    f64 = pyarrow.float64()
    ranked = pyarrow.list_(pyarrow.struct([("label", pyarrow.string()), ("score", f64)]))
    return pyarrow.schema([
        ("video", pyarrow.string()),
        ("predictions", ranked),
        ("error", pyarrow.struct([("type", pyarrow.string()), ("message", pyarrow.string())])),
        ("backend", pyarrow.string()),
        ("fallback", pyarrow.string()),
        ("num_video_frames", pyarrow.int64()),
        ("width", pyarrow.int64()),
        ("height", pyarrow.int64()),
        ("frames", pyarrow.list_(pyarrow.int64())),
        ("timings", pyarrow.map_(pyarrow.string(), f64)),
        ("precision", pyarrow.string()),
        ("provider", pyarrow.string()),
        # with --segments (`vidsort.segments`): the timeline instead of "predictions"
        ("duration_s", f64),
        ("fps", f64),
        ("windows", pyarrow.list_(pyarrow.struct([("start_s", f64), ("end_s", f64),
                                                  ("predictions", ranked)]))),
        ("segments", pyarrow.list_(pyarrow.struct([("label", pyarrow.string()), ("start_s", f64),
                                                   ("end_s", f64), ("score", f64)]))),
        ("labels", ranked),
        ("size", pyarrow.int64()),
        ("mtime", f64),
        ("extra", pyarrow.string()),
    ])


def to_table(records: list[dict[str, Any]]):
    """An Arrow table of ``records`` in `schema`."""
    pyarrow = pa()
    table_schema = schema()
    typed = [name for name in table_schema.names if name != "extra"]
    columns: dict[str, list[Any]] = {name: [] for name in table_schema.names}
    for record in records:
        for name in typed:
            value = record.get(name)
            if name == "timings" and value is not None:
                value = list(value.items())
            columns[name].append(_text(value))
        rest = {k: v for k, v in record.items() if k not in columns}
        columns["extra"].append(json.dumps(rest) if rest else None)
    return pyarrow.Table.from_pydict(columns, schema=table_schema)


def conform(table):
    """``table`` in today's `schema`: columns an older vidsort did not write become nulls (a
    job resumed after an upgrade merges old and new parts into one file)."""
    pyarrow = pa()
    target = schema()
    unknown = set(table.column_names) - set(target.names)
    if unknown:
        raise ValueError(f"columns {sorted(unknown)} are not in this vidsort's record schema "
                         "(written by a newer version?)")
    columns = [table.column(f.name) if f.name in table.column_names
               else pyarrow.nulls(len(table), f.type) for f in target]
    return pyarrow.Table.from_arrays(columns, schema=target)


def to_records(table) -> list[dict[str, Any]]:
    """The records of a table written by `to_table` (absent fields stay absent)."""
    records = []
    for row in table.to_pylist():
        extra = row.pop("extra", None)
        record = {k: v for k, v in row.items() if v is not None or k in ALWAYS}
        if "timings" in record:
            record["timings"] = dict(record["timings"])
        if extra:
            record.update(json.loads(extra))
        records.append(record)
    return records


def _text(value: Any) -> Any:
    # Arrow strings are UTF-8: an error message quoting an undecodable file name would hold
    # lone surrogates; write those bytes as \xNN (as `storable_name` does for the name).
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value
