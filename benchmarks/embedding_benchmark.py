"""Embedding throughput: plain sentence-transformers against our encoder in each runtime (torch,
onnx, onnx-int8), in one process, runs interleaved so that other load on the machine hits all of
them alike. Reports passages/s (median), the median per-round ratio to sentence-transformers in
wall time and in process CPU time (steadier on a shared machine), and each runtime's cosine to
the torch encoder's vectors.

    python benchmarks/embedding_benchmark.py --corpus ../shared/datasets/squad-dev/corpus.jsonl --rounds 3

Passages are every section of the sample manuals (tests/data/manuals-eval) topped up to
``--passages`` from the ``--corpus`` files, evenly spread over each file. ``--threads 1`` compares
single-core cost, which is the least noisy figure when other processes share the CPU.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MANUALS = Path(__file__).resolve().parents[1] / "tests" / "data" / "manuals-eval" / "corpus.jsonl"


def load_passages(corpora: list[Path], total: int) -> list[str]:
    """Manual sections as the document embedder sees them (title line, then text), then others."""
    def read(path: Path) -> list[str]:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [f"{row['title']}\n{row['text']}" if path == MANUALS else row["text"] for row in rows]

    passages = read(MANUALS)[:total]
    for index, path in enumerate(corpora):
        wanted = (total - len(passages)) // (len(corpora) - index)
        texts = read(path)
        if wanted > 0 and texts:
            passages += texts[:: max(1, len(texts) // wanted)][:wanted]
    return passages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, action="append", default=[],
                        help="a JSON Lines file with a `text` field (repeatable)")
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (at least 3 for a median)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads for every candidate; 0: defaults")
    parser.add_argument("--runtimes", default="torch,torch-bf16,onnx,onnx-int8")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    from knowledge.encoder import SentenceEncoder, resolve_model_path

    if args.threads:
        torch.set_num_threads(args.threads)
    passages = load_passages(args.corpus, args.passages)
    baseline = SentenceTransformer(str(resolve_model_path()), device="cpu")
    candidates: dict[str, Callable[[], np.ndarray]] = {
        "sentence-transformers": lambda: baseline.encode(passages, batch_size=args.batch_size),
    }
    with tempfile.TemporaryDirectory() as cache:
        for runtime in args.runtimes.split(","):
            encoder = SentenceEncoder(runtime=runtime, batch_size=args.batch_size, threads=args.threads,
                                      cache_dir=Path(cache))
            encoder.warm_up()  # the ONNX export happens here, outside the timings
            candidates[runtime] = functools.partial(encoder.encode, passages)

        vectors = {name: run() for name, run in candidates.items()}  # also warms every candidate up
        wall: dict[str, list[float]] = {name: [] for name in candidates}
        cpu: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.rounds):
            for name, run in candidates.items():
                started, started_cpu = time.perf_counter(), time.process_time()
                run()
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)

    reference = vectors.get("torch", vectors["sentence-transformers"])
    base = "sentence-transformers"
    rows: dict[str, dict[str, Any]] = {}
    for name in candidates:
        cosines = np.sum(np.asarray(vectors[name]) * reference, axis=1)
        rows[name] = {
            "passages_per_s": len(passages) / statistics.median(wall[name]),
            "ratio_wall": statistics.median(b / x for b, x in zip(wall[base], wall[name], strict=True)),
            "ratio_cpu": statistics.median(b / x for b, x in zip(cpu[base], cpu[name], strict=True)),
            "ratios_wall": [round(b / x, 3) for b, x in zip(wall[base], wall[name], strict=True)],
            "cosine_to_torch_mean": float(np.mean(cosines)), "cosine_to_torch_min": float(np.min(cosines)),
        }
    if args.json:
        print(json.dumps({"passages": len(passages), "rounds": args.rounds, "threads": args.threads, **rows}))
    else:
        print(f"{len(passages)} passages, {args.rounds} interleaved rounds, threads={args.threads or 'default'}")
        print(f"{'':24}{'passages/s':>11}{'x ST wall':>11}{'x ST cpu':>10}{'cos mean':>10}{'cos min':>9}")
        for name, row in rows.items():
            print(f"{name:24}{row['passages_per_s']:11.1f}{row['ratio_wall']:11.2f}{row['ratio_cpu']:10.2f}"
                  f"{row['cosine_to_torch_mean']:10.4f}{row['cosine_to_torch_min']:9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
