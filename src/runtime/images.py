"""images.py: the inference-compatible image classes of the preamble:
WorkflowImageData (lazy BGR pixels and lazy base64), its parent/origin metadata and
VideoMetadata, with their wire forms (workflow_image, video_metadata)."""

import datetime

import cv2
import numpy as np


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


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _frame_shape(value):
    """The `shape` a base64 image carries when it was a raw grey or BGRA frame that the
    modal driver sent as PNG (docs/wire.md): [h, w], [h, w, 1] or [h, w, 4]; else None."""
    shape = value.get("shape")
    if (type(shape) is list and len(shape) in (2, 3) and all(type(d) is int and d > 0 for d in shape)
            and (len(shape) == 2 or shape[2] in (1, 4))):
        return shape
    return None


def _decode_image_bytes(text, frame_shape=None):
    if text.startswith("data:"):
        text = text.partition(",")[2]
    raw = _b64decode(text, "the image")
    if frame_shape is not None and raw[:8] == _PNG_SIGNATURE:
        # its own channels back (grey, BGRA), as the local driver hands the frame over
        pixels = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if (pixels is not None and pixels.dtype == np.uint8 and list(pixels.shape[:2]) == frame_shape[:2]
                and pixels.size == int(np.prod(frame_shape))):
            return pixels.reshape(frame_shape)
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
                self._numpy_image = _decode_image_bytes(self._base64_image,
                                                        getattr(self, "_frame_shape", None))
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
        out = cls(parent_metadata=parent_metadata, workflow_root_ancestor_metadata=root_metadata,
                  image_reference=image_reference, base64_image=base64_image,
                  numpy_image=numpy_image, video_metadata=video_metadata)
        if base64_image is not None and base64_image is origin_image_data._base64_image:
            out._frame_shape = getattr(origin_image_data, "_frame_shape", None)
        return out

    def __repr__(self):
        return "WorkflowImageData(parent_id=%r)" % (self._parent_metadata.parent_id,)

    def _to_wire(self):
        out = _frame_image_out(self)  # raw pixels into shared memory (frames.py), if read so
        if out is None:
            out = {"_type": "workflow_image", "type": "base64", "value": self.base64_image}
        out.update({
               "video_metadata": (self._video_metadata._to_wire_fields()
                                  if isinstance(self._video_metadata, VideoMetadata)
                                  else self._video_metadata)})
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
        kind = value.get("type", "base64")
        pixels = _frame_image_pixels(value) if kind == "raw" else None  # frames.py
        text = value.get("value")
        if pixels is None and not isinstance(text, str):
            raise _RequestError("InvalidRequest", "an image value must be a base64 string")
        if kind not in ("base64", "raw"):
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
        out = cls(parent_metadata=parent, workflow_root_ancestor_metadata=root,
                  base64_image=None if pixels is not None else text, numpy_image=pixels,
                  video_metadata=VideoMetadata._from_wire(value.get("video_metadata")))
        if pixels is None:
            out._frame_shape = _frame_shape(value)
        return out
