"""The family contract (DESIGN.md "Contract v2"): runs written before it still load and resume exactly."""
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import gankit
from gankit.training.trainer import Trainer

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("family", ["dcgan", "stylegan2"])
def test_a_run_written_before_contract_v2_loads_and_resumes_exactly(family, tmp_path):
    """legacy-* were written by gankit e9160f8 (one G, one D, G_ema): 32 images in two checkpoints.
    Resuming its first checkpoint with today's code must rebuild its second one bitwise."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / f"legacy-{family}", run)
    old_last = load_file(run / "checkpoints" / "ckpt-000000032" / "model.safetensors")
    G = gankit.load(run)
    assert G(torch.randn(2, G.z_dim)).shape == (2, 1, 8, 8)
    shutil.rmtree(run / "checkpoints" / "ckpt-000000032")
    summary = Trainer(family, None, run, resume=True, progress=False).run()
    assert summary["status"] == "done" and summary["kimg"] == 0.032
    new_last = load_file(run / "checkpoints" / "ckpt-000000032" / "model.safetensors")
    assert sorted(new_last) == sorted(old_last)
    assert all(torch.equal(new_last[k], old_last[k]) for k in old_last)
