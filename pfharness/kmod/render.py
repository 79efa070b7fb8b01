"""Render the pf_probe module sources and their kbuild Makefile from the Jinja templates."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import assets
from ..errors import PfhError
from ..results import output_format
from ..values import LETTERS, Module

if TYPE_CHECKING:
    import jinja2

MODULES = LETTERS

_RESIDUE = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")


class Profile(str, enum.Enum):
    """Which modules the templates make (docs/modules.md): the full ones (`run`, `build`, `study`: records file,
    region table, folded plot, follow=1) or the course's (`dist`: only what the assignment asks)."""

    full = "full"
    course = "course"

    def template(self, name: str) -> str:
        """The template of module `name` in this profile."""
        return f"{name}.c.j2" if self is Profile.full else f"{self.value}/{name}.c.j2"


class TemplateResidue(PfhError):
    """A template that does not render, or leaves Jinja syntax in the file (a template bug)."""


@dataclass(frozen=True)
class RenderedSources:
    """The files one render wrote."""

    out_dir: Path  # where they are
    sources: dict[str, Path] = field(default_factory=dict)  # module letter -> pf_probe_<X>.c (or its other name)
    makefile: Path = Path("Makefile")  # the kbuild Makefile

    def module_names(self) -> list[str]:
        return [p.stem for p in self.sources.values()]


def module_name(letter: str) -> str:
    return Module(letter).name


def normalize_modules(modules: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Upper-case, de-duplicate and check module letters; all three when none given."""
    if not modules:
        return MODULES
    return tuple(sorted({Module.parse(m).letter for m in modules}))


def _compiled_templates() -> jinja2.BytecodeCache | None:
    """Jinja's cache of compiled templates in pfharness's cache (checked against each template's source): every
    run renders the modules to see whether they changed, and compiling them costs ~0.07 s of it. None (compile
    every time) when the cache cannot be made."""
    try:
        directory = assets.cache_dir() / "jinja"
        directory.mkdir(exist_ok=True)
    except (PfhError, OSError):
        return None
    import jinja2  # noqa: PLC0415 - Jinja is loaded only to render (kbuild's unchanged-build check needs none)

    return jinja2.FileSystemBytecodeCache(str(directory))


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """A Jinja environment that fails on any undefined name."""
    import jinja2  # noqa: PLC0415 - see _compiled_templates

    return jinja2.Environment(
        bytecode_cache=_compiled_templates(),
        loader=jinja2.FileSystemLoader(
            [str(template_dir or assets.kmod_templates()), str(assets.makefile_template().parent)]
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def template_context() -> dict:
    """The render variables: the output format's constants and line shapes (results/output_format.py)."""
    return output_format.template_context()


def _where(exc: jinja2.TemplateError) -> str:
    """file:line of a template error: from a syntax error, or from the template frame of the traceback
    (Jinja rewrites it so that a render-time error points into the template)."""
    name = getattr(exc, "filename", None) or getattr(exc, "name", None)
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            name, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    return f"{name or 'template'}:{line}" if line else str(name or "template")


def _tidy(text: str, what: str) -> str:
    """Collapse runs of blank lines left by includes; refuse template residue."""
    text = re.sub(r"\n{3,}", "\n\n", text).lstrip("\n")
    match = _RESIDUE.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        raise TemplateResidue(f"{what}:{line}: template syntax left in the rendered file")
    return text


def render_module(letter: str, env: jinja2.Environment | None = None, profile: Profile = Profile.full) -> str:
    """The C source of pf_probe_<letter> in `profile`."""
    import jinja2  # noqa: PLC0415 - see _compiled_templates

    env = env or environment()
    name = module_name(letter)
    try:
        text = env.get_template(profile.template(name)).render(template_context())
    except jinja2.TemplateError as exc:
        raise TemplateResidue(f"{_where(exc)}: the module template is broken: {exc.message}") from exc
    return _tidy(text, f"{name}.c")


def render_makefile(
    modules: tuple[str, ...],
    kernel_release: str | None,
    env: jinja2.Environment | None = None,
    fallback_release: str | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """The kbuild Makefile; without `kernel_release` it builds for the running kernel
    (falling back to `fallback_release` when that has no headers). `names` gives a module another name."""
    import jinja2  # noqa: PLC0415 - see _compiled_templates

    env = env or environment()
    objects = [f"{(names or {}).get(m, module_name(m))}.o" for m in modules]
    try:
        text = env.get_template(assets.makefile_template().name).render(
            objects=objects, kernel_release=kernel_release, fallback_release=fallback_release
        )
    except jinja2.TemplateError as exc:
        raise TemplateResidue(f"{_where(exc)}: the Makefile template is broken: {exc.message}") from exc
    return _tidy(text, "Makefile")


def _write_if_changed(path: Path, text: str) -> None:
    """Write only when the content differs, so make's timestamps stay meaningful."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def render(
    out_dir: Path,
    modules: list[str] | tuple[str, ...] | None = None,
    kernel_release: str | None = None,
    template_dir: Path | None = None,
    fallback_release: str | None = None,
    *,
    names: Mapping[str, str] | None = None,
    profile: Profile = Profile.full,
) -> RenderedSources:
    """Write pf_probe_<X>.c for each module (of `profile`) and the kbuild Makefile into `out_dir`. `names`
    (letter -> name) builds a module under another name (<name>.c, <name>.ko, /proc/<name>/, "<name>: " lines):
    the oracle."""
    letters = normalize_modules(modules)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment(template_dir)
    sources = {}
    for letter in letters:
        path = out_dir / f"{(names or {}).get(letter, module_name(letter))}.c"
        _write_if_changed(path, render_module(letter, env, profile))
        sources[letter] = path
    makefile = out_dir / "Makefile"
    _write_if_changed(makefile, render_makefile(letters, kernel_release, env, fallback_release, names))
    return RenderedSources(out_dir=out_dir, sources=sources, makefile=makefile)
