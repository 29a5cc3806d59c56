"""Builds the evaluation gate's golden set, ``training/golden/support-v1.jsonl``, from the bundled
sample manuals (see ``training/golden/README.md``).

The questions, the sections given to the model as its sources and the reference answers are
written by hand below. The sources are the chunks the project's own indexing makes of the
manuals (``SectionConverter`` -> ``SectionSplitter`` with the default chunking settings), found by
file and section heading, and the prompt is the answer prompt (``answer-v1``, no few-shot
examples), as the dataset builder renders it. Every reference is checked with the gate's citation
judge before anything is written: each cited sentence must be supported by the source it cites,
and an abstaining reference must abstain.

    python scripts/build_golden_set.py           # rewrite the file
    python scripts/build_golden_set.py --check   # exit 1 if the file differs from what the manuals give
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from haystack import Document  # noqa: E402
from haystack.dataclasses import ByteStream  # noqa: E402

from core.abstention import is_abstention  # noqa: E402
from core.settings import ChunkingSettings, Settings  # noqa: E402
from jobs.training_inputs import citation_judge  # noqa: E402
from knowledge.components.section_converter import SectionConverter  # noqa: E402
from knowledge.components.section_splitter import SectionSplitter  # noqa: E402
from knowledge.prompting.answer_prompt import ABSTAIN_PHRASE, AnswerPrompt  # noqa: E402
from training.evaluate import is_grounded  # noqa: E402

SAMPLES = ROOT / "knowledge" / "samples"
OUT = ROOT / "training" / "golden" / "support-v1.jsonl"
PROMPT_VERSION = "answer-v1"

UG, TS, WA = "nimbus-r7/user-guide.md", "nimbus-r7/troubleshooting.html", "nimbus-r7/warranty.txt"
MAN, QS, FAQ = "lumen-brew3/manual.pdf", "lumen-brew3/quick-start.docx", "lumen-brew3/faq.md"

# (id, question, sources as (file, last heading of the section), reference answer). The answer's
# [n] cites the n-th source; a question the sources do not answer has ABSTAIN_PHRASE as reference.
# The section that answers is not always the first source, and most questions get a related
# section that does not answer them, as retrieval would.
QUESTIONS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    ("g01", "How do I factory reset my Nimbus R7?", [(UG, "Factory reset"), (TS, "Forgotten admin password")],
     "Keep the router powered on and press and hold the recessed Reset button on the back for 10 seconds with a "
     "paper clip [1]. Release the button when the status light blinks amber, then wait about 3 minutes until the "
     "light pulses blue and set the router up again with the app [1]."),
    ("g02", "What does a solid amber light on my router mean?",
     [(UG, "Status light"), (TS, "No internet (solid amber light)")],
     "A solid amber light means the router gets no internet connection on its WAN port [2]. Check that the "
     "Ethernet cable is in the WAN port, not one of the LAN ports [2]."),
    ("g03", "What address do I type in my browser to manage the router?",
     [(TS, "Forgotten admin password"), (UG, "Web interface")],
     "On a device connected to the router's network, open http://192.168.50.1 or http://nimbus.local [2]."),
    ("g04", "How long is the warranty on the Nimbus R7?", [(WA, "Warranty Period"), (WA, "What Is Covered")],
     "The router is covered for two years from the date of purchase shown on your receipt [1]. If you register "
     "the router in the Nimbus Home app within 60 days of purchase, the warranty is extended to three years [1]."),
    ("g05", "How many satellites can I add to one main router?",
     [(TS, "Satellite will not join the mesh"), (UG, "Adding a mesh satellite")],
     "Up to 6 satellites are supported per main router [2]."),
    ("g06", "How do I update the router firmware by hand, and how long does it take?",
     [(UG, "Firmware updates"), (TS, "Recovery mode (blinking red light)")],
     "Open Settings > System > Firmware in the app, tap Check now and, if an update is available, tap Install [1]. "
     "The update takes about 6 minutes [1]."),
    ("g07", "One of my satellites has a solid magenta light. What should I do?",
     [(TS, "Satellite keeps dropping out"), (UG, "Status light")],
     "A solid magenta light means the satellite is connected, but the link to the main router is weak [2]. "
     "Move the satellite closer, or use an Ethernet cable between the units [1]."),
    ("g08", "How many devices can use the guest network at the same time?",
     [(UG, "Guest network"), (UG, "Parental controls")],
     "Up to 32 guest devices can be connected at the same time [1]."),
    ("g09", "The app shows error E31. How do I fix it?", [(TS, "Error codes"), (UG, "Web interface")],
     "Error E31 means the DHCP address pool is full [1]. Raise the pool size to 250 under Settings > LAN [1]."),
    ("g10", "How do I set up port forwarding for my game console?",
     [(UG, "Port forwarding"), (UG, "Guest network")],
     "Open Settings > Advanced > Port forwarding in the web interface and tap Add rule [1]. Select the device, "
     "enter the external port or range, choose TCP, UDP or both, and save the rule [1]."),
    ("g11", "I forgot my admin password. Can Nimbus support reset it for me?",
     [(TS, "Forgotten admin password"), (UG, "Factory reset")],
     "Nimbus support cannot recover or bypass the admin password [1]. If you are still signed in to the Nimbus "
     "Home app, change the password under Settings > System > Admin password [1]."),
    ("g12", "My router light is blinking red. What happened and how do I fix it?",
     [(UG, "Status light"), (TS, "Recovery mode (blinking red light)")],
     "A blinking red light means the firmware update failed and the router is in recovery mode [1]. Connect a "
     "computer to LAN 1 with an Ethernet cable and upload the latest .nfw file at http://192.168.50.1/recovery [2]."),
    ("g13", "How often does the Lumen Brew 3 need descaling?",
     [(MAN, "Water hardness"), (MAN, "Descaling")],
     "The machine asks for descaling every 300 cups or 3 months, whichever comes first [2]. Use only Lumen "
     "DescalePro liquid [2]."),
    ("g14", "What does error E15 mean on my coffee machine?",
     [(FAQ, "Can I use oily or flavoured beans?"), (MAN, "Error codes")],
     "E15 means the grinder is jammed, for example by a small stone or oily beans [2]. Switch off, empty the "
     "hopper, vacuum the grinder and run a grind at setting 6 [2]."),
    ("g15", "Can I use ground coffee in the Brew 3?", [(FAQ, "Can I use ground coffee?"), (MAN, "Grind settings")],
     "Yes: open the bypass flap next to the hopper and add one level scoop (7 g) of ground coffee [1]. Use the "
     "bypass for one cup at a time only [1]."),
    ("g16", "Does the Brew 3 connect to Wi-Fi?",
     [(QS, "Pairing with the Lumen Home app"), (FAQ, "Does the Brew 3 connect to Wi-Fi?")],
     "No, the Brew 3 has no Wi-Fi [2]. It pairs with the Lumen Home app over Bluetooth Low Energy [2]."),
    ("g17", "How do I pair my coffee machine with the Lumen Home app?",
     [(QS, "Pairing with the Lumen Home app"), (FAQ, "Does the Brew 3 connect to Wi-Fi?")],
     "Hold the Steam button for 8 seconds until the panel shows a blinking phone icon [1]. In the app, tap Add "
     "machine, select Lumen Brew 3 and enter the four-digit code that the machine shows on its panel [1]."),
    ("g18", "Which water filter fits the Brew 3, and when do I replace it?",
     [(FAQ, "Which water filter do I need?"), (MAN, "Water hardness")],
     "Use the Lumen AquaClean filter (part number LAF-01) [1]. Replace it after 50 litres or 2 months, whichever "
     "comes first [1]."),
    ("g19", "How long is the Lumen Brew 3 guaranteed?", [(MAN, "Warranty and service"), (MAN, "Technical data")],
     "Lumen Appliances guarantees the Lumen Brew 3 for 2 years from the date of purchase [1]. The ceramic grinder "
     "burrs are guaranteed for 5 years [1]."),
    ("g20", "How do I clean the brew unit?", [(MAN, "Daily cleaning"), (MAN, "Cleaning the brew unit")],
     "Switch the machine off, open the service door on the right side and press the red PUSH lever while pulling "
     "the unit out by its handle [2]. Rinse it under lukewarm running water without soap or detergent and let it "
     "dry for at least one hour before putting it back [2]."),
    ("g21", "What is the phone number of the Lumen service line?", [(QS, "Need help?"), (QS, "Unpacking")],
     "The service line is open Monday to Saturday, 8:00 to 18:00, on 0800 586 3600 [1]."),
    ("a01", "Can the Nimbus R7 run a VPN server?", [(UG, "Port forwarding"), (UG, "Web interface")], ABSTAIN_PHRASE),
    ("a02", "How much does a replacement power adapter for the R7 cost?",
     [(UG, "What is in the box"), (WA, "What Is Not Covered")], ABSTAIN_PHRASE),
    ("a03", "Does the Nimbus R7 support IPv6?",
     [(UG, "Specifications"), (TS, "Common symptoms at a glance")], ABSTAIN_PHRASE),
    ("a04", "Can I make hot chocolate with the Brew 3?",
     [(MAN, "Making drinks"), (FAQ, "Can I use plant-based milk?")], ABSTAIN_PHRASE),
    ("a05", "What is the price of a bottle of DescalePro?", [(MAN, "Descaling"), (QS, "Unpacking")], ABSTAIN_PHRASE),
    ("a06", "Can I control the Brew 3 with Amazon Alexa?",
     [(FAQ, "Does the Brew 3 connect to Wi-Fi?"), (QS, "Pairing with the Lumen Home app")], ABSTAIN_PHRASE),
]


def manual_chunks() -> dict[tuple[str, str], Document]:
    """The sample manuals' chunks as the indexer makes them, by (file, last heading)."""
    chunking = ChunkingSettings()
    files = sorted({file for _, _, sources, _ in QUESTIONS for file, _ in sources})
    streams = [ByteStream((SAMPLES / file).read_bytes(), meta={"source": file, "file_name": Path(file).name})
               for file in files]
    converted = SectionConverter(max_file_bytes=chunking.max_file_bytes).run(sources=streams)
    if converted["failures"]:
        raise SystemExit(f"cannot parse {converted['failures']}")
    splitter = SectionSplitter(max_words=chunking.max_words, overlap_sentences=chunking.overlap_sentences)
    chunks: dict[tuple[str, str], list[Document]] = {}
    for chunk in splitter.run(documents=converted["documents"])["documents"]:
        chunks.setdefault((chunk.meta["source"], chunk.meta["heading_path"][-1]), []).append(chunk)
    ambiguous = {key: len(found) for key, found in chunks.items() if len(found) > 1}
    return {key: found[0] for key, found in chunks.items() if key not in ambiguous}


