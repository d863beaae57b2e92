# values.py: Python objects <-> the wire's typed JSON values (docs/wire.md): numpy arrays
# and raw frames as buffers beside the JSON (or in the `data` form), images, detections, ...
import base64
import binascii
import datetime as _dt
import json
import threading

import numpy as np

from .errors import InvalidRequest, InvalidResponse

try:   # cv2 is optional: without it images travel as encoded bytes only
    import cv2 as _cv2
except ImportError:   # pragma: no cover - depends on the host
    _cv2 = None

MAX_BUFFERS = 64   # BB_MAX_BUFFERS of blockbox.h: arrays past it travel in the data form
# Images from numpy frames as raw BGR buffers ({"type": "raw", "buffer": i}) instead of PNG:
# needs a runtime that builds WorkflowImageData from a raw frame (issue 12 item 2).
RAW_IMAGES = False

_DTYPES = frozenset(["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                     "float16", "float32", "float64"])
_JPEG, _PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


class Image:
    """A workflow image (Roboflow's WorkflowImageData on the wire). Give either the encoded
    bytes of a JPEG or PNG (`image_bytes`) or a BGR numpy frame (`numpy_image`; encoding it
    needs cv2: PNG by default, lossless, or `format="jpeg"`)."""

    def __init__(self, numpy_image=None, image_bytes=None, parent_id=None, parent_origin=None,
                 root_parent_id=None, root_parent_origin=None, video_metadata=None, format="png"):
        if (numpy_image is None) == (image_bytes is None):
            raise TypeError("Image needs exactly one of numpy_image or image_bytes")
        if image_bytes is not None and not bytes(image_bytes[:8]).startswith((_JPEG, _PNG)):
            raise InvalidRequest("InvalidRequest", "Image bytes must be a JPEG or PNG file")
        if format not in ("png", "jpeg"):
            raise ValueError("format must be 'png' or 'jpeg'")
        self._numpy = numpy_image
        self._bytes = bytes(image_bytes) if image_bytes is not None else None
        self._b64 = None
        self.format = format
        self.parent_id = parent_id
        self.parent_origin = parent_origin
        self.root_parent_id = root_parent_id
        self.root_parent_origin = root_parent_origin
        self.video_metadata = video_metadata

    @property
    def image_bytes(self):
        """The encoded JPEG or PNG bytes."""
        if self._bytes is None:
            if self._b64 is not None:
                self._bytes = base64.b64decode(self._b64)
            else:
                if _cv2 is None:
                    raise RuntimeError("encoding a numpy image needs cv2 (python3-opencv); "
                                       "pass image_bytes instead")
                ok, buf = _cv2.imencode(".png" if self.format == "png" else ".jpg", self._numpy)
                if not ok:
                    raise InvalidRequest("InvalidRequest", "cv2 could not encode the numpy image")
                self._bytes = buf.tobytes()
        return self._bytes

    @property
    def base64_image(self):
        if self._b64 is None:
            self._b64 = base64.b64encode(self.image_bytes).decode("ascii")
        return self._b64

    @property
    def numpy_image(self):
        """The pixels in BGR, as cv2 decodes them (needs cv2 when built from bytes)."""
        if self._numpy is None:
            if _cv2 is None:
                raise RuntimeError("decoding an image needs cv2 (python3-opencv)")
            pixels = _cv2.imdecode(np.frombuffer(self.image_bytes, dtype=np.uint8), _cv2.IMREAD_COLOR)
            if pixels is None:
                raise ValueError("the image bytes could not be decoded")
            self._numpy = pixels
        return self._numpy

    def to_wire(self):
        frame = self._numpy
        if RAW_IMAGES and frame is not None and self._bytes is None and self._b64 is None:
            ref = _buffer_ref(frame, raw_frame=True)
            if ref is not None:   # the pixels as they are, beside the JSON: no PNG, no base64
                out = {"_type": "workflow_image", "type": "raw", "shape": list(frame.shape),
                       "buffer": ref, "video_metadata": self.video_metadata}
                return self._add_parents(out)
        out = {"_type": "workflow_image", "type": "base64", "value": self.base64_image,
               "video_metadata": self.video_metadata}
        return self._add_parents(out)

    def _add_parents(self, out):
        for key in ("parent_id", "parent_origin", "root_parent_id", "root_parent_origin"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_wire(cls, obj, buffers=None):
        img = cls.__new__(cls)
        img._numpy = img._bytes = img._b64 = None
        if obj.get("type") == "raw":   # BGR pixels: in a result buffer, or in the data form
            if "buffer" in obj:
                img._numpy = _buffer_view(buffers, obj["buffer"], _UINT8, obj.get("shape"))
            else:
                img._numpy = np.frombuffer(binascii.a2b_base64(obj.get("data") or ""),
                                           dtype=_UINT8).reshape(obj.get("shape"))
            img.format = "png"
        else:
            img._b64 = obj.get("value")
            if not isinstance(img._b64, str):
                raise InvalidResponse("InvalidResponse", "workflow_image without a base64 value")
            img.format = "png" if img._b64.startswith("iVBOR") else "jpeg"
        for key in ("parent_id", "parent_origin", "root_parent_id", "root_parent_origin",
                    "video_metadata"):
            setattr(img, key, obj.get(key))
        return img

    def __repr__(self):
        return "Image(%s, parent_id=%r)" % (self.format, self.parent_id)


class Detections:
    """Object detections (sv_detections on the wire): corner boxes `xyxy` (N×4), `confidence`,
    `class_id`, `class_name`, `detection_id`, `tracker_id`, per-detection `data` (every other
    key of a prediction) and the `image_size` (width, height) they refer to."""

    def __init__(self, xyxy, confidence, class_id, class_name=None, detection_id=None,
                 tracker_id=None, data=None, image_size=(0, 0)):
        self.xyxy = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(self.xyxy)
        self.confidence = np.asarray(confidence, dtype=np.float64).reshape(n)
        self.class_id = np.asarray(class_id, dtype=np.int64).reshape(n)
        self.class_name = list(class_name) if class_name is not None else [str(c) for c in self.class_id]
        self.detection_id = list(detection_id) if detection_id is not None else [None] * n
        self.tracker_id = None if tracker_id is None else list(tracker_id)
        self.data = list(data) if data is not None else [{} for _ in range(n)]
        self.image_size = tuple(image_size)
        if not (len(self.class_name) == len(self.detection_id) == len(self.data) == n):
            raise ValueError("Detections: every column needs one entry per box")

    def __len__(self):
        return len(self.xyxy)

    def __eq__(self, other):
        return isinstance(other, Detections) and self.to_wire() == other.to_wire()

    def to_wire(self):
        preds = []
        for i, (x1, y1, x2, y2) in enumerate(self.xyxy.tolist()):
            p = dict(self.data[i])
            p.update(x=(x1 + x2) / 2, y=(y1 + y2) / 2, width=x2 - x1, height=y2 - y1,
                     confidence=float(self.confidence[i]), class_id=int(self.class_id[i]),
                     **{"class": self.class_name[i]})
            if self.detection_id[i] is not None:
                p["detection_id"] = self.detection_id[i]
            if self.tracker_id is not None and self.tracker_id[i] is not None:
                p["tracker_id"] = self.tracker_id[i]
            preds.append(p)
        w, h = self.image_size
        return {"_type": "sv_detections", "image": {"width": int(w), "height": int(h)},
                "predictions": preds}

    @classmethod
    def from_wire(cls, obj):
        preds = obj.get("predictions") or []
        image = obj.get("image") or {}
        xyxy, conf, cid, names, ids, trackers, data = [], [], [], [], [], [], []
        core = {"x", "y", "width", "height", "confidence", "class_id", "class", "detection_id",
                "tracker_id"}
        for p in preds:
            x, y, w, h = (float(p[k]) for k in ("x", "y", "width", "height"))
            xyxy.append((x - w / 2, y - h / 2, x + w / 2, y + h / 2))
            conf.append(p.get("confidence") if p.get("confidence") is not None else np.nan)
            cid.append(p.get("class_id") if p.get("class_id") is not None else -1)
            names.append(p.get("class"))
            ids.append(p.get("detection_id"))
            trackers.append(p.get("tracker_id"))
            data.append({k: v for k, v in p.items() if k not in core})
        has_tracker = any(t is not None for t in trackers)
        return cls(np.array(xyxy, dtype=np.float64).reshape(-1, 4), conf, cid, names, ids,
                   trackers if has_tracker else None, data,
                   (image.get("width", 0), image.get("height", 0)))

    def __repr__(self):
        return "Detections(%d boxes: %s)" % (len(self), self.class_name[:5])


class Batch(list):
    """A Workflows Batch: a list that travels as {"_type": "batch"}."""


class VideoMetadata(dict):
    """video_metadata fields as a dict."""


class Opaque:
    """A value the block returned that JSON cannot carry: its class name and str()."""

    def __init__(self, class_name, value):
        self.class_name, self.value = class_name, value

    def __eq__(self, other):
        return isinstance(other, Opaque) and (self.class_name, self.value) == (other.class_name, other.value)

    def __repr__(self):
        return "Opaque(%s, %r)" % (self.class_name, self.value)


# The buffers of the encode in progress on this thread (None: JSON only, as for a context).
_tls = threading.local()
_UINT8 = np.dtype(np.uint8)


def _buffer_ref(a, raw_frame=False):
    """Appends a to this thread's run buffers and returns its index; None when the run takes
    no buffers (or has MAX_BUFFERS already, or, for a raw frame, a is not uint8 HxW(xC))."""
    bufs = getattr(_tls, "bufs", None)
    if bufs is None or len(bufs) >= MAX_BUFFERS:
        return None
    if raw_frame and (a.dtype != _UINT8 or a.ndim not in (2, 3)):   # uint8 BGR [h, w(, c)]
        return None
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    # At most one copy, and only when the caller's array is not C-contiguous already; the
    # C library copies the bytes into the worker's shared memory.
    bufs.append(np.ascontiguousarray(a))
    return len(bufs) - 1


def _ndarray_to_wire(a):
    name = a.dtype.name
    if name not in _DTYPES:
        raise InvalidRequest("InvalidRequest", "ndarray dtype %s is not carried by the wire "
                             "(bool, int8-64, uint8-64, float16/32/64)" % a.dtype)
    ref = _buffer_ref(a)
    if ref is not None:
        return {"_type": "ndarray", "dtype": name, "shape": list(a.shape), "buffer": ref}
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    a = np.ascontiguousarray(a)
    data = base64.b64encode(a.data if a.size else b"").decode("ascii")
    return {"_type": "ndarray", "dtype": name, "shape": list(a.shape), "data": data}


def _default(obj):
    """json.dumps hook: only called for what JSON does not know, so plain values cost nothing."""
    if isinstance(obj, np.ndarray):
        return _ndarray_to_wire(obj)
    if isinstance(obj, (Image, Detections)):
        return obj.to_wire()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"_type": "bytes", "value": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, _dt.datetime):
        return {"_type": "datetime", "value": obj.isoformat()}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise InvalidRequest("InvalidRequest", "cannot send a %s to a block" % type(obj).__name__)


def _encode_obj(value):
    # Batch and VideoMetadata are list/dict subclasses that json serialises natively, so they
    # are wrapped before dumping.
    if isinstance(value, Batch):
        return {"_type": "batch", "value": [_encode_obj(v) for v in value]}
    if isinstance(value, VideoMetadata):
        return dict(value, _type="video_metadata")
    if isinstance(value, dict):
        return {k: _encode_obj(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode_obj(v) for v in value]
    return value


_ENCODER = json.JSONEncoder(default=_default, allow_nan=False, separators=(",", ":"))
_encode_json = _ENCODER.encode


def encode_run(mapping):
    """{name: Python value} -> (JSON text, [C-contiguous little-endian arrays]) for
    bb_block_run_buffers: arrays and raw frames are named by index ("buffer": i)."""
    _tls.bufs = bufs = []
    try:
        return encode(mapping), bufs
    finally:
        _tls.bufs = None


def encode(mapping):
    """{name: Python value} -> JSON text for bb_block_run (arrays in the data form unless
    called through encode_run)."""
    for v in mapping.values():
        if isinstance(v, (dict, list)):
            mapping = {k: _encode_obj(v) for k, v in mapping.items()}
            break
    try:
        return _encode_json(mapping)
    except ValueError as exc:
        if isinstance(exc, InvalidRequest):
            raise
        raise InvalidRequest("InvalidRequest", "inputs: %s (JSON has no NaN or Infinity; "
                             "send floats inside a numpy array)" % exc) from None


def _buffer_view(buffers, index, dtype, shape):
    """A read-only array over result buffer `index` (no copy; the buffer's owner, the
    result, lives as long as the array)."""
    if buffers is None or not isinstance(index, int) or not 0 <= index < len(buffers):
        raise InvalidResponse("InvalidResponse", "an output names buffer %r, which the result lacks"
                              % (index,))
    if not isinstance(shape, list):
        raise InvalidResponse("InvalidResponse", "an output buffer without a shape")
    return np.frombuffer(buffers[index], dtype=dtype).reshape(shape)


def _ndarray_from_wire(obj, buffers=None):
    dtype = np.dtype(obj["dtype"]).newbyteorder("<")
    if "buffer" in obj:
        return _buffer_view(buffers, obj["buffer"], dtype, obj.get("shape"))
    shape = tuple(obj["shape"])
    if "data" in obj:
        # Read-only over the decoded bytes, like an array over a result buffer.
        return np.frombuffer(binascii.a2b_base64(obj["data"]), dtype=dtype).reshape(shape)
    return np.array(obj["value"], dtype=dtype).reshape(shape)


def _decode_obj(value, buffers=None):
    if isinstance(value, dict):
        tag = value.get("_type")
        if tag is None:
            return {k: _decode_obj(v, buffers) for k, v in value.items()}
        if tag == "ndarray":
            return _ndarray_from_wire(value, buffers)
        if tag == "workflow_image":
            return Image.from_wire(value, buffers)
        if tag == "sv_detections":
            return Detections.from_wire(value)
        if tag == "batch":
            return Batch(_decode_obj(v, buffers) for v in value.get("value", []))
        if tag == "bytes":
            return base64.b64decode(value["value"])
        if tag == "datetime":
            return _dt.datetime.fromisoformat(value["value"].replace("Z", "+00:00"))
        if tag == "video_metadata":
            return VideoMetadata((k, v) for k, v in value.items() if k != "_type")
        if tag == "object":
            return Opaque(value.get("class"), value.get("value"))
        return {k: _decode_obj(v, buffers) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_obj(v, buffers) for v in value]
    return value


_loads = json.JSONDecoder().decode


def decode(raw, buffers=None):
    """UTF-8 JSON bytes of outputs (checked by the C side) -> Python objects. buffers: the
    result's buffers (read-only memoryviews) that {"buffer": i} values name."""
    text = raw.decode("utf-8")
    value = _loads(text)
    if '"_type"' not in text:
        return value
    return _decode_obj(value, buffers)
