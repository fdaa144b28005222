"""Runs one SQL query for the InfluxDB 3 stand-in (influxdb3_standin.rs).

The query runs on Apache DataFusion, the engine InfluxDB 3 answers SQL with, over
tables typed as InfluxDB 3 types them: tags Dictionary(Int32, Utf8), fields by
their line-protocol type, `time` Timestamp(ns) without a time zone. The result is
printed the way `/api/v3/query_sql` prints it (arrow-json): one object per row,
null columns left out, timestamps ISO-8601 without a zone suffix.

stdin: {"q": str, "format": "json"|"jsonl",
        "params": {name: {"type": "u64"|"i64"|"f64"|"bool"|"str"|"null", "value": ...}},
        "tables": [{"name": str, "columns": [{"name": str, "type": str, "values": [...]}]}]}
Exit status: 0 and the response body on stdout; 3 and the error text on stdout
for a query the server answers with an error; 4 and a message for a broken setup.
"""

import datetime
import json
import sys

EXIT_QUERY_ERROR = 3
EXIT_SETUP_ERROR = 4
DATAFUSION_MAJOR = "55"
SETUP_HINT = "run scripts/install-deps.sh (it builds the test venv) or set VMT_TEST_PYTHON"


def fail(status, message):
    sys.stdout.write(message)
    sys.stdout.flush()
    sys.exit(status)


try:
    import datafusion
    import pyarrow as pa
    from datafusion import SessionConfig, SessionContext, SQLOptions
except ImportError as e:
    fail(EXIT_SETUP_ERROR, f"{sys.executable} cannot import datafusion/pyarrow ({e}): {SETUP_HINT}")
if datafusion.__version__.split(".")[0] != DATAFUSION_MAJOR:
    fail(
        EXIT_SETUP_ERROR,
        f"{sys.executable} has datafusion {datafusion.__version__}, "
        f"the stand-in needs {DATAFUSION_MAJOR}.x: {SETUP_HINT}",
    )

TAG = pa.dictionary(pa.int32(), pa.utf8())
COLUMN_TYPES = {
    "tag": TAG,
    "i64": pa.int64(),
    "u64": pa.uint64(),
    "f64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.utf8(),
    "time": pa.timestamp("ns"),
}
# InfluxDB 3 turns JSON params into ScalarValues the same way (iox_query_params).
PARAM_TYPES = {
    "u64": pa.uint64(),
    "i64": pa.int64(),
    "f64": pa.float64(),
    "bool": pa.bool_(),
    "str": pa.utf8(),
    "null": pa.null(),
}
NANOS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
EPOCH = datetime.datetime(1970, 1, 1)


def session(tables):
    # InfluxDB 3 names its catalog `public` and its table schema `iox`, and serves
    # information_schema; `FROM iox.vm_metrics` then works as on the server.
    config = (
        SessionConfig()
        .with_default_catalog_and_schema("public", "iox")
        .with_information_schema(True)
    )
    ctx = SessionContext(config)
    schema = ctx.catalog("public").schema("iox")
    for table in tables:
        columns = table["columns"]
        arrays = [pa.array(c["values"], type=COLUMN_TYPES[c["type"]]) for c in columns]
        batch = pa.RecordBatch.from_arrays(arrays, names=[c["name"] for c in columns])
        # Through the schema, not ctx.register_*: a measurement name such as
        # "cpu.load" must stay one table name, not become schema "cpu".
        schema.register_table(table["name"], ctx.from_arrow(batch))
    return ctx


