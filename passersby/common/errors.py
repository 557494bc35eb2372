"""The base of every error a user can fix (bad config, weights, shaders, display, paths).

The CLI prints these as one line naming the value, where it came from and the fix,
and exits with status 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error whose message tells the user what to change."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)


class NotUtf8(ValueError):
    """Bytes that are not UTF-8 text: where (1-based line, offset) and the first bad byte."""

    def __init__(self, line: int, offset: int, byte: int) -> None:
        super().__init__(f"line {line}: not UTF-8 (byte {byte:#04x} at offset {offset})")
        self.line, self.offset, self.byte = line, offset, byte


def utf8(raw: bytes) -> str:
    """raw decoded as UTF-8, or NotUtf8 saying where it is not (for the callers' messages)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise NotUtf8(raw[:e.start].count(b"\n") + 1, e.start, raw[e.start]) from None
