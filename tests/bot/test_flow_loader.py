"""Loading and validating flow files: every rule reports the right line and a clear message.

Sources mark the line a problem must be reported on with a `# <-` comment, so each test states
the exact line without counting by hand.
"""

from __future__ import annotations

import hashlib
import textwrap
from importlib import resources
from pathlib import Path

import pytest

from bot.errors import FlowError, FlowProblem, UnknownFlowError
from bot.flow_catalog import DEFAULT_FLOW_ID, FlowCatalog
from bot.flow_loader import SourceLocator, load_flow_file, load_flow_source, validate_files

HEAD = 'id = "t"\nname = "Test flow"\n'

NPS = """
[[questions]]
id = "nps"
type = "nps"
text = "How likely are you to recommend us?"
"""


def problems(source: str) -> list[tuple[int | None, str]]:
    """The (line, message) pairs that loading `source` reports."""
    with pytest.raises(FlowError) as info:
        load_flow_source(source, "flow.toml")
    return [(p.line, p.message) for p in info.value.problems]


def marked(source: str) -> int:
    """The line holding the `# <-` marker."""
    lines = [i for i, text in enumerate(source.splitlines(), 1) if "# <-" in text]
    assert len(lines) == 1, lines
    return lines[0]


def only(source: str) -> tuple[int | None, str]:
    found = problems(source)
    assert len(found) == 1, found
    return found[0]


def flow(body: str) -> str:
    return HEAD + textwrap.dedent(body)


# -- happy path and the bundled flows


def bundled_dir() -> Path:
    return Path(str(resources.files("flows")))


def test_bundled_flows_validate_clean() -> None:
    paths = sorted(bundled_dir().glob("*.toml"))
    assert [p.name for p in paths] == ["post_interaction.toml", "post_purchase.toml"]
    warnings: list[FlowProblem] = []
    assert validate_files(paths, warnings=warnings) == []
    assert warnings == []  # German, which post_purchase declares, has the bot's words too


def test_a_declared_language_without_bot_texts_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(HEAD + 'default_locale = "en"\nlocales = ["en", "fr"]\n' + NPS)
    warnings: list[FlowProblem] = []
    assert validate_files([path], warnings=warnings) == []  # still valid: it loads and works
    assert [(w.line, w.message.split(";")[0]) for w in warnings] == [
        (4, "warning: the bot's own words (hints, yes/no buttons, thanks) have no 'fr'")
    ]


def test_load_sets_source_path_and_checksum() -> None:
    source = flow(NPS)
    loaded = load_flow_source(source, "flows/t.toml")
    assert loaded.id == "t"
    assert loaded.source == source
    assert loaded.path == "flows/t.toml"
    assert loaded.checksum == hashlib.sha256(source.encode()).hexdigest()
    assert [q.id for q in loaded.questions] == ["nps"]


def test_load_flow_file_reads_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + flow(NPS).encode())
    assert load_flow_file(path).id == "t"


def test_problem_renders_as_path_line_message() -> None:
    with pytest.raises(FlowError) as info:
        load_flow_source(flow(NPS + 'colour = "red"\n'), "my/flow.toml")
    assert str(info.value) == (
        "my/flow.toml:8: questions[0]: unknown key 'colour'; expected one of id, type, text,"
        " optional, when, next, scale, labels, choices, max_length"
    )


# -- TOML syntax and file reading


def test_toml_syntax_error_line() -> None:
    source = flow(
        """
        [[questions]]
        id = "nps"
        type = nps  # <-
        """
    )
    assert only(source) == (marked(source), "invalid TOML: Invalid value")


def test_toml_duplicate_key_line() -> None:
    source = flow(
        """
        [[questions]]
        id = "nps"
        id = "again"  # <-
        """
    )
    line, message = only(source)
    assert line == marked(source)
    assert message.startswith("invalid TOML: Cannot overwrite a value")


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(FlowError) as info:
        load_flow_file(missing)
    assert info.value.problems == [FlowProblem(str(missing), None, "no such file")]


def test_non_utf8_file_reports_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(flow(NPS).encode() + 'thanks = "Gracias señor"\n'.encode("latin-1"))
    with pytest.raises(FlowError) as info:
        load_flow_file(path)
    assert info.value.problems == [
        FlowProblem(
            str(path), 8, "not UTF-8 text (byte 0xf1 cannot be decoded); save the file as UTF-8"
        )
    ]


