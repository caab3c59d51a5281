import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.formulas import parser as formulas
from services.formulas.parser import (
    Binary,
    Call,
    FormulaError,
    Name,
    Number,
    Unary,
    evaluate,
    expand,
    parse,
    references,
    to_text,
    validate,
)

NAMES = ("events", "sent", "delivered", "failed", "bounced", "opened", "clicked", "delivery_rate",
         "failure_rate", "bounce_rate", "open_rate", "click_rate", "click_to_open_rate",
         "avg_processing_time", "p50_processing_time", "p95_processing_time", "p99_processing_time")
POINT = {"sent": 200, "delivered": 150, "opened": 60, "clicked": 30, "failed": 0, "bounced": None}


def value(text, point=POINT):
    return evaluate(parse(text, NAMES), point.get)


def error(text, names=NAMES):
    with pytest.raises(FormulaError) as info:
        parse(text, names)
    assert str(info.value) == info.value.message
    assert validate(text, names)[0].message == info.value.message
    return info.value


# --- syntax and evaluation ----------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("8 / 4 / 2", 1), ("2 - 3 - 4", -5), ("-2 * 3", -6),
    ("--2", 2), ("6 × 2 ÷ 3 − 1", 3), ("−2 × −3", 6), ("2 * -3", -6), ("1 - -1", 2), ("-(2 + 3)", -5),
    (".5 + 0.5 + 2.", 3), ("1e3 / 1E-1", 10000), ("  7\t*\n( 1 )  ", 7), ("1000000000000000", 1e15),
    ("(clicked / delivered) * 100", 20), ("opened × 1 + clicked × 3", 150), ("delivered / sent × 100", 75),
])
def test_arithmetic(text, expected):
    assert value(text) == expected


def test_precedence_and_associativity_shape_the_tree():
    assert parse("8 / 4 / 2", NAMES) == Binary("/", Binary("/", Number(8), Number(4)), Number(2))
    assert parse("2 - 3 - 4", NAMES) == Binary("-", Binary("-", Number(2), Number(3)), Number(4))
    assert parse("2 + 3 * 4", NAMES) == Binary("+", Number(2), Binary("*", Number(3), Number(4)))
    assert parse("-2 * 3", NAMES) == Binary("*", Unary("-", Number(2)), Number(3))
    assert parse("--2", NAMES) == Unary("-", Unary("-", Number(2)))
    assert parse("6 × 2 ÷ 3 − 1", NAMES) == parse("6*2/3-1", NAMES)
    assert parse("−sent", NAMES) == Unary("-", Name("sent"))
    assert parse("min(sent, 1)", NAMES) == Call("min", (Name("sent"), Number(1.0)))


@pytest.mark.parametrize("text, expected", [
    ("abs(-3)", 3), ("abs(bounced)", None), ("min(3, 1, 2)", 1), ("max(3, 1, 2)", 3),
    ("min(bounced, 4)", 4), ("max(bounced, -4)", -4), ("min(bounced, bounced)", None),
    ("max(bounced, bounced)", None),
    ("round(2.5)", 3), ("round(-2.5)", -3), ("round(2.4)", 2), ("round(2.675, 2)", 2.68),
    ("round(clicked / delivered * 100, 1)", 20), ("round(1 / 3, 10)", 0.3333333333), ("round(bounced)", None),
    ("round(5, 2 - 2)", 5), ("coalesce(bounced, 5)", 5), ("coalesce(bounced)", None),
    ("coalesce(1, bounced)", 1),
    ("bounced + 1", None), ("-bounced", None), ("1 * bounced", None),
])
def test_functions_and_missing_values(text, expected):
    assert value(text) == expected


def test_division_by_zero_and_overflow_at_a_point_give_none():
    assert value("clicked / failed") is None
    assert value("coalesce(clicked / failed, 0)") == 0
    assert value("sent * sent", {"sent": 1e200}) is None
    assert value("sent + 1", {"sent": math.nan}) is None
    assert value("sent", {"sent": math.inf}) is None
    assert value("sent / 2", {"sent": 3}) == 1.5  # ints from the resolver are fine


# --- errors a person can act on -----------------------------------------------------------------

