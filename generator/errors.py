"""The one exception type users see: its message is printed as a single line, no traceback."""


class FoveaError(Exception):
    """A user-facing error (bad input, missing file, invalid protocol...).

    The ``fovea`` command prints ``error: <message>`` and exits with status 2. Messages name the
    offending value, file or field and say what would be valid.
    """
