"""Phone normalisation: what CREs really type and paste, and the reason given for everything that is not a mobile."""

from __future__ import annotations

import pickle
import re
import unicodedata

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_desktop.core.phone import (
    REASONS,
    InvalidPhone,
    PhoneState,
    display,
    format_as_you_type,
    mask,
    normalize,
    partial_state,
)

M = "+919876543210"

VALID = [
    # the spellings of domain.md
    ("9876543210", M),
    ("09876543210", M),
    ("919876543210", M),
    ("+919876543210", M),
    ("+91 98765 43210", M),
    ("+91-98765-43210", M),
    ("0091 98765 43210", M),
    ("00919876543210", M),
    ("0091-98765-43210", M),
    ("91-9876543210", M),
    ("0 98765 43210", M),
    ("098765-43210", M),
    # separators
    ("98765 43210", M),
    ("98765-43210", M),
    ("987.654.3210", M),
    ("987 654 3210", M),
    ("9876.54.3210", M),
    ("+91.98765.43210", M),
    ("(+91) 98765 43210", M),
    ("+91 (98765) 43210", M),
    ("[+91] 98765 43210", M),
    ("+91 (0) 98765 43210", M),  # the trunk 0 kept after the country code
    ("+91 098765 43210", M),
    ("+ 91 98765 43210", M),
    ("98765  -  43210", M),
    # whitespace and invisible characters from web pages, WhatsApp and word processors
    ("  9876543210  ", M),
    ("\t+91 98765 43210\n", M),
    ("9876543210\r\n", M),
    ("98765\u00a043210", M),  # no-break space
    ("98765\u202f43210", M),  # narrow no-break space
    ("98765\u200943210", M),  # thin space
    ("98765\u300043210", M),  # ideographic space
    ("98765\u200b43210", M),  # zero-width space
    ("\u202a+91 98765 43210\u202c", M),  # the left-to-right marks WhatsApp wraps a copied number in
    ("\ufeff9876543210", M),  # byte-order mark at the start of a pasted cell
    ("98765\u00ad43210", M),  # soft hyphen
    ("98765\u201343210", M),  # en dash
    ("98765\u201443210", M),  # em dash
    ("98765\u221243210", M),  # minus sign
    ("98765\u201143210", M),  # non-breaking hyphen
    # Indic and other digits
    ("९८७६५४३२१०", M),  # Devanagari
    ("+९१ ९८७६५ ४३२१०", M),
    ("०९८७६५४३२१०", M),
    ("৯৮৭৬৫৪৩২১০", M),  # Bengali
    ("௯௮௭௬௫௪௩௨௧௦", M),  # Tamil
    ("౯౮౭౬౫౪౩౨౧౦", M),  # Telugu
    ("૯૮૭૬૫૪૩૨૧૦", M),  # Gujarati
    ("೯೮೭೬೫೪೩೨೧೦", M),  # Kannada
    ("൯൮൭൬൫൪൩൨൧൦", M),  # Malayalam
    ("੯੮੭੬੫੪੩੨੧੦", M),  # Gurmukhi
    ("୯୮୭୬୫୪୩୨୧୦", M),  # Odia
    ("۹۸۷۶۵۴۳۲۱۰", M),  # Extended Arabic-Indic (Urdu)
    ("٩٨٧٦٥٤٣٢١٠", M),  # Arabic-Indic
    ("９８７６５４３２１０", M),  # fullwidth
    ("＋９１ ９８７６５ ４３２１０", M),  # fullwidth plus too
    ("98765 ४३२१०", M),  # mixed scripts
    # inside pasted text
    ("call 98765 43210 after 5", M),
    ("Mobile: +91 98765 43210", M),
    ("customer no. 9876543210 (home)", M),
    ("98765 43210, ask for Ravi", M),
    ("Ph:9876543210", M),
    ("Mob no-9876543210.", M),
    ("रवि कुमार ९८७६५४३२१०", M),
    ("call 98765 43210 on 12-03-2025", M),  # a date is not a second number
    ("Ravi, Koramangala, Bengaluru 560034\n98765 43210", M),  # nor a PIN code
    ("Mobile: 9876543210, WhatsApp: +91 98765 43210", M),  # one number written twice
    # other mobiles
    ("6000000001", "+916000000001"),
    ("7012345678", "+917012345678"),
    ("8123456789", "+918123456789"),
    ("+91 70123 45678", "+917012345678"),
    ("91 81234 56789", "+918123456789"),
    ("9198765432", "+919198765432"),  # starts with 91 but is itself 10 digits: a mobile, not a prefix
]

