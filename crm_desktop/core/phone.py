"""Phone numbers as CREs type and paste them, normalised to E.164 with Google's libphonenumber (`phonenumbers`).

The desk's rule is explicit rather than left to the library: a lead's number must be an Indian mobile, 10 national
digits starting 6-9, of type MOBILE. (libphonenumber alone calls `5876543210` a valid landline.) Everything else gets
a specific reason a CRE can act on: too short, a landline, a toll-free or 140-series number, another country, a stray
`+` in front of a 10-digit mobile (which the library would read as an Iranian number), two numbers pasted at once.

Called on every keystroke, so it stays cheap: one regex scan, one parse."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

REASONS = ("empty", "not_a_number", "too_short", "too_long", "landline", "toll_free", "telemarketing", "foreign",
           "not_mobile", "two_numbers", "stray_plus")  # fmt: skip

_MESSAGES = {
    "empty": "Enter the caller's mobile number.",
    "not_a_number": "That is not a phone number. Type the 10-digit mobile number.",
    "too_short": "Too few digits: an Indian mobile has 10 digits.",
    "too_long": "Too many digits: an Indian mobile has 10 digits (after +91).",
    "landline": "This is a landline number. Ask the caller for their mobile number.",
    "toll_free": "This is a toll-free number (1800/1860). Ask the caller for their own mobile number.",
    "telemarketing": "This is a 140-series telemarketing number, not a customer's mobile.",
    "foreign": "This is not an Indian number. The desk takes Indian mobiles (+91) only.",
    "not_mobile": "Indian mobiles start with 6, 7, 8 or 9 and have 10 digits.",
    "two_numbers": "Two numbers were pasted. Keep only the caller's mobile number.",
    "stray_plus": "Remove the '+' in front: a 10-digit mobile with '+' reads as a foreign number. "
    "Type it as 98765 43210 or +91 98765 43210.",
}

_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
# A phone-like run: optional +, then digits with the separators people type between them.
_CANDIDATE = re.compile(r"\+?\(?\d[\d\s().\-\u00a0\u2010-\u2015/]*\d|\+?\d")
_MIN_DIGITS = 6  # shorter digit runs in pasted text ("after 5", "ext 22") are not phone numbers


class InvalidPhone(ValueError):
    """`reason` is one of REASONS; `str()` is the message for the CRE."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or _MESSAGES[reason])
        self.reason = reason


def _ascii_digits(text: str) -> str:
    """Devanagari, Bengali, Tamil, fullwidth… digits become 0-9; everything else is kept."""
    if text.isascii():
        return text
    out = []
    for ch in text:
        if not ch.isascii() and unicodedata.category(ch) == "Nd":
            out.append(str(unicodedata.digit(ch)))
        else:
            out.append(ch)
    return "".join(out)


def _candidates(text: str) -> list[tuple[bool, str]]:
    """(has leading +, digits) of each phone-like run with enough digits."""
    found = []
    for m in _CANDIDATE.finditer(text):
        run = m.group(0)
        digits = re.sub(r"\D", "", run)
        if len(digits) >= _MIN_DIGITS:
            found.append((run.startswith("+"), digits))
    return found


def _indian_national(plus: bool, d: str) -> str:
    """The national part of what was typed, or InvalidPhone for numbers that are not Indian."""
    if plus:
        if d.startswith("91"):
            return d[2:]
        if len(d) == 10 and d[0] in "6789":
            raise InvalidPhone("stray_plus")
        raise InvalidPhone("foreign")
    if d.startswith("0091"):
        return d[4:]
    if d.startswith("00"):
        raise InvalidPhone("foreign")
    if len(d) == 12 and d.startswith("91"):
        return d[2:]
    if d.startswith("0"):
        return d[1:]  # trunk prefix of a mobile (0 98765 43210) or an STD code (022 2345 6789)
    return d


