"""Walking a flow: which question comes next, conditions, locales and rendered texts.

Everything here is a pure function of a validated `Flow` and the answers so far, so the dialogue
engine can call it inside a turn without touching storage. Conditions are structured data
(`bot.flow_model.Condition`) interpreted by `evaluate`; nothing is ever evaluated as code.

Order of questions: after a question is answered its `[[questions.next]]` branches are tried in
order and the first whose `if` holds (or that has no `if`) decides where to go: a later question
or "end". With no branch taken the flow falls through to the next question in file order. Any
question reached either way whose `when` does not hold is skipped, and the walk goes on after it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from bot.flow_model import (
    AllOf,
    AnswerValue,
    AnyOf,
    Comparison,
    Condition,
    Flow,
    LocalizedText,
    Not,
    Question,
)
from bot.templating import render

END = "end"  # the `goto` target that ends the survey


def evaluate(condition: Condition, answers: Mapping[str, AnswerValue]) -> bool:
    """Whether `condition` holds for `answers` (question id → answer, None when skipped).

    A missing or None answer fails every comparison except `answered = false`.
    """
    if isinstance(condition, AllOf):
        return all(evaluate(c, answers) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, answers) for c in condition.any)
    if isinstance(condition, Not):
        return not evaluate(condition.not_, answers)
    return _compare(condition, answers.get(condition.question)) and _sentiment_holds(
        condition, answers
    )


SENTIMENT_SUFFIX = "#sentiment"


def sentiment_key(question_id: str) -> str:
    """The key under which the answers mapping gives a text answer's sentiment label."""
    return question_id + SENTIMENT_SUFFIX


def _sentiment_holds(c: Comparison, answers: Mapping[str, AnswerValue]) -> bool:
    if c.sentiment is None:
        return True
    wanted = [c.sentiment] if isinstance(c.sentiment, str) else c.sentiment
    label = answers.get(sentiment_key(c.question))
    return isinstance(label, str) and label in wanted


def _same(a: AnswerValue, b: AnswerValue) -> bool:
    # bool is a subclass of int in Python: `True == 1` must not make a yes/no answer equal a score.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _compare(c: Comparison, value: AnswerValue) -> bool:
    if c.answered is not None and (value is not None) != c.answered:
        return False
    checks: list[bool] = []
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if c.eq is not None:
        checks.append(value is not None and _same(value, c.eq))
    if c.ne is not None:
        checks.append(value is not None and not _same(value, c.ne))
    if c.lt is not None:
        checks.append(number is not None and number < c.lt)
    if c.lte is not None:
        checks.append(number is not None and number <= c.lte)
    if c.gt is not None:
        checks.append(number is not None and number > c.gt)
    if c.gte is not None:
        checks.append(number is not None and number >= c.gte)
    if c.in_ is not None:
        checks.append(value is not None and any(_same(value, x) for x in c.in_))
    return all(checks)


def comparisons(condition: Condition) -> Iterator[Comparison]:
    """Every comparison inside `condition`, depth first."""
    if isinstance(condition, AllOf):
        for c in condition.all:
            yield from comparisons(c)
    elif isinstance(condition, AnyOf):
        for c in condition.any:
            yield from comparisons(c)
    elif isinstance(condition, Not):
        yield from comparisons(condition.not_)
    else:
        yield condition


def question_index(flow: Flow, question_id: str) -> int:
    """Position of the question in the flow (KeyError when there is none)."""
    for i, q in enumerate(flow.questions):
        if q.id == question_id:
            return i
    raise KeyError(question_id)


def _ask_from(flow: Flow, start: int, answers: Mapping[str, AnswerValue]) -> Question | None:
    for q in flow.questions[start:]:
        if q.when is None or evaluate(q.when, answers):
            return q
    return None


def first_question(flow: Flow, answers: Mapping[str, AnswerValue]) -> Question | None:
    """The first question to ask (None when every question is skipped by its `when`)."""
    return _ask_from(flow, 0, answers)


def next_question(
    flow: Flow, current_id: str, answers: Mapping[str, AnswerValue]
) -> Question | None:
    """The question after `current_id` given `answers`, or None when the survey is over."""
    current = question_index(flow, current_id)
    for branch in flow.questions[current].next:
        if branch.if_ is None or evaluate(branch.if_, answers):
            if branch.goto == END:
                return None
            return _ask_from(flow, question_index(flow, branch.goto), answers)
    return _ask_from(flow, current + 1, answers)


def locales_of(flow: Flow) -> list[str]:
    """The locales a flow is written in (`locales`, or just the default locale)."""
    return list(flow.locales) if flow.locales else [flow.default_locale]


def _norm(locale: str) -> str:
    return locale.strip().replace("_", "-").lower()


def resolve_locale(flow: Flow, locale: str | None) -> str:
    """The flow locale to use for a customer's locale ("es-MX"/"es_MX" → "es").

    Exact match first (ignoring case and `_`/`-`), then the language part; else the default.
    """
    if not locale:
        return flow.default_locale
    available = locales_of(flow)
    by_norm = {_norm(code): code for code in available}
    wanted = _norm(locale)
    if wanted in by_norm:
        return by_norm[wanted]
    language = wanted.split("-")[0]
    if language in by_norm:
        return by_norm[language]
    for code in available:
        if _norm(code).split("-")[0] == language:
            return code
    return flow.default_locale


def localize(flow: Flow, text: LocalizedText, locale: str) -> str:
    """The text for `locale` (resolved against the flow's locales), without templating."""
    if isinstance(text, str):
        return text
    if locale in text:
        return text[locale]
    resolved = resolve_locale(flow, locale)
    if resolved in text:
        return text[resolved]
    if flow.default_locale in text:
        return text[flow.default_locale]
    # Validated flows never get here: every text has the default locale.
    return next(iter(text.values()), "")


def render_text(
    flow: Flow,
    text: LocalizedText,
    *,
    locale: str,
    customer: Mapping[str, str | None],
    context: Mapping[str, str],
) -> str:
    """`text` localized for `locale` with its template fields filled."""
    return render(
        localize(flow, text, locale),
        customer=customer,
        context=context,
        context_defaults=flow.context,
    )
