"""The one exception type for mistakes a user can make (bad config, bad data, missing model)."""


class TunesmithError(Exception):
    """A user-fixable problem. The message says what was wrong, where, and what to do.

    The CLI prints it as one or two lines, without a traceback, and exits non-zero.
    """
