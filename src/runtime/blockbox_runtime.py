# blockbox_runtime.py: the Python side of blockbox. Loads one custom block, runs it on
# decoded inputs, and answers with one JSON response (DESIGN §2 semantics, §3 wire format).
"""blockbox runtime: runs Roboflow-style custom Python blocks inside the sandbox.

One self-contained module (stdlib + numpy + cv2). It is embedded into the local
worker (the zygote imports it and calls warm_up() before forking), shipped to the
Modal function, and used by the test emulator, so all backends behave alike.

API
---
RUNTIME_VERSION            "1", equal to BLOCKBOX_RUNTIME_VERSION in blockbox.h.
warm_up()                  import and exercise numpy/cv2/codecs once; starts no thread.
Runtime(limits=None)       one loaded block instance; limits: max_stream_bytes (1 MiB),
                           max_result_bytes (64 MiB).
Runtime.handle(dict)       request -> response dict; never raises.
Runtime.handle_bytes(b)    JSON frame -> JSON frame (UTF-8); never raises.
execute_request(dict)      a fresh Runtime handles one request (single-use Modal calls).

Encoding decisions (outputs)
----------------------------
* numpy arrays of dtype bool, int8-64, uint8-64, float16/32/64 -> {"_type": "ndarray",
  "dtype", "shape", "data": base64 of the little-endian C-order bytes}; any other
  dtype (str, object, complex, datetime64, float128), which the wire's ndarray does
  not allow, -> a plain nested list of its items (each encoded by these rules).
* numpy scalars -> plain Python numbers / strings / bools.
* float NaN and +-Inf -> null (JSON has no such numbers; the raw bytes of an ndarray
  keep them exactly).
* tuples, sets, frozensets -> lists; dict keys that are not strings -> str(key)
  (True/False/None as JSON spells them: "true", "false", "null").
* WorkflowImageData -> workflow_image: the original base64 string when the pixels
  were never replaced, else a JPEG (quality 95) of numpy_image (non-uint8 pixels are
  clipped to 0..255 first); parent and root ids and origins; video_metadata as its
  plain fields, or null when none was given.
* sv.Detections -> sv_detections: centre-based x, y, width, height, confidence,
  class_id, class (data["class_name"], else str(class_id)), detection_id (kept, or a
  new uuid4), tracker_id, points (outer contour of each mask), and every other data
  key per detection; image {width, height} from the input (else from the boxes).
* Batch -> {"_type": "batch", "value": [...]}; bytes -> bytes; datetime.datetime ->
  datetime (isoformat); VideoMetadata -> video_metadata with its fields.
* anything else -> {"_type": "object", "class": type name, "value": str(obj)}.
* strings with lone surrogates are sent with "?" in their place (UTF-8 only).

Decoding (inputs): every DESIGN §3 tag; {"type": "base64", "value": str} is an image;
an unknown tag or a malformed typed value is an InvalidRequest. Images decode lazily:
broken base64 or undecodable bytes raise ValueError when the block reads numpy_image.

Other decisions: stdout/stderr are each capped at max_stream_bytes *including* the
marker "\\n[blockbox: output cut at N bytes]" (N = bytes kept), the excess is dropped
as it arrives. debug_traces.append(v, add_timestamp=False, timezone=None) records
Roboflow's entry {"step", "value"[, "timestamp", "timestamp_timezone"]} with its
caps (16 KiB an entry, 1 MiB and 1000 entries a run, then one marker entry); the
entries of a request come back as the top-level "debug_traces" list of its response,
success or failure. The module-level name `globals` is a dict shared by the blocks
of one Runtime. An init function runs when init code was sent (it must define it) or when the
run code defines it; whatever it returns is self._init_results. Errors that are not the
block's own carry line_number/function_name/traceback null. The runtime knows
nothing of the seccomp jail: denied calls are recorded by the host (local driver)
outside the worker, and the host decides SandboxViolation (docs/SECURITY.md); the
`denied_syscalls` list a reply carries is always empty here. This runtime is not a
security boundary: the block can tamper with it; the C side validates all.
"""

import os
import sys

if "numpy" not in sys.modules:  # keep BLAS single-threaded: the zygote must not own threads
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import binascii
import builtins
import datetime
import hashlib
import io
import json
import math
import re
import threading
import time
import traceback
import types
import uuid
from typing import Any, Dict, Generic, TypeVar

import numpy as np
import cv2

cv2.setNumThreads(0)

try:  # Roboflow's preamble imports shapely (Debian: python3-shapely)
    import shapely
    import shapely.geometry
except ImportError:  # then blocks see no `shapely`, as `import shapely` would fail
    shapely = None

RUNTIME_VERSION = "1"
DEFAULT_MAX_STREAM_BYTES = 1 << 20
DEFAULT_MAX_RESULT_BYTES = 64 << 20

_RUN_FILE = "<run_code>"
_INIT_FILE = "<init_code>"
_IMPORTS_FILE = "<imports>"
_USER_FILES = (_RUN_FILE, _INIT_FILE, _IMPORTS_FILE)
_BLOCK_MODULE_NAME = "blockbox_block"

_b64encode = binascii.b2a_base64
_md5 = hashlib.md5
_isfinite = math.isfinite


class _RequestError(Exception):
    """A problem that is not the block's own: carries a DESIGN §3 error_type."""

    def __init__(self, error_type, message):
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message


def _b64decode(text, what):
    """Strict base64 (standard alphabet, padded, no whitespace), as the C side checks."""
    if not isinstance(text, str):
        raise ValueError("%s must be a base64 string" % what)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("%s is not valid base64 (%s)" % (what, exc)) from None


def _b64text(raw):
    return _b64encode(raw, newline=False).decode("ascii")


# ---------------------------------------------------------------------------------
# Compatible classes (the preamble's WorkflowImageData, sv.Detections, Batch, ...)
# ---------------------------------------------------------------------------------

class OriginCoordinatesSystem:
    """Where an image sits inside its parent: left top corner and the parent's size."""

    __slots__ = ("left_top_x", "left_top_y", "origin_width", "origin_height")

    def __init__(self, left_top_x=0, left_top_y=0, origin_width=0, origin_height=0):
        self.left_top_x = left_top_x
        self.left_top_y = left_top_y
        self.origin_width = origin_width
        self.origin_height = origin_height

    def __eq__(self, other):
        return (isinstance(other, OriginCoordinatesSystem)
                and self._fields() == other._fields())

    def _fields(self):
        return (self.left_top_x, self.left_top_y, self.origin_width, self.origin_height)

    def __repr__(self):
        return ("OriginCoordinatesSystem(left_top_x=%r, left_top_y=%r, origin_width=%r, "
                "origin_height=%r)" % self._fields())

    def _to_wire(self):
        return {"offset_x": self.left_top_x, "offset_y": self.left_top_y,
                "width": self.origin_width, "height": self.origin_height}

    @classmethod
    def _from_wire(cls, value):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _RequestError("InvalidRequest", "an image origin must be an object")
        return cls(value.get("offset_x", 0), value.get("offset_y", 0),
                   value.get("width", 0), value.get("height", 0))