def build() -> list[dict[str, object]]:
    chunks = manual_chunks()
    prompt = AnswerPrompt(PROMPT_VERSION)
    judge = citation_judge(Settings())
    rows: list[dict[str, object]] = []
    for example_id, question, sources, reference in QUESTIONS:
        missing = [key for key in sources if key not in chunks]
        if missing:
            raise SystemExit(f"{example_id}: no single chunk for {missing}")
        documents = [chunks[key] for key in sources]
        built = prompt.build(question, documents, count_tokens=lambda text: len(text.split()), max_prompt_tokens=10**6)
        messages = [{"role": m.role, "content": m.content} for m in built.messages]
        kind = "abstain" if reference == ABSTAIN_PHRASE else "answer"
        if kind == "abstain" and not is_abstention(reference):
            raise SystemExit(f"{example_id}: the abstention reference {reference!r} is not an abstention")
        if kind == "answer" and not is_grounded(judge(messages, reference)):
            raise SystemExit(f"{example_id}: the reference is not supported by the sources it cites: "
                             f"{judge(messages, reference)}")
        rows.append({"id": example_id, "kind": kind, "question": question,
                     "sources": [{"file": file, "heading_path": doc.meta["heading_path"],
                                  **({"page": doc.meta["page"]} if doc.meta.get("page") else {})}
                                 for (file, _), doc in zip(sources, documents, strict=True)],
                     "messages": [*messages, {"role": "assistant", "content": reference}]})
    return rows


def golden_text() -> str:
    """The file's content: one example per line, keys sorted (the build is deterministic)."""
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in build())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the checked-in file instead of writing it")
    args = parser.parse_args()
    text = golden_text()
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print(f"{OUT.relative_to(ROOT)} is {'up to date' if same else 'OUT OF DATE: run scripts/build_golden_set.py'}")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(QUESTIONS)} examples to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
