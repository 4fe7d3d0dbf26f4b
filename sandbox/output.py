"""``print`` for scripts: captured per symbol and capped while printing, not after."""

from __future__ import annotations

from typing import Any

from sandbox.outcome import cut_encoded, encoded_size, valid_text, without_host_details


class CappedOutput:
    """Collects what a script prints, keeping at most ``limit`` bytes as stored (JSON-escaped).

    RestrictedPython rewrites ``print(...)`` into ``_print._call_print(...)`` on an
    object made by ``_print_(_getattr_)`` at the top of each scope; ``factory``
    is that ``_print_``, returning this one collector for every scope.
    """

    __slots__ = ("_limit", "_parts", "_size", "truncated")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False

    def factory(self, _getattr: Any = None) -> CappedOutput:
        return self

    def _call_print(self, *objects: Any, sep: Any = " ", end: Any = "\n", **_: Any) -> None:
        if self._size >= self._limit:
            self.truncated = True
            return
        sep = " " if sep is None else str(sep)
        end = "\n" if end is None else str(end)
        # Convert one object at a time so a huge object cannot be stringified whole past the cap.
        pieces: list[str] = []
        room = self._limit - self._size
        for index, obj in enumerate(objects):
            if index:
                pieces.append(sep)
            pieces.append(str(obj))
            room -= len(pieces[-1]) + (len(sep) if index else 0)
            if room < 0:
                break
        pieces.append(end)
        self._write("".join(pieces))

    def _write(self, text: str) -> None:
        # Lone surrogates become "?": what we keep is always valid UTF-8 text. The size is what
        # the job store keeps, the JSON-escaped text (a control character takes 6 bytes).
        text = valid_text(text)
        size = encoded_size(text)
        room = self._limit - self._size
        if size > room:
            text = cut_encoded(text, room)
            size = encoded_size(text)
            self.truncated = True
        self._parts.append(text)
        self._size += size

    def __call__(self) -> str:
        """What ``printed`` reads in the script."""
        return self.text()

    def text(self) -> str:
        """What was printed, without our paths and heap addresses (outcome.py): it only gets
        shorter, so it stays within the cap."""
        return without_host_details("".join(self._parts)) if self._parts else ""
