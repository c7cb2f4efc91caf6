"""What the engine tells adapters besides text: the question type and which answer was taken."""

from __future__ import annotations

from adapters.console import MemoryChannel
from bot.app import App


async def test_questions_carry_their_type_and_accepted_answers_are_tagged(app: App) -> None:
    ch = MemoryChannel(app.engine.handle, user_id="ann")
    ch.receive(await app.engine.begin(channel="console", user_id="ann"))
    intro, nps = ch.pop_all()
    assert (intro.question_type, nps.question_type) == (None, "nps")
    assert intro.answered is None and nps.answered is None

    (follow_up,) = await ch.press("a:nps:9")
    assert follow_up.answered == "nps" and follow_up.question_type == "text"
    (ces,) = await ch.push("")  # optional question skipped: closed too
    assert (ces.answered, ces.question_type) == ("liked_most", "ces")

    hint = await ch.push("banana")  # not accepted: no tag
    assert [m.answered for m in hint] == [None]
    stale = await ch.press("a:nps:3")  # an old keyboard: not accepted either
    assert [m.answered for m in stale] == [None, None]
    (csat,) = await ch.push("7")
    assert (csat.answered, csat.question_type) == ("ces", "csat")
