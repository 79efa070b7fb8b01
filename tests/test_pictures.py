"""Pictures (PNG, SVG) as a reader sees them: distinct readable colours, zooms on the run's clock with page labels
to read, and no text drawn into the legend, the axes or off the canvas (measured on the rendered figure)."""

from __future__ import annotations

import csv
import itertools
import math

import pytest
from conftest import DATA
from matplotlib.colors import to_rgb
from matplotlib.text import Text

from pfharness.plot import Drawable, PlotRequest, draw
from pfharness.results import output_format as fmt
from pfharness.results import picture_style, pictures
from pfharness.results.records_file import FaultRecord, ProcessEntry, Region

RUNS = DATA / "runs"  # records.csv and regions.csv of real runs of B (pfharness run -m B -- sort ... / sysbench)


def _linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    r, g, b = map(_linear, rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def lab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    r, g, b = map(_linear, rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def delta_e(a: str, b: str) -> float:
    """CIE76 colour difference: about 2.3 is just noticeable; 25 and more read as different colours."""
    return math.dist(lab(to_rgb(a)), lab(to_rgb(b)))


def lch(colour: str) -> tuple[float, float, float]:
    """Lightness, chroma and hue angle (degrees) in CIE L*a*b*."""
    lightness, a, b = lab(to_rgb(colour))
    return lightness, math.hypot(a, b), math.degrees(math.atan2(b, a)) % 360


def shades_of_one_hue(a: str, b: str) -> bool:
    """Two colours of one hue (within 15 degrees) told apart mostly by lightness: tab20's light/dark pairs."""
    (la, ca, ha), (lb, cb, hb) = lch(a), lch(b)
    hue_apart = min(abs(ha - hb), 360 - abs(ha - hb))
    return ca > 15 and cb > 15 and hue_apart < 15 and abs(la - lb) >= 10


def test_the_palette_has_no_look_alikes_and_reads_on_the_bands():
    colours = [*picture_style.PALETTE, picture_style.OTHER_COLOR]
    assert len(picture_style.PALETTE) == pictures.LEGEND_MAX >= 10
    closest = min(itertools.combinations(colours, 2), key=lambda p: delta_e(*p))
    assert delta_e(*closest) >= 25, closest
    assert not [p for p in itertools.combinations(colours, 2) if shades_of_one_hue(*p)]
    for colour in picture_style.PALETTE:
        for band in picture_style.BAND_BACKGROUNDS:
            assert contrast(to_rgb(colour), band) >= 3.0, (colour, band)  # WCAG's minimum for graphics
    # the checks see what the issue saw in tab20: [anon] blue and light blue, [heap] orange and light orange;
    # and a light colour on the band background
    assert shades_of_one_hue("#1f77b4", "#aec7e8") and shades_of_one_hue("#ff7f0e", "#ffbb78")
    assert contrast(to_rgb("#ffbb78"), picture_style.BAND_BACKGROUNDS[0]) < 2


def real_run(name: str) -> Drawable:
    """A recorded run from its CSVs (what `pfharness run` wrote beside the guest's binary files)."""
    with (RUNS / name / "regions.csv").open() as f:
        regions = [
            Region(int(r["index"]), r["kind"], int(r["start"], 16), int(r["end"], 16), int(r["faults"]), r["name"])
            for r in csv.DictReader(f)
        ]
    with (RUNS / name / "records.csv").open() as f:
        records = [
            FaultRecord(
                int(r["time_ns"]),
                int(r["address"], 16),
                int(r["pid"]),
                int(r["region"]) if r["region"] else fmt.REGION_NONE,
                fmt.ACCESS_KINDS.index(r["access"]),
                fmt.RECORD_FLAG_MAJOR if r["major"] == "1" else 0,
            )
            for r in csv.DictReader(f)
        ]
    program = name.partition("-")[0]
    return Drawable(records, regions, [], [program], "6.1.0-57-amd64", records[0].tgid, program)


def figure_of(run: Drawable, request: PlotRequest, monkeypatch) -> object:
    """The figure `pfharness plot` draws for `request` (the one write_picture saves)."""
    figures = []
    monkeypatch.setattr(pictures, "write_picture", lambda picture, path, kind: figures.append(picture) or path)
    draw(run, request, lambda _line: None)
    [picture] = figures
    return pictures.build_figure(picture)


def test_a_zoom_labels_its_pages_and_keeps_the_runs_clock(tmp_path, monkeypatch):
    run = real_run("sysbench-cpu-B")
    lo, hi = 0x7F107C694, 0x7F107C7B0  # the 284 pages of its biggest [anon] region
    fig = figure_of(run, PlotRequest(page_range=f"{lo:#x}-{hi:#x}", png=tmp_path / "z.png", ascii=False), monkeypatch)
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [int(t.get_text(), 16) for t in ax.get_yticklabels()]
    selected = [r for r in run.records if lo <= r.page <= hi]
    biggest = [p for p in labels if min(r.page for r in selected if r.region == 50) <= p <= hi]
    assert len(biggest) >= 6, labels  # over the band of 527 faults, not just its two ends
    inner = biggest[1:-2]  # its round pages: multiples of one power of two, evenly spaced
    [step] = {b - a for a, b in itertools.pairwise(inner)}
    assert step & (step - 1) == 0 and all(p % step == 0 for p in inner), [hex(p) for p in inner]
    ticks = ax.get_yticks()  # and each label sits where its page's marks are drawn
    assert list(ticks) == sorted(ticks)
    t0 = min(r.t_ns for r in run.records)
    first = min(r.t_ns for r in selected)
    assert ax.get_xlabel() == "time since the run's first fault (s)"
    left, right = ax.get_xlim()
    assert left < (first - t0) / 1e9 < left + 0.02 * (right - left) and right > 10  # the run's clock, not 0
    [_line] = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [(first - t0) / 1e9] * 2]
    assert ax.get_legend().get_texts()[-1].get_text() == f"first selected fault: {(first - t0) / 1e9:.3f} s"
    whole = figure_of(run, PlotRequest(png=tmp_path / "w.png", ascii=False), monkeypatch)
    assert whole.axes[0].get_xlabel() == "time since the first fault (s)" and whole.axes[0].get_xlim()[0] < 0


def drawn_texts(fig) -> list[Text]:
    """Every text the figure draws (tick labels only where a tick is shown and its axis shows labels), with words
    in it; of every axes (a picture with panels has several)."""
    fig.canvas.draw()
    hidden = set()
    for ax in fig.axes:
        for axis, (vlo, vhi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            hidden |= {id(t.label1) for t in axis.get_major_ticks() if not vlo <= t.get_loc() <= vhi}
            hidden |= {id(t.label2) for t in axis.get_major_ticks()} | {id(t.label1) for t in axis.get_minor_ticks()}
            hidden |= {id(t.label1) for t in axis.get_major_ticks() if not t.label1.get_visible()}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def assert_no_text_collides(fig) -> None:
    """No legend over an axes; no text off the canvas, in an axes or a legend not its own; no two texts overlap.
    Every axes of the figure (panels) and every legend (a panel's own) are checked."""
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    inside_legend = {id(t) for legend in legends for t in [*legend.get_texts(), legend.get_title()]}
    legend_boxes = [legend.get_window_extent(renderer) for legend in legends]
    axes_boxes = [ax.get_window_extent(renderer) for ax in fig.axes]
    for legend_box, axes_box in itertools.product(legend_boxes, axes_boxes):
        assert not legend_box.overlaps(axes_box), (legend_box, axes_box)
    for a, b in itertools.combinations(legend_boxes, 2):
        assert not a.overlaps(b), (a, b)
    texts = drawn_texts(fig)
    for text in texts:
        box = text.get_window_extent(renderer)
        what = (text.get_text(), box)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y0 >= 0 and box.y1 <= fig.bbox.height, what
        if id(text) not in inside_legend:
            for legend_box in legend_boxes:
                assert not box.overlaps(legend_box), (what, legend_box)
            for axes_box in axes_boxes:
                assert not box.overlaps(axes_box), (what, axes_box)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):  # nor into each other (page labels, names)
        assert not box_a.overlaps(box_b), (a, box_a, b, box_b)


@pytest.mark.parametrize(
    "name, request_args",
    [
        ("sort-B", {}),
        ("sort-B", {"page_range": "[anon]"}),
        ("sysbench-cpu-B", {}),
        ("sysbench-cpu-B", {"color_by": "pid"}),
        ("sysbench-cpu-B", {"page_range": "libcrypto.so.3"}),
        ("sysbench-cpu-B", {"scale": "linear"}),
    ],
)
def test_no_label_runs_into_the_legend_on_real_runs(name, request_args, tmp_path, monkeypatch):
    request = PlotRequest(png=tmp_path / "p.png", ascii=False, **request_args)
    assert_no_text_collides(figure_of(real_run(name), request, monkeypatch))


def stress_run(bands: int, name_length: int, pids: int) -> Drawable:
    """Many bands with long names (the bands' labels list their members), many processes with long names."""
    regions, records = [], []
    for i in range(bands):
        start = 0x7F0000000000 + i * 0x1000000
        name = (f"lib{i}-" + "verylongname" * 10)[:name_length]
        regions.append(Region(i, "file", start, start + 0x100000, 20 + i, name))
        records += [
            FaultRecord(j * 1000 + i, start + j * 4096 * 7, 100 + (i + j) % pids, i, 0, 0) for j in range(20 + i)
        ]
    processes = [ProcessEntry(100 + p, 1, 10, f"worker-thread-{p:02}") for p in range(pids)]
    return Drawable(records, regions, processes, ["sh", "-c", "x " * 100], "6.12.57+deb13-rt-amd64", 100, "sh")


@pytest.mark.parametrize(
    "case",
    [(40, 80, 1, "region"), (15, 200, 30, "pid"), (3, 60, 2, "region"), (20, 24, 12, "region")],
)
def test_no_label_runs_into_the_legend_under_stress(case, tmp_path, monkeypatch):
    bands, name_length, pids, color_by = case  # bands asked for (at most MAX_BANDS are drawn), name length, pids
    run = stress_run(bands, name_length, pids)
    request = PlotRequest(png=tmp_path / "p.png", ascii=False, color_by=color_by)
    fig = figure_of(run, request, monkeypatch)
    assert_no_text_collides(fig)
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == pictures.BAND_LABEL_GID]
    assert all(label.endswith(")") for label in labels), labels  # cut names keep their fault count
    assert name_length <= 24 or any("...  (" in label for label in labels), labels


