"""The memory-management settings the guest copies from the host (pfharness/mm_settings.py): read
from a machine's sysfs and procfs (a fake root here), chosen by --thp, carried on the kernel command
line to vm/init.sh, and read back from a transcript's boot note by `parse`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pfharness import mm_settings
from pfharness.errors import UsageError
from pfharness.results import notes

INIT = Path(__file__).resolve().parent.parent / "vm" / "init.sh"


def fake_machine(root: Path, *, enabled="always [madvise] never", mthp=None) -> Path:
    thp = root / "sys/kernel/mm/transparent_hugepage"
    (thp / "khugepaged").mkdir(parents=True)
    (thp / "enabled").write_text(enabled + "\n")
    (thp / "defrag").write_text("always defer [defer+madvise] madvise never\n")
    (thp / "shmem_enabled").write_text("always within_size advise [never] deny force\n")
    (thp / "use_zero_page").write_text("1\n")
    (thp / "khugepaged/defrag").write_text("1\n")
    (thp / "khugepaged/max_ptes_none").write_text("511\n")
    vm = root / "proc/sys/vm"
    vm.mkdir(parents=True)
    (vm / "overcommit_memory").write_text("0\n")
    (vm / "overcommit_ratio").write_text("50\n")
    (vm / "max_map_count").write_text("65530\n")
    for size, (enabled_value, shmem_value) in (mthp or {}).items():
        d = thp / f"hugepages-{size}kB"
        d.mkdir()
        (d / "enabled").write_text(enabled_value + "\n")
        (d / "shmem_enabled").write_text(shmem_value + "\n")
    return root


def test_selected_word_of_a_choice_file():
    assert mm_settings.selected("always [madvise] never\n") == "madvise"
    assert mm_settings.selected("511\n") == "511"


def test_read_takes_every_key_with_its_selected_value(tmp_path):
    settings = mm_settings.read(fake_machine(tmp_path))
    assert settings.fields() == {
        "thp/enabled": "madvise",
        "thp/defrag": "defer+madvise",
        "thp/shmem_enabled": "never",
        "thp/use_zero_page": "1",
        "thp/khugepaged/defrag": "1",
        "thp/khugepaged/max_ptes_none": "511",
        "vm/overcommit_memory": "0",
        "vm/overcommit_ratio": "50",
        "vm/max_map_count": "65530",
    }
    assert [k for k, _ in settings.values] == list(mm_settings.KEYS)


def test_a_kernel_without_thp_leaves_the_thp_keys_out(tmp_path):
    fake_machine(tmp_path)
    shutil.rmtree(tmp_path / "sys")
    left = set(mm_settings.read(tmp_path).fields())
    assert left == {"vm/overcommit_memory", "vm/overcommit_ratio", "vm/max_map_count"}


def test_per_size_thp_is_copied_only_away_from_the_default(tmp_path):
    fake_machine(
        tmp_path,
        mthp={
            2048: ("always [inherit] madvise never", "always [inherit] within_size advise never"),  # default
            64: ("always inherit [madvise] never", "always inherit within_size advise [never]"),  # enabled set
            16: ("always inherit madvise [never]", "always inherit within_size advise [never]"),  # default
        },
    )
    settings = mm_settings.read(tmp_path)
    assert [(k, v) for k, v in settings.values if "hugepages" in k] == [("thp/hugepages-64kB/enabled", "madvise")]
    assert "per-size THP 64kB madvise" in settings.describe()


def test_thp_modes_for_the_guest(tmp_path):
    root = fake_machine(tmp_path)
    host = mm_settings.for_guest("host", root)
    assert host.get("thp/enabled") == "madvise" and host.source == "copied from this host"
    never = mm_settings.for_guest("never", root)
    assert never.get("thp/enabled") == "never" and never.get("thp/defrag") == "defer+madvise"
    assert never.source == "copied from this host, --thp never"
    assert mm_settings.for_guest("guest", root).values == ()
    assert never.describe() == (
        "THP never, defrag defer+madvise, shmem never, overcommit 0 (copied from this host, --thp never)"
    )


def test_bad_thp_values_are_usage_errors():
    with pytest.raises(UsageError, match="--thp 'sometimes' is not a mode"):
        mm_settings.check_thp("sometimes")
    with pytest.raises(UsageError, match="--target host runs under this machine's own setting"):
        mm_settings.check_thp("never", "host")
    mm_settings.check_thp("host", "host")


def test_kernel_parameter_and_what_it_refuses(tmp_path):
    settings = mm_settings.for_guest("always", fake_machine(tmp_path))
    parameter = settings.kernel_parameter()
    assert parameter.startswith("pfh.mm=thp/enabled:always,thp/defrag:defer+madvise,")
    assert " " not in parameter and parameter.count(",") == len(mm_settings.KEYS) - 1
    assert mm_settings.MmSettings().kernel_parameter() is None
    for key, value in (("etc/passwd", "x"), ("thp/../../x", "1"), ("thp/enabled", "a b"), ("thp/enabled", "a,b")):
        with pytest.raises(ValueError, match="cannot go on the kernel command line"):
            mm_settings.MmSettings(((key, value),)).kernel_parameter()


def test_boot_note_round_trip_and_untrusted_notes(tmp_path):
    settings = mm_settings.for_guest("never", fake_machine(tmp_path))
    line = notes.NOTE_START + notes.HOST_NOTE + " " + notes.boot_note("6.1", "tcg", **notes.mm_fields(settings))
    name, values = notes.read_note(line)
    assert name == "boot" and notes.read_mm(values) == settings
    assert notes.read_mm({"release": "6.1"}) is None  # a transcript from before the settings were noted
    forged = notes.read_mm({"mm": "thp/enabled:$(reboot),etc/x:1,thp/../x:1,vm/max_map_count:9", "mm_source": "!"})
    assert forged.fields() == {"vm/max_map_count": "9"} and forged.source == "?"


def test_init_applies_the_settings_as_the_kernel_parameter_says(tmp_path):
    """vm/init.sh's apply_mm, cut out of the script and run with its two roots moved under tmp_path."""
    text = INIT.read_text()
    start, end = text.index("apply_mm() {"), text.index('[ -z "$MM" ] || apply_mm "$MM"')
    function = text[start:end].replace("/sys/kernel/mm/", f"{tmp_path}/sys/kernel/mm/")
    function = function.replace("/proc/sys/vm/", f"{tmp_path}/proc/sys/vm/")
    root = fake_machine(tmp_path)
    settings = mm_settings.for_guest("always", root).with_value("thp/hugepages-64kB/enabled", "always", "x")
    parameter = settings.kernel_parameter().removeprefix("pfh.mm=")
    script = 'fail() { echo "FAIL: $*"; exit 1; }\n' + function + f'apply_mm "{parameter}"\necho applied\n'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "applied", result.stdout
    assert "this kernel has no thp/hugepages-64kB/enabled: left at its default" in result.stdout
    assert (root / "sys/kernel/mm/transparent_hugepage/enabled").read_text() == "always\n"
    assert (root / "proc/sys/vm/max_map_count").read_text() == "65530\n"
    missing = subprocess.run(
        ["sh", "-c", 'fail() { echo "FAIL: $*"; exit 1; }\n' + function + 'apply_mm "thp/nosuch:1"'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "FAIL: pfh.mm: this kernel has no" in missing.stdout
