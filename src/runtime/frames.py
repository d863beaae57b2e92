"""Frames (issue 12): arrays and raw images in the memory the local executor shares with
this worker (drivers/local/shm.h), read in place and written back without JSON text,
base64 or JPEG.

A request frame that starts with b"\\0BT1" carries a table: uint32 flags, uint32 count,
count x (uint64 offset, uint64 length) of the input buffers in the input arena
("frames_in": the executor's file, which this worker can only read), then the envelope.
Values name buffers as {"_type": "ndarray", ..., "buffer": i} or {"_type":
"workflow_image", "type": "raw", "shape": [h, w, c], "buffer": i}. Inputs become
numpy views of the arena without a copy, and they are writable: the worker maps the
arena privately (copy-on-write), so a block may draw on an input in place (cv2 on
`image.numpy_image`, ordinary block code) and the pages it writes become its own; the
executor's file, the caller's bytes and later calls' inputs never change. Of the arena
a block reads its own inputs, the ranges it still holds and zeros: the executor clears
what earlier calls left beside them before each request. While such a
request is handled, output ndarrays (and, when the caller reads them, images the block
made from pixels) are written into the writable arena ("frames_out") and named the
same way; the reply then starts with a table of its own: flags = the number of input
ranges a block still holds (the executor must not overwrite them), count, the output
(offset, length) pairs, then the held (offset, length) pairs, then the envelope.

This module is not a boundary: the executor checks every byte of the table against the
arena's sealed size and the limits.
"""
import struct as _frame_struct
from sys import getrefcount as _sys_getrefcount

_FRAME_MAGIC = b"\0BT1"
_FRAME_RAW_IMAGES = 1
_FRAME_ALIGN = 64
_FRAME_MAX = 64
_frame_uint8 = np.dtype(np.uint8)


