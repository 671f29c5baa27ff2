"""Phone normalisation: what CREs really type and paste, and the reason given for everything that is not a mobile."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_desktop.core.phone import InvalidPhone, display, format_as_you_type, mask, normalize

M = "+919876543210"

VALID = [
    ("9876543210", M),
    ("09876543210", M),
    ("919876543210", M),
    ("+919876543210", M),
    ("+91 98765 43210", M),
    ("+91-98765-43210", M),
    ("+91.98765.43210", M),
    ("(+91) 98765 43210", M),
    ("+91 (98765) 43210", M),
    ("0091 98765 43210", M),
    ("00919876543210", M),
    ("098765-43210", M),
    ("98765 43210", M),
    ("98765-43210", M),
    ("987.654.3210", M),
    ("987 654 3210", M),
    ("  9876543210  ", M),
    ("\t+91 98765 43210\n", M),
    ("98765\u00a043210", M),  # no-break space from a web page
    ("98765\u201343210", M),  # en dash from a word processor
    ("९८७६५४३२१०", M),  # Devanagari
    ("+९१ ९८७६५ ४३२१०", M),
    ("৯৮৭৬৫৪৩২১০", M),  # Bengali
    ("௯௮௭௬௫௪௩௨௧௦", M),  # Tamil
    ("౯౮౭౬౫౪౩౨౧౦", M),  # Telugu
    ("９８７６５４３２１０", M),  # fullwidth
    ("call 98765 43210 after 5", M),
    ("Mobile: +91 98765 43210", M),
    ("customer no. 9876543210 (home)", M),
    ("98765 43210, ask for Ravi", M),
    ("Ph:9876543210", M),
    ("6000000001", "+916000000001"),
    ("7012345678", "+917012345678"),
    ("8123456789", "+918123456789"),
    ("+91 70123 45678", "+917012345678"),
    ("91 81234 56789", "+918123456789"),
    ("0 98765 43210", M),
]

INVALID = [
    ("", "empty"),
    ("   ", "empty"),
    ("abc", "not_a_number"),
    ("Ravi Kumar", "not_a_number"),
    ("call me later", "not_a_number"),
    ("98765", "too_short"),
    ("98765 4321", "too_short"),
    ("+91 98765 4321", "too_short"),
    ("12 34", "too_short"),
    ("987654321012", "too_long"),
    ("+91 98765 432100", "too_long"),
    ("98765432109876", "too_long"),
    ("022 2345 6789", "landline"),
    ("040 2345 6789", "landline"),
    ("080-23456789", "landline"),
    ("+91 40 2345 6789", "landline"),
    ("5876543210", "landline"),  # the library calls it a valid landline; not a mobile for the desk
    ("1800 123 4567", "toll_free"),
    ("1800-180-1234", "toll_free"),
    ("1860 500 1234", "toll_free"),
    ("140 123 4567", "telemarketing"),
    ("1401234567", "telemarketing"),
    ("+44 20 7946 0958", "foreign"),
    ("+1 415 555 2671", "foreign"),
    ("+971 50 123 4567", "foreign"),
    ("0044 20 7946 0958", "foreign"),
    ("+98 912 345 6789", "foreign"),
    ("+9876543210", "stray_plus"),  # libphonenumber would read an Iranian number
    ("+7012345678", "stray_plus"),
    ("98765 43210, 91234 56789", "two_numbers"),
    ("9876543210 or 9123456789", "two_numbers"),
    ("4123456789", "not_mobile"),
    ("0123456789", "too_short"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_accepted_inputs(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_refused_inputs_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize(text)
    assert info.value.reason == reason
    message = str(info.value)
    assert message and message[0].isupper() and message.endswith(".")
    assert isinstance(info.value, ValueError)


def test_the_table_is_big_enough_and_covers_every_reason() -> None:
    assert len(VALID) + len(INVALID) >= 60
    from crm_desktop.core.phone import REASONS

    assert {r for _, r in INVALID} == set(REASONS)


mobiles = st.builds(
    lambda first, rest: f"+91{first}{rest}",
    st.sampled_from("6789"),
    st.text(alphabet="0123456789", min_size=9, max_size=9),
).filter(lambda e164: _is_mobile(e164))


def _is_mobile(e164: str) -> bool:
    try:
        return normalize(e164) == e164
    except InvalidPhone:
        return False


@given(mobiles)
def test_display_round_trips(e164: str) -> None:
    shown = display(e164)
    assert shown == f"+91 {e164[3:8]} {e164[8:]}"
    assert normalize(shown) == e164
    assert normalize(e164) == e164


@given(mobiles)
def test_national_forms_normalise_to_the_same_number(e164: str) -> None:
    national = e164[3:]
    for form in (national, "0" + national, "91" + national, "0091" + national, f"{national[:5]}-{national[5:]}"):
        assert normalize(form) == e164


@given(st.text())
def test_never_raises_anything_but_invalid_phone(text: str) -> None:
    try:
        result = normalize(text)
    except InvalidPhone as exc:
        assert exc.reason
    else:
        assert result.startswith("+91") and len(result) == 13


@given(mobiles)
def test_mask_hides_all_but_the_last_four(e164: str) -> None:
    masked = mask(e164)
    assert masked == "+91******" + e164[-4:]
    assert e164[3:9] not in masked


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("98765", "98765"),
        ("987654", "98765 4"),
        ("9876543210", "98765 43210"),
        ("98765 4321", "98765 4321"),
        ("+91", "+91"),
        ("+9198765", "+91 98765"),
        ("+91 9876543210", "+91 98765 43210"),
        ("022 2345", "022 2345"),  # a landline is left as typed
        ("call 98765", "call 98765"),  # text is left as typed
    ],
)
def test_as_you_type_grouping(typed: str, shown: str) -> None:
    assert format_as_you_type(typed) == shown


@given(st.text(alphabet="+0123456789 ", max_size=16))
def test_as_you_type_never_drops_a_digit(typed: str) -> None:
    shown = format_as_you_type(typed)
    assert [c for c in shown if c.isdigit()] == [c for c in typed if c.isdigit()]
    assert format_as_you_type(shown) == shown or shown == typed
