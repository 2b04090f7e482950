"""The one error the file importers add to the tree of :mod:`identity_graph.errors`.

A *file* that cannot be read as a whole — wrong encoding, broken quoting, a
header without the columns the format needs, an archive past its size
limits — raises :class:`FileFormatError`, naming the file and, where there
is one, the row.  A bad *row* is never an error: it goes to the rejects
file and the import goes on::

    IdentityGraphError
    └── FileFormatError (ValueError)   a file the importer cannot read
        └── FileTooLarge               an XLSX archive past its size or row limits
"""

from __future__ import annotations

from ..errors import IdentityGraphError

__all__ = ["FileFormatError", "FileTooLarge"]


class FileFormatError(IdentityGraphError, ValueError):
    """A file that cannot be read as the format it should be in.

    The message names the file, and the row (numbered as a spreadsheet
    numbers it, the header being row 1) where reading stopped.  Rows before
    that row have been imported; fix the file and import it again — the
    import is idempotent.
    """


class FileTooLarge(FileFormatError):
    """An XLSX archive whose uncompressed size or row count passes its limits."""
