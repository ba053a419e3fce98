"""A small, safe expression language over a citizen's answers, with three-valued logic.

Catalogue entries say when a procedure applies with a condition such as::

    deceased_on_nhi and deceased_age < 75
    not deceased_head
    insurance in ("nhi", "kouki")
    "juminhyo" in certificates

Grammar (hand-written tokenizer and recursive-descent parser; never ``eval``)::

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := operand [("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                        | ["not"] "in" (tuple | NAME)]
    operand := NAME | STRING | NUMBER | "true" | "false" | "(" expr ")"
    tuple   := "(" [operand ("," operand)* [","]] ")"

Names are answer ids (question ids). Values: a yes/no question is true for "yes" and false for
"no"; a number question compares as an integer; a choice question compares as its string; a
multiple-choice question is a set of strings, tested with ``"value" in name``.

Why three-valued: a citizen may answer "unknown" (or not be asked yet). An unknown answer must
never drop a procedure that might apply, so evaluation is Kleene logic: ``None`` means "could be
either"; ``False and None`` is ``False``, ``True or None`` is ``True``, anything else touching
``None`` stays ``None``. The planner keeps a procedure whose condition is ``None`` and marks it
"to confirm at the counter". Because Kleene logic is monotonic, replacing a definite answer with
"unknown" can only turn a result into ``None``, never flip it: all-unknown answers give a
superset of the procedures of any definite answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

UNKNOWN = "unknown"  # the answer a citizen gives when they do not know

# Question kinds the language understands (the catalogue defines the questions).
YESNO, CHOICE, NUMBER, MULTI = "yesno", "choice", "number", "multi"


class ConditionError(ValueError):
    """A condition that cannot be parsed or does not fit the questions.

    ``token`` is the offending token text (or answer id) and ``column`` its 1-based position in
    the condition source, so an error message can point at it.
    """

    def __init__(self, reason: str, token: str = "", column: int = 0):
        self.reason = reason
        self.token = token
        self.column = column
        super().__init__(reason)


# ------------------------------------------------------------------ tokens

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>"[^"\\]*"|'[^'\\]*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|,)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, string, name, keyword, op, end
    text: str
    column: int  # 1-based


def tokenize(source: str) -> list[Token]:
    """Split a condition into tokens; raise ConditionError naming the first bad character."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN_RE.match(source, pos)
        if not m:
            bad = source[pos]
            if bad in "\"'":
                raise ConditionError(f"unterminated string starting at column {pos + 1}", bad, pos + 1)
            raise ConditionError(f"unexpected character {bad!r} at column {pos + 1}", bad, pos + 1)
        kind = m.lastgroup or ""
        text = m.group()
        if kind != "ws":
            if kind == "name" and text in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, text, pos + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(source) + 1))
    return tokens


# ------------------------------------------------------------------ syntax tree


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    column: int


@dataclass(frozen=True, slots=True)
class Literal:
    value: str | float | bool
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # == != < <= > >= in "not in"
    left: Node
    right: Node | tuple[Node, ...]  # a tuple for `x in ("a", "b")`
    column: int


Node = Name | Literal | Not | BoolOp | Compare