@pytest.mark.parametrize("text, message, position", [
    ("clikced / 2", "unknown metric 'clikced' at 0 — did you mean 'clicked'?", 0),
    ("1 + clikced", "unknown metric 'clikced' at 4 — did you mean 'clicked'?", 4),
    ("Delivered", "unknown metric 'Delivered' at 0 — did you mean 'delivered'?", 0),
    ("zzz + 1", "unknown metric 'zzz' at 0", 0),
    ("sqrt(sent)", "unknown function 'sqrt' at 0; functions are abs, min, max, round, coalesce", 0),
    ("1 + clicked(2)", "unknown function 'clicked' at 4; functions are abs, min, max, round, coalesce", 4),
    ("abs + 1", "missing '(' after abs at 4", 4),
    ("(clicked / delivered", "missing ')' at 20", 20),
    ("(1 2)", "missing ')' at 3", 3),
    ("max(1, 2", "missing ')' at 8", 8),
    ("sent)", "unexpected ')' at 4", 4),
    (")", "unexpected ')' at 0", 0),
    ("1 + * 2", "unexpected '*' at 4", 4),
    ("1 2", "unexpected '2' at 2", 2),
    ("+1", "unexpected '+' at 0", 0),
    ("min(1,)", "unexpected ')' at 6", 6),
    ("1 +", "unexpected end of formula at 3", 3),
    ("delivered; x", "unexpected character ';' at 9", 9),
    ("sent % 2", "unexpected character '%' at 5", 5),
    ("'x'", "unexpected character \"'\" at 0", 0),
    ("sent ^ 2", "unexpected character '^' at 5", 5),
    ("", "the formula is empty", 0),
    (" \t\n ", "the formula is empty", 0),
    ("sent / 0", "division by a constant zero at 5", 5),
    ("sent / (2 - 2)", "division by a constant zero at 5", 5),
    ("sent / -0.0", "division by a constant zero at 5", 5),
    ("sent / round(0.4)", "division by a constant zero at 5", 5),
    ("min(sent)", "min needs at least 2 arguments at 0", 0),
    ("1 + max()", "max needs at least 2 arguments at 4", 4),
    ("abs(1, 2)", "abs takes 1 argument at 0", 0),
    ("coalesce()", "coalesce needs at least 1 argument at 0", 0),
    ("round()", "round takes 1 or 2 arguments at 0", 0),
    ("round(sent, 1, 2)", "round takes 1 or 2 arguments at 0", 0),
    ("round(sent, 11)", "round's digits must be a whole number from 0 to 10 at 12", 12),
    ("round(sent, 1.5)", "round's digits must be a whole number from 0 to 10 at 12", 12),
    ("round(sent,  -1)", "round's digits must be a whole number from 0 to 10 at 13", 13),
    ("round(sent, sent)", "round's digits must be a whole number from 0 to 10 at 12", 12),
    ("1e400", "number too large at 0", 0),
    ("1 + 1234567890123456", "number too large at 4", 4),
    ("0.1234567890123456", "number too large at 0", 0),
    ("1000000000000001", "number too large at 0", 0),
    ("clikced; 1e400", "unknown metric 'clikced' at 0 — did you mean 'clicked'?", 0),  # the first error wins
])
def test_errors(text, message, position):
    exc = error(text)
    assert (exc.message, exc.position) == (message, position)


def test_limits():
    too_long = "1 + " * 125 + "1"
    assert (error(too_long).message, error(too_long).position) == (
        "the formula is longer than 500 characters", 500)
    assert parse(("1 + " * 125)[:-3], NAMES)  # 497 characters are fine

    nested = error("(" * 40 + "1" + ")" * 40)
    assert (nested.message, nested.position) == ("the formula nests deeper than 32 levels at 32", 32)
    assert evaluate(parse("(" * 32 + "1" + ")" * 32, NAMES), POINT.get) == 1
    assert error("-" * 33 + "1").position == 32
    assert error("abs(" * 33 + "1" + ")" * 33).message == "the formula nests deeper than 32 levels at 128"
    assert parse("-(" * 16 + "1" + ")" * 16, NAMES)

    many = " + ".join(["sent"] * 51)
    assert (error(many).message, error(many).position) == ("the formula uses more than 50 names at 350", 350)
    assert references(parse(" + ".join(["sent"] * 50), NAMES)) == ["sent"]


