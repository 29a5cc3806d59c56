"""Answer latency per generator: time to first token, total latency, the split between retrieval,
prompt building, generation and the citation check, local tokens/s, model load time and memory.

The baseline is retrieval, timed inside every answer, so the figures that matter are ratios and
differences: what extraction, the citation check and the model add to it. Two first-token times:
``first_token_ms``, when the customer sees text (a sentence is released once it is finished and
passes the stream checks), and ``generator_first_token_ms``, when the model produced its first text (retrieval and
reading the prompt).

    python benchmarks/answer_benchmark.py --dataset tests/data/manuals-eval --questions 40 --local-questions 12
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from report import print_report

from core.settings import Settings
from knowledge.answering import AnswerPipeline
from knowledge.evaluation.dataset import load_dataset
from knowledge.evaluation.retrieval_eval import index_dataset
from knowledge.evaluation.retrieval_metrics import percentile
from knowledge.generation.factory import build_generator
from knowledge.retrieval import KnowledgeSearch

LOAD_SCRIPT = """
import time, sys
started = time.perf_counter()
from core.settings import Settings
from knowledge.generation.factory import build_generator
generator = build_generator(Settings(data_dir=sys.argv[1]), "local")
generator.warm_up()
print(time.perf_counter() - started)
"""


def _summary(samples: list[float]) -> dict[str, float]:
    return {"p50": percentile(samples, 50), "p95": percentile(samples, 95)}


def _run(pipeline: AnswerPipeline, questions: list[str]) -> dict[str, Any]:
    stages: dict[str, list[float]] = {name: [] for name in ("retrieval_ms", "prompt_ms", "generation_ms", "check_ms",
                                                            "regeneration_ms", "total_ms")}
    beyond_retrieval: list[float] = []
    first_token: list[float] = []
    generator_first_token: list[float] = []
    tokens = 0
    generation_s = 0.0
    abstained = 0
    for question in questions:
        answer = None
        for event in pipeline.stream(question):
            if event.kind == "answer":
                answer = event.answer
        assert answer is not None
        abstained += answer.abstained
        for name, values in stages.items():
            values.append(getattr(answer.timings, name))
        beyond_retrieval.append(answer.timings.total_ms - answer.timings.retrieval_ms)
        if answer.timings.first_token_ms is not None:
            first_token.append(answer.timings.first_token_ms)
        if answer.timings.generator_first_token_ms is not None:
            generator_first_token.append(answer.timings.generator_first_token_ms)
        if answer.generated_tokens:  # what the model generated, shown or not (the gate holds text back)
            tokens += answer.generated_tokens
            generation_s += (answer.timings.generation_ms + answer.timings.regeneration_ms) / 1000
    report: dict[str, Any] = {name: _summary(values) for name, values in stages.items()}
    report["first_token_ms"] = _summary(first_token) if first_token else None
    report["generator_first_token_ms"] = _summary(generator_first_token) if generator_first_token else None
    report["tokens_per_s"] = tokens / generation_s if generation_s else None
    report["abstained"] = abstained
    report["beyond_retrieval_ms"] = _summary(beyond_retrieval)
    report["regenerated"] = sum(1 for value in stages["regeneration_ms"] if value)
    totals = sum(stages["total_ms"])
    report["share"] = {name: sum(stages[name]) / totals for name in ("retrieval_ms", "prompt_ms", "generation_ms",
                                                                     "check_ms", "regeneration_ms")}
    return report


def _restart_load_s(data_dir: Path) -> float:
    """Load the local model in a new process (the dequantized cache is warm by then)."""
    output = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(data_dir)], check=True, capture_output=True,
                            text=True).stdout
    return float(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=40, help="questions for retrieval and extractive")
    parser.add_argument("--local-questions", type=int, default=12, help="questions for the local model (slow)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="holds the local model cache")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    settings = Settings(data_dir=args.data_dir)
    dataset = load_dataset(args.dataset)
    questions = [q.question for q in dataset.questions[: args.questions]]
    store = index_dataset(settings, dataset, progress_bar=False, answer_vectors=True)
    search = KnowledgeSearch(settings, store, generator="extractive")
    search.warm_up()
    search.search(questions[0])

    extractive = AnswerPipeline(settings, search, build_generator(settings, "extractive"))
    extractive_report = _run(extractive, questions)

    load_started = time.perf_counter()
    # the local generator's own search: retrieval.lm_rerank ("auto") may add the rerank stage for it
    local = AnswerPipeline(settings, KnowledgeSearch(settings, store, generator="local"),
                           build_generator(settings, "local"))
    local.warm_up()
    first_load_s = time.perf_counter() - load_started
    local_report = _run(local, questions[: args.local_questions])

    report = {
        "dataset": dataset.name,
        "extractive": extractive_report,
        "extractive_adds_p95_ms": extractive_report["beyond_retrieval_ms"]["p95"],
        "extractive_total_over_retrieval_p95": (extractive_report["total_ms"]["p95"]
                                                / extractive_report["retrieval_ms"]["p95"]),
        "local": local_report,
        "local_check_share": local_report["share"]["check_ms"],
        # None when every local question was answered "I don't know" (no text streamed)
        "local_first_token_over_retrieval_p50": (local_report["first_token_ms"]["p50"]
                                                 / local_report["retrieval_ms"]["p50"]
                                                 if local_report["first_token_ms"] else None),
        "local_load_in_process_s": first_load_s,
        "local_load_new_process_s": _restart_load_s(args.data_dir),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print_report(report, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
