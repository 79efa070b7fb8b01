"""How a picture looks: its colours, the page ticks inside a band, and labels cut to the room they have.

Pure helpers for results/pictures.py (no matplotlib import here but the renderer it passes in).
"""

from __future__ import annotations

from typing import Any

# The groups' colours, most faults first. tab20 paired a dark and a light shade of each hue ([anon] dark
# blue beside the program light blue) and its light shades vanished on the grey bands. These are matplotlib's
# tab10 hues without its grey (the "other" groups' colour), olive and cyan, with orange and green darkened
# (ColorBrewer Dark2's orange, forest green) and olive, teal and black added. Every colour has a contrast of
# 3:1 or more against both band backgrounds (WCAG's minimum for graphics), no two are closer than 29 in CIE76
# delta E, and no two of one hue differ mostly in lightness (tests/test_pictures.py computes all three). The
# first ones are tab10's, the most distinct hues, for the biggest groups.
PALETTE = (
    "#1f77b4",  # blue
    "#d95f02",  # orange
    "#228b22",  # green
    "#d62728",  # red
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e7298a",  # magenta
    "#808000",  # olive
    "#008b8b",  # teal
    "#000000",  # black
)
OTHER_COLOR = "#737373"  # the groups past the palette, one grey ("N more" in the legend)
BAND_BACKGROUNDS = ((0.97, 0.97, 0.97), (0.93, 0.93, 0.96))  # bands alternate between these two
TICK_SPACING_PX = 48  # a page label inside a band about every this many pixels
TICK_CLEARANCE_PX = 14  # no label inside a band closer than this to its first or last page's label


def page_ticks(pmin: int, pmax: int, height_px: float) -> list[int]:
    """Round pages strictly inside (pmin, pmax) to label a band `height_px` tall: multiples of a power of two
    (so that their hex ends in zeros), about TICK_SPACING_PX apart, none too close to the band's ends."""
    span = pmax - pmin
    wanted = int(height_px // TICK_SPACING_PX)
    if span < 2 or wanted < 2:
        return []
    step = 1
    while step * wanted < span:
        step *= 2
    clearance = TICK_CLEARANCE_PX * span / height_px
    first = (pmin // step + 1) * step
    return [p for p in range(first, pmax, step) if pmin + clearance <= p <= pmax - clearance]


def fit_text(text: Any, renderer: Any, max_px: float, keep: str = "") -> None:
    """Cut a matplotlib Text's string (ending in "...", then `keep`) until it is at most `max_px` wide."""
    full = text.get_text()
    head = full[: len(full) - len(keep)] if keep and full.endswith(keep) else full
    tail = keep if keep and full.endswith(keep) else ""
    cut = len(head)
    while cut > 0 and text.get_window_extent(renderer).width > max_px:
        cut -= 1
        text.set_text(head[:cut].rstrip() + "..." + tail)
    if text.get_window_extent(renderer).width > max_px:
        text.set_text("")  # not even "..." fits: no label rather than one drawn over its neighbour
