"""Custom metric formulas: our own tokenizer and parser, a small AST, and its evaluation.

Grammar (whitespace is allowed between any two tokens):

    expr    := term (("+" | "-") term)*          left-associative
    term    := unary (("*" | "/") unary)*        left-associative
    unary   := "-" unary | primary
    primary := NUMBER | NAME | FUNC "(" [expr ("," expr)*] ")" | "(" expr ")"

NUMBER is 3, 0.5, .5, 2. or 1e3, with at most 15 significant digits and a value of at most 1e15.
NAME is a metric the caller knows (case-sensitive, e.g. ``delivered``). FUNC is one of abs(x),
min(a, b, ...), max(a, b, ...), round(x[, digits]) and coalesce(a, ...). The typographic
"×", "÷" and "−" (U+2212) mean *, / and -.

Formula text never reaches SQL or eval(): parse() builds frozen dataclasses and evaluate() walks
them with a resolve(name) callback. Every problem is a FormulaError with a 0-based position.
Limits (length, nesting, names) keep hostile input cheap and away from Python's recursion limit.
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import NamedTuple, Union

MAX_LENGTH = 500
MAX_DEPTH = 32
MAX_NAMES = 50
MAX_NUMBER = 1e15
MAX_SIGNIFICANT_DIGITS = 15
# expand() can nest custom metrics inside each other; these keep the result evaluable per point.
MAX_EXPANDED_NODES = 5000
MAX_EXPANDED_DEPTH = 300
FUNCTIONS = ("abs", "min", "max", "round", "coalesce")


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]


Node = Union[Number, Name, Unary, Binary, Call]


class FormulaError(ValueError):
    def __init__(self, message: str, position: int = 0):
        super().__init__(message)
        self.message = message
        self.position = position


# ---------------------------------------------------------------------------------------------
# Tokens

_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", "×": "*", "÷": "/", "−": "-"}
# [0-9], not \d: \d also matches other scripts' digits, which float() would then accept.
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Upper case is scanned too so that 'Clicked' gets a did-you-mean instead of "unexpected 'C'".
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Token(NamedTuple):
    kind: str            # "number", "name", "op", "(", ")", ",", "end" or "error"
    text: str            # as typed, for messages
    pos: int
    value: object = None  # the float, the ASCII operator, or the FormulaError of an "error" token


def _tokenize(text: str) -> list[_Token]:
    """Tokens up to the first lexical error, which becomes an "error" token so that the parser
    still reports any earlier problem first."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char.isspace():
            pos += 1
        elif match := _NUMBER.match(text, pos):
            literal = match.group()
            digits = re.split("[eE]", literal)[0].replace(".", "").strip("0")
            value = float(literal)
            if len(digits) > MAX_SIGNIFICANT_DIGITS or value > MAX_NUMBER:
                error = FormulaError(f"number too large at {pos}", pos)
                tokens.append(_Token("error", literal, pos, error))
                break
            tokens.append(_Token("number", literal, pos, value))
            pos = match.end()
        elif match := _WORD.match(text, pos):
            tokens.append(_Token("name", match.group(), pos))
            pos = match.end()
        elif char in _OPERATORS or char in "(),":
            kind = "op" if char in _OPERATORS else char
            tokens.append(_Token(kind, char, pos, _OPERATORS.get(char)))
            pos += 1
        else:
            error = FormulaError(f"unexpected character {char!r} at {pos}", pos)
            tokens.append(_Token("error", char, pos, error))
            break
    tokens.append(_Token("end", "", len(text)))
    return tokens


# ---------------------------------------------------------------------------------------------
# Parsing

