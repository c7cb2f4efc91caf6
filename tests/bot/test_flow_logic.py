"""Walking flows: conditions, branching, `when` skipping, locales and rendered texts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from bot.flow_catalog import FlowCatalog
from bot.flow_loader import load_flow_source
from bot.flow_logic import (
    evaluate,
    first_question,
    locales_of,
    localize,
    next_question,
    render_text,
    resolve_locale,
)
from bot.flow_model import AllOf, AnswerValue, AnyOf, Comparison, Flow, Not


@pytest.fixture(scope="module")
def catalog() -> FlowCatalog:
    return FlowCatalog.load()


def walk(flow: Flow, replies: Sequence[AnswerValue]) -> list[tuple[str, AnswerValue]]:
    """Answer each asked question with the next reply; the (question id, answer) pairs."""
    answers: dict[str, AnswerValue] = {}
    asked: list[tuple[str, AnswerValue]] = []
    question = first_question(flow, answers)
    for reply in replies:
        assert question is not None, f"survey ended early; asked so far: {asked}"
        answers[question.id] = reply
        asked.append((question.id, reply))
        question = next_question(flow, question.id, answers)
    assert question is None, f"survey not over: next would be {question.id}"
    return asked


# -- evaluate


def c(**kwargs: object) -> Comparison:
    return Comparison.model_validate({"question": "q", **kwargs})


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        (c(eq=5), 5, True),
        (c(eq=5), 6, False),
        (c(ne=5), 6, True),
        (c(ne=5), 5, False),
        (c(lt=5), 4, True),
        (c(lt=5), 5, False),
        (c(lte=5), 5, True),
        (c(gt=5), 6, True),
        (c(gt=5), 5, False),
        (c(gte=7, lte=8), 7, True),
        (c(gte=7, lte=8), 8, True),
        (c(gte=7, lte=8), 9, False),
        (c(gte=7, lte=8), 6, False),
        (c(**{"in": ["price", "quality"]}), "quality", True),
        (c(**{"in": ["price", "quality"]}), "service", False),
        (c(eq=False), False, True),
        (c(eq=False), True, False),
        (c(eq="late"), "late", True),
        (c(answered=True), "anything", True),
        (c(answered=True), None, False),
        (c(answered=False), None, True),
        (c(answered=False), 3, False),
    ],
)
def test_comparisons(condition: Comparison, value: AnswerValue, expected: bool) -> None:
    assert evaluate(condition, {"q": value}) is expected


@pytest.mark.parametrize("condition", [c(eq=5), c(ne=5), c(lt=5), c(gte=0), c(**{"in": [1]})])
def test_missing_or_skipped_answer_fails_every_comparison(condition: Comparison) -> None:
    assert evaluate(condition, {}) is False
    assert evaluate(condition, {"q": None}) is False


def test_answered_false_with_another_operator_still_needs_that_operator() -> None:
    assert evaluate(c(answered=False, eq=3), {"q": None}) is False


def test_bool_and_int_never_compare_equal() -> None:
    # In Python True == 1; a yes/no answer must not match a score of 1 (or the reverse).
    assert evaluate(c(eq=1), {"q": True}) is False
    assert evaluate(c(eq=True), {"q": 1}) is False
    assert evaluate(c(ne=1), {"q": True}) is True
    assert evaluate(c(gte=0), {"q": True}) is False
    assert evaluate(c(**{"in": [1]}), {"q": True}) is False


def test_text_answer_fails_numeric_comparison() -> None:
    assert evaluate(c(lt=5), {"q": "3"}) is False


def test_all_any_not() -> None:
    low = Comparison(question="nps", lte=6)
    said_no = Comparison(question="on_time", eq=False)
    answers: Mapping[str, AnswerValue] = {"nps": 4, "on_time": True}
    assert evaluate(AllOf(all=[low, said_no]), answers) is False
    assert evaluate(AnyOf(any=[low, said_no]), answers) is True
    assert evaluate(Not.model_validate({"not": said_no}), answers) is True
    assert evaluate(AllOf(all=[low, Not.model_validate({"not": said_no})]), answers) is True


# -- the bundled flows


def test_post_interaction_promoter_path(catalog: FlowCatalog) -> None:
    flow = catalog.get("post_interaction")
    # The acceptance script: 9, a comment, CES 6, CSAT 5, an empty (skipped) last answer.
    asked = walk(flow, [9, "Great support, thanks!", 6, 5, None])
    assert [q for q, _ in asked] == ["nps", "liked_most", "ces", "csat", "anything_else"]


@pytest.mark.parametrize(
    ("score", "follow_up"),
    [
        (0, "fix_first"),
        (6, "fix_first"),
        (7, "make_it_ten"),
        (8, "make_it_ten"),
        (10, "liked_most"),
    ],
)
def test_post_interaction_asks_one_follow_up_by_score(
    catalog: FlowCatalog, score: int, follow_up: str
) -> None:
    flow = catalog.get("post_interaction")
    asked = walk(flow, [score, "text", 4, 3, "more"])
    assert [q for q, _ in asked] == ["nps", follow_up, "ces", "csat", "anything_else"]


def test_post_interaction_follow_up_texts(catalog: FlowCatalog) -> None:
    flow = catalog.get("post_interaction")
    texts = {q.id: localize(flow, q.text, "en") for q in flow.questions}
    assert texts["fix_first"] == "Sorry to hear that. What should we fix first?"
    assert texts["make_it_ten"] == "What would have made it a 10?"
    assert texts["liked_most"] == "Great to hear! What did you like most?"
    assert texts["ces"] == "How easy was it to get your issue resolved?"
    assert texts["anything_else"] == "Anything else you'd like to tell us?"
    assert flow.question("ces").bounds == (1, 7)
    assert flow.question("csat").bounds == (1, 5)
    assert all(flow.question(i).optional for i in ("fix_first", "liked_most", "anything_else"))


def test_post_purchase_late_delivery_asks_what_went_wrong(catalog: FlowCatalog) -> None:
    flow = catalog.get("post_purchase")
    asked = walk(flow, [False, "Two days late", "quality", 4, 8])
    assert [q for q, _ in asked] == ["on_time", "what_went_wrong", "mattered_most", "csat", "nps"]


def test_post_purchase_on_time_skips_follow_up(catalog: FlowCatalog) -> None:
    flow = catalog.get("post_purchase")
    asked = walk(flow, [True, "price", 5, 10])
    assert [q for q, _ in asked] == ["on_time", "mattered_most", "csat", "nps"]


# -- branching and skipping on small flows

BRANCHY = """
id = "branchy"
name = "Branchy"

