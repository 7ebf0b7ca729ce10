"""The FIR filters as one 2-D depthwise pass against two 1-D passes, in whole training iterations
(issue 17, fifteenth session).

    python benchmarks/fir_one_pass.py [--rows quickstart:32:16 small:32:8 small:64:8] [--precision fp32 bf16]
        [--window 16] [--rounds 4] [--threads 2]

``benchmarks/switch_ab.py`` with ``--switch gankit.nn.resample.ONE_PASS --before False --after True``:
one trainer per row (``PRESET:RES:BATCH`` on ``builtin:shapes?res=RES``) times its own steps with
two passes ("before") and one pass ("after") in alternating windows. Results:
``benchmarks/results/fir_one_pass.json`` (the fifteenth session's file names the two settings
``two_passes`` and ``one_pass``).
"""
from __future__ import annotations

from switch_ab import main

if __name__ == "__main__":
    main(switch="gankit.nn.resample.ONE_PASS", before="False", after="True", out="benchmarks/results/fir_one_pass.json")
