"""The name index's prefix indexes (cache.py, migration 2: FTS5 `prefix = '1 2 3'`): what each costs to fill and what
a name search costs without it, on names drawn from a large vocabulary.

    .venv/bin/python bench/bench_name_index.py                                  # 1M names, '1 2 3' against '1 2'
    .venv/bin/python bench/bench_name_index.py --names 200000 --prefixes "1 2 3;1 2;1;" --common spread

Why: the bench database's names (seed.py) come from a few hundred words, so a prefix that has no index of its own
still finds few words and looks cheap. Here two-word names are drawn from a synthetic vocabulary of ~13,000 words
made of syllables, the common words far more frequent than the rare ones (weights 1 / rank^0.9), so some
three-letter prefixes begin a few hundred words; with `--common shared` (the default) the commonest words also share
their first letters, the case a prefix without an index of its own pays for most. Each variant is filled as a first
sync fills the cache (10,000 names a commit, FTS5 alone, in memory) and timed on name searches as search.py asks them
(every word a quoted prefix, `LIMIT 50`), best of 5 each: one to four letters of the commonest words, two-word
queries, and the three-letter prefixes that begin the most words. Variants alternate, `--rounds` times.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time

# Syllables the words are made of (Telugu, Tamil, Hindi and Urdu names' sounds, roughly).
SYLLABLE_TEXT = (
    "ra vi ku mar sri ni vas la ksh mi an ji ta su re sh ha ri pra ka sa de ya na ga pa dma ja bha va ch dra mo"
    " med ir fan fa ti ma ab dul him ve nk at es wa lak pu go kri mu ru se lv am tha rai"
)
SYLLABLES = sorted(set(SYLLABLE_TEXT.split()))
TOKENIZE = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"  # the cache's (cache.py, migration 2)


def vocabulary(n: int, rnd: random.Random, common: str) -> list[str]:
    """`n` distinct words by rank (the first the commonest). `common`: "spread" (ranks at random: the commonest words
    begin with any letters) or "shared" (ranks in alphabetical order: the commonest words share their first letters,
    as Sri-, Venkat- and Sai- names do in Hyderabad)."""
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rnd.choice(SYLLABLES) for _ in range(rnd.choice((2, 3, 3, 4)))).capitalize())
    ranked = sorted(words)
    if common == "spread":
        rnd.shuffle(ranked)
    return ranked


def names(count: int, seed: int, common: str) -> list[str]:
    rnd = random.Random(seed)
    firsts, lasts = vocabulary(8000, rnd, common), vocabulary(6000, rnd, common)
    first_w = [1 / (i + 1) ** 0.9 for i in range(len(firsts))]
    last_w = [1 / (i + 1) ** 0.9 for i in range(len(lasts))]
    return [
        f"{a} {b}"
        for a, b in zip(rnd.choices(firsts, first_w, k=count), rnd.choices(lasts, last_w, k=count), strict=True)
    ]


def queries(all_names: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for name in all_names:
        for word in name.lower().split():
            counts[word] = counts.get(word, 0) + 1
    common = sorted(counts, key=lambda w: -counts[w])[:10]
    by_prefix: dict[str, int] = {}
    for word in counts:
        by_prefix[word[:3]] = by_prefix.get(word[:3], 0) + 1
    widest = sorted(by_prefix, key=lambda p: -by_prefix[p])[:5]
    print(
        f"{len(counts):,} distinct words; most words under one three-letter prefix: "
        + ", ".join(f"{p} {by_prefix[p]}" for p in widest)
    )
    found = [f'"{w[:k]}"*' for w in common for k in (1, 2, 3, 4)]
    found += [f'"{common[0][:3]}"* "{common[1][:3]}"*', f'"{common[2][:2]}"* "{common[3][:2]}"*']
    found += [f'"{p}"*' for p in widest]
    return list(dict.fromkeys(found))  # once each: with --common shared the commonest words share their first letters


def run(prefixes: str, all_names: list[str], searches: list[str]) -> tuple[float, list[tuple[float, str]]]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    option = f", prefix = '{prefixes}'" if prefixes.strip() else ""
    conn.execute(f'CREATE VIRTUAL TABLE names USING fts5(name, tokenize = "{TOKENIZE}"{option})')
    t0 = time.perf_counter()
    for start in range(0, len(all_names), 10_000):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO names (rowid, name) VALUES (?, ?)",
            ((start + i + 1, n) for i, n in enumerate(all_names[start : start + 10_000])),
        )
        conn.execute("COMMIT")
    fill = time.perf_counter() - t0
    timed = []
    for q in searches:
        best = float("inf")
        for _ in range(5):
            t1 = time.perf_counter()
            conn.execute("SELECT rowid FROM names WHERE names MATCH ? LIMIT 50", (q,)).fetchall()
            best = min(best, time.perf_counter() - t1)
        timed.append((best * 1000, q))
    conn.close()
    return fill, sorted(timed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--names", type=int, default=1_000_000)
    ap.add_argument("--prefixes", default="1 2 3;1 2", help="FTS5 prefix options to compare, ';' between them")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--common", choices=("spread", "shared"), default="shared", help="see vocabulary()")
    args = ap.parse_args(argv)
    all_names = names(args.names, args.seed, args.common)
    searches = queries(all_names)
    for rnd in range(1, args.rounds + 1):
        for prefixes in args.prefixes.split(";"):
            fill, timed = run(prefixes, all_names, searches)
            slowest = ", ".join(f"{ms:.1f} ms {q}" for ms, q in timed[-3:])
            print(
                f"round {rnd} prefix '{prefixes}': fill {fill:.2f} s ({fill / len(all_names) * 1e6:.2f} µs a name);"
                f" slowest of {len(timed)} searches: {slowest}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