def test_deep_nesting_never_reaches_the_recursion_limit(monkeypatch):
    assert error("(" * 10_000).message == "the formula is longer than 500 characters"
    monkeypatch.setattr(formulas, "MAX_LENGTH", 100_000)  # so the depth guard itself is exercised
    for text in ("(" * 10_000 + "1" + ")" * 10_000, "-" * 10_000 + "1", "abs(" * 10_000, "(" * 10_000):
        exc = error(text)
        assert exc.message == f"the formula nests deeper than 32 levels at {exc.position}"
        assert exc.position <= 128


@pytest.mark.parametrize("text", [
    "'; DROP TABLE notification_events; --", "delivered; DELETE FROM x", "SELECT * FROM notification_events",
    "__import__('os')", "delivered.__class__", "1e400", "9" * 400, "(" * 10_000, "(" * 40 + "1" + ")" * 40,
    "delivered -- comment", "delivered /* x */", "exec('1')", "open_rate or 1", "[1]", "{}", "lambda: 1",
    "delivered\x00", "sent if 1 else 2", "1_000",
])
def test_injection_attempts_are_rejected(text):
    error(text)


# --- printing and expansion ---------------------------------------------------------------------

@pytest.mark.parametrize("text, canonical", [
    ("(clicked/delivered)*100", "clicked / delivered * 100"),
    ("a - (b - c)", "a - (b - c)"), ("(a - b) - c", "a - b - c"), ("a / (b * c)", "a / (b * c)"),
    ("a + (b + c)", "a + (b + c)"), ("-(a + b) × −c", "-(a + b) * -c"), ("--a", "--a"), ("-(-a)", "--a"),
    ("(a * b) + c", "a * b + c"), ("a * (b + c)", "a * (b + c)"), ("0.50", "0.5"), ("1e3", "1000"),
    ("1e-5", "1e-05"), ("round( a ,2 )", "round(a, 2)"), ("min((a), b)", "min(a, b)"),
])
def test_to_text_is_canonical_with_minimal_parentheses(text, canonical):
    names = NAMES + ("a", "b", "c")
    assert to_text(parse(text, names)) == canonical
    assert parse(canonical, names) == parse(text, names)


def test_references_in_first_appearance_order():
    node = parse("clicked / delivered + min(opened, clicked) - coalesce(sent, delivered) * 2", NAMES)
    assert references(node) == ["clicked", "delivered", "opened", "sent"]
    assert references(parse("1 + 2", NAMES)) == []


def test_expand_replaces_custom_metrics_recursively():
    custom = {"ctr": "(clicked / delivered) * 100", "double_ctr": "ctr * 2"}
    known = NAMES + tuple(custom)
    expanded = expand(parse("ctr * 2", known), custom, NAMES)
    assert expanded == parse("(clicked / delivered) * 100 * 2", NAMES)
    assert evaluate(expanded, POINT.get) == 40
    assert expand(parse("double_ctr + sent", known), custom, NAMES) == parse(
        "(clicked / delivered) * 100 * 2 + sent", NAMES)
    assert references(expand(parse("double_ctr", known), custom, NAMES)) == ["clicked", "delivered"]


@pytest.mark.parametrize("custom, text, message", [
    ({"a": "b + 1", "b": "a * 2"}, "a", "circular reference: a → b → a"),
    ({"a": "b + 1", "b": "a * 2"}, "sent + b", "circular reference: b → a → b"),
    ({"a": "a + 1"}, "a", "circular reference: a → a"),
    ({"x": "a", "a": "b", "b": "a"}, "x", "circular reference: a → b → a"),
    ({"bad": "sent +"}, "bad", "in custom metric 'bad': unexpected end of formula at 6"),
])
def test_expand_errors(custom, text, message):
    with pytest.raises(FormulaError) as info:
        expand(parse(text, NAMES + tuple(custom)), custom, NAMES)
    assert (info.value.message, info.value.position) == (message, 0)


def test_expand_stays_small_and_shallow_enough_to_evaluate():
    # Each level repeats the next one ten times: 10**5 terms unless expansion is bounded.
    custom = {f"m{i}": " + ".join([f"m{i + 1}"] * 10) for i in range(5)} | {"m5": "sent"}
    with pytest.raises(FormulaError, match="more than 5000 terms"):
        expand(Name("m0"), custom, NAMES)
    outcomes = set()
    for levels in range(1, 16):
        chain = {f"c{i}": "abs(" * 30 + f"c{i + 1}" + ")" * 30 for i in range(levels)}
        chain[f"c{levels}"] = "sent"
        try:
            node = expand(Name("c0"), chain, NAMES)
        except FormulaError as exc:
            assert exc.message == "the expanded formula nests deeper than 300 levels"
            outcomes.add("too deep")
        else:  # whatever expand returns, the rest of the module can walk without RecursionError
            assert evaluate(node, POINT.get) == 200 and references(node) == ["sent"] and to_text(node)
            outcomes.add("expanded")
    assert outcomes == {"too deep", "expanded"}


