"""The flows a running cxbot knows: the bundled ones plus an admin's own flow directories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from bot.errors import FlowError, FlowProblem, UnknownFlowError
from bot.flow_loader import duplicate_flow_problem, load_flow_source, read_flow_text
from bot.flow_model import Flow

DEFAULT_FLOW_ID = "post_interaction"  # the bundled flow used when none is configured


class FlowCatalog:
    """Loaded, validated flows by id.

    `load()` reads the bundled flows (the `flows` package) and then each extra directory in
    order; a flow in an extra directory replaces a bundled (or earlier directory's) flow of the
    same id, which is how an admin customizes `post_interaction`. The same id twice within one
    directory is an error. Any invalid file makes `load()` raise `FlowError` listing the problems
    of every file, so a bad edit is reported whole at start-up instead of one flow going missing.
    """

    def __init__(self, flows: Iterable[Flow]) -> None:
        self._flows: dict[str, Flow] = {}
        for flow in flows:
            self._flows[flow.id] = flow

    @classmethod
    def load(cls, extra_dirs: Sequence[Path] = ()) -> FlowCatalog:
        """Load the bundled flows plus every `*.toml` in `extra_dirs` (later ones win)."""
        problems: list[FlowProblem] = []
        flows: dict[str, Flow] = {}
        bundled = resources.files("flows")
        layers: list[list[Traversable | Path]] = [_toml_files(bundled)]
        for directory in extra_dirs:
            if not directory.is_dir():
                problems.append(FlowProblem(str(directory), None, "flow directory not found"))
                continue
            layers.append(list(_toml_files(directory)))
        for files in layers:
            in_this_dir: dict[str, Flow] = {}
            for entry in files:
                try:
                    flow = _load(entry)
                except FlowError as exc:
                    problems += exc.problems
                    continue
                if flow.id in in_this_dir:
                    problems.append(duplicate_flow_problem(flow, in_this_dir[flow.id]))
                    continue
                in_this_dir[flow.id] = flow
            flows.update(in_this_dir)
        if problems:
            raise FlowError(problems)
        return cls(flows.values())

    def get(self, flow_id: str) -> Flow:
        """The flow with this id; `UnknownFlowError` naming the known ids when there is none."""
        try:
            return self._flows[flow_id]
        except KeyError:
            known = ", ".join(self.ids()) or "none"
            raise UnknownFlowError(f"unknown flow '{flow_id}'; known flows: {known}") from None

    def find(self, flow_id: str) -> Flow | None:
        """The flow with this id, or None."""
        return self._flows.get(flow_id)

    def ids(self) -> list[str]:
        """The ids of all flows, sorted."""
        return sorted(self._flows)

    def flows(self) -> list[Flow]:
        """All flows, sorted by id."""
        return [self._flows[i] for i in self.ids()]

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self._flows

    def __len__(self) -> int:
        return len(self._flows)


def _toml_files(directory: Traversable | Path) -> list[Traversable | Path]:
    # Sorted so that problems and "already defined in" messages are the same on every machine.
    found = [e for e in directory.iterdir() if e.name.endswith(".toml") and e.is_file()]
    return sorted(found, key=lambda e: e.name)


def _load(entry: Traversable | Path) -> Flow:
    if isinstance(entry, Path):
        return load_flow_source(read_flow_text(entry), str(entry))
    # A bundled file inside an installed package: a Traversable, maybe not on disk (zip).
    try:
        text = entry.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(
            [FlowProblem(str(entry), None, f"cannot read bundled flow: {exc}")]
        ) from None
    return load_flow_source(text, str(entry))
