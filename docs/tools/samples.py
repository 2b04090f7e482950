"""Write ``src/identity_graph/samples/customers.xlsx``, the demo's customers.

The two CSV samples beside it are plain text, edited by hand; the workbook
is made here so its content can be reviewed.  Run from the repository root:
``.venv/bin/python docs/tools/samples.py``.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook

HEADER = ["Customer ID", "Firstname", "Lastname", "City", "Email", "Phone", "customerId"]
ROWS = [
    ["C-1001", "Ann", "Lee", "Helsinki", "ann.lee@example.com", "+358401234567",
     "7001 0000 0000 1008"],
    ["C-1002", "Ben", "Virtanen", "Turku", "ben.virtanen@example.com", "+358451112223",
     "generate()"],
    ["C-1003", "Cecilia", "Nieminen", "Tampere", "cecilia.nieminen@example.com", None,
     "7001 0000 0000 2006"],
    ["C-1004", "David", "Korhonen", "Espoo", "david.korhonen@example.com", "+358409998887",
     "generate()"],
    ["C-1005", "Eeva", "Mäkinen", "Oulu", "eeva.makinen@example.com", "+358442223334",
     "generate()"],
    ["C-1006", "Frank", "Söderberg", "Vaasa", "frank.soderberg@example.com", "+358503334445",
     "7001 0000 0000 3004"],
    ["C-1007", "Greta", "Lind", "Porvoo", "n/a", "+358401112223", "generate()"],
]  # fmt: skip


def main() -> None:
    target = Path(__file__).resolve().parents[2] / "src" / "identity_graph" / "samples"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Customers"
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    for column, width in zip("ABCDEFG", (12, 11, 11, 10, 30, 15, 22), strict=True):
        sheet.column_dimensions[column].width = width
    book.save(target / "customers.xlsx")
    print(f"wrote {target / 'customers.xlsx'}")


if __name__ == "__main__":
    main()