# -- shape and types (pydantic)


def test_unknown_question_type() -> None:
    source = flow(
        """
        [[questions]]
        id = "nps"
        type = "nps"
        text = "x"

        [[questions]]
        id = "stars"
        type = "rating"  # <-
        text = "x"
        """
    )
    assert only(source) == (
        marked(source),
        "questions[1].type: unknown question type 'rating'; expected one of nps, ces, csat,"
        " text, choice, yes_no",
    )


def test_missing_required_key_points_at_question_header() -> None:
    source = flow(
        """
        [[questions]]  # <-
        id = "nps"
        type = "nps"
        """
    )
    assert only(source) == (marked(source), "questions[0]: missing required key 'text'")


def test_missing_top_level_key_has_no_line() -> None:
    assert only('id = "t"\n' + NPS) == (None, "missing required key 'name'")


def test_unknown_top_level_key() -> None:
    source = flow('descripton = "typo"  # <-\n' + NPS)
    assert only(source) == (marked(source), "unknown key 'descripton'; did you mean 'description'?")


def test_unknown_question_key_suggests_the_right_one() -> None:
    source = flow(NPS + "optinal = true  # <-\n")
    assert only(source) == (
        marked(source),
        "questions[0]: unknown key 'optinal'; did you mean 'optional'?",
    )


def test_unknown_key_in_branch() -> None:
    source = flow(
        NPS
        + textwrap.dedent(
            """
            [[questions.next]]
            go_to = "end"  # <-
            """
        )
    )
    found = problems(source)
    assert (marked(source), "questions[0].next[0]: unknown key 'go_to'; did you mean 'goto'?") in (
        found
    )


def test_unknown_key_in_condition() -> None:
    source = flow(
        NPS
        + textwrap.dedent(
            """
            [[questions]]
            id = "why"
            type = "text"
            text = "Why?"
            when = { any = [{ question = "nps", gtee = 3 }, { not = { question = "nps" } }] }  # <-
            """
        )
    )
    assert only(source) == (
        marked(source),
        "questions[1].when.any[0]: unknown key 'gtee'; did you mean 'gte'?",
    )


def test_unknown_key_in_combinator_lists_the_keys() -> None:
    source = flow(NPS + 'when = { not = { question = "nps", eq = 1 }, also = 2 }  # <-\n')
    assert only(source) == (
        marked(source),
        "questions[0].when: unknown key 'also'; expected one of not",
    )


def test_strict_types_no_coercion() -> None:
    source = flow(NPS + 'optional = "yes"  # <-\n')
    assert only(source) == (
        marked(source),
        'questions[0].optional: expected true or false, got the string "yes"',
    )


def test_localized_text_wrong_type_is_one_message() -> None:
    source = flow(
        """
        [[questions]]
        id = "nps"
        type = "nps"
        text = 5  # <-
        """
    )
    assert only(source) == (
        marked(source),
        "questions[0].text: expected a string or a table of locale = text, got the number 5",
    )


def test_malformed_condition_is_one_message() -> None:
    source = flow(
        NPS
        + textwrap.dedent(
            """
            [[questions]]
            id = "why"
            type = "text"
            text = "Why?"
            when = "nps < 7"  # <-
            """
        )
    )
    assert only(source) == (
        marked(source),
        "questions[1].when: a condition must be a table with 'question' and an operator (eq, ne,"
        " lt, lte, gt, gte, in, answered, sentiment), or with 'all', 'any' or 'not'",
    )


def test_condition_operand_type_error_inside_all() -> None:
    source = flow(
        NPS
        + textwrap.dedent(
            """
            [[questions]]
            id = "why"
            type = "text"
            text = "Why?"
            when = { all = [{ question = "nps", lt = "7" }] }  # <-
            """
        )
    )
    assert only(source) == (
        marked(source),
        'questions[1].when.all[0].lt: expected a whole number, got the string "7"',
    )


def test_bad_id_pattern() -> None:
    source = flow(
        """
        [[questions]]
        id = "Rate-Us"  # <-
        type = "nps"
        text = "x"
        """
    )
    assert only(source) == (
        marked(source),
        'questions[0].id: "Rate-Us" is not a valid id; use lowercase letters, digits and'
        " underscores, starting with a letter",
    )


