"""traces.py: the preamble's `debug_traces`: Roboflow's entries {"step", "value"
[, "timestamp", "timestamp_timezone"]} with Roboflow's caps (16 KiB an entry, 1 MiB
and 1000 entries a run, then one marker entry)."""

import datetime
import json
import threading


# Caps and texts of debug traces: Roboflow's (workflow_debug.py), so a client that
# reads one reads the other. Sizes are characters of json.dumps(entry) (ASCII).
TRACE_MAX_ENTRIES = 1000
TRACE_MAX_ENTRY_CHARS = 16384
TRACE_MAX_TOTAL_CHARS = 1 << 20
TRACE_MAX_DEPTH = 32   # deeper values are kept as repr text: the C side caps nesting
TRACE_LIMIT_MARKER = "[debug trace limit reached - further entries of this run were dropped]"
TRACE_CUT_MARKER = "... [entry truncated]"


def _trace_depth_ok(value, limit):
    """True when the JSON tree `value` nests at most `limit` levels (iterative)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is dict:
            items = item.values()
        elif type(item) is list:
            items = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in items)
    return True


def _trace_value(value):
    """A value as Roboflow stores it in a trace: its JSON round trip, else repr(value).
    NaN and +-Inf become null (the reply is strict JSON)."""
    try:
        plain = json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        return repr(value)
    if not _trace_depth_ok(plain, TRACE_MAX_DEPTH):
        return repr(plain)
    return _normalize(plain)


def _trace_size(entry):
    return len(json.dumps(entry, default=str))


def _trace_zone(zone):
    if zone is None:
        return datetime.timezone.utc
    if isinstance(zone, datetime.tzinfo):
        return zone
    try:
        import zoneinfo
        return zoneinfo.ZoneInfo(zone)
    except Exception as exc:  # noqa: BLE001 - any lookup failure is an invalid name
        raise ValueError("Invalid timezone: %r" % (zone,)) from exc


class _DebugTraces:
    """`debug_traces` of the preamble. append(value, *, add_timestamp=False,
    timezone=None) records {"step", "value"} (+ "timestamp", "timestamp_timezone"),
    capped per entry, per run and in count as Roboflow caps them; the entries of a
    run come back beside its outputs (and with its error) as `debug_traces`."""

    __slots__ = ("_entries", "_lock", "step", "_total", "_full")

    def __init__(self):
        self._entries = []
        self._lock = threading.Lock()
        self.step = None
        self._total = 0
        self._full = False

    def _reset(self, step):
        with self._lock:
            self._entries = []
            self.step = step
            self._total = 0
            self._full = False

    def _close(self, step):
        marker = {"step": step, "value": TRACE_LIMIT_MARKER}
        if _trace_size(marker) > TRACE_MAX_ENTRY_CHARS:
            marker = {"step": None, "value": TRACE_LIMIT_MARKER}
        self._full = True
        self._total += _trace_size(marker)
        self._entries.append(marker)

    def append(self, value, *, add_timestamp=False, timezone=None):
        if self._full:   # after the marker every append is dropped: skip the encoding
            if add_timestamp:
                _trace_zone(timezone)   # a bad zone still raises, as before the cap
            return
        step = self.step
        plain = _trace_value(value)
        entry = {"step": step, "value": plain}
        if add_timestamp:
            zone = _trace_zone(timezone)
            entry["timestamp"] = datetime.datetime.now(zone).isoformat()
            entry["timestamp_timezone"] = getattr(zone, "key", None) or str(zone)
        size = _trace_size(entry)
        if size > TRACE_MAX_ENTRY_CHARS:
            text = plain if isinstance(plain, str) else repr(plain)
            low, high = 0, len(text)       # longest prefix whose entry fits
            while low < high:
                middle = (low + high + 1) // 2
                entry["value"] = text[:middle] + TRACE_CUT_MARKER
                if _trace_size(entry) <= TRACE_MAX_ENTRY_CHARS:
                    low = middle
                else:
                    high = middle - 1
            entry["value"] = text[:low] + TRACE_CUT_MARKER
            size = _trace_size(entry)
        with self._lock:
            if self._full:
                return
            if (size > TRACE_MAX_ENTRY_CHARS or len(self._entries) >= TRACE_MAX_ENTRIES
                    or self._total + size > TRACE_MAX_TOTAL_CHARS):
                self._close(step)
                return
            self._total += size
            self._entries.append(entry)

    def _snapshot(self):
        with self._lock:
            return list(self._entries)

    # read-only list-like views of this run's entries
    def __len__(self):
        return len(self._entries)

    def __iter__(self):
        return iter(list(self._entries))

    def __getitem__(self, index):
        return self._entries[index]

    def __repr__(self):
        return "debug_traces(%d entries)" % len(self._entries)