def fraction(nanos):
    """chrono's `.f` as arrow prints it: none, 3, 6 or 9 digits."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06}"
    return f".{nanos:09}"


def naive_datetime(ns):
    seconds, nanos = divmod(ns, 10**9)
    t = EPOCH + datetime.timedelta(seconds=seconds)
    return f"{t.year:04}-{t.month:02}-{t.day:02}T{t.hour:02}:{t.minute:02}:{t.second:02}" + fraction(
        nanos
    )


def utc_offset(tz, ns):
    """Offset of zone `tz` (arrow's "+01:00", "UTC", "Europe/Paris") at `ns`."""
    sign = {"+": 1, "-": -1}.get(tz[:1])
    if sign is not None:
        hours, _, minutes = tz[1:].partition(":")
        if not minutes and len(hours) == 4:
            hours, minutes = hours[:2], hours[2:]
        return datetime.timedelta(hours=sign * int(hours), minutes=sign * int(minutes or 0))
    if tz.upper() in ("UTC", "Z"):
        return datetime.timedelta(0)
    import zoneinfo

    utc = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (utc + datetime.timedelta(seconds=ns // 10**9)).astimezone(zoneinfo.ZoneInfo(tz)).utcoffset()


def zoned_datetime(ns, tz):
    """chrono's to_rfc3339_opts(AutoSi, use_z=true), which arrow uses for zoned timestamps."""
    offset = utc_offset(tz, ns)
    local = naive_datetime(ns + (offset.days * 86400 + offset.seconds) * 10**9)
    if not offset:
        return local + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{local}{sign}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"


def naive_time(ns):
    seconds, nanos = divmod(ns, 10**9)
    return f"{seconds // 3600:02}:{seconds // 60 % 60:02}:{seconds % 60:02}" + fraction(nanos)


def text(value):
    return json.dumps(value, ensure_ascii=False)


def encode(array):
    """The JSON text of each value of `array`; None where the value is null."""
    t = array.type
    if pa.types.is_dictionary(t):
        return encode(array.dictionary_decode())
    if pa.types.is_timestamp(t):
        scale = NANOS_PER_UNIT[t.unit]
        raw = array.cast(pa.int64()).to_pylist()
        if t.tz is None:
            return [None if v is None else text(naive_datetime(v * scale)) for v in raw]
        return [None if v is None else text(zoned_datetime(v * scale, t.tz)) for v in raw]
    if pa.types.is_time(t):
        scale = NANOS_PER_UNIT[t.unit]
        raw = array.cast(pa.int64() if t.bit_width == 64 else pa.int32()).to_pylist()
        return [None if v is None else text(naive_time(v * scale)) for v in raw]
    if pa.types.is_date(t):
        return [None if v is None else text(v.isoformat()) for v in array.to_pylist()]
    if pa.types.is_floating(t):
        # arrow-json writes a non-finite float as null and keeps the key.
        out = []
        for v in array.to_pylist():
            if v is None:
                out.append(None)
            elif v != v or v in (float("inf"), float("-inf")):
                out.append("null")
            else:
                out.append(repr(float(v)))
        return out
    if pa.types.is_interval(t) or pa.types.is_duration(t):
        # arrow-json prints these as display strings; exact text is not modelled.
        return [None if v is None else text(str(v)) for v in array.to_pylist()]
    if pa.types.is_decimal(t):
        return [None if v is None else str(v) for v in array.to_pylist()]
    return [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in array.to_pylist()]


def rows(batches):
    for batch in batches:
        keys = [text(name) for name in batch.schema.names]
        columns = [encode(column) for column in batch.columns]
        for i in range(batch.num_rows):
            fields = (f"{key}:{column[i]}" for key, column in zip(keys, columns) if column[i] is not None)
            yield "{" + ",".join(fields) + "}"


def main():
    request = json.loads(sys.stdin.buffer.read())
    ctx = session(request["tables"])
    params = {
        name: pa.scalar(p["value"], type=PARAM_TYPES[p["type"]]) for name, p in request["params"].items()
    }
    # Read-only like the server's SQL endpoint: no CREATE/INSERT/COPY TO/SET.
    options = SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)
    # Bound by DataFusion after parsing, like InfluxDB 3 does: never spliced into the text.
    try:
        df = ctx.sql(request["q"], options=options, param_values=params)
    except Exception as e:
        fail(EXIT_QUERY_ERROR, f"query error: error while planning query: {e}")
    try:
        batches = df.collect()
    except Exception as e:
        fail(EXIT_QUERY_ERROR, f"query error: error while executing plan: {e}")
    lines = list(rows(batches))
    if request["format"] == "jsonl":
        body = "".join(line + "\n" for line in lines)
    else:
        body = "[" + ",".join(lines) + "]"
    sys.stdout.buffer.write(body.encode("utf-8"))


main()