def test_top_level_key_after_context_table_gets_a_hint() -> None:
    source = flow(
        """
        [context]
        ticket_id = "your request"
        intro = { en = "Hi" }  # <-
        """
        + NPS
    )
    assert only(source) == (
        marked(source),
        "'intro' is inside the [context] table; move top-level keys such as 'intro' above the"
        " [context] header",
    )


def test_loader_fields_cannot_be_set_by_the_file() -> None:
    source = flow('checksum = "abc"  # <-\n' + NPS)
    assert only(source) == (
        marked(source),
        "unknown key 'checksum' (it is set by cxbot, not by the flow file)",
    )


def test_dates_are_rejected() -> None:
    source = flow("description = 2024-05-01  # <-\n" + NPS)
    assert only(source) == (
        marked(source),
        "description: dates and times are not allowed in flow files; quote the text",
    )


# -- ids


def test_no_questions() -> None:
    source = flow("questions = []  # <-\n")
    assert only(source) == (
        marked(source),
        "the flow has no questions; add at least one [[questions]]",
    )


def test_duplicate_question_ids() -> None:
    source = flow(
        NPS
        + """
[[questions]]
id = "nps"  # <-
type = "text"
text = "Again?"
"""
    )
    assert only(source) == (
        marked(source),
        "duplicate question id 'nps' (also used by questions[0])",
    )


def test_question_id_too_long() -> None:
    long_id = "a" * 33
    source = flow(f'[[questions]]\nid = "{long_id}"  # <-\ntype = "nps"\ntext = "x"\n')
    assert only(source) == (
        marked(source),
        f"question id '{long_id}' is 33 characters long; ids may have at most 32 (they are sent"
        " in chat button payloads)",
    )


def test_flow_id_too_long() -> None:
    source = 'id = "' + "f" * 40 + '"  # <-\nname = "x"\n' + NPS
    line, message = only(source)
    assert line == marked(source)
    assert message.startswith("flow id 'ffff")
    assert "is 40 characters long; ids may have at most 32" in message


def test_choice_id_too_long() -> None:
    source = flow(
        f"""
        [[questions]]
        id = "pick"
        type = "choice"
        text = "Pick"
        choices = [
            {{ id = "short", label = "Short" }},
            {{ id = "{"c" * 33}", label = "Long" }},  # <-
        ]
        """
    )
    line, message = only(source)
    assert line == marked(source)
    assert message.startswith(f"choice id '{'c' * 33}' is 33 characters long")


def test_end_is_reserved() -> None:
    source = flow('[[questions]]\nid = "end"  # <-\ntype = "nps"\ntext = "x"\n')
    assert only(source) == (
        marked(source),
        "'end' cannot be a question id: `goto = \"end\"` ends a flow",
    )


# -- branches


def branch_flow(goto: str, condition: str = "") -> str:
    return flow(
        f"""
        [[questions]]
        id = "first"
        type = "yes_no"
        text = "First?"

        [[questions]]
        id = "second"
        type = "yes_no"
        text = "Second?"
        [[questions.next]]
        {condition}
        goto = "{goto}"  # <-

        [[questions]]
        id = "third"
        type = "text"
        text = "Third?"
        """
    )


def test_goto_missing_question() -> None:
    source = branch_flow("fourth", 'if = { question = "second", eq = false }')
    assert only(source) == (
        marked(source),
        "question 'second': goto 'fourth': no such question (use a later question id or \"end\")",
    )


def test_goto_backwards() -> None:
    source = branch_flow("first", 'if = { question = "second", eq = false }')
    assert only(source) == (
        marked(source),
        "question 'second': goto 'first', which comes before it; branches may only jump forward",
    )


def test_goto_itself() -> None:
    source = branch_flow("second", 'if = { question = "second", eq = false }')
    assert only(source) == (
        marked(source),
        "question 'second': goto itself; branches may only jump forward",
    )


def test_forward_goto_and_end_are_fine() -> None:
    load_flow_source(branch_flow("third", 'if = { question = "second", eq = false }'), "f")
    load_flow_source(branch_flow("end", 'if = { question = "first", eq = true }'), "f")


def test_branch_after_unconditional_branch_is_never_used() -> None:
    source = flow(
        """
        [[questions]]
        id = "first"
        type = "yes_no"
        text = "First?"
        [[questions.next]]
        goto = "second"
        [[questions.next]]  # <-
        if = { question = "first", eq = true }
        goto = "end"

        [[questions]]
        id = "second"
        type = "text"
        text = "Second?"
        """
    )
    assert only(source) == (
        marked(source),
        "question 'first': this branch is never used: an earlier branch has no `if` and is always"
        " taken",
    )