class _Parser:
    def __init__(self, source: str):
        self.tokens = tokenize(source)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def accept(self, text: str) -> bool:
        if self.tok.kind in ("keyword", "op") and self.tok.text == text:
            self.i += 1
            return True
        return False

    def fail(self, expected: str) -> ConditionError:
        t = self.tok
        if t.kind == "end":
            return ConditionError(f"unexpected end of condition, expected {expected}", "", t.column)
        return ConditionError(f"unexpected token {t.text!r} at column {t.column}, expected {expected}", t.text, t.column)

    def parse(self) -> Node:
        node = self.or_()
        if self.tok.kind != "end":
            raise self.fail("'and', 'or' or the end")
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.accept("or"):
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def and_(self) -> Node:
        parts = [self.not_()]
        while self.accept("and"):
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def not_(self) -> Node:
        if self.accept("not"):
            return Not(self.not_())
        return self.compare()

    def compare(self) -> Node:
        left = self.operand()
        t = self.tok
        if t.kind == "op" and t.text in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return Compare(t.text, left, self.operand(), t.column)
        negated = False
        if t.kind == "keyword" and t.text == "not" and self.tokens[self.i + 1].text == "in":
            self.take()
            negated = True
        if self.accept("in"):
            op = "not in" if negated else "in"
            if self.tok.kind == "op" and self.tok.text == "(":
                return Compare(op, left, self.tuple_(), t.column)
            if self.tok.kind == "name":
                n = self.take()
                return Compare(op, left, Name(n.text, n.column), t.column)
            raise self.fail("a parenthesised list or an answer id after 'in'")
        return left

    def tuple_(self) -> tuple[Node, ...]:
        self.take()  # "("
        items: list[Node] = []
        while not self.accept(")"):
            items.append(self.literal_or_name())
            if not self.accept(","):
                if self.accept(")"):
                    break
                raise self.fail("',' or ')'")
        return tuple(items)

    def literal_or_name(self) -> Node:
        t = self.tok
        if t.kind in ("string", "number", "name") or (t.kind == "keyword" and t.text in ("true", "false")):
            return self.operand()
        raise self.fail("a value")

    def operand(self) -> Node:
        t = self.take()
        if t.kind == "name":
            return Name(t.text, t.column)
        if t.kind == "string":
            return Literal(t.text[1:-1], t.column)
        if t.kind == "number":
            return Literal(float(t.text), t.column)
        if t.kind == "keyword" and t.text in ("true", "false"):
            return Literal(t.text == "true", t.column)
        if t.kind == "op" and t.text == "(":
            node = self.or_()
            if not self.accept(")"):
                raise self.fail("')'")
            return node
        self.i -= 1
        raise self.fail("an answer id, a value or '('")


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: its source text and syntax tree."""

    source: str
    tree: Node

    def names(self) -> frozenset[str]:
        """The answer ids the condition reads."""
        return frozenset(_names(self.tree))

    def evaluate(self, answers: Mapping[str, object]) -> bool | None:
        """True, False, or None (unknown) given typed answers (see ``typed_answer``)."""
        return _truth(_eval(self.tree, answers))

    def literals_for(self, answer_id: str) -> frozenset[object]:
        """Literal values the condition compares ``answer_id`` with (to probe number questions)."""
        return frozenset(_literals_for(self.tree, answer_id))


ALWAYS = Condition("true", Literal(True, 1))


def parse_condition(source: str) -> Condition:
    """Parse a condition; raise ConditionError with the bad token and its column."""
    if not source.strip():
        return ALWAYS
    return Condition(source, _Parser(source).parse())


# ------------------------------------------------------------------ checking against questions


def check_condition(cond: Condition, kinds: Mapping[str, str], choices: Mapping[str, tuple[str, ...]]) -> None:
    """Raise ConditionError if the condition reads an unknown answer id or misuses a question.

    ``kinds`` maps each question id the condition may read to its kind; ``choices`` gives the
    allowed values of choice and multiple-choice questions.
    """

    def kind_of(node: Node) -> str:
        if isinstance(node, Name):
            if node.id not in kinds:
                raise ConditionError(f"unknown answer id {node.id!r}", node.id, node.column)
            return kinds[node.id]
        if isinstance(node, Literal):
            if isinstance(node.value, bool):
                return "bool"
            return "number" if isinstance(node.value, float) else "string"
        check_bool(node)
        return "bool"

    def check_value(name: Node, value: Node) -> None:
        # A literal compared with a question must be a value that question can take.
        if not isinstance(name, Name) or not isinstance(value, Literal):
            if isinstance(name, Name) and isinstance(value, Name):
                raise ConditionError(f"cannot compare answer {name.id!r} with answer {value.id!r}", value.id, value.column)
            return
        kind = kinds[name.id]
        v = value.value
        if v == UNKNOWN:
            raise ConditionError(
                f"do not compare with \"unknown\" ({name.id!r}): unknown answers are handled by the three-valued logic",
                f'"{v}"', value.column)
        if kind == YESNO and v not in ("yes", "no"):
            raise ConditionError(f"{name.id!r} is a yes/no question; compare it with \"yes\" or \"no\", not {_show(v)}",
                                 _show(v), value.column)
        if kind in (CHOICE, MULTI) and v not in choices.get(name.id, ()):
            raise ConditionError(f"{_show(v)} is not a choice of {name.id!r} (choices: {', '.join(choices.get(name.id, ()))})",
                                 _show(v), value.column)
        if kind == NUMBER and (isinstance(v, bool) or not isinstance(v, float)):
            raise ConditionError(f"{name.id!r} is a number question; compare it with a number, not {_show(v)}",
                                 _show(v), value.column)

    def check_bool(node: Node) -> None:
        if isinstance(node, Name):
            k = kind_of(node)
            if k != YESNO:
                raise ConditionError(f"{node.id!r} is a {k} question: compare it (==, <, in) instead of using it as yes/no",
                                     node.id, node.column)
        elif isinstance(node, Literal):
            if not isinstance(node.value, bool):
                raise ConditionError(f"{_show(node.value)} is not a condition", _show(node.value), node.column)
        elif isinstance(node, Not):
            check_bool(node.operand)
        elif isinstance(node, BoolOp):
            for o in node.operands:
                check_bool(o)
        elif isinstance(node, Compare):
            if node.op in ("in", "not in"):
                if isinstance(node.right, tuple):
                    kind_of(node.left)
                    for item in node.right:
                        kind_of(item)
                        check_value(node.left, item)
                else:
                    k = kind_of(node.right)
                    if k != MULTI:
                        raise ConditionError(f"'in {node.right.id}' needs a multiple-choice question, {node.right.id!r} is {k}",
                                             node.right.id, node.right.column)
                    check_value(node.right, node.left)
                return
            lk, rk = kind_of(node.left), kind_of(node.right)
            if node.op in ("<", "<=", ">", ">="):
                for side, k in ((node.left, lk), (node.right, rk)):
                    if k not in ("number", NUMBER):
                        label = side.id if isinstance(side, Name) else _show(getattr(side, "value", ""))
                        raise ConditionError(f"{node.op!r} needs numbers, {label} is not a number", label,
                                             getattr(side, "column", node.column))
            if MULTI in (lk, rk):
                side = node.left if lk == MULTI else node.right
                raise ConditionError(f"{side.id!r} is a multiple-choice question: use '\"value\" in {side.id}'",
                                     side.id, side.column)
            check_value(node.left, node.right)
            check_value(node.right, node.left)

    check_bool(cond.tree)


def _show(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else str(v)
    return f'"{v}"'


# ------------------------------------------------------------------ evaluation


def typed_answer(kind: str, raw: str | None) -> object:
    """Turn a raw answer string into the value conditions see; None when unknown or unanswered.

    Raises ValueError for a value the question cannot take (the caller names the question).
    """
    if raw is None or raw == UNKNOWN:
        return None
    raw = raw.strip()
    if kind == YESNO:
        if raw not in ("yes", "no"):
            raise ValueError(f"expected yes, no or unknown, got {raw!r}")
        return raw
    if kind == NUMBER:
        try:
            return float(int(raw))
        except ValueError:
            raise ValueError(f"expected a whole number or unknown, got {raw!r}") from None
    if kind == MULTI:
        return frozenset(v.strip() for v in raw.split(",") if v.strip())
    return raw


def _names(node: Node):
    if isinstance(node, Name):
        yield node.id
    elif isinstance(node, Not):
        yield from _names(node.operand)
    elif isinstance(node, BoolOp):
        for o in node.operands:
            yield from _names(o)
    elif isinstance(node, Compare):
        yield from _names(node.left)
        for r in node.right if isinstance(node.right, tuple) else (node.right,):
            yield from _names(r)


def _literals_for(node: Node, answer_id: str):
    if isinstance(node, Not):
        yield from _literals_for(node.operand, answer_id)
    elif isinstance(node, BoolOp):
        for o in node.operands:
            yield from _literals_for(o, answer_id)
    elif isinstance(node, Compare):
        rights = node.right if isinstance(node.right, tuple) else (node.right,)
        sides = (node.left, *rights)
        if any(isinstance(s, Name) and s.id == answer_id for s in sides):
            for s in sides:
                if isinstance(s, Literal):
                    yield s.value


def _truth(v: object) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    if v == "yes":
        return True
    if v == "no":
        return False
    raise TypeError(f"{v!r} is not a yes/no value")


def _eval(node: Node, answers: Mapping[str, object]) -> object:
    if isinstance(node, Name):
        return answers.get(node.id)
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Not):
        v = _truth(_eval(node.operand, answers))
        return None if v is None else not v
    if isinstance(node, BoolOp):
        # Kleene: a definite deciding value wins over unknowns; otherwise unknown taints.
        decisive = node.op == "or"
        seen_unknown = False
        for o in node.operands:
            v = _truth(_eval(o, answers))
            if v is None:
                seen_unknown = True
            elif v is decisive:
                return decisive
        return None if seen_unknown else not decisive
    # Compare
    left = _eval(node.left, answers)
    if left is None:
        return None
    if node.op in ("in", "not in"):
        if isinstance(node.right, tuple):
            values = [_eval(r, answers) for r in node.right]
            if left in values:
                found: bool | None = True
            elif any(v is None for v in values):
                found = None
            else:
                found = False
        else:
            container = _eval(node.right, answers)
            found = None if container is None else left in container  # type: ignore[operator]
        if found is None:
            return None
        return found if node.op == "in" else not found
    right = _eval(node.right, answers)
    if right is None:
        return None
    if node.op == "==":
        return left == right
    if node.op == "!=":
        return left != right
    try:
        if node.op == "<":
            return left < right  # type: ignore[operator]
        if node.op == "<=":
            return left <= right  # type: ignore[operator]
        if node.op == ">":
            return left > right  # type: ignore[operator]
        return left >= right  # type: ignore[operator]
    except TypeError:
        raise TypeError(f"cannot compare {left!r} {node.op} {right!r}") from None
