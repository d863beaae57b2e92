"""detections.py: the supervision-compatible sv.Detections of the preamble (boxes,
masks, confidences, class ids, tracker ids, per-item data; selection and iteration)
and its wire form (sv_detections), plus the `sv` module blocks see."""

import types
import uuid

import cv2
import numpy as np


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
