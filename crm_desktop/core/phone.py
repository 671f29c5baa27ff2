"""Phone numbers as CREs type and paste them, normalised to E.164 with Google's libphonenumber (`phonenumbers`).

Why a module of its own: the number is the lead's dedupe key, so every path (the form, the duplicate lookup, the
outbox, the sync) must agree on one spelling of it, and a CRE must be told in plain words why a number is refused.

The desk's rule is explicit rather than left to the library: a lead's number must be an Indian mobile, 10 national
digits starting 6-9, of type MOBILE or FIXED_LINE_OR_MOBILE. (libphonenumber alone calls `5876543210` a valid
landline.) Everything else gets a specific reason a CRE can act on (see `REASONS`): too short or long, a landline, a
toll-free or 140-series number, another country, a stray `+` in front of a 10-digit mobile (which the library would
read as an Iranian number), two different numbers pasted at once.

`normalize` runs on every keystroke, so the common path stays cheap: ASCII input skips Unicode folding, one regex scan
finds the digits, and the library's verdict on a national number is cached (no `phonenumbers.parse` on that path).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal, NamedTuple, get_args

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType

Reason = Literal[
    "empty",
    "not_a_number",
    "too_short",
    "too_long",
    "landline",
    "toll_free",
    "telemarketing",
    "foreign",
    "not_mobile",
    "two_numbers",
    "stray_plus",
]
REASONS: tuple[Reason, ...] = get_args(Reason)

# What the CRE reads next to the field: what is wrong, then what to do. No jargon ("E.164", "region", "parse").
_MESSAGES: dict[Reason, str] = {
    "empty": "Enter the caller's mobile number.",
    "not_a_number": "That is not a phone number. Type the caller's 10-digit mobile number.",
    "too_short": "Too few digits: an Indian mobile number has 10 digits. Check the number with the caller.",
    "too_long": "Too many digits: an Indian mobile number has 10 digits after +91. Look for an extra digit.",
    "landline": "This is a landline number. Ask the caller for a mobile number (it starts with 6, 7, 8 or 9).",
    "toll_free": "This is a toll-free number (1800/1860). Ask the caller for their own mobile number.",
    "telemarketing": "This is a 140-series telemarketing number. Ask the caller for their own mobile number.",
    "foreign": "This is not an Indian number. The desk takes Indian mobile numbers (+91) only.",
    "not_mobile": "This is not a mobile number: Indian mobile numbers have 10 digits and start with 6, 7, 8 or 9. "
    "Check the number with the caller.",
    "two_numbers": "Two different numbers were pasted. Keep only the caller's mobile number.",
    "stray_plus": "Remove the '+' in front, or type +91 before the number: with a bare '+' a 10-digit mobile "
    "reads as a foreign number.",
}

_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
_MOBILE_FIRST = frozenset("6789")
_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)

# After folding (see _fold) a number is ASCII digits with these separators between them: space, dot, dash, brackets.
# Not "/", tab or newline: those separate two numbers ("98765 43210 / 91234 56789", one per line) or a date.
_RUN = re.compile(r"\+?\(?[0-9][0-9 .()\-]*[0-9]|\+?[0-9]")
_GROUP = re.compile(r"[0-9]+")
_ANY_DIGIT = re.compile(r"[0-9]")
# A date in pasted text ("call on 12-03-2025") is not a second phone number.
_DATE = re.compile(r"[0-9]{1,2}[-.][0-9]{1,2}[-.](?:[0-9]{4}|[0-9]{2})|[0-9]{4}[-.][0-9]{1,2}[-.][0-9]{1,2}")
_NOT_DIGITS = str.maketrans("", "", " .()-+")
# Shorter digit runs in pasted text ("after 5", "ext 22", a 6-digit PIN code) are not phone numbers. A number being
# typed that is shorter than this is simply "too short" until it grows.
_MIN_DIGITS = 7
# The most digits one number has in each spelling: national (0 98765 43210, 91 98765 43210), "+" and E.164's 15 digits,
# "00" and 15 more. A longer run with a gap in it ("98765 43210 91234 56789") may be two numbers.
_MAX_NATIONAL, _MAX_PLUS, _MAX_IDD = 12, 15, 17
_FOLD_PUNCT = frozenset("+().")


class InvalidPhone(ValueError):
    """Raised by `normalize`: `reason` (one of REASONS) is for code, `str(exc)` is the message for the CRE.

    A ValueError so that code treating "bad input" generically still catches it."""

    def __init__(self, reason: Reason, message: str | None = None) -> None:
        super().__init__(message or _MESSAGES[reason])
        self.reason: Reason = reason

    def __reduce__(self) -> tuple[type[InvalidPhone], tuple[Reason, str]]:
        # Default pickling would call InvalidPhone(message): keep the reason when the error crosses a process.
        return (type(self), (self.reason, str(self)))


class _Run(NamedTuple):
    plus: bool  # written with a leading "+"
    digits: str
    first_group: int  # digits before the first separator: "+98 912…" -> 2 (a country code), "+98765 43210" -> 5


def _fold(text: str) -> str:
    """Make pasted Unicode look like what a CRE types on an English keyboard.

    Any script's decimal digits (Devanagari ९, Bengali ৯, Tamil ௯, fullwidth ９…) become 0-9, every kind of space
    (no-break, thin, ideographic) a space, every dash a "-", fullwidth + ( ) . their ASCII forms, and invisible format
    characters (zero-width space, the left-to-right marks WhatsApp wraps around numbers) disappear."""
    if text.isascii():
        return text  # the keystroke path: nothing to do
    out: list[str] = []
    for ch in text:
        if ch.isascii():
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category == "Nd":
            out.append(str(unicodedata.digit(ch)))
        elif category == "Zs":
            out.append(" ")
        elif category == "Pd" or ch == "\u2212":  # dashes, and the minus sign word processors substitute
            out.append("-")
        elif category != "Cf":
            folded = unicodedata.normalize("NFKC", ch)
            out.append(folded if folded in _FOLD_PUNCT else ch)
    return "".join(out)


def _runs(text: str) -> list[_Run]:
    """The phone-like runs of digits in `text`; raises two_numbers for one run that is clearly two numbers."""
    found: list[_Run] = []
    for match in _RUN.finditer(text):
        run = match.group(0)
        digits = run.translate(_NOT_DIGITS)
        if len(digits) < _MIN_DIGITS or _DATE.fullmatch(run):
            continue
        plus = run.startswith("+")
        groups = [len(g) for g in _GROUP.findall(run)]
        longest = _MAX_PLUS if plus else _MAX_IDD if digits.startswith("00") else _MAX_NATIONAL
        if len(digits) > longest and _splits_in_two(groups):
            raise InvalidPhone("two_numbers")  # "98765 43210 91234 56789": only a space between two numbers
        found.append(_Run(plus, digits, groups[0]))
    return found


def _splits_in_two(groups: list[int]) -> bool:
    """Whether some gap between digit groups leaves a phone-sized part on each side."""
    total, before = sum(groups), 0
    for size in groups[:-1]:
        before += size
        if before >= _MIN_DIGITS and total - before >= _MIN_DIGITS:
            return True
    return False


def normalize(text: str, region: str = "IN") -> str:
    """E.164 of the one mobile number in `text`, or InvalidPhone saying why there is none.

    `region` is the desk's country. For "IN" (the default) the number must be an Indian mobile and the Indian
    spellings are understood (0 / 91 / 0091 prefixes, the stray "+" typo). For another region any valid mobile of
    that region is accepted. An unknown region code is a programming error: plain ValueError."""
    region = region.upper()
    if region not in _REGIONS:
        raise ValueError(f"unknown region code {region!r}")
    folded = _fold(text)
    if not folded.strip():
        raise InvalidPhone("empty")
    runs = _runs(folded)
    if not runs:
        raise InvalidPhone("too_short" if _ANY_DIGIT.search(folded) else "not_a_number")
    if len(runs) == 1:
        return _one(runs[0], region)
    # "Mobile: 9876543210, WhatsApp: +91 98765 43210" is one number written twice: accept it. Anything else is two.
    numbers: set[str] = set()
    for run in runs:
        try:
            numbers.add(_one(run, region))
        except InvalidPhone:
            raise InvalidPhone("two_numbers") from None
    if len(numbers) > 1:
        raise InvalidPhone("two_numbers")
    return numbers.pop()


def _one(run: _Run, region: str) -> str:
    if region == "IN":
        return _check_indian(_indian_national(run))
    return _normalize_other(("+" if run.plus else "") + run.digits, region)


def _indian_national(run: _Run) -> str:
    """The 10-digit national part of what was typed (or its too-short/too-long start); InvalidPhone if not Indian."""
    d = run.digits
    if run.plus:
        if d.startswith("91"):
            return _drop_trunk_zero(d[2:])  # "+91 0 98765 43210": the trunk 0 kept out of habit
        return _stray_plus_or_foreign(run)
    if d.startswith("0091"):
        return _drop_trunk_zero(d[4:])
    if d.startswith("00"):
        raise InvalidPhone("foreign")  # 00 is the international prefix: 0044…, 00971…
    if len(d) == 12 and d.startswith("91"):
        return d[2:]
    if d.startswith("0"):
        return d[1:]  # trunk prefix of a mobile (0 98765 43210) or of an STD code (022 2345 6789)
    return d


def _drop_trunk_zero(national: str) -> str:
    return national[1:] if national.startswith("0") else national


def _stray_plus_or_foreign(run: _Run) -> str:
    """`+` then not 91: another country, or the common typo of a `+` in front of a 10-digit mobile.

    The typo is told apart by shape: a 10-digit Indian mobile not written with a short country-code group in front
    ("+98765 43210", "+9876543210") — unless the digits are also a valid number of the country they start with and
    were written that way ("+65 9123 4567" is Singapore). It is never accepted silently: the CRE is asked to fix it.
    """
    d = run.digits
    if d[0] == "0":
        raise InvalidPhone("stray_plus")  # no country code starts with 0: "+098765 43210"
    if d[0] in _MOBILE_FIRST and run.first_group > 3:
        if len(d) < 10:
            raise InvalidPhone("too_short")  # "+9876543" may be a stray + on a mobile still being typed
        if len(d) == 10 and _is_indian_mobile(d):
            raise InvalidPhone("stray_plus")
    elif len(d) == 10 and d[0] in _MOBILE_FIRST and _is_indian_mobile(d) and not _valid_international(d):
        raise InvalidPhone("stray_plus")  # "+98 76543210": no such Iranian number, a mobile with a stray +
    raise InvalidPhone("foreign")


def _valid_international(digits: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse("+" + digits)))
    except NumberParseException:
        return False


@lru_cache(maxsize=4096)
def _indian_type(national: str) -> int:
    """libphonenumber's type of +91 `national` (UNKNOWN when it is not a valid Indian number).

    For a number whose country code has metadata, "valid" is exactly "type is not UNKNOWN", so one call answers both
    questions. Building the PhoneNumber directly skips parse(), a third of the cost; the cache makes re-validation
    (focus out, submit, the duplicate lookup) free."""
    return int(phonenumbers.number_type(PhoneNumber(country_code=91, national_number=int(national))))


def _is_indian_mobile(national: str) -> bool:
    """The desk's rule, explicit: 10 digits, first 6-9, and the library agrees it is a mobile number."""
    return (
        len(national) == 10
        and national[0] in _MOBILE_FIRST
        and national.isdigit()
        and _indian_type(national) in _MOBILE_TYPES
    )


