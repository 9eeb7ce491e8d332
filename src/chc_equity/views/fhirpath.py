"""A small FHIRPath parser: text -> immutable AST, for the subset SQL-on-FHIR v2 views use.

Parsing is kept apart from SQL generation so that the compiler only ever sees a well-formed tree,
and so that syntax errors surface (as :class:`FhirPathSyntaxError`) before any SQL is built. The
grammar follows the FHIRPath N1 precedence table; operators outside the subset still parse, and
the compiler decides whether it can translate them (so error messages can name the operator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Binary",
    "Call",
    "Env",
    "FhirPathSyntaxError",
    "Ident",
    "Index",
    "Literal",
    "Member",
    "Node",
    "This",
    "Unary",
    "parse",
]


class FhirPathSyntaxError(ValueError):
    """The expression is not valid FHIRPath (or uses syntax outside what this parser knows)."""


@dataclass(frozen=True)
class Literal:
    """A literal; ``type`` is a FHIRPath type name: string, boolean, integer, decimal, date, dateTime,
    time, or ``empty`` for ``{}``."""

    value: object
    type: str


@dataclass(frozen=True)
class Ident:
    """A bare identifier at the start of a path: member access on the current focus ($this)."""

    name: str


@dataclass(frozen=True)
class Member:
    """``base.name`` (member navigation)."""

    base: Node
    name: str


@dataclass(frozen=True)
class Call:
    """``base.name(args)``, or a function call on the focus when ``base`` is None."""

    base: Node | None
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Index:
    """``base[index]``."""

    base: Node
    index: Node


@dataclass(frozen=True)
class This:
    """``$this``."""


@dataclass(frozen=True)
class Env:
    """``%name`` (constants, %rowIndex, %resource)."""

    name: str


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node


Node = Literal | Ident | Member | Call | Index | This | Env | Binary | Unary

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@(?:\d{4}(?:-\d{2}(?:-\d{2})?)?)(?:T(?:\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)?
        (?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<time>@T\d{2}(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<delimited>`(?:[^`\\]|\\.)*`)
  | (?P<special>\$this|\$index|\$total)
  | (?P<env>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|!~|[-+*/&|<>=~.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "'": "'", '"': '"', "`": "`", "/": "/", "\\": "\\"}

# Binary operator precedence (higher binds tighter), FHIRPath N1 section 6.
_BINARY = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "in": 4,
    "contains": 4,
    "=": 5,
    "~": 5,
    "!=": 5,
    "!~": 5,
    "<": 6,
    ">": 6,
    "<=": 6,
    ">=": 6,
    "|": 7,
    "is": 8,
    "as": 8,
    "+": 9,
    "-": 9,
    "&": 9,
    "*": 10,
    "/": 10,
    "div": 10,
    "mod": 10,
}
_KEYWORD_OPS = {"implies", "or", "xor", "and", "in", "contains", "is", "as", "div", "mod"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", lambda m: _unesc1(m.group(1)), body)


def _unesc1(code: str) -> str:
    if code.startswith("u") and len(code) == 5:
        return chr(int(code[1:], 16))
    return _ESCAPES.get(code, code)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FhirPathSyntaxError(f"unexpected character {text[pos]!r} at offset {pos} in {text!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("eof", "", len(text)))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text or tok.kind not in ("op",):
            self.fail(tok, f"expected {text!r}")

    def fail(self, tok: _Tok, msg: str) -> None:
        where = "end of expression" if tok.kind == "eof" else f"{tok.text!r} at offset {tok.pos}"
        raise FhirPathSyntaxError(f"{msg}, found {where} in {self.text!r}")

    def binary_op(self) -> str | None:
        tok = self.peek()
        if tok.kind == "op" and tok.text in _BINARY:
            return tok.text
        if tok.kind == "ident" and tok.text in _KEYWORD_OPS:
            return tok.text
        return None

    def expression(self, min_prec: int = 0) -> Node:
        left = self.unary()
        while True:
            op = self.binary_op()
            if op is None or _BINARY[op] <= min_prec:
                return left
            self.take()
            if op in ("is", "as"):
                right: Node = Ident(self.type_specifier())
            else:
                right = self.expression(_BINARY[op])
            left = Binary(op, left, right)

    def type_specifier(self) -> str:
        parts = [self.identifier()]
        while self.peek().text == "." and self.peek().kind == "op":
            self.take()
            parts.append(self.identifier())
        return ".".join(parts)

    def identifier(self) -> str:
        tok = self.take()
        if tok.kind == "ident":
            return tok.text
        if tok.kind == "delimited":
            return _unescape(tok.text[1:-1])
        self.fail(tok, "expected an identifier")
        raise AssertionError  # unreachable

    def unary(self) -> Node:
        tok = self.peek()
        if tok.kind == "op" and tok.text in ("+", "-"):
            self.take()
            return Unary(tok.text, self.unary())
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text == ".":
                self.take()
                name = self.identifier()
                if self.peek().text == "(" and self.peek().kind == "op":
                    node = Call(node, name, self.arguments())
                else:
                    node = Member(node, name)
            elif tok.kind == "op" and tok.text == "[":
                self.take()
                index = self.expression()
                self.expect("]")
                node = Index(node, index)
            else:
                return node

    def arguments(self) -> tuple[Node, ...]:
        self.expect("(")
        args: list[Node] = []
        if self.peek().text == ")" and self.peek().kind == "op":
            self.take()
            return ()
        while True:
            args.append(self.expression())
            tok = self.take()
            if tok.kind == "op" and tok.text == ")":
                return tuple(args)
            if not (tok.kind == "op" and tok.text == ","):
                self.fail(tok, "expected ',' or ')'")

    def term(self) -> Node:
        tok = self.take()
        kind, text = tok.kind, tok.text
        if kind == "number":
            return Literal(float(text), "decimal") if "." in text else Literal(int(text), "integer")
        if kind == "string":
            return Literal(_unescape(text[1:-1]), "string")
        if kind == "datetime":
            body = text[1:]
            return Literal(body, "dateTime" if "T" in body else "date")
        if kind == "time":
            return Literal(text[2:], "time")
        if kind == "special":
            if text == "$this":
                return This()
            self.fail(tok, f"unsupported variable {text}")
        if kind == "env":
            name = text[1:]
            if name[:1] in "`'":
                name = _unescape(name[1:-1])
            return Env(name)
        if kind in ("ident", "delimited"):
            name = text if kind == "ident" else _unescape(text[1:-1])
            if kind == "ident" and name in ("true", "false"):
                return Literal(name == "true", "boolean")
            if self.peek().text == "(" and self.peek().kind == "op":
                return Call(None, name, self.arguments())
            return Ident(name)
        if kind == "op" and text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if kind == "op" and text == "{":
            self.expect("}")
            return Literal(None, "empty")
        self.fail(tok, "expected an expression")
        raise AssertionError  # unreachable


def parse(text: str) -> Node:
    """Parse a FHIRPath expression into an AST; raises FhirPathSyntaxError on invalid input."""
    if not isinstance(text, str) or not text.strip():
        raise FhirPathSyntaxError(f"expected a non-empty FHIRPath string, got {text!r}")
    parser = _Parser(text)
    node = parser.expression()
    if parser.peek().kind != "eof":
        parser.fail(parser.peek(), "unexpected trailing input")
    return node