class _Parser:
    def __init__(self, text: str, known_names: Collection[str]):
        self.tokens = _tokenize(text)
        self.i = 0
        self.known = frozenset(known_names)
        self.depth = 0
        self.names = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _take(self) -> _Token:
        self.i += 1
        return self.tokens[self.i - 1]

    def _at(self, kind: str, *ops: str) -> bool:
        return self.tok.kind == kind and (not ops or self.tok.value in ops)

    def unexpected(self):
        tok = self.tok
        if tok.kind == "error":
            raise tok.value
        if tok.kind == "end":
            raise FormulaError(f"unexpected end of formula at {tok.pos}", tok.pos)
        raise FormulaError(f"unexpected '{tok.text}' at {tok.pos}", tok.pos)

    def _nest(self, tok: _Token):
        # Checked before every recursive descent, so no input can reach Python's recursion limit.
        if self.depth >= MAX_DEPTH:
            raise FormulaError(f"the formula nests deeper than {MAX_DEPTH} levels at {tok.pos}", tok.pos)
        self.depth += 1

    def _close(self):
        if self.tok.kind == ")":
            self.i += 1
        elif self.tok.kind == "error":
            raise self.tok.value
        else:
            raise FormulaError(f"missing ')' at {self.tok.pos}", self.tok.pos)

    def expr(self) -> Node:
        node = self.term()
        while self._at("op", "+", "-"):
            op = self._take()
            node = Binary(op.value, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self._at("op", "*", "/"):
            op = self._take()
            right = self.unary()
            if op.value == "/" and _constant(right) == 0:
                raise FormulaError(f"division by a constant zero at {op.pos}", op.pos)
            node = Binary(op.value, node, right)
        return node

    def unary(self) -> Node:
        if not self._at("op", "-"):
            return self.primary()
        self._nest(self._take())
        node = Unary("-", self.unary())
        self.depth -= 1
        return node

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.i += 1
            return Number(tok.value)
        if tok.kind == "(":
            self._nest(self._take())
            node = self.expr()
            self._close()
            self.depth -= 1
            return node
        if tok.kind == "name":
            self.i += 1
            return self.call(tok) if self.tok.kind == "(" else self.name(tok)
        self.unexpected()

    def name(self, tok: _Token) -> Node:
        self.names += 1
        if self.names > MAX_NAMES:
            raise FormulaError(f"the formula uses more than {MAX_NAMES} names at {tok.pos}", tok.pos)
        if tok.text in self.known:
            return Name(tok.text)
        if tok.text in FUNCTIONS:
            raise FormulaError(f"missing '(' after {tok.text} at {self.tok.pos}", self.tok.pos)
        close = difflib.get_close_matches(tok.text, [*self.known, *FUNCTIONS], n=1)
        hint = f" — did you mean '{close[0]}'?" if close else ""
        raise FormulaError(f"unknown metric '{tok.text}' at {tok.pos}{hint}", tok.pos)

    def call(self, tok: _Token) -> Node:
        if tok.text not in FUNCTIONS:
            raise FormulaError(f"unknown function '{tok.text}' at {tok.pos}; functions are "
                               + ", ".join(FUNCTIONS), tok.pos)
        self._nest(tok)
        self.i += 1
        args, starts = [], []
        if self.tok.kind != ")":
            while True:
                starts.append(self.tok.pos)
                args.append(self.expr())
                if self.tok.kind != ",":
                    break
                self.i += 1
        self._close()
        self.depth -= 1
        _check_arguments(tok, args, starts)
        return Call(tok.text, tuple(args))


def _check_arguments(tok: _Token, args: list[Node], starts: list[int]):
    func, count, pos = tok.text, len(args), tok.pos
    problem = None
    if func == "abs" and count != 1:
        problem = "abs takes 1 argument"
    elif func in ("min", "max") and count < 2:
        problem = f"{func} needs at least 2 arguments"
    elif func == "coalesce" and count < 1:
        problem = "coalesce needs at least 1 argument"
    elif func == "round" and count not in (1, 2):
        problem = "round takes 1 or 2 arguments"
    elif func == "round" and count == 2:
        digits = _constant(args[1])
        if digits is None or not digits.is_integer() or not 0 <= digits <= 10:
            problem, pos = "round's digits must be a whole number from 0 to 10", starts[1]
    if problem:
        raise FormulaError(f"{problem} at {pos}", pos)


def _constant(node: Node) -> float | None:
    """The value of an expression without names, else None."""
    return None if references(node) else evaluate(node, lambda name: None)


def parse(text: str, known_names: Collection[str]) -> Node:
    """The AST of ``text``; raises the first FormulaError."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if not text.strip():
        raise FormulaError("the formula is empty", 0)
    parser = _Parser(text, known_names)
    node = parser.expr()
    if parser.tok.kind != "end":
        parser.unexpected()
    return node


def validate(text: str, known_names: Collection[str]) -> list[FormulaError]:
    """[] when ``text`` parses, else [the first error]."""
    try:
        parse(text, known_names)
    except FormulaError as exc:
        return [exc]
    return []


# ---------------------------------------------------------------------------------------------
# Working with the AST

def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    return ()


def references(node: Node) -> list[str]:
    """The distinct metric names in ``node``, in order of first appearance."""
    seen: dict[str, None] = {}

    def collect(n: Node):
        if isinstance(n, Name):
            seen.setdefault(n.name)
        for child in _children(n):
            collect(child)

    collect(node)
    return list(seen)


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def _precedence(node: Node) -> int:
    if isinstance(node, Binary):
        return _PRECEDENCE[node.op]
    return 3 if isinstance(node, Unary) else 4


def _wrap(node: Node, minimum: int) -> str:
    text = to_text(node)
    return text if _precedence(node) >= minimum else f"({text})"


def to_text(node: Node) -> str:
    """Canonical text that parses back to an equal AST."""
    if isinstance(node, Number):
        value = float(node.value)
        return str(int(value)) if value.is_integer() and abs(value) <= MAX_NUMBER else repr(value)
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Unary):
        return node.op + _wrap(node.operand, 3)
    if isinstance(node, Binary):
        # The right side needs parentheses at equal precedence too: the operators are left-associative.
        level = _PRECEDENCE[node.op]
        return f"{_wrap(node.left, level)} {node.op} {_wrap(node.right, level + 1)}"
    return f"{node.func}({', '.join(to_text(arg) for arg in node.args)})"


def expand(node: Node, custom: Mapping[str, str], known_names: Collection[str]) -> Node:
    """``node`` with every custom metric replaced by the AST of its formula, recursively."""
    names = frozenset(known_names) | frozenset(custom)
    parsed: dict[str, Node] = {}
    visited = 0

    def walk(n: Node, path: tuple[str, ...], depth: int) -> Node:
        nonlocal visited
        visited += 1
        # Custom metrics may nest and repeat each other, so the result can grow without bound.
        if visited > MAX_EXPANDED_NODES:
            raise FormulaError(f"the expanded formula has more than {MAX_EXPANDED_NODES} terms", 0)
        if depth > MAX_EXPANDED_DEPTH:
            raise FormulaError(f"the expanded formula nests deeper than {MAX_EXPANDED_DEPTH} levels", 0)
        if isinstance(n, Name) and n.name in custom:
            if n.name in path:
                cycle = path[path.index(n.name):] + (n.name,)
                raise FormulaError("circular reference: " + " → ".join(cycle), 0)
            if n.name not in parsed:
                try:
                    parsed[n.name] = parse(custom[n.name], names)
                except FormulaError as exc:
                    raise FormulaError(f"in custom metric '{n.name}': {exc.message}", 0) from exc
            return walk(parsed[n.name], path + (n.name,), depth + 1)
        if isinstance(n, Unary):
            return Unary(n.op, walk(n.operand, path, depth + 1))
        if isinstance(n, Binary):
            return Binary(n.op, walk(n.left, path, depth + 1), walk(n.right, path, depth + 1))
        if isinstance(n, Call):
            return Call(n.func, tuple([walk(arg, path, depth + 1) for arg in n.args]))
        return n

    return walk(node, (), 0)


# ---------------------------------------------------------------------------------------------
# Evaluation

def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


_DECIMAL = Context(prec=40)


def _round(values: list[float | None]) -> float | None:
    value, digits = values[0], (values[1] if len(values) > 1 else 0)
    if value is None or digits is None or not 0 <= digits <= 10:
        return None
    if abs(value) >= 2 ** 52:  # every float this large is already whole
        return value
    # Half away from zero on the shortest decimal form, as people round: 2.5 -> 3, 2.675 -> 2.68.
    step = Decimal(1).scaleb(-int(digits))
    return float(Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP, context=_DECIMAL))


def _present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
}
_CALLS: dict[str, Callable[[list[float | None]], float | None]] = {
    "abs": lambda v: None if v[0] is None else abs(v[0]),
    "min": lambda v: min(_present(v), default=None),
    "max": lambda v: max(_present(v), default=None),
    "round": _round,
    "coalesce": lambda v: next(iter(_present(v)), None),
}


def evaluate(node: Node, resolve: Callable[[str], float | None]) -> float | None:
    """The value of ``node`` at one data point; None when a value is missing or undefined."""
    if isinstance(node, Number):
        return _finite(float(node.value))
    if isinstance(node, Name):
        value = resolve(node.name)
        return None if value is None else _finite(float(value))
    if isinstance(node, Unary):
        value = evaluate(node.operand, resolve)
        return None if value is None else -value
    if isinstance(node, Binary):
        left, right = evaluate(node.left, resolve), evaluate(node.right, resolve)
        if left is None or right is None or (node.op == "/" and right == 0):
            return None
        return _finite(_ARITHMETIC[node.op](left, right))
    return _finite(_CALLS[node.func]([evaluate(arg, resolve) for arg in node.args]))