class _FrameCall:
    """The arenas of this worker and the buffers of the request being handled."""

    def __init__(self, arena_in, arena_out):
        self.arena_in = arena_in
        self.arena_out = arena_out
        self.tabled = False     # the request had a table: the reply gets one
        self.inputs = []        # (offset, length, view) of each input buffer
        self.bases = []         # (offset, length, array) made over an input buffer
        self.outputs = []       # (offset, length) written for this request
        self.used = 0
        self.raw_images = False
        self.active = False
        self.held = []          # (offset, length, array) a block may still hold

    def begin(self, frame):
        """The envelope bytes of a frame; the table, when there is one, is taken in."""
        self.inputs, self.bases, self.outputs = [], [], []
        self.used = 0
        self.raw_images = self.active = self.tabled = False
        if frame[:4] != _FRAME_MAGIC:
            return frame
        if self.arena_in is None or len(frame) < 12:
            raise _RequestError("InvalidRequest", "a buffer table without buffer arenas")
        flags, count = _frame_struct.unpack_from("<II", frame, 4)
        end = 12 + 16 * count
        if count > _FRAME_MAX or len(frame) < end:
            raise _RequestError("InvalidRequest", "a bad buffer table")
        size = len(self.arena_in)
        for i in range(count):
            off, length = _frame_struct.unpack_from("<QQ", frame, 12 + 16 * i)
            if off > size or length > size - off:
                raise _RequestError("InvalidRequest", "buffer %d lies outside the arena" % i)
            self.inputs.append((off, length, self.arena_in[off:off + length]))
        self.tabled = True
        self.raw_images = bool(flags & _FRAME_RAW_IMAGES)
        self.active = self.arena_out is not None
        return frame[end:]

    def input_array(self, index, dtype, count):
        """A 1-d array over input buffer `index` (no copy; writable, copy-on-write);
        remembered, so a block that keeps it past the request is seen (finish)."""
        if type(index) is not int or not 0 <= index < len(self.inputs):
            raise _RequestError("InvalidRequest", "buffer %r was not sent" % (index,))
        off, length, view = self.inputs[index]
        if length != count * dtype.itemsize:
            raise _RequestError("InvalidRequest", "buffer %d has %d bytes, its shape needs %d"
                                % (index, length, count * dtype.itemsize))
        base = np.frombuffer(view, dtype=dtype, count=count)
        self.bases.append((off, length, base))
        return base

    def put(self, array):
        """Writes a C-order little-endian array into the output arena: its index, or
        None when it does not fit (it then goes in the data form)."""
        if not self.active or len(self.outputs) >= _FRAME_MAX:
            return None
        size = array.nbytes
        at = -(-self.used // _FRAME_ALIGN) * _FRAME_ALIGN
        if at + size > len(self.arena_out):
            return None
        if size:
            target = np.frombuffer(self.arena_out, dtype=np.uint8, count=size, offset=at)
            np.copyto(target.view(array.dtype).reshape(array.shape), array, casting="no")
        self.outputs.append((at, size))
        self.used = at + size
        return len(self.outputs) - 1

    def finish(self, body):
        """The reply body: the envelope, led by the table when the request had one."""
        if not self.tabled:
            return body
        # An input array still referenced once the request is done (kept by the block in
        # module state, say: views hold their base) is a range the executor must not
        # overwrite while it lives. Two references are ours: the tuple and
        # getrefcount's argument.
        candidates = self.held + self.bases
        self.inputs, self.bases = [], []
        alive = []
        for entry in candidates:
            if _sys_getrefcount(entry[2]) > 2:
                alive.append(entry)
        del candidates
        self.held = alive[:_FRAME_MAX]
        parts = [_FRAME_MAGIC, _frame_struct.pack("<II", len(self.held), len(self.outputs))]
        parts.extend(_frame_struct.pack("<QQ", off, length) for off, length in self.outputs)
        parts.extend(_frame_struct.pack("<QQ", off, length) for off, length, _ in self.held)
        parts.append(body)
        self.active = self.tabled = False
        self.outputs = []
        return b"".join(parts)


# The call being handled, for the decoders and the encoder (module-level functions).
_FRAMES = None


def _frame_ndarray(value, dtype, shape):
    """A numpy view of an input buffer (no copy; writable, copy-on-write)."""
    if _FRAMES is None or not _FRAMES.tabled:
        raise _RequestError("InvalidRequest", "an ndarray names a buffer, but none were sent")
    count = 1
    for extent in shape:
        count *= extent
    return _FRAMES.input_array(value.get("buffer"), dtype, count).reshape(shape)


def _frame_image_pixels(value):
    """The pixels of a raw workflow_image (uint8 BGR, [h, w] or [h, w, c]): a view of
    its buffer, or its `data` decoded."""
    shape = value.get("shape")
    if (type(shape) is not list or not 2 <= len(shape) <= 3
            or not all(type(d) is int and d > 0 for d in shape)
            or (len(shape) == 3 and shape[2] not in (1, 3, 4))):
        raise _RequestError("InvalidRequest", "a raw image needs shape [h, w] or [h, w, c]")
    need = 1
    for extent in shape:
        need *= extent
    if "buffer" in value:
        if _FRAMES is None or not _FRAMES.tabled:
            raise _RequestError("InvalidRequest", "an image names a buffer, but none were sent")
        return _FRAMES.input_array(value.get("buffer"), _frame_uint8, need).reshape(shape)
    else:
        raw = _b64decode(value.get("data"), "raw image data")
        if len(raw) != need:
            raise _RequestError("InvalidRequest", "raw image data has %d bytes, its shape "
                                "needs %d" % (len(raw), need))
    return np.frombuffer(raw, dtype=np.uint8, count=need).reshape(shape)


def _frame_ndarray_out(dtype, array):
    """The buffer form of an output array, or None (the data form is used)."""
    if _FRAMES is None or not _FRAMES.active:
        return None
    index = _FRAMES.put(array)
    if index is None:
        return None
    return {"_type": "ndarray", "dtype": dtype.name, "shape": list(array.shape), "buffer": index}


def _frame_image_out(image):
    """A raw form of an output image made from pixels, when the caller reads raw images
    back: no JPEG is encoded. None otherwise."""
    if (_FRAMES is None or not _FRAMES.active or not _FRAMES.raw_images
            or image._base64_image is not None or image._numpy_image is None):
        return None
    pixels = image._numpy_image
    if (not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8
            or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4))
            or 0 in pixels.shape):
        return None
    index = _FRAMES.put(pixels)
    if index is None:
        return None
    return {"_type": "workflow_image", "type": "raw", "shape": list(pixels.shape),
            "buffer": index}
