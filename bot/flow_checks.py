"""Stage 3 of loading a flow: checks of meaning that need the whole, well-typed flow.

Ids, scales, choices, branches and conditions (including whether they can ever hold),
reachability, locales and template fields. `check_flow` returns every problem found.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

from bot.flow_logic import END, comparisons, evaluate, locales_of
from bot.flow_model import (
    DEFAULT_SCALES,
    SCORE_TYPES,
    AllOf,
    AnswerValue,
    AnyOf,
    Comparison,
    Condition,
    Flow,
    LocalizedText,
    Not,
    Question,
    QuestionType,
)
from bot.flow_source import Loc
from bot.templating import problems as template_problems
from bot.texts import TEXTS, has_bot_texts

# Ids travel in chat button payloads (Telegram allows 64 bytes of callback data): keep them short.
MAX_ID_LENGTH = 32
# More points than NPS's 0–10 do not fit a row of buttons and have no use in CX surveys.
MAX_SCALE_POINTS = 11
# Conditions are checked for satisfiability by trying every combination of possible answers;
# beyond this many combinations the check is skipped rather than slowing validation down.
_MAX_COMBINATIONS = 20_000

_LOCALE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
_CONTEXT_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "answered", "sentiment")
SENTIMENT_LABELS = ("negative", "neutral", "positive")
_ORDERING = ("lt", "lte", "gt", "gte")


def check_flow(flow: Flow) -> list[tuple[Loc, str]]:
    """Every meaning problem in `flow`, as (path, message) pairs in the order found."""
    return _Checker(flow).run()


def locale_warnings(flow: Flow) -> list[tuple[Loc, str]]:
    """Languages the flow declares that the bot's own words (hints, buttons, thanks) lack.

    A warning, not a problem: the flow works, but those customers read the bot's words in
    English beside the flow's questions in their language.
    """
    out: list[tuple[Loc, str]] = []
    for i, code in enumerate([flow.default_locale, *flow.locales]):
        loc: Loc = ("default_locale",) if i == 0 else ("locales", i - 1)
        if _LOCALE.match(code) and not has_bot_texts(code):
            out.append(
                (
                    loc,
                    f"the bot's own words (hints, yes/no buttons, thanks) have no '{code}';"
                    f" customers in '{code}' get them in English (bot/texts.py:"
                    f" {', '.join(TEXTS)})",
                )
            )
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _operators(c: Comparison) -> list[tuple[str, Any]]:
    values = (c.eq, c.ne, c.lt, c.lte, c.gt, c.gte, c.in_, c.answered, c.sentiment)
    return [(name, v) for name, v in zip(_OPERATORS, values, strict=True) if v is not None]


_OTHER_TEXT = "\x00any other text"  # stands for every text answer no condition mentions


class _Checker:
    """The whole-flow checks; `run()` yields (path, message) pairs."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.out: list[tuple[Loc, str]] = []
        self.index = {q.id: i for i, q in reversed(list(enumerate(flow.questions)))}
        self.locales = locales_of(flow)
        self.text_locales = list(dict.fromkeys([*self.locales, flow.default_locale]))
        self.literals: dict[str, set[str]] = {}
        self.unsound: set[int] = set()  # id() of conditions with a reported problem
        for q in flow.questions:
            conditions = [q.when] + [b.if_ for b in q.next]
            for cond in conditions:
                if cond is None:
                    continue
                for c in comparisons(cond):
                    values = [c.eq, c.ne, *(c.in_ or [])]
                    strings = {v for v in values if isinstance(v, str)}
                    self.literals.setdefault(c.question, set()).update(strings)

    def add(self, loc: Loc, message: str) -> None:
        self.out.append((loc, message))

    def run(self) -> list[tuple[Loc, str]]:
        flow = self.flow
        self._id(("id",), flow.id, "flow id")
        self._locales()
        for key in flow.context:
            if not _CONTEXT_KEY.match(key):
                self.add(
                    ("context", key),
                    f"context key '{key}' must use lowercase letters, digits and underscores,"
                    " starting with a letter (templates refer to it as {context.KEY})",
                )
        if flow.intro is not None:
            self._text(("intro",), flow.intro, "intro", required=False)
        if flow.thanks is not None:
            self._text(("thanks",), flow.thanks, "thanks", required=False)
        if not flow.questions:
            self.add(("questions",), "the flow has no questions; add at least one [[questions]]")
            return self.out
        never_asked: set[int] = set()
        for i, q in enumerate(flow.questions):
            if self._question(i, q):
                never_asked.add(i)
        self._reachability(never_asked)
        return self.out

    # -- flow level

    def _id(self, loc: Loc, value: str, what: str) -> None:
        if len(value) > MAX_ID_LENGTH:
            self.add(
                loc,
                f"{what} '{value}' is {len(value)} characters long; ids may have at most"
                f" {MAX_ID_LENGTH} (they are sent in chat button payloads)",
            )

    def _locales(self) -> None:
        flow = self.flow
        for i, code in enumerate([flow.default_locale, *flow.locales]):
            loc: Loc = ("default_locale",) if i == 0 else ("locales", i - 1)
            if not _LOCALE.match(code):
                self.add(loc, f"'{code}' is not a locale code like 'en', 'es' or 'pt-BR'")
        for i, code in enumerate(flow.locales):
            if code in flow.locales[:i]:
                self.add(("locales", i), f"locale '{code}' is listed twice in locales")
        if flow.locales and flow.default_locale not in flow.locales:
            self.add(
                ("locales",),
                f"locales ({', '.join(flow.locales)}) do not include default_locale"
                f" '{flow.default_locale}'",
            )

    def _text(self, loc: Loc, text: LocalizedText, label: str, *, required: bool) -> None:
        items: list[tuple[str | None, str]]
        if isinstance(text, dict):
            for code in self.text_locales:
                if code not in text:
                    self.add(
                        loc,
                        f"{label} has no '{code}' text (the flow's locales are"
                        f" {', '.join(self.text_locales)})",
                    )
            for code in text:
                if code not in self.text_locales:
                    self.add(
                        (*loc, code),
                        f"{label} has a '{code}' text, but '{code}' is not listed in locales",
                    )
            items = list(text.items())
        else:
            items = [(None, text)]
        for locale, value in items:
            where = loc if locale is None else (*loc, locale)
            if required and not value.strip():
                self.add(where, f"{label} is empty")
            for message in template_problems(value, context_keys=self.flow.context):
                self.add(where, f"{label}: {message}")

    # -- questions

    def _question(self, i: int, q: Question) -> bool:
        """Check one question; True when its `when` can never hold (so it is never asked)."""
        at: Loc = ("questions", i)
        name = f"question '{q.id}'"
        self._id((*at, "id"), q.id, "question id")
        if q.id == END:
            self.add(
                (*at, "id"), f"'{END}' cannot be a question id: `goto = \"{END}\"` ends a flow"
            )
        first = self.index[q.id]
        if first != i:
            self.add(
                (*at, "id"),
                f"duplicate question id '{q.id}' (also used by questions[{first}])",
            )
        self._text((*at, "text"), q.text, f"{name} text", required=True)
        self._scale(at, q, name)
        self._choices(at, q, name)
        if q.max_length is not None and q.type is not QuestionType.TEXT:
            self.add((*at, "max_length"), f"{name}: max_length only applies to text questions")
        never_asked = False
        if (
            q.when is not None
            and self._condition((*at, "when"), q.when, i, allow_self=False, label=f"{name} when")
            and True not in self._outcomes(q.when)
        ):
            never_asked = True
            self.add(
                (*at, "when"),
                f"{name} can never be asked: its `when` condition can never be true",
            )
        self._branches(at, i, q, name)
        return never_asked

    def _scale(self, at: Loc, q: Question, name: str) -> None:
        if q.scale is not None:
            if q.type is not QuestionType.CES:
                fixed = ", ".join(
                    f"{t.value} is always {DEFAULT_SCALES[t][0]}–{DEFAULT_SCALES[t][1]}"
                    for t in (QuestionType.NPS, QuestionType.CSAT)
                )
                self.add(
                    (*at, "scale"),
                    f"{name}: scale only applies to ces questions ({fixed})",
                )
            else:
                lo, hi = q.scale.min, q.scale.max
                if lo < 0:
                    self.add((*at, "scale"), f"{name}: scale min must not be negative (got {lo})")
                if lo >= hi:
                    self.add(
                        (*at, "scale"),
                        f"{name}: scale min ({lo}) must be less than max ({hi})",
                    )
                elif hi - lo + 1 > MAX_SCALE_POINTS:
                    self.add(
                        (*at, "scale"),
                        f"{name}: scale {lo}–{hi} has {hi - lo + 1} points; at most"
                        f" {MAX_SCALE_POINTS} fit on a row of buttons",
                    )
        if q.labels is not None:
            if q.type not in SCORE_TYPES:
                self.add(
                    (*at, "labels"),
                    f"{name}: labels only apply to score questions (nps, ces, csat)",
                )
            for end, text in (("min", q.labels.min), ("max", q.labels.max)):
                if text is not None:
                    self._text((*at, "labels", end), text, f"{name} labels.{end}", required=False)

    def _choices(self, at: Loc, q: Question, name: str) -> None:
        if q.type is not QuestionType.CHOICE:
            if q.choices:
                self.add((*at, "choices"), f"{name}: choices only apply to choice questions")
            return
        if len(q.choices) < 2:
            self.add(
                (*at, "choices") if q.choices else at,
                f"{name}: a choice question needs at least 2 choices (has {len(q.choices)})",
            )
        seen: set[str] = set()
        for k, choice in enumerate(q.choices):
            loc: Loc = (*at, "choices", k)
            self._id((*loc, "id"), choice.id, "choice id")
            if choice.id in seen:
                self.add((*loc, "id"), f"{name}: duplicate choice id '{choice.id}'")
            seen.add(choice.id)
            self._text((*loc, "label"), choice.label, f"{name} choice '{choice.id}'", required=True)

    def _branches(self, at: Loc, i: int, q: Question, name: str) -> None:
        unconditional = False
        for j, branch in enumerate(q.next):
            loc: Loc = (*at, "next", j)
            if unconditional:
                self.add(
                    loc,
                    f"{name}: this branch is never used: an earlier branch has no `if`"
                    " and is always taken",
                )
            if branch.goto != END:
                target = self.index.get(branch.goto)
                if target is None:
                    self.add(
                        (*loc, "goto"),
                        f"{name}: goto '{branch.goto}': no such question"
                        f' (use a later question id or "{END}")',
                    )
                elif target <= i:
                    where = "itself" if target == i else f"'{branch.goto}', which comes before it"
                    self.add(
                        (*loc, "goto"),
                        f"{name}: goto {where}; branches may only jump forward",
                    )
            if branch.if_ is None:
                unconditional = True
            elif self._condition(
                (*loc, "if"), branch.if_, i, allow_self=True, label=f"{name} next[{j}].if"
            ) and True not in self._outcomes(branch.if_):
                self.add(
                    (*loc, "if"),
                    f"{name}: the branch to '{branch.goto}' can never be taken: its"
                    " condition can never be true",
                )

    # -- conditions

    def _condition(
        self, loc: Loc, cond: Condition, owner: int, *, allow_self: bool, label: str
    ) -> bool:
        """Report problems inside `cond`; True when it is sound enough to reason about.

        Unsound conditions are remembered so that later checks (satisfiability, reachability)
        do not pile consequences on top of the problem already reported.
        """
        sound = self._condition_sound(loc, cond, owner, allow_self=allow_self, label=label)
        if not sound:
            self.unsound.add(id(cond))
        return sound

    def _condition_sound(
        self, loc: Loc, cond: Condition, owner: int, *, allow_self: bool, label: str
    ) -> bool:
        owner_id = self.flow.questions[owner].id
        if isinstance(cond, AllOf | AnyOf):
            key, items = ("all", cond.all) if isinstance(cond, AllOf) else ("any", cond.any)
            if not items:
                self.add((*loc, key), f"{label}: {key} = [] needs at least one condition")
                return False
            results = [
                self._condition_sound((*loc, key, k), c, owner, allow_self=allow_self, label=label)
                for k, c in enumerate(items)
            ]
            return all(results)
        if isinstance(cond, Not):
            return self._condition_sound(
                (*loc, "not"), cond.not_, owner, allow_self=allow_self, label=label
            )
        operators = _operators(cond)
        if not operators:
            self.add(
                loc,
                f"{label}: condition on '{cond.question}' has no operator; add one of"
                f" {', '.join(_OPERATORS)}",
            )
            return False
        target = self.index.get(cond.question)
        if target is None:
            self.add((*loc, "question"), f"{label}: refers to unknown question '{cond.question}'")
            return False
        if target > owner or (target == owner and not allow_self):
            if allow_self:
                message = (
                    f"branch condition of question '{owner_id}' refers to '{cond.question}',"
                    " which comes after it; conditions may only use answers given so far"
                )
            else:
                message = (
                    f"`when` of question '{owner_id}' refers to '{cond.question}', which is not"
                    " asked before it; conditions may only use earlier answers"
                )
            self.add((*loc, "question"), message)
            return False
        ref = self.flow.questions[target]
        sound = True
        for op, value in operators:
            problem = _operand_problem(ref, op, value)
            if problem is not None:
                self.add((*loc, op), f"{label}: {problem}")
                sound = False
        return sound

    def _domain(self, q: Question) -> list[AnswerValue] | None:
        values: list[AnswerValue] = [None]
        if q.type in SCORE_TYPES:
            lo, hi = q.bounds
            if hi < lo or hi - lo > 100:
                return None
            values += range(lo, hi + 1)
        elif q.type is QuestionType.YES_NO:
            values += [True, False]
        elif q.type is QuestionType.CHOICE:
            values += [c.id for c in q.choices]
        else:
            values += [*sorted(self.literals.get(q.id, set())), _OTHER_TEXT]
        return values

    def _outcomes(self, cond: Condition) -> set[bool]:
        """The truth values `cond` can take over all possible answers (both when unknown)."""
        if id(cond) in self.unsound:
            return {True, False}
        if any(c.sentiment is not None for c in comparisons(cond)):
            return {True, False}  # a label is not an answer: either way is possible
        refs = sorted({c.question for c in comparisons(cond)})
        domains: list[list[AnswerValue]] = []
        for ref in refs:
            target = self.index.get(ref)
            domain = None if target is None else self._domain(self.flow.questions[target])
            if domain is None:
                return {True, False}
            domains.append(domain)
        if math.prod(len(d) for d in domains) > _MAX_COMBINATIONS:
            return {True, False}
        seen: set[bool] = set()
        for combo in itertools.product(*domains):
            seen.add(evaluate(cond, dict(zip(refs, combo, strict=True))))
            if len(seen) == 2:
                break
        return seen

    # -- reachability

    def _reachability(self, never_asked: set[int]) -> None:
        questions = self.flow.questions
        count = len(questions)
        asked: set[int] = set()
        considered: set[int] = set()
        todo = [0]
        while todo:
            j = todo.pop()
            if j >= count or j in considered:
                continue
            considered.add(j)
            q = questions[j]
            outcomes = {True} if q.when is None else self._outcomes(q.when)
            if False in outcomes:
                todo.append(j + 1)  # skipped by its `when`: the walk goes on after it
            if True not in outcomes:
                continue
            asked.add(j)
            for branch in q.next:
                if branch.if_ is not None and True not in self._outcomes(branch.if_):
                    continue
                target = self.index.get(branch.goto)
                if branch.goto != END and (target is None or target <= j):
                    continue  # a bad goto was reported; judge the rest as if it were absent
                if target is not None:
                    todo.append(target)
                if branch.if_ is None:
                    break
            else:
                todo.append(j + 1)
        for j, q in enumerate(questions):
            if j not in asked and j not in never_asked:
                self.add(
                    ("questions", j),
                    f"question '{q.id}' is unreachable: no branch or fall-through from the first"
                    " question leads to it",
                )


