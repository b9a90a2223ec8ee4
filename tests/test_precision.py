"""What ``"auto"`` precision means on which CPU, independent of the machine the suite runs on.

The whole suite passes with bf16 forced on and off (``HFDAE_CPU_BF16=1`` / ``0``; docs/faults.md);
tests that compare numbers pin their precision.
"""

from __future__ import annotations

import pytest
import torch

import hfdae
from hfdae import acceleration, recipe

from conftest import make_model

CPU_FLAGS = {  # /proc/cpuinfo flag lines of a few CPUs
    "AMD EPYC (Zen 4)": ("fpu avx2 avx512f avx512_bf16 avx512vl", True),
    "Intel Sapphire Rapids": ("fpu avx2 avx512f amx_bf16 amx_tile", True),
    "Intel Skylake-SP": ("fpu avx2 avx512f avx512vl", False),
    "laptop": ("fpu sse4_2 avx avx2", False),
}


@pytest.mark.parametrize("cpu", list(CPU_FLAGS))
def test_auto_follows_the_cpu_flags(cpu, tmp_path, monkeypatch):
    flags, native = CPU_FLAGS[cpu]
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(recipe, "_CPU_INFO", cpuinfo)
    monkeypatch.delenv(recipe.CPU_BF16_ENVIRONMENT_VARIABLE, raising=False)
    assert recipe._cpu_has_native_bf16() is native
    assert recipe.resolve_mixed_precision("auto", use_cpu=True) == ("bf16" if native else "no")
    assert acceleration.inference_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert recipe.resolve_mixed_precision("no", use_cpu=True) == "no"  # explicit settings pass through


def test_without_cpuinfo_auto_is_fp32(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "_CPU_INFO", tmp_path / "missing")
    monkeypatch.delenv(recipe.CPU_BF16_ENVIRONMENT_VARIABLE, raising=False)
    assert acceleration.inference_precision("auto", torch.device("cpu")) == "fp32"


@pytest.mark.parametrize("native", [True, False])
def test_the_environment_variable_overrides_the_cpu(native, cpu_bf16, tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags : avx2\n" if native else "flags : avx512_bf16\n")  # says the opposite
    monkeypatch.setattr(recipe, "_CPU_INFO", cpuinfo)
    cpu_bf16(native)
    assert recipe._cpu_has_native_bf16() is native
    assert acceleration.inference_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")


def test_a_bad_value_of_the_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv(recipe.CPU_BF16_ENVIRONMENT_VARIABLE, "yes")
    with pytest.raises(ValueError, match=r"HFDAE_CPU_BF16='yes': use 0 \(no native bf16\), 1"):
        recipe._cpu_has_native_bf16()


@pytest.mark.parametrize("native", [True, False])
def test_auto_restores_like_the_precision_it_resolves_to(native, cpu_bf16):
    """'auto' is exactly bf16 on a native-bf16 CPU and exactly fp32 elsewhere, whatever this machine is."""
    cpu_bf16(native)
    model = make_model("small").eval()
    images = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    expected = hfdae.restore(model, images, precision="bf16" if native else "fp32")
    assert torch.equal(hfdae.restore(model, images, precision="auto"), expected)
