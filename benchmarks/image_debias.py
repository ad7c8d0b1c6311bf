"""Image debiasing on the shared chest X-ray subset (issue 17): wall time of
`noharm debias --dataset covid-cxr --protected sex --seeds 3` and its table.

    NOHARM_DATA_DIR=../shared/data python benchmarks/image_debias.py [--jobs 2] [--device cpu]

covid_cxr is 266 images from 141 patients, CC BY-NC-SA 4.0, its source site is confounded
with the label (PROVENANCE.md): the numbers exercise the pipeline; they say nothing about
diagnosis, and with ~53 test images per split their sd is large.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="noharm-cxr-")
    cmd = ["noharm", "debias", "--dataset", "covid-cxr", "--protected", "sex", "--seeds",
           str(args.seeds), "--jobs", str(args.jobs), "--device", args.device, "--output",
           os.path.join(out, "run"), "--quiet"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(res.stderr)
    device = (torch.cuda.get_device_name(0) if args.device != "cpu" and
              torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores visible")
    print(f"$ {' '.join(cmd[:-3])}")
    print(f"wall {wall:.0f} s on {device}, --jobs {args.jobs}, torch {torch.__version__}\n")
    print(res.stdout)


if __name__ == "__main__":
    main()
