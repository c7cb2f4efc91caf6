"""The flow loader on any input: a flow loads whole, or every problem is reported with the file
and a line inside it — never another exception, never half a flow."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import FlowError
from bot.flow_loader import load_flow_source
from bot.flow_model import Flow

BUNDLED = (Path(__file__).resolve().parents[2] / "flows" / "post_interaction.toml").read_text()
LINES = BUNDLED.splitlines()
PATH = "edited.toml"


def _loads_whole_or_reports(text: str) -> None:
    try:
        flow = load_flow_source(text, PATH)
    except FlowError as exc:
        assert exc.problems, "a FlowError names at least one problem"
        last = max(1, text.count("\n") + 1)
        for problem in exc.problems:
            assert problem.path == PATH and problem.message
            assert problem.line is None or 1 <= problem.line <= last, problem
    else:
        assert isinstance(flow, Flow) and flow.questions and flow.source == text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_loads_whole_or_is_reported(text: str) -> None:
    _loads_whole_or_reports(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["drop", "repeat", "replace", "insert"]),
            st.integers(min_value=0, max_value=len(LINES) - 1),
            st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_an_edited_bundled_flow_loads_whole_or_is_reported(
    edits: list[tuple[str, int, str]],
) -> None:
    """The realistic case: an admin's edit of a valid flow (a line dropped, repeated, replaced
    or added)."""
    lines = list(LINES)
    for kind, index, text in edits:
        index = min(index, len(lines) - 1) if lines else 0
        if kind == "drop" and lines:
            del lines[index]
        elif kind == "repeat" and lines:
            lines.insert(index, lines[index])
        elif kind == "replace" and lines:
            key = lines[index].split("=", 1)[0]
            lines[index] = f"{key}= {text!r}" if "=" in lines[index] else text
        else:
            lines.insert(index, text)
    _loads_whole_or_reports("\n".join(lines) + "\n")


def test_the_bundled_flow_itself_loads() -> None:
    _loads_whole_or_reports(BUNDLED)


def test_a_bare_carriage_return_is_not_a_line_of_its_own() -> None:
    # Found by the property above: "at end of file" named line 2 of a one-line text.
    _loads_whole_or_reports("'\r0")