def _check_indian(national: str) -> str:
    if national.startswith(("1800", "1860")):
        raise InvalidPhone("toll_free")
    if national.startswith("140"):
        raise InvalidPhone("telemarketing")
    if len(national) < 10:
        raise InvalidPhone("too_short")
    if len(national) > 10:
        raise InvalidPhone("too_long")
    if national[0] == "0":
        raise InvalidPhone("not_mobile")  # "91 0123456789": int() would silently drop the 0
    if _is_indian_mobile(national):
        return "+91" + national
    if _indian_type(national) == PhoneNumberType.FIXED_LINE:
        # Also 080 2345 6789 (an STD code may start with 8) and 5876543210 (the library's valid landline).
        raise InvalidPhone("landline")
    raise InvalidPhone("not_mobile")


def _normalize_other(text: str, region: str) -> str:
    """Another desk region: any valid mobile number of that region (the Indian special cases do not apply)."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.TOO_SHORT_NSN:
            raise InvalidPhone("too_short", "Too few digits for a mobile number.") from exc
        raise InvalidPhone("not_a_number") from exc
    if phonenumbers.region_code_for_number(number) != region:
        raise InvalidPhone("foreign", f"This number belongs to another country. The desk takes {region} numbers only.")
    if not phonenumbers.is_valid_number(number):
        length = phonenumbers.is_possible_number_with_reason(number)
        if length in (phonenumbers.ValidationResult.TOO_SHORT, phonenumbers.ValidationResult.INVALID_LENGTH):
            raise InvalidPhone("too_short", "Too few digits for a mobile number. Check the number with the caller.")
        if length == phonenumbers.ValidationResult.TOO_LONG:
            raise InvalidPhone("too_long", "Too many digits for a mobile number. Look for an extra digit.")
        raise InvalidPhone("not_mobile", "This is not a valid mobile number. Check the number with the caller.")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidPhone("landline", "This is not a mobile number. Ask the caller for their mobile number.")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def display(e164: str) -> str:
    """`+919876543210` -> `+91 98765 43210`, the grouping CREs read back to callers; other numbers in the library's
    international format. Anything unparseable is returned unchanged (display never fails a view)."""
    if len(e164) == 13 and e164.startswith("+91") and e164[3] in _MOBILE_FIRST:
        return f"+91 {e164[3:8]} {e164[8:]}"
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), PhoneNumberFormat.INTERNATIONAL)
    except NumberParseException:
        return e164


def mask(e164: str) -> str:
    """For logs, which must never hold a full number at INFO or above: `+919876543210` -> `+91******3210`.

    The last four digits stay so a support person can match a log line to a lead the CRE names."""
    if len(e164) <= 7:
        return "*" * len(e164)
    prefix = e164[:3] if e164.startswith("+") else ""
    return prefix + "*" * (len(e164) - len(prefix) - 4) + e164[-4:]


def format_as_you_type(text: str, region: str = "IN") -> str:
    """Group the digits of a mobile being typed: `9876543210` -> `98765 43210`, `+9198765` -> `+91 98765`.

    Why not libphonenumber's AsYouTypeFormatter: it is stateful, fed one character at a time, which does not fit a
    line edit where the CRE pastes, deletes and edits in the middle. This is a pure function of the whole text, and
    only spaces are added or moved, so no typed digit is ever lost; text with letters, other separators or non-ASCII
    digits (a paste, a landline with an STD code) is returned exactly as typed, and `normalize` still reads it."""
    stripped = text.strip()
    if region.upper() != "IN" or not stripped or not stripped.isascii() or not re.fullmatch(r"\+?[0-9 ]*", stripped):
        return text
    digits = stripped.replace(" ", "").lstrip("+")
    if stripped.startswith("+"):
        if not digits.startswith("91") or len(digits) > 12:
            return text
        rest = digits[2:]
        return "+91" + (" " + _group(rest) if rest else "")
    if len(digits) > 10 or digits[:1] not in _MOBILE_FIRST:
        return text
    return _group(digits)


def _group(national: str) -> str:
    return national if len(national) <= 5 else f"{national[:5]} {national[5:]}"


class PhoneState(NamedTuple):
    """What the field should show while the CRE types, from `partial_state`.

    status      value
    "empty"     None     nothing typed: show nothing
    "typing"    None     a start that more digits may complete: no error yet (show `str(InvalidPhone)` on focus-out)
    "valid"     E.164    a mobile: show `display(value)`, look it up for duplicates
    "invalid"   reason   a verdict to show now: more digits cannot fix it, or the text holds words (a paste)
    """

    status: Literal["empty", "typing", "valid", "invalid"]
    value: str | None


def partial_state(text: str, region: str = "IN") -> PhoneState:
    """`normalize` for a field still being typed: tells "not finished yet" apart from a verdict, so the form does not
    flash "too few digits" at the third keystroke nor wait for focus-out to say "landline"."""
    try:
        return PhoneState("valid", normalize(text, region))
    except InvalidPhone as exc:
        if exc.reason == "empty":
            return PhoneState("empty", None)
        if any(c.isalpha() for c in text):
            return PhoneState("invalid", exc.reason)  # words: a paste, not a number being typed
        if exc.reason in ("too_short", "not_a_number"):
            return PhoneState("typing", None)  # "98765", or just "+" / "(" so far
        if exc.reason == "too_long" and _longer_helps(text, region):
            return PhoneState("typing", None)  # "91987654321": the 91 prefix of a 12-digit spelling
        return PhoneState("invalid", exc.reason)


def _longer_helps(text: str, region: str) -> bool:
    """Whether one more digit can still give a number (a longer prefixed spelling in progress)."""
    try:
        normalize(text + "0", region)
    except InvalidPhone as exc:
        return exc.reason not in ("too_long", "two_numbers")
    return True