def test_branch_condition_that_can_never_hold() -> None:
    source = flow(
        NPS
        + """
[[questions.next]]
goto = "end"
[questions.next.if.not]  # <-
any = [{ question = "nps", gte = 0 }, { question = "nps", answered = false }]
"""
    )
    assert only(source) == (
        marked(source),
        "question 'nps': the branch to 'end' can never be taken: its condition can never be true",
    )


# -- conditions


def when_flow(when: str, *, extra: str = "") -> str:
    return flow(
        """
        [[questions]]
        id = "nps"
        type = "nps"
        text = "NPS?"

        [[questions]]
        id = "delivered"
        type = "yes_no"
        text = "Delivered?"

        [[questions]]
        id = "reason"
        type = "choice"
        text = "Why?"
        choices = [{ id = "price", label = "Price" }, { id = "speed", label = "Speed" }]

        [[questions]]
        id = "comment"
        type = "text"
        text = "Comment?"

        [[questions]]
        id = "follow_up"
        type = "text"
        text = "Tell us more"
        """
        + f"when = {when}  # <-\n"
        + extra
    )


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            '{ question = "nps", gte = 11 }',
            "gte = 11 can never hold: 'nps' is scored 0–10",
        ),
        ('{ question = "nps", lt = 0 }', "lt = 0 can never hold: 'nps' is scored 0–10"),
        ('{ question = "nps", eq = 12 }', "eq = 12: 12 is outside the 0–10 scale of 'nps'"),
        (
            '{ question = "nps", eq = true }',
            "eq = true: 'nps' is a nps question scored 0–10; compare a number",
        ),
        (
            '{ question = "delivered", eq = "x" }',
            "eq = \"x\": 'delivered' is a yes_no question; compare with true or false",
        ),
        (
            '{ question = "reason", eq = "quality" }',
            'eq = "quality": "quality" is not a choice of \'reason\' (choices: price, speed)',
        ),
        (
            '{ question = "reason", in = ["price", "colour"] }',
            'in = ["price", "colour"]: "colour" is not a choice of \'reason\''
            " (choices: price, speed)",
        ),
        (
            '{ question = "reason", gt = 1 }',
            "gt compares scores, but 'reason' is a choice question; use eq, ne or in",
        ),
        (
            '{ question = "comment", lt = 3 }',
            "lt compares scores, but 'comment' is a text question; use eq, ne or in",
        ),
        (
            '{ question = "comment", eq = 3 }',
            "eq = 3: 'comment' is a text question; compare with a string",
        ),
        ('{ question = "nps", in = [] }', "in = [] can never hold; list at least one value"),
        (
            '{ question = "nps" }',
            "condition on 'nps' has no operator; add one of eq, ne, lt, lte, gt, gte, in,"
            " answered, sentiment",
        ),
        ("{ all = [] }", "all = [] needs at least one condition"),
        ('{ question = "nope", answered = true }', "refers to unknown question 'nope'"),
    ],
)
def test_impossible_or_broken_conditions(when: str, message: str) -> None:
    source = when_flow(when)
    assert only(source) == (marked(source), f"question 'follow_up' when: {message}")


def test_when_referring_to_itself() -> None:
    source = when_flow('{ question = "follow_up", answered = true }')
    assert only(source) == (
        marked(source),
        "`when` of question 'follow_up' refers to 'follow_up', which is not asked before it;"
        " conditions may only use earlier answers",
    )


def test_when_referring_to_a_later_question() -> None:
    source = flow(
        """
        [[questions]]
        id = "nps"
        type = "nps"
        text = "NPS?"
        when = { question = "ces", gte = 2 }  # <-

        [[questions]]
        id = "ces"
        type = "ces"
        text = "CES?"
        """
    )
    assert only(source) == (
        marked(source),
        "`when` of question 'nps' refers to 'ces', which is not asked before it; conditions may"
        " only use earlier answers",
    )


def test_branch_condition_referring_to_a_later_question() -> None:
    source = flow(
        NPS
        + """
[[questions.next]]
if = { question = "ces", gte = 2 }  # <-
goto = "end"

[[questions]]
id = "ces"
type = "ces"
text = "CES?"
"""
    )
    assert only(source) == (
        marked(source),
        "branch condition of question 'nps' refers to 'ces', which comes after it; conditions"
        " may only use answers given so far",
    )