[[questions]]
id = "ok"
type = "yes_no"
text = "OK?"
[[questions.next]]
if = { question = "ok", eq = true }
goto = "end"

[[questions]]
id = "why"
type = "text"
text = "Why not?"

[[questions]]
id = "vip_only"
type = "text"
text = "Tell the VIP team"
when = { all = [{ question = "why", answered = true }, { question = "ok", eq = false }] }

[[questions]]
id = "score"
type = "csat"
text = "Rate us"
when = { question = "why", eq = "skip rating" }
"""


def test_branch_to_end_finishes_survey() -> None:
    flow = load_flow_source(BRANCHY, "branchy.toml")
    assert walk(flow, [True]) == [("ok", True)]


def test_fall_through_and_when() -> None:
    flow = load_flow_source(BRANCHY, "branchy.toml")
    assert [q for q, _ in walk(flow, [False, "slow", "noted"])] == ["ok", "why", "vip_only"]
    asked = walk(flow, [False, "skip rating", "noted", 2])
    assert [q for q, _ in asked] == ["ok", "why", "vip_only", "score"]


def test_when_false_skips_to_the_end() -> None:
    flow = load_flow_source(BRANCHY, "branchy.toml")
    assert next_question(flow, "vip_only", {"ok": False, "why": "slow"}) is None


def test_first_question_skips_leading_questions_whose_when_fails() -> None:
    flow = load_flow_source(BRANCHY, "branchy.toml")
    shortened = flow.model_copy(update={"questions": flow.questions[2:]})
    first = first_question(shortened, {"ok": False, "why": "x"})
    assert first is not None and first.id == "vip_only"
    assert first_question(shortened, {}) is None


def test_goto_target_with_false_when_is_skipped() -> None:
    source = """
