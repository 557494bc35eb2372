"""The base of every error a user can fix (bad config, weights, shaders, display, paths).

The CLI prints these as one line naming the value, where it came from and the fix,
and exits with status 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error whose message tells the user what to change."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)
