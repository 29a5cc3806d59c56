"""Knowledge-base benchmark on the embedded store: ingestion throughput (and the embedder's share),
query latency per mode as ratios to BM25, reload versus re-index time, resident memory.

    python benchmarks/retrieval_benchmark.py --dataset ../shared/datasets/squad-dev --queries 500
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import print_report

from core.settings import Settings
from knowledge.components.document_embedder import DocumentEmbedder
from knowledge.components.section_splitter import SectionSplitter
from knowledge.encoder import encoder_options
from knowledge.evaluation.dataset import load_dataset
from knowledge.evaluation.retrieval_eval import corpus_documents
from knowledge.evaluation.retrieval_metrics import percentile
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import KnowledgeSearch

SERVING_PROCESS = """
import json, sys
from core.settings import Settings
from knowledge.persistent_store import PersistentDocumentStore
from knowledge.retrieval import KnowledgeSearch
search = KnowledgeSearch(Settings(), PersistentDocumentStore(path=sys.argv[1]), mode="hybrid")
search.warm_up()
for question in json.loads(sys.stdin.read()):
    search.search(question)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked copy of the parent
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
print(int(status["VmHWM"].split()[0]) / 1024)
"""


def serving_process_rss_mb(index_path: str, questions: list[str]) -> float:
    """Peak resident memory of a new process that loads the saved index and answers hybrid queries:
    what an API replica holds (this process also ran the ingestion, whose embedder stays loaded)."""
    done = subprocess.run([sys.executable, "-c", SERVING_PROCESS, index_path], input=json.dumps(questions),
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--passages", type=int, default=None, help="index only the first N passages")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    settings = Settings()
    dataset = load_dataset(args.dataset)
    documents = corpus_documents(dataset)[: args.passages]
    embedder = DocumentEmbedder(batch_size=settings.embedding.batch_size, **encoder_options(settings))
    embedder.warm_up()

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "documents.json")
        started = time.perf_counter()
        chunks = SectionSplitter(max_words=settings.chunking.max_words).run(documents=documents)["documents"]
        embed_started = time.perf_counter()
        embedded = embedder.run(documents=chunks)["documents"]
        embed_seconds = time.perf_counter() - embed_started
        store = PersistentDocumentStore(path=path)
        store.write_documents(embedded)
        store.save()
        store.search_index()
        index_seconds = time.perf_counter() - started

        reload_started = time.perf_counter()
        reloaded = PersistentDocumentStore(path=path)
        reloaded.search_index()
        reload_seconds = time.perf_counter() - reload_started
        serving_rss_mb = serving_process_rss_mb(path, [q.question for q in dataset.questions[:100]])

    questions = [q.question for q in dataset.questions[: args.queries]]
    searches = {mode: KnowledgeSearch(settings, reloaded, mode=mode) for mode in ("bm25", "dense", "hybrid")}
    for search in searches.values():
        search.warm_up()
        search.search(questions[0])
    samples: dict[str, list[float]] = {mode: [] for mode in searches}
    for question in questions:  # modes interleaved per question, so load drift hits them alike
        for mode, search in searches.items():
            t = time.perf_counter()
            search.search(question)
            samples[mode].append((time.perf_counter() - t) * 1000)
    latency = {mode: {"p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95)}
               for mode, values in samples.items()}
    base = latency["bm25"]
    report = {
        "dataset": dataset.name, "chunks": len(chunks),
        "ingest_chunks_per_s": len(chunks) / index_seconds, "embedding_share": embed_seconds / index_seconds,
        "reload_s": reload_seconds, "index_s": index_seconds, "reindex_over_reload": index_seconds / reload_seconds,
        "latency": latency,
        "ratios_to_bm25": {m: {"p50": v["p50_ms"] / base["p50_ms"], "p95": v["p95_ms"] / base["p95_ms"]}
                           for m, v in latency.items()},
        "hybrid_p95_over_sum_p95": latency["hybrid"]["p95_ms"] / (base["p95_ms"] + latency["dense"]["p95_ms"]),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "serving_process_max_rss_mb": serving_rss_mb,
    }
    print_report(report, as_json=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
