"""batch.py: the preamble's workflow container types: Batch (iterable, indexable,
sized, generic in annotations, with Roboflow's indices) and BlockResult."""

from typing import Any, Dict, Generic, TypeVar


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


BlockResult = Dict[str, Any]
