"""The condition language: parsing, three-valued evaluation, checking against questions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.core.conditions import (
    ConditionError,
    check_condition,
    parse_condition,
    tokenize,
    typed_answer,
)

KINDS = {"on_nhi": "yesno", "head": "yesno", "age": "number", "kind": "choice", "certs": "multi"}
CHOICES = {"kind": ("a", "b", "c"), "certs": ("juminhyo", "inkan")}


def ev(source: str, **answers: object) -> bool | None:
    cond = parse_condition(source)
    check_condition(cond, KINDS, CHOICES)
    return cond.evaluate(answers)


# ------------------------------------------------------------------ evaluation


def test_yes_no_answers_are_truth_values():
    assert ev("on_nhi", on_nhi="yes") is True
    assert ev("on_nhi", on_nhi="no") is False
    assert ev("not head", head="no") is True
    assert ev('on_nhi == "yes"', on_nhi="yes") is True


def test_numbers_compare_with_every_operator():
    assert ev("age >= 75", age=75.0) is True
    assert ev("age >= 75", age=74.0) is False
    assert ev("age > 75", age=75.0) is False
    assert ev("age < 40", age=39.0) is True
    assert ev("age <= 40", age=40.0) is True
    assert ev("age != 40", age=40.0) is False
    assert ev("age == 40", age=40.0) is True


def test_choice_in_tuple_and_not_in():
    assert ev('kind in ("a", "b")', kind="b") is True
    assert ev('kind in ("a", "b",)', kind="c") is False
    assert ev('kind not in ("a",)', kind="c") is True


def test_multiple_choice_membership():
    assert ev('"inkan" in certs', certs=frozenset({"inkan", "juminhyo"})) is True
    assert ev('"inkan" in certs', certs=frozenset({"juminhyo"})) is False
    assert ev('"inkan" not in certs', certs=frozenset()) is True


def test_precedence_not_binds_tighter_than_and_than_or():
    # on_nhi or (head and not on_nhi)
    assert ev("on_nhi or head and not on_nhi", on_nhi="no", head="yes") is True
    assert ev("(on_nhi or head) and not on_nhi", on_nhi="yes", head="yes") is False


def test_unknown_keeps_a_condition_open_unless_another_answer_decides_it():
    assert ev('on_nhi == "yes" and age >= 75', age=80.0) is None  # on_nhi unknown
    assert ev('on_nhi == "yes" and age >= 75', age=60.0) is False  # false whatever on_nhi is
    assert ev("on_nhi or age >= 75", age=80.0) is True
    assert ev("not head") is None
    assert ev('kind in ("a", "b")') is None
    assert ev('"inkan" in certs') is None


def test_kleene_truth_tables():
    T, F, U = "yes", "no", None
    table_and = {(T, T): True, (T, F): False, (F, U): False, (U, F): False, (T, U): None, (U, U): None}
    table_or = {(F, F): False, (T, F): True, (T, U): True, (U, T): True, (F, U): None, (U, U): None}
    for (a, b), want in table_and.items():
        assert ev("on_nhi and head", on_nhi=a, head=b) is want, (a, b)
    for (a, b), want in table_or.items():
        assert ev("on_nhi or head", on_nhi=a, head=b) is want, (a, b)


def test_typed_answer_converts_and_rejects():
    assert typed_answer("number", "80") == 80.0
    assert typed_answer("yesno", "unknown") is None
    assert typed_answer("multi", "a, b") == frozenset({"a", "b"})
    with pytest.raises(ValueError, match="expected yes, no or unknown, got 'maybe'"):
        typed_answer("yesno", "maybe")
    with pytest.raises(ValueError, match="whole number"):
        typed_answer("number", "eighty")


def test_names_lists_the_answer_ids_read():
    assert parse_condition('on_nhi and (age >= 75 or kind in ("a",))').names() == {"on_nhi", "age", "kind"}


# ------------------------------------------------------------------ syntax errors


@pytest.mark.parametrize(
    ("source", "reason", "token", "column"),
    [
        ("age >", "unexpected end of condition, expected an answer id, a value or '('", "", 6),
        ("age >= 75 and", "unexpected end of condition, expected an answer id, a value or '('", "", 14),
        ("age >= 75 75", "unexpected token '75' at column 11, expected 'and', 'or' or the end", "75", 11),
        ('kind == "a', "unterminated string starting at column 9", '"', 9),
        ("age $ 3", "unexpected character '$' at column 5", "$", 5),
        ("kind in 3", "unexpected token '3' at column 9, expected a parenthesised list or an answer id after 'in'", "3", 9),
        ("(age > 3", "unexpected end of condition, expected ')'", "", 9),
        ("and head", "unexpected token 'and' at column 1, expected an answer id, a value or '('", "and", 1),
        ('kind in ("a" "b")', "unexpected token '\"b\"' at column 14, expected ',' or ')'", '"b"', 14),
    ],
)
def test_syntax_errors_name_the_bad_token_and_column(source, reason, token, column):
    with pytest.raises(ConditionError) as info:
        parse_condition(source)
    assert (info.value.reason, info.value.token, info.value.column) == (reason, token, column)


def test_python_is_not_evaluated():
    with pytest.raises(ConditionError):
        parse_condition('__import__("os").system("true")')
    with pytest.raises(ConditionError, match="unexpected character '\\[' at column 5"):
        parse_condition("age [0]")


# ------------------------------------------------------------------ checking against questions


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("agee >= 75", "unknown answer id 'agee'"),
        ('on_nhi == "maybe"', "'on_nhi' is a yes/no question; compare it with \"yes\" or \"no\", not \"maybe\""),
        ('kind == "d"', '"d" is not a choice of \'kind\' (choices: a, b, c)'),
        ("age", "'age' is a number question: compare it (==, <, in) instead of using it as yes/no"),
        ('age >= "old"', "'>=' needs numbers, \"old\" is not a number"),
        ("age == 7 and kind > 3", "'>' needs numbers, kind is not a number"),
        ('on_nhi == "unknown"', "do not compare with \"unknown\" ('on_nhi'): unknown answers are handled by the three-valued logic"),
        ('"x" in certs', '"x" is not a choice of \'certs\' (choices: juminhyo, inkan)'),
        ('"a" in kind', "'in kind' needs a multiple-choice question, 'kind' is choice"),
        ('certs == "inkan"', "'certs' is a multiple-choice question: use '\"value\" in certs'"),
        ("age == head", "cannot compare answer 'age' with answer 'head'"),
        ("3", "3 is not a condition"),
    ],
)
def test_check_names_the_misused_answer(source, reason):
    with pytest.raises(ConditionError) as info:
        check_condition(parse_condition(source), KINDS, CHOICES)
    assert info.value.reason == reason


def test_tokenizer_keeps_columns():
    assert [(t.kind, t.text, t.column) for t in tokenize("not x>=1")] == [
        ("keyword", "not", 1), ("name", "x", 5), ("op", ">=", 6), ("number", "1", 8), ("end", "", 9),
    ]


# ------------------------------------------------------------------ property: unknown never flips a result

NAMES = ("p", "q", "r")
_KINDS = {n: "yesno" for n in NAMES} | {"n": "number"}


def _conditions():
    atom = st.sampled_from([*NAMES, "n >= 5", "n < 2", 'p == "no"', "true", "false"])
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            inner.map(lambda s: f"not ({s})"),
            st.tuples(inner, inner).map(lambda ab: f"({ab[0]}) and ({ab[1]})"),
            st.tuples(inner, inner).map(lambda ab: f"({ab[0]}) or ({ab[1]})"),
        ),
        max_leaves=8,
    )


@settings(max_examples=300, deadline=None)
@given(
    source=_conditions(),
    values=st.fixed_dictionaries({**{n: st.sampled_from(["yes", "no"]) for n in NAMES}, "n": st.integers(0, 9)}),
    hidden=st.sets(st.sampled_from([*NAMES, "n"])),
)
def test_hiding_answers_gives_unknown_or_the_same_result(source, values, hidden):
    cond = parse_condition(source)
    check_condition(cond, _KINDS, {})
    full = {k: (float(v) if k == "n" else v) for k, v in values.items()}
    partial = {k: v for k, v in full.items() if k not in hidden}
    definite = cond.evaluate(full)
    assert definite in (True, False)
    assert cond.evaluate(partial) in (None, definite)