def test_when_that_can_never_be_true() -> None:
    source = when_flow('{ question = "nps", gte = 9, lte = 6 }')
    assert only(source) == (
        marked(source),
        "question 'follow_up' can never be asked: its `when` condition can never be true",
    )


def test_when_on_text_answer_equal_to_two_strings_can_never_be_true() -> None:
    source = when_flow(
        '{ all = [{ question = "comment", eq = "a" }, { question = "comment", eq = "b" }] }'
    )
    assert only(source) == (
        marked(source),
        "question 'follow_up' can never be asked: its `when` condition can never be true",
    )


def test_good_conditions_load() -> None:
    for when in [
        '{ question = "nps", gte = 7, lte = 8 }',
        '{ question = "delivered", eq = false }',
        '{ question = "reason", in = ["price"] }',
        '{ question = "comment", answered = true }',
        '{ not = { question = "comment", eq = "n/a" } }',
        '{ any = [{ question = "nps", lte = 6 }, { question = "delivered", eq = false }] }',
    ]:
        loaded = load_flow_source(when_flow(when), "f.toml")
        assert loaded.questions[-1].when is not None


def test_condition_as_sub_table_points_at_the_operator_line() -> None:
    source = flow(
        NPS
        + """
[[questions]]
id = "why"
type = "text"
text = "Why?"
[questions.when]
question = "nps"
gte = 20  # <-
"""
    )
    assert only(source) == (
        marked(source),
        "question 'why' when: gte = 20 can never hold: 'nps' is scored 0–10",
    )


# -- reachability


def test_question_after_unconditional_goto_is_unreachable() -> None:
    source = flow(
        """
        [[questions]]
        id = "first"
        type = "yes_no"
        text = "First?"
        [[questions.next]]
        goto = "third"

        [[questions]]  # <-
        id = "second"
        type = "text"
        text = "Second?"

        [[questions]]
        id = "third"
        type = "text"
        text = "Third?"
        """
    )
    assert only(source) == (
        marked(source),
        "question 'second' is unreachable: no branch or fall-through from the first question"
        " leads to it",
    )


def test_question_reached_only_by_a_branch_is_reachable() -> None:
    source = flow(
        """
        [[questions]]
        id = "first"
        type = "yes_no"
        text = "First?"
        [[questions.next]]
        if = { question = "first", eq = false }
        goto = "third"
        [[questions.next]]
        goto = "fourth"

        [[questions]]
        id = "second"
        type = "text"
        text = "Second?"

        [[questions]]
        id = "third"
        type = "text"
        text = "Third?"

        [[questions]]
        id = "fourth"
        type = "text"
        text = "Fourth?"
        """
    )
    assert only(source)[1].startswith("question 'second' is unreachable")


def test_fall_through_continues_past_a_question_with_when() -> None:
    source = flow(
        """
        [[questions]]
        id = "first"
        type = "nps"
        text = "First?"

        [[questions]]
        id = "second"
        type = "text"
        text = "Second?"
        when = { question = "first", lte = 6 }
        [[questions.next]]
        goto = "end"

        [[questions]]
        id = "third"
        type = "text"
        text = "Third?"
        """
    )
    # `second` ends the survey when asked, but it is skipped for scores above 6.
    assert [q.id for q in load_flow_source(source, "f.toml").questions][-1] == "third"


def test_question_after_end_branch_is_unreachable() -> None:
    source = flow(
        NPS
        + """
[[questions.next]]
goto = "end"

[[questions]]  # <-
id = "never"
type = "text"
text = "Never?"
"""
    )
    assert only(source)[0] == marked(source)


# -- scales, labels, choices


def scaled(question_type: str, scale: str) -> str:
    return flow(
        f"""
        [[questions]]
        id = "score"
        type = "{question_type}"
        text = "Score?"
        scale = {scale}  # <-
        """
    )


@pytest.mark.parametrize(
    ("question_type", "scale", "message"),
    [
        ("ces", "{ min = 7, max = 1 }", "scale min (7) must be less than max (1)"),
        ("ces", "{ min = 3, max = 3 }", "scale min (3) must be less than max (3)"),
        ("ces", "{ min = -1, max = 5 }", "scale min must not be negative (got -1)"),
        (
            "ces",
            "{ min = 1, max = 12 }",
            "scale 1–12 has 12 points; at most 11 fit on a row of buttons",
        ),
        (
            "nps",
            "{ min = 1, max = 10 }",
            "scale only applies to ces questions (nps is always 0–10, csat is always 1–5)",
        ),
        (
            "text",
            "{ min = 1, max = 5 }",
            "scale only applies to ces questions (nps is always 0–10, csat is always 1–5)",
        ),
    ],
)
def test_bad_scales(question_type: str, scale: str, message: str) -> None:
    source = scaled(question_type, scale)
    assert only(source) == (marked(source), f"question 'score': {message}")