def test_a_lone_fault_beside_thousands_is_seen(monkeypatch, tmp_path):
    """Marks are translucent so that dense places look dense; one alpha for the picture made the lone faults
    of a big group nearly white on the band (25/sqrt(20000)). Measured on the rendered pixels."""
    import numpy as np

    regions = [
        Region(0, "anon", 0x7F0000000000, 0x7F0000100000, 20000, "[anon]"),
        Region(1, "anon", 0x7F8000000000, 0x7F8000001000, 1, "[anon]"),
        Region(2, "file", 0x7FFFF7DD3000, 0x7FFFF7FA8000, 2, "libc.so.6"),
    ]
    records = [FaultRecord(i * 1000, 0x7F0000000000 + (i % 256) * 4096, 7, 0, 1, 0) for i in range(20000)]
    records += [FaultRecord(5_000_000, 0x7F8000000000, 7, 1, 1, 0)]
    records += [FaultRecord(9_000_000 + i, 0x7FFFF7DD3000 + i * 4096 * 99, 7, 2, 0, 0) for i in range(2)]
    fig = figure_of(
        Drawable(records, regions, [], ["walk"], "6", 7, "walk"), PlotRequest(png=tmp_path / "p.png"), monkeypatch
    )
    fig.canvas.draw()
    ax = fig.axes[0]
    image = np.asarray(fig.canvas.buffer_rgba())[:, :, :3] / 255
    lone = [t.get_position()[1] for t in ax.texts if t.get_gid() == pictures.BAND_LABEL_GID and "(1)" in t.get_text()]
    lone += [t.get_position()[1] for t in ax.texts if t.get_gid() == pictures.BAND_LABEL_GID and "(2)" in t.get_text()]
    checked = 0
    for collection in ax.collections:
        for x, y in collection.get_offsets():
            if not any(abs(y - middle) < 1 for middle in lone):
                continue
            px, py = ax.transData.transform((x, y))
            row, col = round(float(fig.bbox.height - py)), round(float(px))
            window = image[row - 2 : row + 3, col - 2 : col + 3].reshape(-1, 3)
            darkest = min(window, key=luminance)
            background = max(window, key=luminance)  # the band around the mark
            assert contrast(tuple(darkest), tuple(background)) >= 2.5, (x, y, darkest)
            checked += 1
    assert checked == 3