def test_inputs_are_not_mutated():
    names = list(NAMES)
    custom = {"ctr": "clicked / delivered"}
    point = dict(POINT)
    node = parse("ctr + sent", names + ["ctr"])
    before = (list(names), dict(custom), node)
    expanded = expand(node, custom, names)
    evaluate(expanded, point.get)
    to_text(expanded)
    references(expanded)
    validate("clikced", names)
    assert (names, custom, node) == before and point == POINT
    assert node == Binary("+", Name("ctr"), Name("sent"))


def test_nodes_are_frozen_and_hashable():
    node = parse("min(sent, 2) / -delivered", NAMES)
    assert hash(node) == hash(parse("min(sent,2)/-delivered", NAMES))
    with pytest.raises(AttributeError):
        node.op = "*"


# --- properties ---------------------------------------------------------------------------------

def _constant_zero(node):
    return not references(node) and evaluate(node, lambda name: None) == 0


numbers = st.one_of(
    st.builds(lambda m, e: Number(float(f"{m}e-{e}")), st.integers(0, 10 ** 15 - 1), st.integers(0, 20)),
    st.sampled_from([Number(0.0), Number(0.5), Number(1e15), Number(1e-05), Number(123.25)]),
)
leaves = numbers | st.sampled_from(NAMES).map(Name)


def _extend(children):
    return st.one_of(
        st.builds(Unary, st.just("-"), children),
        # a constant zero divisor is a parse error, so such trees are not round-trippable
        st.builds(Binary, st.sampled_from("+-*/"), children, children).map(
            lambda b: Binary("*", b.left, b.right) if b.op == "/" and _constant_zero(b.right) else b),
        st.builds(lambda a: Call("abs", (a,)), children),
        st.builds(Call, st.sampled_from(["min", "max"]),
                  st.lists(children, min_size=2, max_size=4).map(tuple)),
        st.builds(Call, st.just("coalesce"), st.lists(children, min_size=1, max_size=3).map(tuple)),
        st.builds(lambda a, d: Call("round", (a,) if d is None else (a, Number(float(d)))),
                  children, st.none() | st.integers(0, 10)),
    )


trees = st.recursive(leaves, _extend, max_leaves=20)


def _height(node):
    return 1 + max((_height(child) for child in formulas._children(node)), default=0)


@settings(max_examples=400)
@given(trees)
def test_printed_trees_parse_back_equal(node):
    text = to_text(node)
    assume(len(text) <= 500 and _height(node) <= 32)
    assert parse(text, NAMES) == node
    assert to_text(parse(text, NAMES)) == text


GRAMMARISH = "()+-*/×÷−,. 0123456789abcdelmnoprstx_"
TOKENS = ["(", ")", "+", "-", "*", "/", "×", "÷", "−", ",", " ", "0", "1.5", ".5", "2e3", "sent", "opened",
          "delivered", "abs", "min", "max", "round", "coalesce", "clikced", "1e400", ";"]


def _check_never_raises_anything_else(text):
    try:
        node = parse(text, NAMES)
    except FormulaError as exc:
        assert exc.message and 0 <= exc.position <= max(len(text), 500)
        assert validate(text, NAMES) and validate(text, NAMES)[0].message == exc.message
    else:
        assert validate(text, NAMES) == []
        printed = to_text(node)
        if len(printed) <= 500:
            assert parse(printed, NAMES) == node
        evaluate(node, POINT.get)


@settings(max_examples=300)
@given(st.text(max_size=600))
def test_any_text_only_raises_formula_error(text):
    _check_never_raises_anything_else(text)


@settings(max_examples=300)
@given(st.text(alphabet=GRAMMARISH, max_size=80))
def test_grammarish_text_only_raises_formula_error(text):
    _check_never_raises_anything_else(text)


@settings(max_examples=300)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_token_soup_only_raises_formula_error(text):
    _check_never_raises_anything_else(text)
