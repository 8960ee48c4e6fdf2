# SPDX-License-Identifier: Apache-2.0
"""The --json document (schema "owamp-report", version 1, owstats(1)) as a
structural check: every key, its type, nothing else."""

import datetime
import re

INT, NUM, STR, BOOL, NULL = "int", "num", "str", "bool", "null"


def timestamp_ok(t, path, errors):
    check(t, {"ntp": STR, "unix": NUM, "iso8601": STR}, path, errors)
    if not isinstance(t, dict) or not isinstance(t.get("ntp"), str):
        return
    if not re.fullmatch(r"\d{1,20}", t["ntp"]) or int(t["ntp"]) >= 2**64:
        errors.append(f"{path}.ntp: not a 64-bit decimal: {t['ntp']!r}")
        return
    ntp = int(t["ntp"])
    unix = ntp / 2**32 - 2208988800
    if abs(t["unix"] - unix) > 2e-6:
        errors.append(f"{path}.unix: {t['unix']} is not {unix}")
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z", t["iso8601"])
    if not m:
        errors.append(f"{path}.iso8601: not YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ: {t['iso8601']!r}")
        return
    sec = (ntp >> 32) - 2208988800
    want = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=sec)
    if m.group(1) != want.strftime("%Y-%m-%dT%H:%M:%S"):
        errors.append(f"{path}.iso8601: {m.group(1)} is not {want}")
    if int(m.group(2)) != ((ntp & 0xffffffff) * 10**9) >> 32:
        errors.append(f"{path}.iso8601: nanoseconds {m.group(2)} are not those of {ntp}")


def typed(v, t):
    if t == INT:
        return isinstance(v, int) and not isinstance(v, bool)
    if t == NUM:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if t == STR:
        return isinstance(v, str)
    if t == BOOL:
        return isinstance(v, bool)
    if t == NULL:
        return v is None
    raise ValueError(t)


def check(obj, spec, path, errors):
    """spec: {key: type or (type, ...) or callable(value, path, errors)}."""
    if not isinstance(obj, dict):
        errors.append(f"{path}: not an object")
        return
    if set(obj) != set(spec):
        errors.append(f"{path}: keys {sorted(obj)} are not {sorted(spec)}")
    for k, t in spec.items():
        if k not in obj:
            continue
        v, p = obj[k], f"{path}.{k}"
        if callable(t):
            t(v, p, errors)
        elif isinstance(t, tuple):
            if not any(typed(v, x) for x in t):
                errors.append(f"{p}: {v!r} is not one of {t}")
        elif not typed(v, t):
            errors.append(f"{p}: {v!r} is not {t}")


def array_of(item):
    def f(v, p, errors):
        if not isinstance(v, list):
            errors.append(f"{p}: not an array")
            return
        for i, x in enumerate(v):
            item(x, f"{p}[{i}]", errors)
    return f


def obj(spec):
    return lambda v, p, errors: check(v, spec, p, errors)


def nullable(f):
    return lambda v, p, errors: None if v is None else f(v, p, errors)


ENDPOINT = obj({"host": (STR, NULL), "address": (STR, NULL), "port": INT})
TIMESTAMP = timestamp_ok
RECORD = obj({"seqno": INT, "lost": BOOL, "send_time": TIMESTAMP, "recv_time": nullable(TIMESTAMP),
              "delay": (NUM, NULL), "send_sync": BOOL, "send_error": NUM, "recv_sync": BOOL, "recv_error": NUM,
              "ttl": INT})
SUMMARY_KEYS = {
    "first_seqno": INT, "end_seqno": INT, "start_time": TIMESTAMP, "end_time": TIMESTAMP,
    "sent": INT, "lost": INT, "duplicates": INT, "loss_percent": NUM, "sync": BOOL, "max_error": NUM,
    "delay": obj({"min": (NUM, NULL), "median": (NUM, NULL), "max": (NUM, NULL), "jitter": (NUM, NULL)}),
    "percentiles": array_of(obj({"percentile": NUM, "delay": (NUM, NULL)})),
    "histogram": obj({"bucket_width": NUM, "median": (NUM, NULL), "jitter": (NUM, NULL),
                      "percentiles": array_of(obj({"percentile": NUM, "delay": (NUM, NULL)})),
                      "buckets": array_of(obj({"index": INT, "count": INT}))}),
    "ttl": obj({"counts": array_of(obj({"ttl": INT, "count": INT})), "min": (INT, NULL), "max": (INT, NULL)}),
    "hops": nullable(obj({"min": INT, "max": INT, "distinct": INT})),
    "reordering": obj({"counts": array_of(obj({"n": INT, "count": INT, "percent": NUM})), "window": INT,
                       "complete": BOOL, "arrivals": INT}),
}
SESSION = obj({
    "sid": STR, "mode": (STR, NULL), "ip_version": INT, "sender": ENDPOINT, "receiver": ENDPOINT,
    "start_time": TIMESTAMP, "packets": INT, "padding": INT, "loss_timeout": NUM, "type_p": INT,
    "dscp": (INT, NULL),
    "schedule": array_of(obj({"type": STR, "interval": NUM})),
    "skip_ranges": array_of(obj({"first_seqno": INT, "last_seqno": INT})),
    "finished": BOOL, "records": INT,
})


def validate(doc, with_records=False):
    """A list of what is wrong with doc (empty if nothing)."""
    errors = []
    summary = dict(SUMMARY_KEYS)
    if with_records:
        summary["records"] = array_of(RECORD)
    check(doc, {"schema": STR, "schema_version": INT, "session": SESSION,
                "summaries": array_of(obj(summary))}, "$", errors)
    if doc.get("schema") != "owamp-report" or doc.get("schema_version") != 2:
        errors.append(f"$: schema {doc.get('schema')!r} version {doc.get('schema_version')!r}")
    s = doc.get("session", {})
    if not re.fullmatch(r"[0-9a-f]{32}", str(s.get("sid"))):
        errors.append(f"$.session.sid: {s.get('sid')!r}")
    if s.get("mode") not in (None, "open", "authenticated", "encrypted"):
        errors.append(f"$.session.mode: {s.get('mode')!r}")
    for sl in s.get("schedule", []):
        if sl.get("type") not in ("exponential", "fixed"):
            errors.append(f"$.session.schedule: type {sl.get('type')!r}")
    return errors