def c_run() -> tuple[list[list[FaultRecord]], list[Region]]:
    """pf_probe_C's segments as iperf3's run had them (study/iperf3-C.png): a code segment of four programs'
    tiny bands (one fault each) beside one of four faults, a data segment alike, and libraries of hundreds."""
    names = ["dash", "sleep", "iperf3", "iperf3", "libc.so.6", "libcrypto.so.3", "[heap]", "[stack]"]
    kinds = ["code", "code", "code", "code", "file", "file", "heap", "stack"]
    bases = [0x55C8F93A8, 0x55ED3138F, 0x56026355E, 0x5637389B7, 0x7F267226F6, 0x7F128472F, 0x56376B0B3, 0x7FFFFFFFE]
    regions = [
        Region(i, k, b << 12, (b + 64) << 12, 1, n) for i, (n, k, b) in enumerate(zip(names, kinds, bases, strict=True))
    ]
    code = [FaultRecord(t, (bases[0] + t % 19) << 12, 7, 0, 2, 0) for t in range(4)]
    code += [FaultRecord(10 + i, bases[i] << 12, 7, i, 2, 0) for i in (1, 2, 3)]
    data = [FaultRecord(20 + i, (bases[i] + 1 + i) << 12, 7, i, 1, 0) for i in range(4)]
    other = [FaultRecord(100 + t, (bases[4 + t % 4] + t % 50) << 12, 7, 4 + t % 4, 0, 0) for t in range(600)]
    return [code, data, other], regions


