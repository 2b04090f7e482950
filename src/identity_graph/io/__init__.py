"""Files in and out of an identity graph: offline data, offline events,
customers through a column mapping, the omnichannel profile record, and the
command line's building blocks.

>>> from identity_graph.io import ImportSummary
>>> ImportSummary(read=2, imported=1, unchanged=0, rejected=1)
ImportSummary(read=2, imported=1, unchanged=0, rejected=1)

Every importer streams its file (memory does not grow with it), checks
every row, imports the good ones in batches, writes each bad one to a
rejects CSV (``row, column, value, reason``; the header is row 1) and
returns an :class:`ImportSummary`.  Importing the same file again changes
nothing.  Column names are matched however they are spelt: case, spaces,
underscores and hyphens do not tell them apart (:mod:`.tables`).  A file
that cannot be read at all raises :class:`FileFormatError` with the file
and row.  See ``docs/files.md``.

One module per format: :mod:`.offline_data`, :mod:`.offline_events`,
:mod:`.customers` (with its slot rule in :mod:`.slots` and its index of
the file in :mod:`.fileindex`), :mod:`.profiles`; shared pieces in
:mod:`.csvfiles`, :mod:`.xlsxfiles`, :mod:`.tables`, :mod:`.cells`,
:mod:`.summary`, :mod:`.recording`, :mod:`.cards`.
"""

from __future__ import annotations

from .cards import luhn_check_digit, luhn_valid, new_card_number
from .customers import GENERATE, CustomerLayout, export_customers, import_customers
from .errors import FileFormatError, FileTooLarge
from .offline_data import import_offline_data
from .offline_events import import_offline_events
from .profiles import export_profiles, join_values, split_values
from .summary import ImportSummary, Reject
from .xlsxfiles import XlsxLimits

__all__ = [
    "GENERATE",
    "CustomerLayout",
    "FileFormatError",
    "FileTooLarge",
    "ImportSummary",
    "Reject",
    "XlsxLimits",
    "export_customers",
    "export_profiles",
    "import_customers",
    "import_offline_data",
    "import_offline_events",
    "join_values",
    "luhn_check_digit",
    "luhn_valid",
    "new_card_number",
    "split_values",
]