class ImageParentMetadata:
    """The id of an image's parent and, optionally, the image's place inside it."""

    __slots__ = ("parent_id", "origin_coordinates")

    def __init__(self, parent_id, origin_coordinates=None):
        self.parent_id = parent_id
        self.origin_coordinates = origin_coordinates

    def __eq__(self, other):
        return (isinstance(other, ImageParentMetadata) and self.parent_id == other.parent_id
                and self.origin_coordinates == other.origin_coordinates)

    def __repr__(self):
        return "ImageParentMetadata(parent_id=%r, origin_coordinates=%r)" % (
            self.parent_id, self.origin_coordinates)


class VideoMetadata:
    """Frame information of an image that came from a video (fields as Roboflow's)."""

    _FIELDS = ("video_identifier", "frame_number", "frame_timestamp", "fps",
               "measured_fps", "comes_from_video_file")

    def __init__(self, video_identifier="", frame_number=0, frame_timestamp=None, fps=None,
                 measured_fps=None, comes_from_video_file=None, **extra):
        self.video_identifier = video_identifier
        self.frame_number = frame_number
        self.frame_timestamp = frame_timestamp
        self.fps = fps
        self.measured_fps = measured_fps
        self.comes_from_video_file = comes_from_video_file
        self.extra = extra

    def dict(self):
        out = {name: getattr(self, name) for name in self._FIELDS}
        out.update(self.extra)
        return out

    def __getitem__(self, key):
        return self.dict()[key]

    def __eq__(self, other):
        return isinstance(other, VideoMetadata) and self.dict() == other.dict()

    def __repr__(self):
        return "VideoMetadata(%s)" % ", ".join("%s=%r" % kv for kv in self.dict().items())

    def _to_wire_fields(self):
        out = self.dict()
        stamp = out.get("frame_timestamp")
        if isinstance(stamp, datetime.datetime):
            out["frame_timestamp"] = stamp.isoformat()
        return out

    @classmethod
    def _from_wire(cls, value):
        if value is None:
            return None
        if isinstance(value, VideoMetadata):
            return value
        if not isinstance(value, dict):
            raise _RequestError("InvalidRequest", "video_metadata must be an object or null")
        fields = {str(k): v for k, v in value.items() if k != "_type"}
        stamp = fields.get("frame_timestamp")
        if isinstance(stamp, str):
            try:
                fields["frame_timestamp"] = datetime.datetime.fromisoformat(stamp)
            except ValueError:
                pass  # kept as sent
        return cls(**fields)


def _decode_image_bytes(text):
    if text.startswith("data:"):
        text = text.partition(",")[2]
    raw = _b64decode(text, "the image")
    pixels = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError("the image could not be decoded (%d bytes that are not a supported "
                         "image format)" % len(raw))
    return pixels


def _encode_image_jpeg(pixels):
    if not isinstance(pixels, np.ndarray):
        raise TypeError("numpy_image must be a numpy array, not %s" % type(pixels).__name__)
    if pixels.dtype != np.uint8:
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError("the image of shape %s could not be encoded as JPEG" % (pixels.shape,))
    return _b64text(jpeg)


class WorkflowImageData:
    """An image flowing through a workflow: lazily decoded pixels (BGR uint8, as
    cv2.imdecode gives) and lazily encoded base64, plus parent metadata."""

    def __init__(self, parent_metadata=None, workflow_root_ancestor_metadata=None,
                 image_reference=None, base64_image=None, numpy_image=None,
                 video_metadata=None):
        if numpy_image is None and base64_image is None and image_reference is None:
            raise ValueError("Could not initialise empty `WorkflowImageData`.")
        if parent_metadata is None:
            parent_metadata = ImageParentMetadata(parent_id="image")
        self._parent_metadata = parent_metadata
        self._workflow_root_ancestor_metadata = (workflow_root_ancestor_metadata
                                                 or parent_metadata)
        self._image_reference = image_reference
        self._base64_image = base64_image
        self._numpy_image = numpy_image
        self._video_metadata = video_metadata

    @property
    def parent_metadata(self):
        return self._parent_metadata

    @property
    def workflow_root_ancestor_metadata(self):
        return self._workflow_root_ancestor_metadata

    @property
    def numpy_image(self):
        if self._numpy_image is None:
            if self._base64_image is not None:
                self._numpy_image = _decode_image_bytes(self._base64_image)
            else:
                raise ValueError("image reference %r cannot be loaded inside the sandbox"
                                 % (self._image_reference,))
        return self._numpy_image

    @property
    def base64_image(self):
        if self._base64_image is None:
            self._base64_image = _encode_image_jpeg(self.numpy_image)
        return self._base64_image

    @property
    def video_metadata(self):
        if self._video_metadata is not None:
            return self._video_metadata
        return VideoMetadata(video_identifier=self._parent_metadata.parent_id, frame_number=0,
                             frame_timestamp=datetime.datetime.now(), fps=30,
                             comes_from_video_file=None)

    def to_inference_format(self, numpy_preferred=False):
        if numpy_preferred:
            return {"type": "numpy_object", "value": self.numpy_image}
        return {"type": "base64", "value": self.base64_image}

    def declare_numpy_image_mutated(self):
        """After changing numpy_image in place: the pixels become the only source, so
        base64_image (and the output) is re-encoded from them."""
        if self._numpy_image is None:
            raise ValueError("declare_numpy_image_mutated() called, but no numpy image is "
                             "loaded, so nothing was mutated: read `numpy_image` first")
        self._base64_image = None
        self._image_reference = None

    @classmethod
    def copy_and_replace(cls, origin_image_data, **kwargs):
        parent_metadata = origin_image_data._parent_metadata
        root_metadata = origin_image_data._workflow_root_ancestor_metadata
        image_reference = origin_image_data._image_reference
        base64_image = origin_image_data._base64_image
        numpy_image = origin_image_data._numpy_image
        video_metadata = origin_image_data._video_metadata
        if any(key in kwargs for key in ("numpy_image", "base64_image", "image_reference")):
            numpy_image = kwargs.get("numpy_image")
            base64_image = kwargs.get("base64_image")
            image_reference = kwargs.get("image_reference")
        parent_metadata = kwargs.get("parent_metadata", parent_metadata)
        root_metadata = kwargs.get("workflow_root_ancestor_metadata", root_metadata)
        video_metadata = kwargs.get("video_metadata", video_metadata)
        return cls(parent_metadata=parent_metadata, workflow_root_ancestor_metadata=root_metadata,
                   image_reference=image_reference, base64_image=base64_image,
                   numpy_image=numpy_image, video_metadata=video_metadata)

    def __repr__(self):
        return "WorkflowImageData(parent_id=%r)" % (self._parent_metadata.parent_id,)

    def _to_wire(self):
        out = {"_type": "workflow_image", "type": "base64", "value": self.base64_image,
               "video_metadata": (self._video_metadata._to_wire_fields()
                                  if isinstance(self._video_metadata, VideoMetadata)
                                  else self._video_metadata)}
        for prefix, meta in (("parent", self._parent_metadata),
                             ("root_parent", self._workflow_root_ancestor_metadata)):
            if meta is None:
                continue
            out[prefix + "_id"] = meta.parent_id
            if meta.origin_coordinates is not None:
                out[prefix + "_origin"] = meta.origin_coordinates._to_wire()
        return out

    @classmethod
    def _from_wire(cls, value):
        text = value.get("value")
        if not isinstance(text, str):
            raise _RequestError("InvalidRequest", "an image value must be a base64 string")
        kind = value.get("type", "base64")
        if kind != "base64":
            raise _RequestError("InvalidRequest", "image type %r is not supported (only base64)"
                                % (kind,))
        parent_id = value.get("parent_id")
        parent = ImageParentMetadata(parent_id if parent_id is not None else "image",
                                     OriginCoordinatesSystem._from_wire(value.get("parent_origin")))
        root = parent
        if value.get("root_parent_id") is not None or value.get("root_parent_origin") is not None:
            root_id = value.get("root_parent_id")
            root = ImageParentMetadata(
                root_id if root_id is not None else parent.parent_id,
                OriginCoordinatesSystem._from_wire(value.get("root_parent_origin")))
        return cls(parent_metadata=parent, workflow_root_ancestor_metadata=root,
                   base64_image=text,
                   video_metadata=VideoMetadata._from_wire(value.get("video_metadata")))