def test_good_ces_scales() -> None:
    assert load_flow_source(scaled("ces", "{ min = 1, max = 5 }"), "f").questions[0].bounds == (
        1,
        5,
    )
    assert load_flow_source(scaled("ces", "{ min = 0, max = 10 }"), "f").questions[0].bounds == (
        0,
        10,
    )


def test_labels_on_non_score_question() -> None:
    source = flow(
        """
        [[questions]]
        id = "comment"
        type = "text"
        text = "Comment?"
        labels = { min = "Bad", max = "Good" }  # <-
        """
    )
    assert only(source) == (
        marked(source),
        "question 'comment': labels only apply to score questions (nps, ces, csat)",
    )


def test_choice_needs_two_choices() -> None:
    source = flow(
        """
        [[questions]]
        id = "pick"
        type = "choice"
        text = "Pick"
        choices = [{ id = "only", label = "Only" }]  # <-
        """
    )
    assert only(source) == (
        marked(source),
        "question 'pick': a choice question needs at least 2 choices (has 1)",
    )


def test_choice_without_choices_points_at_question() -> None:
    source = flow('[[questions]]  # <-\nid = "pick"\ntype = "choice"\ntext = "Pick"\n')
    assert only(source) == (
        marked(source),
        "question 'pick': a choice question needs at least 2 choices (has 0)",
    )


def test_duplicate_choice_ids_as_array_of_tables() -> None:
    source = flow(
        """
        [[questions]]
        id = "pick"
        type = "choice"
        text = "Pick"
        [[questions.choices]]
        id = "a"
        label = "A"
        [[questions.choices]]
        id = "a"  # <-
        label = "Also A"
        """
    )
    assert only(source) == (marked(source), "question 'pick': duplicate choice id 'a'")


def test_choices_on_non_choice_question() -> None:
    source = flow(
        """
        [[questions]]
        id = "nps"
        type = "nps"
        text = "NPS?"
        choices = [{ id = "a", label = "A" }, { id = "b", label = "B" }]  # <-
        """
    )
    assert only(source) == (
        marked(source),
        "question 'nps': choices only apply to choice questions",
    )


def test_max_length_must_be_positive() -> None:
    source = flow(
        NPS.replace('"nps"', '"comment"').replace('type = "comment"', 'type = "text"')
        + "max_length = 0  # <-\n"
    )
    assert only(source) == (marked(source), "questions[0].max_length: must be greater than 0")


def test_max_length_on_non_text_question() -> None:
    source = flow(NPS + "max_length = 200  # <-\n")
    assert only(source) == (
        marked(source),
        "question 'nps': max_length only applies to text questions",
    )


# -- locales and texts


def localized(text_line: str, *, locales: str = '["en", "es"]') -> str:
    return flow(
        f"""
        locales = {locales}

        [[questions]]
        id = "nps"
        type = "nps"
        {text_line}  # <-
        """
    )


def test_text_missing_a_listed_locale() -> None:
    source = localized('text = { en = "How likely?" }')
    assert only(source) == (
        marked(source),
        "question 'nps' text has no 'es' text (the flow's locales are en, es)",
    )


def test_text_missing_default_locale() -> None:
    source = localized('text = { es = "¿Qué tan probable?" }', locales='["es"]')
    found = problems(source)
    assert (
        marked(source),
        "question 'nps' text has no 'en' text (the flow's locales are es, en)",
    ) in found
    assert (4, "locales (es) do not include default_locale 'en'") in found


def test_text_with_unlisted_locale() -> None:
    source = localized('text = { en = "How likely?", es = "¿Qué?", fr = "Quoi ?" }')
    assert only(source) == (
        marked(source),
        "question 'nps' text has a 'fr' text, but 'fr' is not listed in locales",
    )


def test_plain_string_text_serves_every_locale() -> None:
    loaded = load_flow_source(localized('text = "How likely?"'), "f")
    assert loaded.locales == ["en", "es"]


