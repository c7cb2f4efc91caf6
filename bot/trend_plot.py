"""`cxbot report --by … --plot FILE.png|.svg`: the NPS / CES / CSAT trend as a picture.

Three panels sharing the time axis, one per score, each point with its 95% margin of error as an
error bar; points with too few answers (no margin) are drawn hollow and named in the legend, so
the picture reads without colour. matplotlib draws it off-screen (the Agg backend): no display
is needed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.errors import CxbotError
from bot.trends import Trend

FORMATS = (".png", ".svg")


def plot_trend(trend: Trend, path: Path, *, title: str = "Customer experience") -> None:
    """Write the trend to `path` (.png or .svg); CxbotError for another suffix or no data."""
    if path.suffix.lower() not in FORMATS:
        raise CxbotError(f"--plot: {path.name} must end in .png or .svg")
    if not any(p.nps.n or p.ces.n or p.csat.n for p in trend.series):
        raise CxbotError("--plot: no answers in this range, nothing to draw")
    import matplotlib

    # Its first run narrates building a font cache at INFO: not the user's business.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = [p.start for p in trend.series]
    panels = (
        ("NPS", [p.nps.score for p in trend.series], [p.nps.moe for p in trend.series], "o"),
        ("CES (1–7)", [p.ces.mean for p in trend.series], [p.ces.moe for p in trend.series], "s"),
        ("CSAT %", [p.csat.score for p in trend.series], [p.csat.moe for p in trend.series], "^"),
    )
    # Each score's whole scale, so that a small wobble does not look like a cliff.
    limits = ((-105, 105), (0.8, 7.2), (-5, 105))
    fig, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 8), constrained_layout=True)
    for ax, (name, values, margins, marker), ylim in zip(axes, panels, limits, strict=True):
        ax.set_ylim(*ylim)
        sure = [(s, v, m) for s, v, m in zip(starts, values, margins, strict=True) if m is not None]
        few = [
            (s, v)
            for s, v, m in zip(starts, values, margins, strict=True)
            if v is not None and m is None
        ]
        if sure:
            ax.errorbar(
                [s for s, _, _ in sure],
                [v for _, v, _ in sure],
                yerr=[m for _, _, m in sure],
                fmt=f"{marker}-",
                color="black",
                capsize=3,
                label=f"{name} ± 95% margin",
            )
        if few:
            ax.plot(
                [s for s, _ in few],
                [v for _, v in few],
                marker,
                markerfacecolor="white",
                color="black",
                label=f"fewer than {trend.min_n} answers",
            )
        ax.set_ylabel(name)
        ax.grid(True, linestyle=":", linewidth=0.5)
        if sure or few:
            ax.legend(loc="best", fontsize="small")
    axes[0].set_title(f"{title} by {trend.by.value} ({trend.time_zone})")
    fig.autofmt_xdate()
    try:
        fig.savefig(path)
    except OSError as exc:
        raise CxbotError(f"--plot: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
