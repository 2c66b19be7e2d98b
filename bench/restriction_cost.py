"""Restriction cost benchmark: the longest a patient restriction expression within the length
cap can take to check and compile (on save and import) and to evaluate, against the bound of
50 ms that any one expression may hold the event loop.

    python bench/restriction_cost.py                 # every case, 20 repeats, 2,000 random rules
    python bench/restriction_cost.py --repeats 5 --random 200 --no-old-path

Cases are the worst shapes the length cap (1000 characters) and the allow-list admit: the
deepest nesting of each kind, the longest `in` list, the longest arithmetic and `||` chains, the
most nested ternaries; then the worst refused inputs (a full-length expression over the node
cap, 499 parentheses, a 1000-digit number, escapes in a string) and the attack payloads; then
random allowed rules up to the cap. Each is measured in this process, as the gateway runs it:
check, compile and the sampled type check (``compile_restriction`` without its cache), and
evaluation for ages 0 to 120. The ceiling, in the same run, is the same path for `age > 1`.

For contrast, the old path (the CEL runtime compiling and running the submitted text, as before
the allow-list) is timed once on the 310-character nested-comprehension payload
(--no-old-path skips it),
and cel-python's shipped grammar on a string of escapes, the backtracking its string pattern
does and the grammar used here replaces.

Writes bench/results/restriction_cost.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cel  # noqa: E402
from lark import Lark  # noqa: E402

from bench.common import machine  # noqa: E402
from ehr_gateway.ehr.restriction import (  # noqa: E402
    MAX_DEPTH,
    MAX_TOKENS,
    RestrictionError,
    _grammar,
    compile_restriction,
)

BOUND_MS = 50.0
CAP = 1000
FORTY = "[" + ",".join("0" * 40) + "]"
NESTED_COMPREHENSIONS = (
    f"{FORTY}.map//\n(x, {FORTY}.map//\n(y, {FORTY}.map//\n(z, x + y + z)))[0][0][0] == age"
)


def _fit(build: Callable[[int], str]) -> str:
    """The largest ``build(n)`` that is within the length cap and admitted."""
    best = ""
    for n in range(1, CAP):
        source = build(n)
        if len(source) > CAP:
            break
        try:
            compile_restriction.__wrapped__(source)
        except RestrictionError:
            break
        best = source
    if not best:
        raise ValueError(f"not even the smallest case is admitted: {build(1)!r}")
    return best


def admitted_cases() -> dict[str, str]:
    return {
        "deepest additions": _fit(lambda n: "(" * n + "age" + " + 1)" * n + " > 40"),
        "deepest right-nested": _fit(lambda n: "1 + (" * n + "age" + ")" * n + " > 40"),
        "deepest !": _fit(lambda n: "!" * n + "(age > 1)"),
        "deepest unary -": _fit(lambda n: "- " * n + "age < 3"),
        "deepest parentheses": _fit(lambda n: "(" * n + "age > 1" + ")" * n),
        "most nested ternaries": _fit(
            lambda n: (
                "".join(f"age < {i} ? {'true' if i % 2 else 'false'} : " for i in range(n))
                + "false"
            )
        ),
        "longest in list": _fit(lambda n: "age in [" + ",".join(str(i) for i in range(n)) + "]"),
        "longest in list, long numbers": _fit(
            lambda n: "age in [" + ",".join(str(10**8 + i) for i in range(n)) + "]"
        ),
        "longest arithmetic chain": _fit(
            lambda n: "age" + "".join(f" {'+-*'[i % 3]} {i % 7 + 1}" for i in range(n)) + " > 0"
        ),
        "longest || chain": _fit(lambda n: " || ".join(f"age == {i}" for i in range(n))),
        "longest % / chain": _fit(
            lambda n: "(age + 1)" + "".join(f" {'%/'[i % 2]} {i + 1}" for i in range(n)) + " > 0"
        ),
        "cap of comments": "age > 1 //" + "x" * (CAP - 10),
    }


def refused_cases() -> dict[str, str]:
    return {
        "nested comprehensions (310 chars, comments)": NESTED_COMPREHENSIONS,
        "over the token cap (1000 chars)": ("age + " * 200)[: CAP - 4] + " > 1",
        "in list over the token cap": "age in [" + ",".join("0" * 495) + "]",
        "499 parentheses": "(" * 499 + "age" + ")" * 499,
        "1000-digit number": "age < " + "9" * (CAP - 6),
        "escapes, unclosed string": 'age == "' + "\\\\" * ((CAP - 8) // 2),
        "escapes, closed string": 'age == "' + "\\\\" * ((CAP - 10) // 2) + '"',
        "nested macros, plain": f"{FORTY}.all(x, {FORTY}.all(y, {FORTY}.all(z, x < age)))",
        "1000-character name": "a" * CAP,
    }


def random_rule(rng: random.Random, depth: int = 0) -> str:
    """A random allowed rule (boolean at the top), nested at most a few levels."""

    def number(d: int) -> str:
        if d > 4 or rng.random() < 0.35:
            return rng.choice(["age", str(rng.randint(-5, 130)), f"{rng.randint(0, 99)}.5"])
        op = rng.choice("+-*/%")
        right = str(rng.randint(1, 9)) if op in "/%" else number(d + 1)
        return f"({number(d + 1)} {op} {right})"

    if depth > 4 or rng.random() < 0.3:
        kind = rng.randrange(3)
        if kind == 0:
            relation = rng.choice(["<", "<=", ">", ">=", "==", "!="])
            return f"{number(depth)} {relation} {number(depth)}"
        if kind == 1:
            items = ", ".join(str(rng.randint(0, 120)) for _ in range(rng.randint(0, 40)))
            return f"age in [{items}]"
        return rng.choice(["true", "false", "age > 17"])
    op = rng.choice(["&&", "||", "!", "?:"])
    if op == "!":
        return f"!({random_rule(rng, depth + 1)})"
    if op == "?:":
        parts = (random_rule(rng, depth + 1) for _ in range(3))
        return "({} ? {} : {})".format(*parts)
    return f"({random_rule(rng, depth + 1)} {op} {random_rule(rng, depth + 1)})"


def same_verdicts(source: str) -> bool | None:
    """Whether the checked program decides every age 0..120 as the CEL runtime does on the
    submitted text itself (None when the runtime does not accept that text)."""
    try:
        direct = cel.compile(source)
        checked = compile_restriction.__wrapped__(source)
    except (ValueError, RestrictionError):
        return None
    for age in range(121):
        try:
            expected: Any = direct.execute({"age": age})
        except Exception:  # an evaluation error must then be one for the checked program too
            expected = RestrictionError
        try:
            got: Any = checked.is_restricted(age=age)
        except RestrictionError:
            got = RestrictionError
        if got != expected:
            return False
    return True


_CPU: list[float] = []


def timed(call: Callable[[], Any]) -> float:
    """Wall milliseconds; the thread's own CPU milliseconds go to _CPU. On a shared machine the
    wall time includes moments the process was not running at all (the ceiling's maximum shows
    how long those are); the CPU time is what the expression itself cost the event loop."""
    cpu, start = time.thread_time(), time.perf_counter()
    call()
    _CPU.append((time.thread_time() - cpu) * 1000)
    return (time.perf_counter() - start) * 1000


def measure(source: str, repeats: int) -> dict[str, Any]:
    """Milliseconds to check and compile (or refuse), and to evaluate for every age."""
    outcome: str = "admitted"

    def check() -> Any:
        nonlocal outcome
        try:
            return compile_restriction.__wrapped__(source)
        except RestrictionError as error:
            outcome = error.code
            return None

    _CPU.clear()
    checks = [timed(check) for _ in range(repeats)]
    check_cpu = max(_CPU)
    _CPU.clear()
    restriction = check()
    evaluations: list[float] = []
    if restriction is not None:
        for _ in range(max(1, repeats // 4)):
            for age in range(121):
                try:
                    evaluations.append(timed(lambda a=age: restriction.is_restricted(age=a)))
                except RestrictionError:
                    evaluations.append(0.0)
    return {
        "chars": len(source),
        "outcome": outcome,
        "check_ms": {
            "median": statistics.median(checks),
            "max": max(checks),
            "max_cpu": check_cpu,
        },
        "evaluate_ms": (
            {
                "median": statistics.median(evaluations),
                "max": max(evaluations),
                "max_cpu": max(_CPU),
            }
            if evaluations
            else None
        ),
    }


def old_path(source: str) -> float:
    """The old path, minus its macro regex (which the comments defeat): the CEL runtime compiles
    the submitted text and runs it over the 11 samples."""
    start = time.perf_counter()
    program = cel.compile(source)
    for age in (0, 1, 12, 13, 15, 17, 18, 21, 26, 65, 120):
        with contextlib.suppress(Exception):  # only the payload's cost matters
            program.execute({"age": age})
    return (time.perf_counter() - start) * 1000


def shipped_grammar_escapes() -> list[dict[str, float]]:
    """cel-python's grammar as shipped, failing to lex an unclosed string of escapes."""
    shipped = _grammar().split("\n%override")[0]
    parser = Lark(shipped, parser="lalr", start="expr", g_regex_flags=re.M)
    rows = []
    for pairs in (8, 10, 12, 14, 16):
        source = 'age == "' + "\\\\" * pairs
        ms = timed(lambda s=source: _swallow(parser, s))
        rows.append({"pairs": pairs, "chars": len(source), "ms": ms})
    return rows