def test_bad_locale_code() -> None:
    source = flow('default_locale = "english"  # <-\n' + NPS)
    assert only(source) == (
        marked(source),
        "'english' is not a locale code like 'en', 'es' or 'pt-BR'",
    )


def test_empty_question_text() -> None:
    source = localized('text = "  "')
    assert only(source) == (marked(source), "question 'nps' text is empty")


def test_localized_text_as_sub_table_points_at_the_locale_line() -> None:
    source = flow(
        """
        locales = ["en", "es"]

        [[questions]]
        id = "nps"
        type = "nps"
        [questions.text]
        en = "How likely?"
        es = "¿Hola {customer.nickname}?"  # <-
        """
    )
    line, message = only(source)
    assert line == marked(source)
    assert message.startswith("question 'nps' text: unknown template field {customer.nickname}")


# -- templates


def test_unknown_template_field() -> None:
    source = flow('intro = "Hi {customer.email}!"  # <-\n' + NPS)
    assert only(source) == (
        marked(source),
        "intro: unknown template field {customer.email}; use customer.first_name,"
        " customer.last_name, customer.name or context.KEY",
    )


def test_undeclared_context_key() -> None:
    source = flow(
        """
        thanks = "Thanks for {context.order_id}"  # <-

        [context]
        ticket_id = "your request"
        """
        + NPS
    )
    assert only(source) == (
        marked(source),
        "thanks: template field {context.order_id} uses context key 'order_id', which the flow's"
        " [context] table does not declare",
    )


def test_declared_context_key_is_fine() -> None:
    source = flow('intro = "About {context.ticket_id}"\n[context]\nticket_id = "your request"\n')
    loaded = load_flow_source(source + NPS, "f")
    assert loaded.context == {"ticket_id": "your request"}


def test_malformed_template_braces() -> None:
    source = flow(
        """
        [[questions]]
        id = "nps"
        type = "nps"
        text = "How likely {customer.first_name are you?"  # <-
        """
    )
    assert only(source) == (
        marked(source),
        "question 'nps' text: unclosed '{' at character 12: 'ow likely {customer.first_name'",
    )


def test_template_error_in_choice_label_of_multiline_array() -> None:
    source = flow(
        """
        [[questions]]
        id = "pick"
        type = "choice"
        text = "Pick"
        choices = [
            { id = "a", label = "A" },
            { id = "b", label = "B {oops}" },  # <-
        ]
        """
    )
    assert only(source) == (
        marked(source),
        "question 'pick' choice 'b': unknown template field {oops}; use customer.first_name,"
        " customer.last_name, customer.name or context.KEY",
    )


def test_label_template_checked() -> None:
    source = flow(NPS + 'labels = { min = "Not {x}", max = "Very" }  # <-\n')
    line, message = only(source)
    assert line == marked(source)
    assert message.startswith("question 'nps' labels.min: unknown template field {x}")


def test_bad_context_key() -> None:
    source = flow('[context]\n"Order-Id" = "x"  # <-\n' + NPS)
    line, message = only(source)
    assert line == marked(source)
    assert message.startswith("context key 'Order-Id' must use lowercase letters")


# -- many problems at once


def test_all_problems_reported_in_line_order() -> None:
    source = flow(
        """
        intro = "Hi {customer.nick}"

        [[questions]]
        id = "nps"
        type = "nps"
        text = "NPS?"
        [[questions.next]]
        if = { question = "nps", gte = 11 }
        goto = "nowhere"

        [[questions]]
        id = "nps"
        type = "csat"
        text = "CSAT?"
        """
    )
    found = problems(source)
    assert [line for line, _ in found] == [4, 11, 12, 15]
    assert [message.split(":")[0] for _, message in found] == [
        "intro",
        "question 'nps' next[0].if",
        "question 'nps'",
        "duplicate question id 'nps' (also used by questions[0])",
    ]


# -- validate_files and the catalog


def write(path: Path, source: str) -> Path:
    path.write_text(source, encoding="utf-8")
    return path


def test_validate_files_duplicate_flow_ids(tmp_path: Path) -> None:
    a = write(tmp_path / "a.toml", flow(NPS))
    b = write(tmp_path / "b.toml", "# copy\n" + flow(NPS))
    assert validate_files([a, b]) == [
        FlowProblem(str(b), 2, f"flow id 't' is already defined in {a}"),
    ]


