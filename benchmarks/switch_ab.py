"""Two settings of a switch, in whole training iterations of one process (issue 17).

    python benchmarks/switch_ab.py --switch gankit.models.stylegan2.SUM_NOISE_FIRST --before True --after False
    python benchmarks/switch_ab.py --switch layout --before auto --after channels-last
    python benchmarks/switch_ab.py --switch phases.share_fakes --before False --after True
        [--rows quickstart:32:16 small:32:8 small:64:8] [--precision fp32 bf16] [--window 16] [--rounds 4]
        [--threads 2] [--out benchmarks/results/NAME.json]

Each row builds one trainer (``PRESET:RES:BATCH`` on ``builtin:shapes?res=RES``) and times its own
steps with the switch set to ``--before`` and ``--after`` in turn: ``--rounds`` times, ``--window``
iterations each, after 8 warm-up iterations of each setting. Both settings run in one process on
the same machine state, so their ratio is what to compare on a noisy machine; the figures are
training images/s per window. ``benchmarks/fir_one_pass.py`` is this harness for
``gankit.nn.resample.ONE_PASS``. ``--switch layout`` sets the StyleGAN2 networks' activation
layout (``--model.layout``: auto, channels-last or contiguous) instead of a module-level value;
``--switch phases.NAME`` sets a model option that acts through the recipe's phases and rebuilds them.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import tempfile
import time

from common import write_results

from gankit.training.trainer import Trainer


class ModuleValue:
    """A module-level value, e.g. ``gankit.nn.resample.ONE_PASS``."""

    def __init__(self, path: str):
        mod_name, self.name = path.rsplit(".", 1)
        self.module, self.label = importlib.import_module(mod_name), path
        if not hasattr(self.module, self.name):
            raise SystemExit(f"--switch {path}: {mod_name} has no {self.name}")

    def attach(self, trainer: Trainer) -> None:
        pass

    def get(self):
        return getattr(self.module, self.name)

    def set(self, value) -> None:
        setattr(self.module, self.name, value)


class Layout:
    """``--switch layout``: the ``channels_last`` setting of every module of the trainer's networks
    that has one (StyleGAN2's synthesis network and discriminator, their EMA copies included)."""

    label = "--model.layout"

    def __init__(self):
        self.modules: list = []
        self.value = "auto"

    def attach(self, trainer: Trainer) -> None:
        self.modules = [m for net in trainer.modules.values() for m in net.modules() if hasattr(m, "channels_last")]

    def get(self) -> str:
        return self.value

    def set(self, value: str) -> None:
        from gankit.models.stylegan2 import LAYOUTS

        self.value = value
        for m in self.modules:
            m.channels_last = LAYOUTS[value]


class PhaseOption:
    """``--switch phases.NAME``: a model option that acts through the family's phases (e.g.
    ``share_fakes``): it is set on the trainer's model config and the phases are rebuilt."""

    def __init__(self, name: str):
        self.name, self.label, self.trainer = name, f"--model.{name.replace('_', '-')}", None

    def attach(self, trainer: Trainer) -> None:
        if not hasattr(trainer.model_cfg, self.name):
            raise SystemExit(f"--switch phases.{self.name}: the model config has no {self.name}")
        self.trainer = trainer

    def get(self):
        return None if self.trainer is None else getattr(self.trainer.model_cfg, self.name)

    def set(self, value) -> None:
        if self.trainer is not None and value is not None:
            tr = self.trainer
            setattr(tr.model_cfg, self.name, value)
            tr.phases = tr.family.phases(tr.model_cfg, tr.nets, tr.cfg)


def windows(switch, values: tuple, preset: str, res: int, batch: int, precision: str, window: int, rounds: int,
            threads: int) -> dict:
    """Training images/s per window for each of the switch's two values, alternating."""
    keep = switch.get()
    rates: dict[str, list[float]] = {"before": [], "after": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tr = Trainer("stylegan2", f"builtin:shapes?res={res}", tmp, preset=preset, progress=False,
                         overrides={"train": {"threads": threads, "precision": precision, "tensorboard": False,
                                              "metrics": False, "kimg": 10**6, "batch_size": batch}})
            tr.setup()
            switch.attach(tr)
            for value in values:  # warm-up: oneDNN builds its kernels for each setting's shapes
                switch.set(value)
                for _ in range(8):
                    tr.step(10**9)
            for _ in range(rounds):
                for key, value in zip(rates, values):
                    switch.set(value)
                    t0 = time.perf_counter()
                    for _ in range(window):
                        tr.step(10**9)
                    rates[key].append(round(window * batch / (time.perf_counter() - t0), 2))
    finally:
        switch.set(keep)
    return {"switch": switch.label, "values": {"before": values[0], "after": values[1]},
            "preset": preset, "res": res, "batch": batch, "precision": precision, "window": window,
            "img_s": rates, "ratio_of_means": round(sum(rates["after"]) / sum(rates["before"]), 3)}


def main(argv: list[str] | None = None, switch: str = "", before: str = "", after: str = "",
         out: str = "") -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switch", default=switch, required=not switch, help="module.NAME of the switch")
    ap.add_argument("--before", default=before, required=not before, help="the old value (a Python literal)")
    ap.add_argument("--after", default=after, required=not after, help="the new value (a Python literal)")
    ap.add_argument("--rows", nargs="+", default=["quickstart:32:16", "small:32:8", "small:64:8"])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=out or "benchmarks/results/switch_ab.json")
    args = ap.parse_args(argv)
    if args.switch == "layout":
        switch, values = Layout(), (args.before, args.after)
    elif args.switch.startswith("phases."):
        switch, values = PhaseOption(args.switch[7:]), (ast.literal_eval(args.before), ast.literal_eval(args.after))
    else:
        switch, values = ModuleValue(args.switch), (ast.literal_eval(args.before), ast.literal_eval(args.after))
    rows = []
    for spec in args.rows:
        preset, res, batch = spec.split(":")
        for precision in args.precision:
            rows.append(windows(switch, values, preset, int(res), int(batch), precision, args.window, args.rounds,
                                args.threads))
            print(rows[-1], flush=True)
            write_results(args.out, rows, args.threads)


if __name__ == "__main__":
    main()