def _swallow(parser: Lark, source: str) -> None:
    with contextlib.suppress(Exception):  # only its cost is measured
        parser.parse(source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--random", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--no-old-path", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/restriction_cost.json")
    args = parser.parse_args()

    ceiling = measure("age > 1", args.repeats * 10)
    admitted = {name: measure(src, args.repeats) for name, src in admitted_cases().items()}
    refused = {name: measure(src, args.repeats) for name, src in refused_cases().items()}
    for name, result in admitted.items():
        assert result["outcome"] == "admitted", (name, result["outcome"])
    for name, result in refused.items():
        assert result["outcome"] != "admitted", name

    rng = random.Random(args.seed)
    rules = []
    while len(rules) < args.random:
        rule = random_rule(rng)
        if len(rule) <= CAP:
            rules.append(rule)
    randoms = [measure(rule, 1) for rule in rules]
    verdicts = [same_verdicts(rule) for rule in rules]
    admitted_randoms = [r for r in randoms if r["outcome"] == "admitted"]
    random_summary = {
        "rules": len(rules),
        "admitted": len(admitted_randoms),
        "refused_by_code": {
            code: sum(1 for r in randoms if r["outcome"] == code)
            for code in sorted({r["outcome"] for r in randoms} - {"admitted"})
        },
        "longest_chars": max(r["chars"] for r in randoms),
        "same_verdicts_as_the_submitted_text": verdicts.count(True),
        "different_verdicts": verdicts.count(False),
        "check_ms_max": max(r["check_ms"]["max"] for r in randoms),
        "check_ms_max_cpu": max(r["check_ms"]["max_cpu"] for r in randoms),
        "evaluate_ms_max": max(
            (r["evaluate_ms"]["max"] for r in admitted_randoms if r["evaluate_ms"]), default=0.0
        ),
        "evaluate_ms_max_cpu": max(
            (r["evaluate_ms"]["max_cpu"] for r in admitted_randoms if r["evaluate_ms"]),
            default=0.0,
        ),
    }

    old = (
        None
        if args.no_old_path
        else {"nested comprehensions (310 chars)": old_path(NESTED_COMPREHENSIONS)}
    )
    escapes = shipped_grammar_escapes()

    every = [*admitted.values(), *refused.values()]
    worst_check = max(r["check_ms"]["max"] for r in every)
    worst_eval = max(r["evaluate_ms"]["max"] for r in every if r["evaluate_ms"])
    worst_check_cpu = max(r["check_ms"]["max_cpu"] for r in every)
    worst_eval_cpu = max(r["evaluate_ms"]["max_cpu"] for r in every if r["evaluate_ms"])
    results = {
        "machine": machine(),
        "bound_ms": BOUND_MS,
        "length_cap": CAP,
        "max_tokens": MAX_TOKENS,
        "max_depth": MAX_DEPTH,
        "repeats": args.repeats,
        "ceiling_age_gt_1": ceiling,
        "admitted": admitted,
        "refused": refused,
        "random": random_summary,
        "worst_check_ms": max(worst_check, random_summary["check_ms_max"]),
        "worst_evaluate_ms": max(worst_eval, random_summary["evaluate_ms_max"]),
        "worst_check_cpu_ms": max(worst_check_cpu, random_summary["check_ms_max_cpu"]),
        "worst_evaluate_cpu_ms": max(worst_eval_cpu, random_summary["evaluate_ms_max_cpu"]),
        "old_path_ms": old,
        "shipped_grammar_unclosed_escapes": escapes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    print(
        f"{'case':38} {'chars':>5} {'outcome':>22} {'check med/max/cpu ms':>22} "
        f"{'eval max/cpu ms':>16}"
    )

    def row(name: str, r: dict[str, Any]) -> None:
        c = r["check_ms"]
        check = f"{c['median']:.2f} / {c['max']:.2f} / {c['max_cpu']:.2f}"
        e = r["evaluate_ms"]
        ev = f"{e['max']:.3f} / {e['max_cpu']:.3f}" if e else "-"
        print(f"{name:38} {r['chars']:>5} {r['outcome']:>22} {check:>22} {ev:>16}")

    row("ceiling: age > 1", ceiling)
    for name, r in {**admitted, **refused}.items():
        row(name, r)
    print(
        f"random: {random_summary['rules']} rules ({random_summary['admitted']} admitted), "
        f"check max {random_summary['check_ms_max']:.2f} ms "
        f"({random_summary['check_ms_max_cpu']:.2f} ms CPU), "
        f"evaluate max {random_summary['evaluate_ms_max']:.3f} ms "
        f"({random_summary['evaluate_ms_max_cpu']:.3f} ms CPU); "
        f"the checked program decides all ages as the submitted text does in "
        f"{verdicts.count(True)}, differently in {verdicts.count(False)}"
    )
    assert verdicts.count(False) == 0
    print(
        f"worst: check {results['worst_check_ms']:.2f} ms wall, "
        f"{results['worst_check_cpu_ms']:.2f} ms CPU; evaluate "
        f"{results['worst_evaluate_ms']:.3f} ms wall, "
        f"{results['worst_evaluate_cpu_ms']:.3f} ms CPU; bound {BOUND_MS:.0f} ms"
    )
    if old:
        for name, ms in old.items():
            print(f"old path, {name}: {ms:.0f} ms")
    print(
        "cel-python's shipped grammar, unclosed escapes: "
        + ", ".join(f"{e['pairs']} pairs {e['ms']:.0f} ms" for e in escapes)
    )


if __name__ == "__main__":
    main()