def test_validate_files_collects_every_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.toml", flow(NPS))
    bad = write(tmp_path / "bad.toml", flow(NPS + "colour = 1\n"))
    missing = tmp_path / "missing.toml"
    found = validate_files([good, bad, missing])
    assert [str(p) for p in found] == [
        f"{bad}:8: questions[0]: unknown key 'colour'; expected one of id, type, text, optional,"
        " when, next, scale, labels, choices, max_length",
        f"{missing}: no such file",
    ]


def test_validate_files_expands_directories(tmp_path: Path) -> None:
    write(tmp_path / "one.toml", flow(NPS))
    write(tmp_path / "two.toml", flow(NPS).replace('id = "t"', 'id = "u"'))
    write(tmp_path / "notes.txt", "not a flow")
    assert validate_files([tmp_path]) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert validate_files([empty]) == [
        FlowProblem(str(empty), None, "directory has no *.toml flow files")
    ]


def test_catalog_bundled_flows() -> None:
    catalog = FlowCatalog.load()
    assert catalog.ids() == ["post_interaction", "post_purchase"]
    assert DEFAULT_FLOW_ID in catalog
    assert catalog.get("post_interaction").name == "After a support interaction"
    assert [f.id for f in catalog.flows()] == catalog.ids()


def test_catalog_unknown_flow() -> None:
    with pytest.raises(UnknownFlowError) as info:
        FlowCatalog.load().get("onboarding")
    assert (
        str(info.value) == "unknown flow 'onboarding'; known flows: post_interaction, post_purchase"
    )


def test_catalog_extra_dir_adds_and_replaces(tmp_path: Path) -> None:
    write(tmp_path / "mine.toml", flow(NPS))
    override = (
        flow(NPS).replace('id = "t"', 'id = "post_interaction"').replace("Test flow", "Our own")
    )
    write(tmp_path / "override.toml", override)
    catalog = FlowCatalog.load([tmp_path])
    assert catalog.ids() == ["post_interaction", "post_purchase", "t"]
    assert catalog.get("post_interaction").name == "Our own"
    assert catalog.get("post_interaction").path == str(tmp_path / "override.toml")


def test_catalog_same_id_twice_in_one_dir(tmp_path: Path) -> None:
    first = write(tmp_path / "a.toml", flow(NPS))
    second = write(tmp_path / "b.toml", flow(NPS))
    with pytest.raises(FlowError) as info:
        FlowCatalog.load([tmp_path])
    assert info.value.problems == [
        FlowProblem(str(second), 1, f"flow id 't' is already defined in {first}")
    ]


def test_catalog_invalid_file_raises(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", flow(NPS + "colour = 1\n"))
    with pytest.raises(FlowError) as info:
        FlowCatalog.load([tmp_path])
    assert [(p.path, p.line) for p in info.value.problems] == [(str(bad), 8)]


def test_catalog_missing_extra_dir(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as info:
        FlowCatalog.load([tmp_path / "nope"])
    assert info.value.problems == [
        FlowProblem(str(tmp_path / "nope"), None, "flow directory not found")
    ]


# -- the locator itself


LOCATOR_SOURCE = '''id = "t"
description = """
[[questions]]
id = "not a question"
"""
[[questions]]
id = "a"
text.en = "x"
[questions.when]
question = "z"
gte = 3
[[questions.next]]
goto = "end"
[[questions]]
id = "b"
choices = [
  { id = "a", label = "A" },  # one
  { id = "b", label = "B ] }" },
]
[[questions.next]]
goto = "end"
[[questions.next]]
  if = { question = "b", eq = "a" }
'''


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("description",), 2),
        (("questions", 0), 6),
        (("questions", 0, "id"), 7),
        (("questions", 0, "text", "en"), 8),
        (("questions", 0, "when"), 9),
        (("questions", 0, "when", "gte"), 11),
        (("questions", 0, "next", 0, "goto"), 13),
        (("questions", 1, "id"), 15),
        (("questions", 1, "choices", 0), 17),
        (("questions", 1, "choices", 1, "label"), 18),
        (("questions", 1, "next", 0), 20),
        (("questions", 1, "next", 1, "if", "eq"), 23),
        (("questions", 1, "missing_key"), 14),
        (("nope",), None),
    ],
)
def test_locator(loc: tuple[str | int, ...], line: int | None) -> None:
    assert SourceLocator(LOCATOR_SOURCE).line_of(loc) == line
