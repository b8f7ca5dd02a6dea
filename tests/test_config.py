"""Settings: precision "auto" follows the CPU's bf16 instructions (else int8)."""
from __future__ import annotations

import pytest

from qa.config import Settings, cpu_has_bf16, resolve_precision
from qa.errors import ConfigError

FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 {extra}\nbogomips\t: 4000\n"


@pytest.mark.parametrize("extra, expected", [
    ("avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True), ("avx512f avx512_vnni", False),
])
def test_bf16_is_detected_from_the_cpu_flags(extra, expected):
    assert cpu_has_bf16(FLAGS.format(extra=extra)) is expected


def test_no_flags_line_means_no_bf16():
    assert cpu_has_bf16("model name : something\n") is False


def test_auto_resolves_and_explicit_choices_stay():
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if cpu_has_bf16() else "int8")
    # Where int8 cannot serve (late sentence vectors; a model the export cannot take).
    assert resolve_precision("auto", int8=False) == ("bf16" if cpu_has_bf16() else "fp32")
    assert resolve_precision("int8", int8=False) == "int8"  # asked for: refused elsewhere
    assert Settings().precision == "auto"
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
        Settings(precision="fp16")