def test_c_panels_keep_every_label_apart():
    """study/iperf3-C.png's code panel drew the names and page labels of its one-fault bands over each other
    (a band one row of a short panel tall): in panels a band is at least PANEL_MIN_ROWS tall, every panel has its
    legend, and no text runs into another, a legend or an axes."""
    segments, regions = c_run()
    panels = [
        pictures.Picture(records=r, regions=regions, title="", subtitle=f"segment {i}: {len(r)} faults", t0_ns=0)
        for i, r in enumerate(segments)
    ]
    fig = pictures.build_panels(panels, "pf_probe_C's three plots")
    assert len(fig.axes) == 3 and all(ax.get_legend() is not None for ax in fig.axes)
    assert len({ax.get_xlim() for ax in fig.axes}) == 1  # one time axis
    assert_no_text_collides(fig)
    assert any(t.get_text() == pictures.FOLDED_CAPTION for t in fig.texts)


def test_the_trend_panels_under_a_real_run(tmp_path, monkeypatch):
    """The scatter with faults per second and the distinct pages touched so far under it, on its time axis."""
    run = real_run("sysbench-cpu-B")
    figures: list[object] = []
    monkeypatch.setattr(pictures, "write_figure", lambda fig, path, kind: figures.append(fig) or path)
    draw(run, PlotRequest(png=tmp_path / "t.png", ascii=False, trends=True), lambda _line: None)
    [fig] = figures
    scatter, rate, growth = fig.axes
    assert_no_text_collides(fig)
    assert rate.get_xlim() == growth.get_xlim() == scatter.get_xlim()
    assert growth.get_xlabel() == "time since the first fault (s)"
    pages = {(r.tgid, r.address >> 12) for r in run.records}
    [line] = growth.get_lines()
    assert line.get_ydata()[-1] == len(pages)  # every distinct page once
    assert f"{len(pages):,} pages" in growth.get_title(loc="left")
    assert any(t.get_text() == pictures.FOLDED_CAPTION for t in fig.texts)


def test_trends_count_the_rate_and_first_touches():
    """Against hand counts: 3 faults in the first of two halves, 1 in the second; pages 1, 2, 1 again, 3: three
    distinct, first touched at 0, 1 and 3 s; the same page of another process is another page."""
    from pfharness.results import trend_pictures

    t = [0, 10**9, 2 * 10**9, 3 * 10**9, 3 * 10**9]
    pages = [1, 2, 1, 3, 3]
    tgids = [5, 5, 5, 5, 6]
    records = [FaultRecord(ti, p << 12, g, 0, 0, 0) for ti, p, g in zip(t, pages, tgids, strict=True)]
    found = trend_pictures.trends(records)
    assert found.pages == 4 and list(found.first_touch) == [0.0, 1.0, 3.0, 3.0]
    assert sum(found.per_second) * found.bin_seconds == pytest.approx(5)
    assert found.bin_edges[0] == 0.0 and found.bin_edges[-1] == 3.0


def test_trends_count_a_huge_page_fault_as_its_512_pages():
    """As the study's MiB column counts them: a huge fault adds the 512 pages of its 2 MiB block at once, a small
    fault in that block before or after adds nothing more, a small fault in another block adds 1."""
    from pfharness.results import output_format as fmt
    from pfharness.results import trend_pictures

    block = 0x7F0000000000  # 2 MiB aligned
    huge = fmt.RECORD_FLAG_HUGE
    records = [
        FaultRecord(0, block + 5 * 4096, 7, 0, 0, 0),  # small, then covered by the huge fault: not counted
        FaultRecord(10**9, block + 4096, 7, 0, 0, huge),  # the block: 512
        FaultRecord(2 * 10**9, block + 9 * 4096, 7, 0, 0, 0),  # inside the huge block: nothing more
        FaultRecord(3 * 10**9, block + (1 << 21), 7, 0, 0, 0),  # the next block: 1
    ]
    found = trend_pictures.trends(records)
    assert found.pages == 513
    assert list(found.first_touch) == [1.0, 3.0] and list(found.touched) == [512, 513]