INVALID = [
    ("", "empty"),
    ("   ", "empty"),
    ("\u00a0\u200b", "empty"),
    ("abc", "not_a_number"),
    ("Ravi Kumar", "not_a_number"),
    ("call me later", "not_a_number"),
    ("N/A", "not_a_number"),
    ("नौ आठ सात", "not_a_number"),
    ("+", "not_a_number"),
    ("98765", "too_short"),
    ("98765 4321", "too_short"),
    ("+91 98765 4321", "too_short"),
    ("+91", "too_short"),
    ("12 34", "too_short"),
    ("९८७६५", "too_short"),
    ("2345 6789", "too_short"),  # a local landline without its STD code
    ("0123456789", "too_short"),  # 0 is the trunk prefix: 9 digits are left
    ("+9876543", "too_short"),  # maybe a stray + on a mobile still being typed
    ("987654321012", "too_long"),
    ("+91 98765 432100", "too_long"),
    ("98765432109876", "too_long"),
    ("0091 98765 432100", "too_long"),
    ("98765 43210 5", "too_long"),
    ("022 2345 6789", "landline"),
    ("040 2345 6789", "landline"),
    ("080-23456789", "landline"),  # Bengaluru's STD code starts with 8: still a landline
    ("011-2345 6789", "landline"),
    ("+91 40 2345 6789", "landline"),
    ("5876543210", "landline"),  # the library calls it a valid landline; not a mobile for the desk
    ("1800 123 4567", "toll_free"),
    ("1800-180-1234", "toll_free"),
    ("1800 11 4000", "toll_free"),
    ("1860 500 1234", "toll_free"),
    ("+91 1800 123 4567", "toll_free"),
    ("140 123 4567", "telemarketing"),
    ("1401234567", "telemarketing"),
    ("+91 140 123 4567", "telemarketing"),
    ("+44 20 7946 0958", "foreign"),
    ("+44 7400 123456", "foreign"),
    ("+1 415 555 2671", "foreign"),
    ("+971 50 123 4567", "foreign"),
    ("0044 20 7946 0958", "foreign"),
    ("00971 50 123 4567", "foreign"),
    ("+98 912 345 6789", "foreign"),
    ("+65 9123 4567", "foreign"),  # a real Singapore mobile, written with its country code
    ("+9876543210", "stray_plus"),  # libphonenumber would read an Iranian number
    ("+98765 43210", "stray_plus"),
    ("+7012345678", "stray_plus"),
    ("+98 76543210", "stray_plus"),  # no such Iranian number: a mobile with a stray +
    ("+098765 43210", "stray_plus"),
    ("98765 43210, 91234 56789", "two_numbers"),
    ("9876543210 or 9123456789", "two_numbers"),
    ("9876543210/9123456789", "two_numbers"),
    ("9876543210 9123456789", "two_numbers"),
    ("9876543210\n9123456789", "two_numbers"),
    ("+91 98765 43210 +91 91234 56789", "two_numbers"),
    ("+91 98765 43210 91234 56789", "two_numbers"),
    ("98765 43210 (office 022 2345 6789)", "two_numbers"),
    ("4123456789", "not_mobile"),
    ("+91 41234 56789", "not_mobile"),
    ("91 0123456789", "not_mobile"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_accepted_inputs(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_refused_inputs_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize(text)
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_the_table_is_big_enough_and_covers_every_reason() -> None:
    assert len(VALID) + len(INVALID) >= 60
    assert {r for _, r in INVALID} == set(REASONS)


@pytest.mark.parametrize("reason", REASONS)
def test_every_message_is_a_plain_sentence_for_the_cre(reason: str) -> None:
    text = next(t for t, r in INVALID if r == reason)
    with pytest.raises(InvalidPhone) as info:
        normalize(text)
    message = str(info.value)
    assert message[0].isupper() and message.endswith(".")
    assert not re.search(r"E\.164|libphonenumber|region|pars|invalid|exception|national", message, re.IGNORECASE)
    assert not re.search(r"\bIN\b|[a-z]_[a-z]", message)  # no region code, no reason code


def test_messages_differ_per_reason() -> None:
    messages = {str(InvalidPhone(reason)) for reason in REASONS}
    assert len(messages) == len(REASONS)


def test_invalid_phone_survives_pickling() -> None:
    """Errors may cross a process boundary (a worker, a crash report): the reason must not be lost."""
    err = pickle.loads(pickle.dumps(InvalidPhone("stray_plus")))
    assert isinstance(err, InvalidPhone)
    assert err.reason == "stray_plus"
    assert str(err) == str(InvalidPhone("stray_plus"))


def test_other_desk_regions_take_that_regions_mobiles() -> None:
    assert normalize("07400 123456", "GB") == "+447400123456"
    assert normalize("+44 7400 123456", "gb") == "+447400123456"
    for text, reason in [("020 7946 0958", "landline"), ("+91 98765 43210", "foreign"), ("abc", "not_a_number")]:
        with pytest.raises(InvalidPhone) as info:
            normalize(text, "GB")
        assert info.value.reason == reason
    # the Indian special cases do not leak into another region
    with pytest.raises(InvalidPhone) as info:
        normalize("+9876543210", "GB")
    assert info.value.reason != "stray_plus"


def test_the_mobile_rule_does_not_rest_on_the_library_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if the library's metadata one day called 5876543210 a mobile, the desk still refuses it."""
    from crm_desktop.core import phone

    monkeypatch.setattr(phone, "_indian_type", lambda national: phonenumbers.PhoneNumberType.MOBILE)
    assert normalize("9876543210") == M
    for text in ("5876543210", "4123456789", "+91 58765 43210"):
        with pytest.raises(InvalidPhone) as info:
            normalize(text)
        assert info.value.reason == "not_mobile"


def test_an_unknown_region_is_a_programming_error_not_a_phone_error() -> None:
    with pytest.raises(ValueError, match="region") as info:
        normalize("9876543210", "XX")
    assert not isinstance(info.value, InvalidPhone)


# -- properties ---------------------------------------------------------------------------------------------------


def _library_says_mobile(national: str) -> bool:
    """An oracle independent of phone.py: the desk rule spelled out with the library."""
    number = phonenumbers.parse("+91" + national)
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


nationals = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("6789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
).filter(_library_says_mobile)
mobiles = nationals.map(lambda national: "+91" + national)

# The zero of every Unicode decimal-digit script; digit k of a script is its zero + k.
ZEROS = [c for c in range(0x110000) if unicodedata.category(chr(c)) == "Nd" and unicodedata.digit(chr(c)) == 0]
SEPARATORS = ["", " ", "-", ".", "  ", "\u00a0", "\u2013", "\u202f", " - "]
# Words around a pasted number: letters, spaces, punctuation; never digits, "+" or brackets.
words = st.text(st.characters(categories=("Lu", "Ll", "Lo", "Zs", "Po"), exclude_characters="+()"), max_size=20)


@given(mobiles)
def test_normalize_is_idempotent_and_display_round_trips(e164: str) -> None:
    assert normalize(e164) == e164
    shown = display(e164)
    assert shown == f"+91 {e164[3:8]} {e164[8:]}"
    assert normalize(shown) == e164


@given(nationals)
def test_national_forms_normalise_to_the_same_number(national: str) -> None:
    e164 = "+91" + national
    forms = (national, "0" + national, "91" + national, "0091" + national, "+91" + national, "+910" + national)
    for form in forms:
        assert normalize(form) == e164


@given(nationals, st.lists(st.sampled_from(SEPARATORS), min_size=9, max_size=9))
def test_separators_between_any_digits_are_ignored(national: str, seps: list[str]) -> None:
    text = national[0] + "".join(sep + digit for sep, digit in zip(seps, national[1:], strict=True))
    assert normalize(text) == "+91" + national


@given(nationals, st.sampled_from(ZEROS))
def test_digits_of_every_script_are_read(national: str, zero: int) -> None:
    text = "".join(chr(zero + int(d)) for d in national)
    assert normalize(text) == "+91" + national


@given(nationals, words, words)
def test_a_number_inside_words_is_found(national: str, before: str, after: str) -> None:
    assert normalize(f"{before} {national[:5]} {national[5:]} {after}") == "+91" + national


@given(nationals, nationals)
def test_two_different_numbers_are_refused(first: str, second: str) -> None:
    text = f"{first}, {second}"
    if first == second:
        assert normalize(text) == "+91" + first
    else:
        with pytest.raises(InvalidPhone) as info:
            normalize(text)
        assert info.value.reason == "two_numbers"


@given(st.text())
def test_never_raises_anything_but_invalid_phone(text: str) -> None:
    try:
        result = normalize(text)
    except InvalidPhone as exc:
        assert exc.reason in REASONS
    else:
        assert re.fullmatch(r"\+91[6-9][0-9]{9}", result)
        assert _library_says_mobile(result[3:])


@given(st.text(alphabet="0123456789+-(). \n/९", max_size=30))
def test_digit_heavy_garbage_gives_a_reason_or_a_mobile(text: str) -> None:
    try:
        result = normalize(text)
    except InvalidPhone as exc:
        assert exc.reason in REASONS
    else:
        assert _library_says_mobile(result[3:])
        assert normalize(result) == result


@given(mobiles)
def test_mask_hides_all_but_the_last_four(e164: str) -> None:
    masked = mask(e164)
    assert re.fullmatch(r"\+91\*{6}[0-9]{4}", masked)
    assert masked.endswith(e164[-4:])
    assert e164[3:9] not in masked


def test_mask_and_display_of_other_numbers() -> None:
    assert mask("+919876543210") == "+91******3210"
    assert mask("+447400123456") == "+44******3456"
    assert mask("12345") == "*****"
    assert display("+447400123456") == "+44 7400 123456"
    assert display("not a number") == "not a number"


# -- as you type --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("98765", "98765"),
        ("987654", "98765 4"),
        ("9876543210", "98765 43210"),
        ("98765 4321", "98765 4321"),
        ("98765 43210", "98765 43210"),
        ("+91", "+91"),
        ("+919", "+91 9"),
        ("+9198765", "+91 98765"),
        ("+91 9876543210", "+91 98765 43210"),
        ("98765432101", "98765432101"),  # an 11th digit: left alone, normalize says too long
        ("022 2345", "022 2345"),  # a landline is left as typed
        ("09876543210", "09876543210"),
        ("call 98765", "call 98765"),  # text is left as typed
        ("९८७६५४३२१०", "९८७६५४३२१०"),
    ],
)
def test_as_you_type_grouping(typed: str, shown: str) -> None:
    assert format_as_you_type(typed) == shown


@given(st.text(alphabet="+0123456789 ", max_size=16))
def test_as_you_type_never_drops_a_digit(typed: str) -> None:
    shown = format_as_you_type(typed)
    assert [c for c in shown if c.isdigit()] == [c for c in typed if c.isdigit()]
    assert format_as_you_type(shown) == shown


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("", PhoneState("empty", None)),
        ("  ", PhoneState("empty", None)),
        ("+", PhoneState("typing", None)),
        ("98765", PhoneState("typing", None)),
        ("+91 98765 4321", PhoneState("typing", None)),
        ("91987654321", PhoneState("typing", None)),  # on the way to 919876543210
        ("98765 43210", PhoneState("valid", M)),
        ("98765432101", PhoneState("invalid", "too_long")),
        ("022 2345 6789", PhoneState("invalid", "landline")),
        ("1800 123", PhoneState("invalid", "toll_free")),  # no need to wait for the rest
        ("+9876543210", PhoneState("invalid", "stray_plus")),
        ("Ravi", PhoneState("invalid", "not_a_number")),
        ("call after 5", PhoneState("invalid", "too_short")),  # words: a paste, not typing in progress
    ],
)
def test_partial_state(text: str, state: PhoneState) -> None:
    assert partial_state(text) == state


@given(nationals, st.sampled_from(["", "+91", "+91 ", "0", "0091"]))
def test_typing_a_mobile_key_by_key_is_never_called_wrong(national: str, prefix: str) -> None:
    """What the field sees: each keystroke appended, the text reformatted, the state asked. No error may flash up
    before the last digit, and the last digit gives the number."""
    text = ""
    for ch in prefix + national:
        text = format_as_you_type(text + ch)
        state = partial_state(text)
        if len([c for c in text if c.isdigit()]) < len((prefix + national).replace("+", "").replace(" ", "")):
            assert state.status in ("empty", "typing"), (text, state)
    assert partial_state(text) == PhoneState("valid", "+91" + national)