def _optional_equal(a, b):
    if a is None or b is None:
        return a is None and b is None
    return np.array_equal(a, b)


def _select(value, index):
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value[index]
    positions = np.arange(len(value))[index]
    return [value[int(i)] for i in np.atleast_1d(positions)]


class Detections:
    """supervision-compatible detections: xyxy (N, 4) float boxes plus optional
    mask (N, H, W) bool, confidence, class_id, tracker_id and per-item data arrays."""

    def __init__(self, xyxy, mask=None, confidence=None, class_id=None, tracker_id=None,
                 data=None, metadata=None):
        xyxy = np.asarray(xyxy, dtype=float)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError("xyxy must be a (N, 4) array, got shape %s" % (xyxy.shape,))
        self.xyxy = xyxy
        self.mask = None if mask is None else np.asarray(mask)
        self.confidence = None if confidence is None else np.asarray(confidence)
        self.class_id = None if class_id is None else np.asarray(class_id)
        self.tracker_id = None if tracker_id is None else np.asarray(tracker_id)
        self.data = dict(data) if data else {}
        self.metadata = dict(metadata) if metadata else {}
        count = len(xyxy)
        for name in ("mask", "confidence", "class_id", "tracker_id"):
            field = getattr(self, name)
            if field is not None and len(field) != count:
                raise ValueError("%s has %d items but xyxy has %d" % (name, len(field), count))
        for key, field in self.data.items():
            if len(field) != count:
                raise ValueError("data[%r] has %d items but xyxy has %d" % (key, len(field), count))

    @classmethod
    def empty(cls):
        return cls(xyxy=np.empty((0, 4), dtype=np.float32),
                   confidence=np.array([], dtype=np.float32),
                   class_id=np.array([], dtype=int))

    def is_empty(self):
        return len(self) == 0

    def __len__(self):
        return len(self.xyxy)

    def __iter__(self):
        for i in range(len(self.xyxy)):
            yield (self.xyxy[i],
                   self.mask[i] if self.mask is not None else None,
                   self.confidence[i] if self.confidence is not None else None,
                   self.class_id[i] if self.class_id is not None else None,
                   self.tracker_id[i] if self.tracker_id is not None else None,
                   {key: value[i] for key, value in self.data.items()})

    def __getitem__(self, index):
        if isinstance(index, str):
            return self.data.get(index)
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        elif isinstance(index, list) and index and all(isinstance(v, (bool, np.bool_))
                                                         for v in index):
            index = np.asarray(index, dtype=bool)
        return Detections(
            xyxy=self.xyxy[index],
            mask=_select(self.mask, index),
            confidence=_select(self.confidence, index),
            class_id=_select(self.class_id, index),
            tracker_id=_select(self.tracker_id, index),
            data={key: _select(value, index) for key, value in self.data.items()},
            metadata=self.metadata)

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise TypeError("Detections only accept string keys (data fields)")
        if isinstance(value, list):
            value = np.array(value)
        self.data[key] = value

    def __eq__(self, other):
        if not isinstance(other, Detections):
            return NotImplemented
        if not (np.array_equal(self.xyxy, other.xyxy)
                and _optional_equal(self.mask, other.mask)
                and _optional_equal(self.confidence, other.confidence)
                and _optional_equal(self.class_id, other.class_id)
                and _optional_equal(self.tracker_id, other.tracker_id)
                and self.data.keys() == other.data.keys()):
            return False
        return all(np.array_equal(np.asarray(self.data[k]), np.asarray(other.data[k]))
                   for k in self.data)

    __hash__ = None

    def __repr__(self):
        return "Detections(n=%d, classes=%r)" % (len(self), list(self.data.get("class_name", [])))

    @property
    def area(self):
        if self.mask is not None:
            return np.array([np.sum(m) for m in self.mask])
        return self.box_area

    @property
    def box_area(self):
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    @classmethod
    def merge(cls, detections_list):
        items = [d for d in detections_list if len(d) > 0]
        if not items:
            return cls.empty()

        def stack(name):
            fields = [getattr(d, name) for d in items]
            if any(f is None for f in fields):
                return None
            return np.vstack(fields) if name in ("xyxy", "mask") else np.hstack(fields)

        keys = set(items[0].data)
        data = {}
        if all(set(d.data) == keys for d in items):
            data = {k: np.concatenate([np.asarray(d.data[k]) for d in items]) for k in keys}
        return cls(xyxy=stack("xyxy"), mask=stack("mask"), confidence=stack("confidence"),
                   class_id=stack("class_id"), tracker_id=stack("tracker_id"), data=data,
                   metadata=items[0].metadata)

    @classmethod
    def from_inference(cls, roboflow_result):
        if not isinstance(roboflow_result, dict):
            raise TypeError("from_inference expects a dict with 'predictions'")
        return cls._from_wire(roboflow_result)

    # -- wire form -------------------------------------------------------------------
    _KNOWN_KEYS = frozenset(("x", "y", "width", "height", "confidence", "class_id", "class",
                             "detection_id", "tracker_id", "points"))

    @classmethod
    def _from_wire(cls, value):
        predictions = value.get("predictions")
        if not isinstance(predictions, list):
            raise _RequestError("InvalidRequest", "sv_detections needs a predictions list")
        image = value.get("image") if isinstance(value.get("image"), dict) else {}
        count = len(predictions)
        xyxy = np.empty((count, 4), dtype=float)
        confidence, class_id, class_name, detection_id, tracker_id = [], [], [], [], []
        extra_keys = []
        polygons = []
        for i, p in enumerate(predictions):
            if not isinstance(p, dict):
                raise _RequestError("InvalidRequest", "each prediction must be an object")
            try:
                x, y = float(p["x"]), float(p["y"])
                w, h = float(p["width"]), float(p["height"])
            except (KeyError, TypeError, ValueError):
                raise _RequestError("InvalidRequest", "prediction %d needs numeric x, y, width, "
                                    "height" % i) from None
            xyxy[i] = (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
            confidence.append(p.get("confidence"))
            class_id.append(p.get("class_id"))
            class_name.append(p.get("class"))
            detection_id.append(p.get("detection_id"))
            tracker_id.append(p.get("tracker_id"))
            polygons.append(p.get("points"))
            for key in p:
                if key not in cls._KNOWN_KEYS and key not in extra_keys:
                    extra_keys.append(key)

        def column(values, dtype):
            if any(v is None for v in values):
                return None
            try:
                return np.array(values, dtype=dtype)
            except (TypeError, ValueError):
                raise _RequestError("InvalidRequest", "a prediction field has the wrong type") \
                    from None

        data = {}
        if count == 0 or all(v is not None for v in class_name):
            data["class_name"] = np.array([str(v) for v in class_name], dtype=object
                                          if count == 0 else None)
        if count == 0 or all(v is not None for v in detection_id):
            data["detection_id"] = np.array([str(v) for v in detection_id], dtype=object
                                            if count == 0 else None)
        for key in extra_keys:
            values = [p.get(key) for p in predictions]
            if all(isinstance(v, (str, int, float, bool)) for v in values) and \
                    len({type(v) for v in values}) == 1:
                data[key] = np.array(values)
            else:
                column_values = np.empty(count, dtype=object)
                for i, v in enumerate(values):
                    column_values[i] = v
                data[key] = column_values
        metadata = {}
        width, height = image.get("width"), image.get("height")
        if isinstance(width, (int, float)) and isinstance(height, (int, float)):
            metadata["image"] = {"width": width, "height": height}
        mask = None
        if any(poly for poly in polygons):
            mask = cls._masks_from_polygons(polygons, metadata.get("image"), xyxy)
        return cls(xyxy=xyxy, mask=mask,
                   confidence=column(confidence, float) if count else np.array([], dtype=float),
                   class_id=column(class_id, int) if count else np.array([], dtype=int),
                   tracker_id=column(tracker_id, int) if count else None,
                   data=data, metadata=metadata)

    @staticmethod
    def _masks_from_polygons(polygons, image, xyxy):
        if image:
            width, height = int(image["width"]), int(image["height"])
        else:
            width = int(math.ceil(xyxy[:, 2].max())) if len(xyxy) else 0
            height = int(math.ceil(xyxy[:, 3].max())) if len(xyxy) else 0
        if width <= 0 or height <= 0 or width * height > (1 << 26):
            raise _RequestError("InvalidRequest", "polygon masks need a sane image width/height")
        masks = np.zeros((len(polygons), height, width), dtype=bool)
        for i, poly in enumerate(polygons):
            if not poly:
                continue
            try:
                points = np.array([[float(pt["x"]), float(pt["y"])] for pt in poly])
            except (KeyError, TypeError, ValueError):
                raise _RequestError("InvalidRequest", "polygon points need numeric x, y") from None
            canvas = np.zeros((height, width), dtype=np.uint8)
            cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 1)
            masks[i] = canvas.astype(bool)
        return masks

    def _image_dims(self):
        image = self.metadata.get("image")
        if image:
            return {"width": image["width"], "height": image["height"]}
        dims = self.data.get("image_dimensions")
        if dims is not None and len(dims):
            height, width = (int(v) for v in np.asarray(dims[0]).ravel()[:2])
            return {"width": width, "height": height}
        if len(self.xyxy):
            return {"width": int(math.ceil(max(0.0, float(self.xyxy[:, 2].max())))),
                    "height": int(math.ceil(max(0.0, float(self.xyxy[:, 3].max()))))}
        return {"width": 0, "height": 0}

    def _to_wire(self):
        predictions = []
        class_names = self.data.get("class_name")
        detection_ids = self.data.get("detection_id")
        for i in range(len(self.xyxy)):
            x1, y1, x2, y2 = (float(v) for v in self.xyxy[i])
            width, height = abs(x2 - x1), abs(y2 - y1)
            p = {"x": min(x1, x2) + width / 2, "y": min(y1, y2) + height / 2,
                 "width": width, "height": height}
            if self.confidence is not None:
                p["confidence"] = self.confidence[i]
            if self.class_id is not None:
                p["class_id"] = self.class_id[i]
            if class_names is not None:
                p["class"] = str(class_names[i])
            elif self.class_id is not None:
                p["class"] = str(self.class_id[i])
            p["detection_id"] = (str(detection_ids[i]) if detection_ids is not None
                                 else str(uuid.uuid4()))
            if self.tracker_id is not None:
                p["tracker_id"] = self.tracker_id[i]
            if self.mask is not None:
                p["points"] = _mask_outline(self.mask[i])
            for key, values in self.data.items():
                if key not in ("class_name", "detection_id") and key not in p:
                    p[key] = values[i]
            predictions.append(p)
        return {"_type": "sv_detections", "image": self._image_dims(), "predictions": predictions}