def _check_indian(national: str) -> str:
    if national.startswith(("1800", "1860")):
        raise InvalidPhone("toll_free")
    if national.startswith("140"):
        raise InvalidPhone("telemarketing")
    if len(national) < 10:
        raise InvalidPhone("too_short")
    if len(national) > 10:
        raise InvalidPhone("too_long")
    number = phonenumbers.parse("+91" + national)
    kind = phonenumbers.number_type(number)
    valid = phonenumbers.is_valid_number(number)
    if valid and kind == PhoneNumberType.FIXED_LINE:
        raise InvalidPhone("landline")  # also 080 2345 6789: an STD code that starts with 8 is still a landline
    if national[0] not in "6789" or kind not in _MOBILE_TYPES or not valid:
        raise InvalidPhone("not_mobile")
    return "+91" + national


def normalize(text: str, region: str = "IN") -> str:
    """E.164 of the one mobile number in `text`, or InvalidPhone with the reason."""
    if text is None or not str(text).strip():
        raise InvalidPhone("empty")
    text = _ascii_digits(str(text))
    found = _candidates(text)
    if not found:
        raise InvalidPhone("too_short" if any(c.isdigit() for c in text) else "not_a_number")
    if len(found) > 1:
        raise InvalidPhone("two_numbers")
    plus, digits = found[0]
    if region.upper() == "IN":
        return _check_indian(_indian_national(plus, digits))
    return _normalize_other(("+" if plus else "") + digits, region.upper())


def _normalize_other(text: str, region: str) -> str:
    """Another desk region: any valid mobile number of that region (the Indian special cases do not apply)."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidPhone("not_a_number") from exc
    if phonenumbers.region_code_for_number(number) != region:
        raise InvalidPhone("foreign", "This number belongs to another country.")
    if not phonenumbers.is_valid_number(number):
        length = phonenumbers.is_possible_number_with_reason(number)
        if length == phonenumbers.ValidationResult.TOO_SHORT:
            raise InvalidPhone("too_short", "Too few digits for a mobile number.")
        if length == phonenumbers.ValidationResult.TOO_LONG:
            raise InvalidPhone("too_long", "Too many digits for a mobile number.")
        raise InvalidPhone("not_mobile", "This is not a valid mobile number.")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidPhone("landline", "This is not a mobile number. Ask the caller for their mobile.")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def display(e164: str) -> str:
    """`+919876543210` -> `+91 98765 43210` (international format for other countries)."""
    if e164.startswith("+91") and len(e164) == 13:
        return f"+91 {e164[3:8]} {e164[8:]}"
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), PhoneNumberFormat.INTERNATIONAL)
    except NumberParseException:
        return e164


def mask(e164: str) -> str:
    """For logs: never a full number at INFO or above. `+919876543210` -> `+91******3210`."""
    if len(e164) <= 7:
        return "*" * len(e164)
    prefix = e164[:3] if e164.startswith("+") else ""
    return prefix + "*" * (len(e164) - len(prefix) - 4) + e164[-4:]


def format_as_you_type(text: str, region: str = "IN") -> str:
    """Group the digits of a mobile being typed: `9876543210` -> `98765 43210`, `+919876` -> `+91 9876`.

    Only spaces are ever added or moved: no typed digit is dropped. Text with letters or other separators (a paste,
    a landline with an STD code) is left exactly as typed; normalisation still reads it."""
    stripped = text.strip()
    if region.upper() != "IN" or not stripped or not re.fullmatch(r"\+?[\d ]*", stripped):
        return text
    plus = stripped.startswith("+")
    digits = stripped.replace(" ", "").lstrip("+")
    if plus:
        if not digits.startswith("91") or len(digits) > 12:
            return text
        rest = digits[2:]
        return "+91" + (" " + _group(rest) if rest else "")
    if len(digits) > 10 or digits[:1] not in ("6", "7", "8", "9"):
        return text
    return _group(digits)


def _group(national: str) -> str:
    return national if len(national) <= 5 else f"{national[:5]} {national[5:]}"
