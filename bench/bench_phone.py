"""Phone normalisation speed: `normalize` runs on every keystroke in the lead form's phone field.

    .venv/bin/python bench/bench_phone.py [--calls 20000]

Why: the field validates and reformats on each key, and the duplicate lookup waits for the result; the goal is far
below a frame (16 ms), i.e. tens of microseconds. Prints µs per call for typical inputs (warm: the same text again,
as on focus-out and submit), for distinct mobiles never seen before (cold: libphonenumber's verdict not yet cached),
and for the other helpers. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from functools import partial

from crm_desktop.core.phone import InvalidPhone, display, format_as_you_type, mask, normalize, partial_state

SAMPLES = [
    "9876543210",
    "+91 98765 43210",
    "98765",
    "९८७६५४३२१०",
    "call 98765 43210 after 5",
    "022 2345 6789",
    "+9876543210",
    "Ravi Kumar",
]


def _quiet(text: str) -> None:
    try:
        normalize(text)
    except InvalidPhone:
        pass  # a refusal costs the same as an answer: it is part of what is measured


def _per_call_us(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls

    print(f"normalize, warm ({calls:,} calls each)")
    for text in SAMPLES:
        print(f"  {text!r:32} {_per_call_us(partial(_quiet, text), calls):6.1f} µs")

    rng = random.Random(1)
    fresh = [str(rng.randint(6_000_000_000, 9_999_999_999)) for _ in range(calls)]
    start = time.perf_counter()
    for text in fresh:
        _quiet(text)
    print(f"normalize, cold: {calls:,} distinct mobiles  {(time.perf_counter() - start) / calls * 1e6:6.1f} µs")

    e164 = "+919876543210"
    for name, fn in [
        ("display", lambda: display(e164)),
        ("mask", lambda: mask(e164)),
        ("format_as_you_type", lambda: format_as_you_type("9876543210")),
        ("partial_state (typing)", lambda: partial_state("98765 4")),
        ("partial_state (valid)", lambda: partial_state("98765 43210")),
    ]:
        print(f"{name:24} {_per_call_us(fn, calls):6.1f} µs")


if __name__ == "__main__":
    main()
