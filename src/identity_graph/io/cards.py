"""New loyalty card numbers with a Luhn check digit, for ``generate()`` cells.

The Luhn (mod 10) check digit catches every single mistyped digit and most
swapped neighbours, which is what a number read aloud at a till needs.
"""

from __future__ import annotations

import secrets

__all__ = ["luhn_check_digit", "luhn_valid", "new_card_number"]


def luhn_check_digit(digits: str) -> str:
    """The check digit to append to ``digits``.  O(len(digits)).

    >>> luhn_check_digit("7992739871")
    '3'
    """
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"{digits!r} must be decimal digits")
    total = 0
    # From the right, every second digit of the number *with* its check digit
    # is doubled; without it, that is every first digit from the right.
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Whether ``number``'s last digit is its Luhn check digit.  O(len(number)).

    >>> luhn_valid("79927398713"), luhn_valid("79927398710")
    (True, False)
    """
    if len(number) < 2 or not number.isdigit() or not number.isascii():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def new_card_number(prefix: str = "", length: int = 16) -> str:
    """A random card number of ``length`` digits: ``prefix``, random digits, check digit.

    Random from :mod:`secrets`, so numbers cannot be guessed from one
    another; the importer checks that a number was never used before it
    hands it out.  O(length).

    >>> number = new_card_number("70", 16)
    >>> len(number), number.startswith("70"), luhn_valid(number)
    (16, True, True)
    """
    if not (prefix == "" or (prefix.isdigit() and prefix.isascii())):
        raise ValueError(f"card prefix {prefix!r} must be decimal digits")
    free = length - len(prefix) - 1
    if free < 6:
        raise ValueError(
            f"a card number of {length} digits with prefix {prefix!r} leaves {free} random "
            "digits; at least 6 are needed"
        )
    body = prefix + "".join(str(secrets.randbelow(10)) for _ in range(free))
    return body + luhn_check_digit(body)