def _operand_problem(ref: Question, op: str, value: Any) -> str | None:
    """Why `op = value` can never make sense for answers to `ref`, or None."""
    if op == "answered":
        return None
    if op == "sentiment":
        if ref.type is not QuestionType.TEXT:
            return (
                f"sentiment applies to text answers, but '{ref.id}' is a {ref.type.value} question"
            )
        labels = [value] if isinstance(value, str) else value
        wrong = [v for v in labels if v not in SENTIMENT_LABELS]
        if not labels or wrong:
            return (
                f"sentiment = {_toml(value)}: use {', '.join(SENTIMENT_LABELS)} (or a list of them)"
            )
        return None
    if op in _ORDERING:
        if ref.type not in SCORE_TYPES:
            return (
                f"{op} compares scores, but '{ref.id}' is a {ref.type.value} question;"
                " use eq, ne or in"
            )
        lo, hi = ref.bounds
        never = {
            "lt": value <= lo,
            "lte": value < lo,
            "gt": value >= hi,
            "gte": value > hi,
        }[op]
        if never:
            return f"{op} = {value} can never hold: '{ref.id}' is scored {lo}–{hi}"
        return None
    values = value if op == "in" else [value]
    if op == "in" and not values:
        return "in = [] can never hold; list at least one value"
    for v in values:
        message = _value_problem(ref, v)
        if message is not None:
            return f"{op} = {_toml(value)}: {message}"
    return None


def _value_problem(ref: Question, value: Any) -> str | None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if ref.type in SCORE_TYPES:
        lo, hi = ref.bounds
        if not is_int:
            return f"'{ref.id}' is a {ref.type.value} question scored {lo}–{hi}; compare a number"
        if not lo <= value <= hi:
            return f"{value} is outside the {lo}–{hi} scale of '{ref.id}'"
        return None
    if ref.type is QuestionType.YES_NO:
        if not isinstance(value, bool):
            return f"'{ref.id}' is a yes_no question; compare with true or false"
        return None
    if ref.type is QuestionType.CHOICE:
        ids = [c.id for c in ref.choices]
        if not isinstance(value, str) or value not in ids:
            return f"{_toml(value)} is not a choice of '{ref.id}' (choices: {', '.join(ids)})"
        return None
    if not isinstance(value, str):
        return f"'{ref.id}' is a text question; compare with a string"
    return None


__all__ = ["MAX_ID_LENGTH", "MAX_SCALE_POINTS", "check_flow"]
