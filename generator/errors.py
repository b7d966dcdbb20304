"""The one exception type users see: its message is printed as a single line, no traceback."""

import errno
from contextlib import contextmanager


class FoveaError(Exception):
    """A user-facing error (bad input, missing file, invalid protocol...).

    The ``fovea`` command prints ``error: <message>`` and exits with status 2. Messages name the
    offending value, file or field and say what would be valid.
    """


# Operating-system errors that a path given on the command line causes (an output that is a file
# where a folder must go, a folder where a file must go, no permission, a folder on a read-only
# file system, a full disk or quota: see ``is_path_error``): the commands report them in one
# line, as they report a FoveaError. Other OSErrors (a lost device) keep their traceback.
PATH_ERRORS = (
    FileExistsError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


# Plain OSErrors (not subclasses) reported in one line: a read-only file system (a read-only
# mount, a copy on a write-protected share), a full disk, a full quota.
_STORAGE_ERRNOS = {
    errno.EROFS: "read-only file system (write to a writable folder, or copy the folder first)",
    errno.ENOSPC: "no space left on the device (free some, then run the same command again: "
    "what was written whole is kept)",
    errno.EDQUOT: "disk quota exceeded (free some, then run the same command again: what was "
    "written whole is kept)",
}


def is_path_error(error: BaseException) -> bool:
    """Whether ``error`` is one the commands report in one line: one of ``PATH_ERRORS``, or a
    write to a read-only file system, a full disk or a full quota."""
    if isinstance(error, PATH_ERRORS):
        return True
    return isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS


def path_error_message(error: OSError) -> str:
    """``error`` (``is_path_error``) as one line naming the path."""
    if error.errno in _STORAGE_ERRNOS and not isinstance(error, PATH_ERRORS):
        path = error.filename if error.filename is not None else ""
        what = _STORAGE_ERRNOS[error.errno]
        return f"{path}: {what}" if path else what
    what = {
        FileExistsError: "a file is in the way (a folder must go there)",
        NotADirectoryError: "a file is in the way (a folder must go there)",
        IsADirectoryError: "a folder is in the way (a file must go there)",
        FileNotFoundError: "no such file or folder",
        PermissionError: "permission denied",
    }.get(type(error), error.strerror or str(error))
    path = error.filename if error.filename is not None else ""
    return f"{path}: {what}" if path else what


@contextmanager
def safetensors_errors(path, what: str):
    """Inside: a file that is not a readable safetensors file (empty, cut short, another format)
    becomes a FoveaError naming ``what`` and ``path``."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as error:
        raise FoveaError(f"{what} {path} is not a readable safetensors file ({error})") from None