def _mask_outline(mask):
    canvas = np.ascontiguousarray(mask, dtype=np.uint8)
    if canvas.ndim != 2:
        return []
    contours, _ = cv2.findContours(canvas, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    largest = max(contours, key=cv2.contourArea)
    return [{"x": float(pt[0][0]), "y": float(pt[0][1])} for pt in largest]


sv = types.ModuleType("sv", "blockbox's supervision-compatible subset (sv.Detections).")
sv.Detections = Detections

T = TypeVar("T")


class Batch(Generic[T]):
    """A batch of workflow values: iterable, indexable, sized (Batch[X] in annotations)."""

    def __init__(self, content, indices=None):
        self._content = list(content)
        self._indices = indices

    @classmethod
    def init(cls, content, indices=None):
        return cls(content, indices)

    @property
    def indices(self):
        if self._indices is None:
            return [(i,) for i in range(len(self._content))]
        return self._indices

    def __len__(self):
        return len(self._content)

    def __iter__(self):
        return iter(self._content)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Batch(self._content[index])
        return self._content[index]

    def __eq__(self, other):
        return isinstance(other, Batch) and self._content == other._content

    __hash__ = None

    def __repr__(self):
        return "Batch(%r)" % (self._content,)

    def iter_with_indices(self):
        """(index, item) pairs; an index is a tuple ((i,) for a flat batch)."""
        return zip(self.indices, self._content)

    def iter_nonempty(self):
        return (item for item in self._content if item is not None)

    def broadcast(self, n):
        if len(self._content) == n:
            return self
        if len(self._content) == 1:
            return Batch(self._content * n)
        raise ValueError("cannot broadcast a batch of %d to %d" % (len(self._content), n))

    def remove_by_indices(self, indices_to_remove):
        drop = set(indices_to_remove)
        kept = [(item, idx) for item, idx in zip(self._content, self.indices) if idx not in drop]
        return Batch([item for item, _ in kept], [idx for _, idx in kept])


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


# ---------------------------------------------------------------------------------
# `requests` without a network: Roboflow's preamble imports it, so blocks may too
# ---------------------------------------------------------------------------------

_NO_NETWORK = ("blockbox: custom blocks have no network access, so requests.%s(%r) "
               "cannot connect")


def _requests_shim():
    """A module named `requests`: importable, with requests' exception classes, and
    every call raising requests.exceptions.ConnectionError that says why. The same
    in every backend (the jail and the Modal function have no network anyway)."""
    shim = types.ModuleType("requests", "blockbox stand-in for requests: blocks have no "
                                        "network, every request raises ConnectionError.")
    errors = types.ModuleType("requests.exceptions")

    class RequestException(IOError):
        def __init__(self, *args, **kwargs):
            self.response = kwargs.pop("response", None)
            self.request = kwargs.pop("request", None)
            IOError.__init__(self, *args)

    classes = {"RequestException": RequestException}
    for name, bases in (("ConnectionError", ("RequestException",)),
                        ("HTTPError", ("RequestException",)),
                        ("Timeout", ("RequestException",)),
                        ("ConnectTimeout", ("ConnectionError", "Timeout")),
                        ("ReadTimeout", ("Timeout",)),
                        ("TooManyRedirects", ("RequestException",)),
                        ("URLRequired", ("RequestException",)),
                        ("InvalidURL", ("RequestException", "ValueError")),
                        ("InvalidSchema", ("RequestException", "ValueError")),
                        ("MissingSchema", ("RequestException", "ValueError")),
                        ("JSONDecodeError", ("RequestException", "ValueError"))):
        parents = tuple(classes[b] if b in classes else getattr(builtins, b) for b in bases)
        classes[name] = type(name, parents, {"__module__": "requests.exceptions"})
    RequestException.__module__ = "requests.exceptions"
    for name, cls in classes.items():
        setattr(errors, name, cls)
        setattr(shim, name, cls)

    def refuse(method):
        def call(*args, **kwargs):
            url = args[0] if args else kwargs.get("url")
            if method == "request" and len(args) > 1:
                url = args[1]
            raise classes["ConnectionError"](_NO_NETWORK % (method, str(url)[:200]))
        call.__name__ = method
        return call

    methods = ("request", "get", "post", "put", "patch", "delete", "head", "options")
    for method in methods:
        setattr(shim, method, refuse(method))

    class Session:
        def __init__(self):
            self.headers = {}
            self.params = {}
            self.cookies = {}
            self.verify = True
            self.proxies = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

        def close(self):
            pass

        def mount(self, prefix, adapter):
            pass

    for method in methods:
        setattr(Session, method, staticmethod(refuse(method)))
    Session.__module__ = "requests"
    shim.Session = Session
    shim.session = Session
    shim.exceptions = errors
    # the submodules blocks import to configure a session (they never send anything)
    adapters = types.ModuleType("requests.adapters")
    auth = types.ModuleType("requests.auth")

    class HTTPAdapter:
        def __init__(self, *args, **kwargs):
            self.max_retries = kwargs.get("max_retries")

    class HTTPBasicAuth:
        def __init__(self, username, password):
            self.username, self.password = username, password

    adapters.HTTPAdapter = HTTPAdapter
    auth.HTTPBasicAuth = HTTPBasicAuth
    shim.adapters, shim.auth = adapters, auth
    shim._submodules = {"requests.exceptions": errors, "requests.adapters": adapters,
                        "requests.auth": auth}
    shim.codes = types.SimpleNamespace(ok=200, created=201, no_content=204, bad_request=400,
                                       unauthorized=401, forbidden=403, not_found=404,
                                       too_many_requests=429, internal_server_error=500)
    shim.__version__ = "0+blockbox"
    return shim


requests = _requests_shim()


BlockResult = Dict[str, Any]

# ---------------------------------------------------------------------------------
# Decoding of inputs (typed values of DESIGN §3)
# ---------------------------------------------------------------------------------

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


def _request_limits(request):
    """The caller's limits (extension "limits": {"max_depth": n}); None when absent."""
    limits = request.get("limits")
    if limits is None:
        return None
    if type(limits) is not dict or set(limits) - {"max_depth"}:
        raise _RequestError("InvalidRequest", "limits must be an object {max_depth}")
    depth = limits.get("max_depth")
    if depth is not None and (type(depth) is not int or not 1 <= depth <= 100000):
        raise _RequestError("InvalidRequest", "limits.max_depth must be an int in 1..100000")
    return depth


def _utf8_size(text):
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _clean_text(text):
    """The text, with lone surrogates replaced so it is valid UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


# ---------------------------------------------------------------------------------
# Capture of stdout / stderr
# ---------------------------------------------------------------------------------

_MARKER_RESERVE = 64


class _CappedWriter(io.TextIOBase):
    """A text stream that keeps at most `cap` bytes (marker included) and drops the
    rest as it arrives."""

    def __init__(self, cap, name, fd=None):
        io.TextIOBase.__init__(self)
        self._fd = fd  # a real file behind fileno() (local worker: fd 1 / fd 2), or None
        self._cap = cap
        self._budget = max(0, cap - _MARKER_RESERVE)
        self._parts = []
        self._size = 0
        self._cut = False
        self.name = name
        self.buffer = _BytesToText(self)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # faulthandler, C extensions and os.write(sys.stderr.fileno(), ...) need one
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd

    def flush(self):
        pass

    def drain_fd(self):
        """What was written to fileno() during the call joins the captured text (after
        what was printed; at most the cap is read), and the file starts empty again."""
        if self._fd is None:
            return
        try:
            size = os.fstat(self._fd).st_size
            if size:
                data = os.pread(self._fd, min(size, self._cap), 0)
                os.ftruncate(self._fd, 0)
                self.write(data.decode("utf-8", "replace"))
        except OSError:
            pass

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if self._cut:
            return len(text)
        size = _utf8_size(text)
        room = self._budget - self._size
        if size <= room:
            self._parts.append(text)
            self._size += size
            return len(text)
        if text.isascii():
            kept = text[:room]
        else:
            kept = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
        self._parts.append(kept)
        self._size += _utf8_size(kept)
        marker = "\n[blockbox: output cut at %d bytes]" % self._size
        if self._size + len(marker) <= self._cap:
            self._parts.append(marker)
        self._cut = True
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def getvalue(self):
        return "".join(self._parts)


class _BytesToText:
    """sys.stdout.buffer of a capped writer: bytes are decoded as UTF-8 (replacing)."""

    def __init__(self, writer):
        self._writer = writer

    def write(self, data):
        self._writer.write(bytes(data).decode("utf-8", "replace"))
        return len(data)

    def flush(self):
        pass


# ---------------------------------------------------------------------------------
# The runtime
# ---------------------------------------------------------------------------------

class _BlockSelf:
    """The `self` a block's run function receives."""

    def __init__(self):
        self._init_results = {}
        self._workflow_context = {}

    def get_workflow_context(self):
        return dict(self._workflow_context)   # a fresh dict per call, as in Roboflow


def _preamble_template():
    import typing
    names = {
        "__builtins__": builtins,
        "Any": typing.Any, "List": typing.List, "Dict": typing.Dict, "Set": typing.Set,
        "Optional": typing.Optional,
        "np": np, "math": math, "time": time, "json": json, "os": os, "cv2": cv2,
        "Batch": Batch, "WorkflowImageData": WorkflowImageData, "BlockResult": BlockResult,
        "sv": sv, "requests": requests,
    }
    if shapely is not None:
        names["shapely"] = shapely
    return names


_PREAMBLE = _preamble_template()


class _Block:
    """One loaded block instance: its module, sources, self and debug traces."""

    __slots__ = ("key", "code_hash", "module", "sources", "self_obj", "traces")

    def __init__(self, key, code_hash, shared_globals):
        self.key = key
        self.code_hash = code_hash
        self.module = types.ModuleType(_BLOCK_MODULE_NAME)
        self.module.__dict__.update(_PREAMBLE)
        self.traces = _DebugTraces()
        self.module.__dict__["debug_traces"] = self.traces
        # Roboflow's `globals`: a dict every block of the process shares. Here it is
        # the Runtime's (one worker process, one block instance; see README).
        self.module.__dict__["globals"] = shared_globals
        self.sources = {}
        self.self_obj = _BlockSelf()


class _Call:
    """What one request collects: captured streams and denied system calls."""

    __slots__ = ("stdout", "stderr", "denied", "traces", "step", "max_depth")

    def __init__(self, cap, fds=(None, None)):
        self.stdout = _CappedWriter(cap, "<stdout>", fds[0])
        self.stderr = _CappedWriter(cap, "<stderr>", fds[1])
        self.denied = []
        self.traces = None   # the _DebugTraces user code of this request wrote to
        self.step = None     # the step name trace entries carry
        self.max_depth = None   # the caller's nesting limit of outputs (request "limits")

    def trace_entries(self):
        if self.traces is None:
            return []
        try:
            return _normalize(self.traces._snapshot())
        except Exception:  # noqa: BLE001 - entries the block tampered with
            return []


class _BlockFailure(Exception):
    """The block's own error, already formatted as response fields."""

    def __init__(self, fields):
        Exception.__init__(self, fields.get("error"))
        self.fields = fields


def _exception_text(exc):
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = "<unprintable message>"
    name = type(exc).__name__
    return "%s: %s" % (name, message) if message else name


def _limit(limits, key, default):
    value = (limits or {}).get(key, default)
    if value is None:
        return default
    if type(value) is not int or value <= 0:
        raise ValueError("limit %s must be a positive int" % key)
    return value


def _stream_fd(limits, key):
    value = (limits or {}).get(key)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ValueError("%s must be a file descriptor" % key)
    return value


class Runtime:
    """Serves one block instance: load (compile + init once) and runs."""

    def __init__(self, limits=None):
        self._max_stream = _limit(limits, "max_stream_bytes", DEFAULT_MAX_STREAM_BYTES)
        # the caller enforces it (an OutputLimit must be seen by the trusted side); read
        # here so a bad value is still refused
        self._max_result = _limit(limits, "max_result_bytes", DEFAULT_MAX_RESULT_BYTES)
        self._block = None
        self._globals = {}
        # `import requests` in a block finds the network-less stand-in.
        sys.modules["requests"] = requests
        sys.modules.update(requests._submodules)
        # Files the local worker put on fds 1 and 2 for C-level output (fileno()).
        self._fds = tuple(_stream_fd(limits, k) for k in ("stdout_fd", "stderr_fd"))

    # -- public ---------------------------------------------------------------------
    def handle_bytes(self, frame):
        try:
            if isinstance(frame, (bytearray, memoryview)):
                frame = bytes(frame)
            if isinstance(frame, bytes):
                try:
                    frame = frame.decode("utf-8")
                except UnicodeDecodeError:
                    raise _RequestError("InvalidRequest", "a request must be UTF-8 JSON") \
                        from None
            if not isinstance(frame, str):
                raise _RequestError("InvalidRequest", "a request must be bytes of JSON")
            try:
                request = json.loads(frame)
            except RecursionError:
                raise _RequestError("InvalidRequest", "the request is nested too deeply") \
                    from None
            except ValueError as exc:
                raise _RequestError("InvalidRequest", "the request is not JSON: %s" % exc) \
                    from None
            response = self.handle(request)
        except _RequestError as exc:
            response = self._failure(exc.error_type, exc.message)
        except BaseException as exc:  # noqa: BLE001 - never raise
            response = self._failure(type(exc).__name__, "blockbox runtime: %s"
                                     % _exception_text(exc))
        try:
            text = _RESPONSE_ENCODER.encode(response)
            # `result` is ASCII JSON already checked by _encode_json: only the other
            # fields (short) can hold a surrogate escape.
            if any(k != "result" and not _plain_ascii(v) for k, v in response.items()):
                text = _no_lone_surrogates(text)
            return text.encode("utf-8", "replace")
        except BaseException as exc:  # noqa: BLE001
            fallback = self._failure(type(exc).__name__,
                                     "blockbox runtime: the response could not be encoded: %s"
                                     % _exception_text(exc))
            return _RESPONSE_ENCODER.encode(fallback).encode("utf-8", "replace")

    def handle(self, request):
        call = None
        try:
            call = _Call(self._max_stream, self._fds)
            return self._handle(request, call)
        except _RequestError as exc:
            return self._failure(exc.error_type, exc.message, call)
        except _BlockFailure as exc:
            return self._block_failure(exc.fields, call)
        except MemoryError:
            return self._failure("MemoryError", "the runtime ran out of memory", call)
        except BaseException as exc:  # noqa: BLE001 - never raise
            return self._failure(type(exc).__name__, "blockbox runtime: %s"
                                 % _exception_text(exc), call)

    # -- responses ------------------------------------------------------------------
    @staticmethod
    def _streams(call):
        if call is None:
            return "", ""
        return _clean_text(call.stdout.getvalue()), _clean_text(call.stderr.getvalue())

    def _failure(self, error_type, message, call=None):
        stdout, stderr = self._streams(call)
        return {"success": False, "error_type": error_type, "error": _clean_text(message),
                "line_number": None, "function_name": None, "traceback": None,
                "stdout": stdout, "stderr": stderr, "runtime_version": RUNTIME_VERSION,
                "denied_syscalls": list(call.denied) if call is not None else [],
                "debug_traces": call.trace_entries() if call is not None else []}

    def _block_failure(self, fields, call):
        stdout, stderr = self._streams(call)
        response = {"success": False, "error_type": fields["error_type"],
                    "error": _clean_text(fields["error"]),
                    "line_number": fields.get("line_number"),
                    "function_name": fields.get("function_name"),
                    "traceback": _clean_text(fields.get("traceback") or ""),
                    "stdout": stdout, "stderr": stderr, "runtime_version": RUNTIME_VERSION,
                    "denied_syscalls": list(call.denied), "debug_traces": call.trace_entries()}
        return response

    def _success(self, result_text, call):
        stdout, stderr = self._streams(call)
        return {"success": True, "result": _clean_text(result_text), "stdout": stdout,
                "stderr": stderr, "runtime_version": RUNTIME_VERSION,
                "denied_syscalls": list(call.denied), "debug_traces": call.trace_entries()}

    # -- request handling -----------------------------------------------------------
    def _handle(self, request, call):
        if type(request) is not dict:
            raise _RequestError("InvalidRequest", "a request must be a JSON object")
        version = request.get("runtime_version")
        if version is not None and version != RUNTIME_VERSION:
            raise _RequestError("ConfigurationError",
                                "runtime version mismatch: the caller speaks runtime version %s, "
                                "this runtime is version %s" % (str(version)[:32], RUNTIME_VERSION))
        code_hash = request.get("code_hash")
        if not isinstance(code_hash, str) or not code_hash:
            raise _RequestError("InvalidRequest", "code_hash must be a non-empty string")
        run_name = _identifier(request.get("run_function_name"), "run", "run_function_name")
        context = request.get("workflow_context")
        if context is None:
            context = {}
        elif type(context) is not dict:
            raise _RequestError("InvalidRequest", "workflow_context must be an object")
        call.step = _step_name(context)

        call.max_depth = _request_limits(request)
        code = request.get("code_str")
        if code is not None:
            self._ensure_loaded(request, code, code_hash, run_name, call)
        elif self._block is None or self._block.code_hash != code_hash.lower():
            raise _RequestError("UnknownCodeHash", "this runtime does not know code hash %s; "
                                "send the code" % code_hash[:64])
        block = self._block

        inputs_text = request.get("inputs_json")
        if inputs_text is None:
            return self._success("{}", call)
        inputs = _decode_inputs(inputs_text)
        block.self_obj._workflow_context = context
        function = self._find_function(block, run_name, "block code")
        result_text = self._run(block, function, run_name, inputs, call)
        return self._success(result_text, call)

    def _ensure_loaded(self, request, code, code_hash, run_name, call):
        imports = request.get("imports")
        if imports is None:
            imports = []
        if not isinstance(code, str):
            raise _RequestError("InvalidRequest", "code_str must be a string")
        if type(imports) is not list or not all(isinstance(line, str) for line in imports):
            raise _RequestError("InvalidRequest", "imports must be a list of strings")
        init_code = request.get("init_function_code")
        if init_code is not None and not isinstance(init_code, str):
            raise _RequestError("InvalidRequest", "init_function_code must be a string")
        init_name = _identifier(request.get("init_function_name"), "init", "init_function_name")
        try:
            digest = _md5((code + "\n" + "\n".join(imports)).encode("utf-8")).hexdigest()
        except UnicodeEncodeError:
            raise _RequestError("InvalidRequest", "the code is not valid UTF-8") from None
        if digest != code_hash.lower():
            raise _RequestError("InvalidRequest", "code_hash %s does not match the code (md5 %s)"
                                % (code_hash[:64], digest))
        key = (digest, code, tuple(imports), init_code, init_name)
        if self._block is not None and self._block.key == key:
            return
        self._block = None
        block = _Block(key, digest, self._globals)
        self._load(block, code, imports, init_code, init_name, run_name, call)
        self._block = block

    def _load(self, block, code, imports, init_code, init_name, run_name, call):
        namespace = block.module.__dict__
        sys.modules[_BLOCK_MODULE_NAME] = block.module
        pieces = [(_IMPORTS_FILE, "\n".join(imports)), (_RUN_FILE, code)]
        if init_code is not None:
            pieces.append((_INIT_FILE, init_code))
        compiled = []
        for filename, source in pieces:
            block.sources[filename] = source.splitlines()
            try:
                compiled.append(compile(source, filename, "exec", dont_inherit=True))
            except SyntaxError as exc:
                raise _BlockFailure(_syntax_error_fields(exc)) from None
            except (ValueError, TypeError) as exc:  # e.g. NUL bytes
                raise _BlockFailure({"error_type": type(exc).__name__,
                                     "error": "Error in %s: %s" % (filename, _exception_text(exc)),
                                     "function_name": "<module>", "traceback": ""}) from None
        init_function = None
        with _Capture(self, call, block, traced=False):
            for code_object in compiled:
                try:
                    exec(code_object, namespace)
                except BaseException as exc:  # noqa: BLE001 - the block's own error
                    raise _BlockFailure(self._error_fields(exc, block, None, "<module>")) \
                        from None
            # As Roboflow: init code sent (even "") must define the init function;
            # without init code, an init function the run code defines is called.
            if init_code is not None or init_name in namespace:
                init_function = self._find_function(
                    block, init_name, "init code" if init_code else "block code")
                try:
                    init_results = init_function()
                except BaseException as exc:  # noqa: BLE001
                    raise _BlockFailure(self._error_fields(exc, block, init_function, init_name)) \
                        from None
                block.self_obj._init_results = init_results  # any value, kept as returned
        self._find_function(block, run_name, "block code")

    def _find_function(self, block, name, where):
        function = block.module.__dict__.get(name)
        if function is None or not callable(function):
            defined = sorted(k for k, v in block.module.__dict__.items()
                             if callable(v) and getattr(v, "__module__", None) == _BLOCK_MODULE_NAME
                             and not k.startswith("_"))
            message = "no function '%s' in the %s" % (name, where)
            if defined:
                message += " (it defines: %s)" % ", ".join(defined[:10])
            raise _BlockFailure({"error_type": "NameError", "error": message,
                                 "function_name": name, "traceback": ""})
        return function

    def _run(self, block, function, run_name, inputs, call):
        with _Capture(self, call, block):
            try:
                if _wants_self(function):
                    result = function(block.self_obj, **inputs)
                else:
                    result = function(**inputs)
            except BaseException as exc:  # noqa: BLE001 - the block's own error
                raise _BlockFailure(self._error_fields(exc, block, function, run_name)) from None
            if not isinstance(result, dict) and not (
                    isinstance(result, list) and all(isinstance(r, dict) for r in result)):
                raise _BlockFailure(self._return_type_fields(
                    block, function, run_name, result, "a dict (or a list of dicts)"))
            # No size check here: an OutputLimit is the caller's to see (issue 8), so an
            # oversized result is sent and refused by the trusted side's cap; one too
            # large to encode is the block's MemoryError (or the worker's memory limit).
            try:
                text = _encode_json(result)
            except MemoryError:
                raise _BlockFailure({"error_type": "MemoryError", "error":
                                     "the outputs of %s are too large to encode" % run_name,
                                     "function_name": run_name, "traceback": ""}) from None
            except RecursionError:
                raise _BlockFailure({"error_type": "ValueError", "error":
                                     "the outputs of %s are nested too deeply (or circular)"
                                     % run_name, "function_name": run_name, "traceback": ""}) \
                    from None
            except Exception as exc:  # noqa: BLE001
                raise _BlockFailure({"error_type": type(exc).__name__, "error":
                                     "the outputs of %s could not be encoded: %s"
                                     % (run_name, _exception_text(exc)),
                                     "function_name": run_name, "traceback": ""}) from None
        if call.max_depth is not None:
            # The caller refuses deeper text; say so here, as the block's own error.
            depth = _json_depth_over(text, call.max_depth)
            if depth:
                raise _BlockFailure({"error_type": "ValueError", "error":
                                     "the outputs of %s are nested %d levels deep, over the "
                                     "limit of %d (BLOCKBOX_MAX_DEPTH)"
                                     % (run_name, depth, call.max_depth),
                                     "function_name": run_name, "traceback": ""})
        return text

    # -- error formatting -----------------------------------------------------------
    def _error_fields(self, exc, block, function, function_name):
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename in block.sources:
                lines = block.sources[code.co_filename]
                lineno = tb.tb_lineno
                text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
                frames.append(traceback.FrameSummary(code.co_filename, lineno, code.co_name,
                                                     lookup_line=False, line=text))
            tb = tb.tb_next
        if frames:
            line_number, where = frames[-1].lineno, frames[-1].name
        else:
            code = getattr(function, "__code__", None)
            line_number = code.co_firstlineno if code is not None else None
            where = function_name
        text = _exception_text(exc)
        try:
            tail = "".join(traceback.format_exception_only(type(exc), exc))
        except Exception:  # noqa: BLE001
            tail = text + "\n"
        formatted = ""
        if frames:
            formatted = ("Traceback (most recent call last):\n"
                         + "".join(traceback.StackSummary.from_list(frames).format()))
        return {"error_type": type(exc).__name__,
                "error": "Error in line %s, in %s: %s" % (line_number, where, text),
                "line_number": line_number, "function_name": where,
                "traceback": formatted + tail, "raised": True, "exception_text": text}

    @staticmethod
    def _return_type_fields(block, function, name, value, wanted):
        code = getattr(function, "__code__", None)
        line_number = code.co_firstlineno if code is not None else None
        message = "TypeError: %s returned %s; it must return %s" % (
            name, type(value).__name__, wanted)
        return {"error_type": "TypeError",
                "error": "Error in line %s, in %s: %s" % (line_number, name, message),
                "line_number": line_number, "function_name": name, "traceback": message + "\n"}


def _wants_self(function):
    """As Roboflow's remote executor decides (DESIGN §2): a self only when the first
    parameter is named self (its validation call sends a self-less validate_syntax())."""
    code = getattr(function, "__code__", None)
    if type(function) is types.FunctionType and code is not None and code.co_argcount:
        return code.co_varnames[0] == "self"  # the fast path: inspect costs ~30 us a call
    import inspect
    try:
        params = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return True
    return bool(params) and params[0] == "self"


def _syntax_error_fields(exc):
    line_number = exc.lineno
    message = "%s: %s" % (type(exc).__name__, exc.msg)
    try:
        formatted = "".join(traceback.format_exception_only(type(exc), exc))
    except Exception:  # noqa: BLE001
        formatted = message + "\n"
    return {"error_type": type(exc).__name__,
            "error": "Error in line %s, in <module>: %s" % (line_number, message),
            "line_number": line_number, "function_name": "<module>", "traceback": formatted}


def _step_name(context):
    """The step a trace entry names: workflow_context step_name, else the last part of
    step_selector ("$steps.name"), as Roboflow's engine names the running step."""
    name = context.get("step_name")
    if isinstance(name, str):
        return name
    selector = context.get("step_selector")
    if isinstance(selector, str):
        return selector.rsplit(".", 1)[-1]
    return None


def _identifier(value, default, what):
    if value is None or value == "":
        return default
    if not isinstance(value, str) or not value.isidentifier() or len(value) > 256:
        raise _RequestError("InvalidRequest", "%s must be a Python identifier" % what)
    return value


class _Capture:
    """Around user code: capped stdout/stderr and cleared debug traces."""

    __slots__ = ("_runtime", "_call", "_block", "_saved", "_traced")

    def __init__(self, runtime, call, block, traced=True):
        self._runtime = runtime
        self._call = call
        self._block = block
        self._saved = None
        self._traced = traced   # False at load: module code and init trace into the void

    def __enter__(self):
        traces = self._block.traces
        traces._reset(self._call.step)
        self._call.traces = traces if self._traced else None
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._call.stdout, self._call.stderr
        return self

    def __exit__(self, *exc_info):
        sys.stdout, sys.stderr = self._saved
        self._call.stdout.drain_fd()
        self._call.stderr.drain_fd()
        return False


def execute_request(request, limits=None):
    """One request on a fresh Runtime (what the single-use Modal function calls)."""
    try:
        runtime = Runtime(limits)
    except Exception as exc:  # noqa: BLE001
        return {"success": False, "error_type": "ConfigurationError",
                "error": _exception_text(exc), "line_number": None, "function_name": None,
                "traceback": None, "stdout": "", "stderr": "",
                "runtime_version": RUNTIME_VERSION, "denied_syscalls": []}
    return runtime.handle(request)


# ---------------------------------------------------------------------------------
# Per worker (the local zygote's children, before any untrusted byte)
# ---------------------------------------------------------------------------------

def fresh_entropy():
    """New kernel entropy for the process-wide generators a block may use without
    seeding: numpy's global RandomState and Python's random. Workers forked from one
    zygote would otherwise share the zygote's state (what stays shared: docs/SECURITY.md)."""
    import random
    np.random.seed(None)   # None: a fresh SeedSequence from os.urandom
    random.seed()          # os.urandom (CPython also reseeds it at fork)


# ---------------------------------------------------------------------------------
# Warm-up (zygote, before any fork)
# ---------------------------------------------------------------------------------

def warm_up():
    """Exercise every lazy path once so forked workers do not pay for it. Starts no
    thread and runs no user code."""
    cv2.setNumThreads(0)
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    inverted = 255 - pixels
    int(inverted.astype(int).sum())
    float(np.eye(2).mean())
    np.max(np.array([0.5, 0.6]))
    samples = {}
    for ext in (".jpg", ".png"):
        ok, encoded = cv2.imencode(ext, pixels)
        if ok:
            cv2.imdecode(np.frombuffer(encoded.tobytes(), dtype=np.uint8), cv2.IMREAD_COLOR)
            samples[ext] = _b64text(encoded)
    datetime.datetime.fromisoformat("2024-05-06T07:08:09+00:00").isoformat()
    _md5(b"warm").hexdigest()
    sample_inputs = {
        "image": {"_type": "workflow_image", "type": "base64", "value": samples.get(".png", ""),
                  "video_metadata": {"video_identifier": "v", "frame_number": 1,
                                     "frame_timestamp": "2024-05-06T07:08:09"}},
        "jpeg": {"type": "base64", "value": samples.get(".jpg", "")},
        "det": {"_type": "sv_detections", "image": {"width": 8, "height": 8},
                "predictions": [{"x": 4.0, "y": 4.0, "width": 2.0, "height": 2.0,
                                 "confidence": 0.5, "class_id": 0, "class": "a",
                                 "detection_id": "d0", "points": [{"x": 3, "y": 3}, {"x": 5, "y": 3},
                                                                  {"x": 5, "y": 5}]}]},
        "arr": {"_type": "ndarray", "dtype": "float32", "shape": [2],
                "data": _b64text(np.array([1, 2], dtype="<f4").tobytes())},
        "lst": {"_type": "ndarray", "dtype": "int64", "shape": [2], "value": [1, 2]},
        "raw": {"_type": "bytes", "value": "aGk="},
        "when": {"_type": "datetime", "value": "2024-05-06T07:08:09"},
        "many": {"_type": "batch", "value": [1, {"_type": "object", "class": "X", "value": "x"}]},
    }
    decoded = _decode_inputs(json.dumps(sample_inputs))
    image = decoded["image"]
    if samples:
        image.numpy_image
        image = WorkflowImageData.copy_and_replace(origin_image_data=image,
                                                   numpy_image=255 - image.numpy_image)
    detections = decoded["det"]
    detections[detections.data["class_name"] == "a"]
    list(detections)
    _encode_json({"image": image, "det": detections, "arr": decoded["arr"], "n": np.int64(1),
                  "f": float("nan"), "raw": decoded["raw"], "when": decoded["when"],
                  "many": decoded["many"], "s": {1}, "o": object()})
    try:
        raise ValueError("warm")
    except ValueError as exc:
        traceback.format_exception_only(type(exc), exc)
        traceback.StackSummary.from_list([traceback.FrameSummary(
            _RUN_FILE, 1, "run", lookup_line=False, line="pass")]).format()
    compile("def run(self):\n    return {}\n", _RUN_FILE, "exec", dont_inherit=True)
