"""wire_values.py: the typed values of DESIGN §3 both ways: inputs_json decoded
into Python values (every tag; unknown or malformed ones are InvalidRequest) and
outputs encoded as strict JSON text (NaN -> null, ndarray/image/detections/batch/
bytes/datetime/video_metadata tags, anything else an object tag; lone surrogates
become "?"). src/runtime/README.md, "Encoding decisions", has every rule."""

import datetime
import json
import math
import re
import sys

import numpy as np


_DATA_KINDS = "biufc"
_VALUE_KINDS = "biufcUSO"


def _ndarray_dtype(name, kinds):
    if not isinstance(name, str) or len(name) > 32:
        raise _RequestError("InvalidRequest", "ndarray dtype must be a short string")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        raise _RequestError("InvalidRequest", "unknown ndarray dtype %r" % (name,)) from None
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None:
        raise _RequestError("InvalidRequest", "ndarray dtype %r is not allowed here" % (name,))
    return dtype


def _ndarray_shape(shape):
    if not isinstance(shape, list) or len(shape) > 32 or not all(
            type(n) is int and n >= 0 for n in shape):
        raise _RequestError("InvalidRequest", "ndarray shape must be a list of non-negative ints")
    return tuple(shape)


def _decode_ndarray(value):
    if "buffer" in value:  # shared memory of the local executor (frames.py)
        dtype = _ndarray_dtype(value.get("dtype"), _DATA_KINDS).newbyteorder("<")
        return _frame_ndarray(value, dtype, _ndarray_shape(value.get("shape")))
    if "data" in value:
        dtype = _ndarray_dtype(value.get("dtype"), _DATA_KINDS).newbyteorder("<")
        shape = _ndarray_shape(value.get("shape"))
        try:
            raw = _b64decode(value["data"], "ndarray data")
        except ValueError as exc:
            raise _RequestError("InvalidRequest", str(exc)) from None
        count = math.prod(shape)
        if count * dtype.itemsize != len(raw):
            raise _RequestError("InvalidRequest", "ndarray data has %d bytes; dtype %s and shape "
                                "%s need %d" % (len(raw), dtype.name, list(shape),
                                                count * dtype.itemsize))
        array = np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)
        return array.astype(dtype.newbyteorder("="), copy=False)
    if "value" in value:
        dtype = value.get("dtype")
        dtype = None if dtype is None else _ndarray_dtype(dtype, _VALUE_KINDS)
        try:
            array = np.array(value["value"], dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _RequestError("InvalidRequest", "ndarray value does not fit its dtype: %s"
                                % exc) from None
        if value.get("shape") is not None:
            shape = _ndarray_shape(value["shape"])
            if array.shape != shape:
                if array.size != math.prod(shape):
                    raise _RequestError("InvalidRequest", "ndarray value has shape %s, not %s"
                                        % (list(array.shape), list(shape)))
                array = array.reshape(shape)
        return array
    raise _RequestError("InvalidRequest", "an ndarray needs 'data' or 'value'")


def _decode_bytes(value):
    try:
        return _b64decode(value.get("value"), "bytes value")
    except ValueError as exc:
        raise _RequestError("InvalidRequest", str(exc)) from None


def _decode_datetime(value):
    text = value.get("value")
    if not isinstance(text, str):
        raise _RequestError("InvalidRequest", "a datetime value must be an ISO 8601 string")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _RequestError("InvalidRequest", "datetime %r is not ISO 8601" % text[:64]) from None


def _decode_batch(value):
    items = value.get("value")
    if not isinstance(items, list):
        raise _RequestError("InvalidRequest", "a batch value must be a list")
    return Batch([_decode(item) for item in items])


def _decode_object(value):
    return value.get("value")


_DECODERS = {
    "workflow_image": WorkflowImageData._from_wire,
    "sv_detections": Detections._from_wire,
    "ndarray": _decode_ndarray,
    "bytes": _decode_bytes,
    "datetime": _decode_datetime,
    "video_metadata": VideoMetadata._from_wire,
    "batch": _decode_batch,
    "object": _decode_object,
}


def _decode(value):
    kind = type(value)
    if kind is dict:
        tag = value.get("_type")
        if tag is not None:
            decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
            if decoder is None:
                raise _RequestError("InvalidRequest", "unknown _type tag %r" % (str(tag)[:64],))
            return decoder(value)
        if value.get("type") == "base64" and isinstance(value.get("value"), str):
            return WorkflowImageData._from_wire(value)
        return {key: _decode(item) for key, item in value.items()}
    if kind is list:
        return [_decode(item) for item in value]
    return value


def _decode_inputs(text):
    if not isinstance(text, str):
        raise _RequestError("InvalidRequest", "inputs_json must be a string holding a JSON object")
    try:
        inputs = json.loads(text)
    except RecursionError:
        raise _RequestError("InvalidRequest", "inputs are nested too deeply") from None
    except ValueError as exc:
        raise _RequestError("InvalidRequest", "inputs are not valid JSON: %s" % exc) from None
    if type(inputs) is not dict:
        raise _RequestError("InvalidRequest", "inputs must be a JSON object of name -> value")
    # Fast path: nothing typed anywhere (checked on the text, escapes force the full walk).
    if '"_type"' not in text and '"base64"' not in text and "\\u" not in text:
        return inputs
    try:
        return {key: _decode(item) for key, item in inputs.items()}
    except RecursionError:
        raise _RequestError("InvalidRequest", "inputs are nested too deeply") from None


# ---------------------------------------------------------------------------------
# Encoding of outputs
# ---------------------------------------------------------------------------------

_WIRE_DTYPES = frozenset(("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                          "uint64", "float16", "float32", "float64"))


def _encode_ndarray(array):
    dtype = array.dtype
    if dtype.name not in _WIRE_DTYPES or dtype.fields is not None:
        return array.tolist()  # str/object/complex/...: the wire has no ndarray for them
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        array = array.astype(dtype.newbyteorder("<"))
    if not array.flags.c_contiguous:
        array = array.copy(order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    framed = _frame_ndarray_out(dtype, array)  # into shared memory (frames.py), if any
    if framed is not None:
        return framed
    raw = array.data if array.ndim and array.size else array.tobytes()
    return {"_type": "ndarray", "dtype": dtype.name, "shape": list(array.shape),
            "data": _b64text(raw)}


def _object_tag(obj):
    try:
        text = str(obj)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the response
        text = "<unprintable %s>" % type(obj).__name__
    return {"_type": "object", "class": type(obj).__name__, "value": text}


def _encode_special(obj):
    """JSON-able form of a value json cannot encode by itself (json's `default`)."""
    if isinstance(obj, np.ndarray):
        return _encode_ndarray(obj)
    if isinstance(obj, np.generic):
        item = obj.item()
        return _object_tag(obj) if isinstance(item, np.generic) else item
    if isinstance(obj, WorkflowImageData):
        return obj._to_wire()
    if isinstance(obj, Detections):
        return obj._to_wire()
    if isinstance(obj, Batch):
        return {"_type": "batch", "value": obj._content}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"_type": "bytes", "value": _b64text(obj)}
    if isinstance(obj, datetime.datetime):
        return {"_type": "datetime", "value": obj.isoformat()}
    if isinstance(obj, VideoMetadata):
        out = {"_type": "video_metadata"}
        out.update(obj._to_wire_fields())
        return out
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return _object_tag(obj)


def _json_key(key):
    if isinstance(key, str):
        return str(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return json.dumps(float(key)) if _isfinite(key) else str(key)
    return str(key)


def _normalize(value):
    """The slow, total encoder: a pure JSON tree (NaN -> null, keys -> str)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if _isfinite(value) else None
    if isinstance(value, dict):
        return {_json_key(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        value = float(value)
        return value if _isfinite(value) else None
    return _normalize(_encode_special(value))


# ensure_ascii=True: CPython's ASCII escaper is ~5x faster on large strings (an
# 8 MB base64 payload: 29 ms against 163 ms), and \uXXXX text is the same JSON.
_FAST_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False,
                                 default=_encode_special)
_PLAIN_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
_RESPONSE_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


_UNICODE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _no_lone_surrogates(text):
    """ASCII JSON text with any lone surrogate escape (\\udcff, which no strict
    parser takes) replaced by "?". Surrogate escapes are rare (characters beyond
    the BMP, or broken strings), so only then is the text re-encoded."""
    if "\\" not in text:   # one memchr: most payloads have no escape at all
        return text
    if "\\ud" not in text and "\\uD" not in text:
        return text
    value = json.loads(text)
    return _UNICODE_ENCODER.encode(value).encode("utf-8", "replace").decode("utf-8")


def _plain_ascii(value):
    """True for values whose JSON cannot hold a surrogate escape (cheap checks only)."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return value.isascii()
    if isinstance(value, list):
        return all(isinstance(item, str) and item.isascii() for item in value)
    return False


def _encode_json(value):
    """JSON text of outputs: json's C encoder first, the total walker when it refuses
    (NaN, odd keys)."""
    try:
        text = _FAST_ENCODER.encode(value)
    except (ValueError, TypeError):
        text = _PLAIN_ENCODER.encode(_normalize(value))
    return _no_lone_surrogates(text)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _json_depth_over(text, limit):
    """How deep JSON text nests its lists and objects (the outermost counts 1), or 0
    when it stays within limit. Cheap unless the text has more brackets than limit."""
    if text.count("[") + text.count("{") <= limit:
        return 0
    brackets = np.frombuffer(re.sub(r"[^\[\]{}]", "", _JSON_STRING.sub("", text)).encode("ascii"),
                             dtype=np.uint8)
    if brackets.size == 0:
        return 0
    depth = int(np.cumsum(np.where((brackets == 91) | (brackets == 123), 1, -1)).max())
    return depth if depth > limit else 0