id = "jump"
name = "Jump"

[[questions]]
id = "a"
type = "nps"
text = "a"
[[questions.next]]
if = { question = "a", lte = 6 }
goto = "c"

[[questions]]
id = "b"
type = "text"
text = "b"

[[questions]]
id = "c"
type = "text"
text = "c"
when = { question = "a", lte = 3 }

[[questions]]
id = "d"
type = "text"
text = "d"
"""
    flow = load_flow_source(source, "jump.toml")
    assert [q for q, _ in walk(flow, [2, "c", "d"])] == ["a", "c", "d"]
    # goto c, but c's `when` fails (5 > 3): the walk goes on after c.
    assert [q for q, _ in walk(flow, [5, "d"])] == ["a", "d"]
    assert [q for q, _ in walk(flow, [9, "b", "d"])] == ["a", "b", "d"]


# -- locales and texts


def test_locales_of_defaults_to_default_locale() -> None:
    flow = load_flow_source(BRANCHY, "branchy.toml")
    assert locales_of(flow) == ["en"]


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("es", "es"),
        ("es-MX", "es"),
        ("es_MX", "es"),
        ("ES", "es"),
        ("en-GB", "en"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_resolve_locale(catalog: FlowCatalog, wanted: str | None, expected: str) -> None:
    assert resolve_locale(catalog.get("post_interaction"), wanted) == expected


def test_resolve_locale_prefers_exact_region_then_language() -> None:
    source = """
id = "pt"
name = "pt"
default_locale = "en"
locales = ["en", "pt-BR", "pt-PT"]

[[questions]]
id = "a"
type = "text"
text = "a"
"""
    flow = load_flow_source(source, "pt.toml")
    assert resolve_locale(flow, "pt_pt") == "pt-PT"
    assert resolve_locale(flow, "pt") == "pt-BR"
    assert resolve_locale(flow, "pt-AO") == "pt-BR"


def test_localize(catalog: FlowCatalog) -> None:
    flow = catalog.get("post_interaction")
    text = flow.question("ces").text
    assert localize(flow, text, "es") == "¿Qué tan fácil fue resolver tu problema?"
    assert localize(flow, text, "es-AR") == "¿Qué tan fácil fue resolver tu problema?"
    assert localize(flow, text, "ja") == "How easy was it to get your issue resolved?"
    assert localize(flow, "Same for all", "es") == "Same for all"


def test_render_text_intro(catalog: FlowCatalog) -> None:
    flow = catalog.get("post_interaction")
    assert flow.intro is not None
    en = render_text(
        flow, flow.intro, locale="en", customer={"first_name": "Ana"}, context={"ticket_id": "#42"}
    )
    assert en == "Hi Ana! We'd love your feedback on #42. It takes about a minute."
    es = render_text(flow, flow.intro, locale="es-MX", customer={}, context={})
    assert es == (
        "¡Hola, qué tal! Nos encantaría conocer tu opinión sobre tu solicitud reciente."
        " Solo te llevará un minuto."
    )


def test_render_text_post_purchase_german_without_name(catalog: FlowCatalog) -> None:
    flow = catalog.get("post_purchase")
    assert flow.intro is not None
    de = render_text(flow, flow.intro, locale="de-AT", customer={}, context={"order_id": "#7"})
    assert de == "Hallo! Danke für Ihren Einkauf. Ein paar kurze Fragen zu #7."
    de = render_text(flow, flow.intro, locale="de", customer={"first_name": "Jo"}, context={})
    assert de == "Hallo Jo! Danke für Ihren Einkauf. Ein paar kurze Fragen zu Ihrer Bestellung."


def test_bundled_flows_load_from_package() -> None:
    # Not only through the catalog: the files themselves are in the package directory.
    flows = FlowCatalog.load().flows()
    assert [f.id for f in flows] == ["post_interaction", "post_purchase"]
    assert all(f.path.endswith(f"{f.id}.toml") for f in flows)
