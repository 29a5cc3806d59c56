"""The extractive generator (no model) and the sentence splitter it quotes from."""

from __future__ import annotations

import pytest

from knowledge.citations.markers import marker_numbers, strip_markers
from knowledge.generation.base import ChatGenerator, GenerationRequest, generate_text
from knowledge.generation.extractive import ExtractiveGenerator, SourceContext, rank_sentences
from knowledge.prompting.answer_prompt import ABSTAIN_PHRASE
from knowledge.sentences import split_sentences

SOURCES = [
    "The guest network uses the 2.4 GHz and 5 GHz bands only. Up to 32 guest devices can be connected at the "
    "same time.",
    "A factory reset erases all settings. Press and hold the recessed Reset button for 10 seconds with a paper "
    "clip. Wait about 3 minutes until the light pulses blue.",
    "The router is covered by the warranty for two years from the date of purchase.",
]


def answer(question: str, sources: list[str], generator: ExtractiveGenerator | None = None) -> str:
    request = GenerationRequest(messages=[], question=question, sources=sources)
    return generate_text(generator or ExtractiveGenerator(), request)


def test_implements_the_generator_protocol() -> None:
    generator = ExtractiveGenerator()
    assert isinstance(generator, ChatGenerator)
    assert generator.name == "extractive" and generator.adapter_version is None


@pytest.mark.parametrize(
    ("question", "sentence", "number"),
    [
        ("How long do I hold the reset button?",
         "Press and hold the recessed Reset button for 10 seconds with a paper clip.", 2),
        ("How many guest devices can connect?", "Up to 32 guest devices can be connected at the same time.", 1),
        ("How long is the warranty?", "The router is covered by the warranty for two years from the date of purchase.", 3),
    ],
)
def test_quotes_the_sentence_that_answers_and_cites_its_source(question: str, sentence: str, number: int) -> None:
    text = answer(question, SOURCES)
    assert marker_numbers(text) == [number]
    assert sentence in {strip_markers(s) for s in split_sentences(text)}
    # Every quoted sentence is verbatim from the cited source.
    for quoted in split_sentences(text):
        assert strip_markers(quoted) in SOURCES[marker_numbers(quoted)[0] - 1]


def test_source_order_does_not_change_what_is_quoted() -> None:
    reordered = [SOURCES[2], SOURCES[0], SOURCES[1]]
    text = answer("How long do I hold the reset button?", reordered)
    assert "10 seconds" in text and marker_numbers(text) == [3]


def test_abstains_when_nothing_overlaps() -> None:
    assert answer("What is the capital of Australia?", SOURCES) == ABSTAIN_PHRASE
    assert answer("How long do I hold the reset button?", []) == ABSTAIN_PHRASE
    assert answer("the and of", SOURCES) == ABSTAIN_PHRASE  # only stop words


def test_abstains_below_the_minimum_score() -> None:
    question = "Which ports does the router have for gaming consoles and reset?"  # 2 of its 6 terms overlap
    assert answer(question, SOURCES, ExtractiveGenerator(min_score=0.9, rank_prior=0.0)) == ABSTAIN_PHRASE
    assert answer(question, SOURCES, ExtractiveGenerator(min_score=0.01, rank_prior=0.0)) != ABSTAIN_PHRASE


def test_companions_stay_in_the_same_source() -> None:
    # Every sentence holds both question terms; source 2's sentences score just as well on terms but
    # must not be mixed into an answer quoted from source 1.
    sources = ["The reset button erases the settings. The reset button sits next to the USB port.",
               "The reset button is recessed and needs a paper clip. Hold the reset button to erase settings."]
    generator = ExtractiveGenerator(max_sentences=4)
    ranked = rank_sentences("Where is the reset button?", sources, rank_prior=generator.rank_prior)
    assert {s.source for s in ranked} == {1, 2}
    assert all(s.score >= ranked[0].score * generator.companion_ratio for s in ranked)  # all close enough
    text = answer("Where is the reset button?", sources, generator)
    assert marker_numbers(text) == [1]
    assert [strip_markers(s) for s in split_sentences(text)] == [
        "The reset button erases the settings.", "The reset button sits next to the USB port."]


def test_at_most_max_sentences_in_reading_order() -> None:
    source = ("Hold the reset button for 10 seconds. The reset button is on the back. "
              "Release the reset button when the light blinks. The reset button is recessed.")
    for limit in (1, 2, 3):
        text = answer("reset button", [source], ExtractiveGenerator(max_sentences=limit))
        quoted = [strip_markers(s) for s in split_sentences(text)]
        assert len(quoted) == limit
        positions = [source.index(s) for s in quoted]
        assert positions == sorted(positions)


def test_weak_companions_are_left_out() -> None:
    source = "Hold the reset button for 10 seconds to reset the router. The button is blue."
    text = answer("How do I reset the router with the reset button?", [source], ExtractiveGenerator(max_sentences=2))
    assert "blue" not in text and "10 seconds" in text


def test_better_ranked_source_wins_a_tie() -> None:
    sources = ["Hold the reset button for 10 seconds.", "Hold the reset button for 10 seconds."]
    assert marker_numbers(answer("reset button", sources)) == [1]


def test_count_tokens_and_window() -> None:
    generator = ExtractiveGenerator()
    assert generator.count_tokens("one two three") == 3
    assert generator.context_window > 100_000


# --- sentence splitting ----------------------------------------------------------------------------


def test_splits_sentences_and_keeps_abbreviations() -> None:
    text = "Use a filter, e.g. the AquaClean one. Replace it after 50 litres! Is it full? Yes."
    assert split_sentences(text) == ["Use a filter, e.g. the AquaClean one.", "Replace it after 50 litres!",
                                     "Is it full?", "Yes."]


def test_keeps_citation_markers_with_their_sentence() -> None:
    assert split_sentences("Hold it for 10 seconds [1]. Release it [2][3]. Done.") == [
        "Hold it for 10 seconds [1].", "Release it [2][3].", "Done."]


def test_hard_wrapped_lines_stay_together() -> None:
    text = ("The router is designed for indoor use at ambient temperatures from 0 °C to 40 °C. Leave 10 cm of free\n"
            "space above the vent on the top of the case.\n\nA factory reset erases all settings, including\n"
            "the Wi-Fi name and the admin password.")
    assert split_sentences(text) == [
        "The router is designed for indoor use at ambient temperatures from 0 °C to 40 °C.",
        "Leave 10 cm of free space above the vent on the top of the case.",
        "A factory reset erases all settings, including the Wi-Fi name and the admin password.",
    ]


def test_list_items_are_sentences_of_their_own() -> None:
    text = ("What is in the box:\n- One Nimbus R7 router\n- A 12 V power adapter with a 1.8 m cable\n"
            "* A quick-start card\n• A safety leaflet")
    assert split_sentences(text) == ["What is in the box:", "One Nimbus R7 router",
                                     "A 12 V power adapter with a 1.8 m cable", "A quick-start card", "A safety leaflet"]


def test_wrapped_list_item_continues_on_the_next_line() -> None:
    text = "- Do not put it inside a cabinet; water and metal block\n  Wi-Fi signals.\n- Stand the router upright."
    assert split_sentences(text) == ["Do not put it inside a cabinet; water and metal block Wi-Fi signals.",
                                     "Stand the router upright."]


def test_numbered_steps_are_not_joined() -> None:
    text = "1. Keep the router powered on\n2. Press and hold the Reset button\n3) Release the button"
    sentences = split_sentences(text)
    for step in ("Keep the router powered on", "Press and hold the Reset button", "Release the button"):
        assert sum(step in s for s in sentences) == 1
        assert not any(step in s and len(s) > len(step) + 3 for s in sentences)  # alone, save for its number


def test_table_rows_are_sentences_of_their_own() -> None:
    text = ("| Colour | Meaning |\n|---|---|\n| Solid white | Connected to the internet\n"
            "| Blinking amber | Factory reset in progress |")
    sentences = split_sentences(text)
    assert "Solid white | Connected to the internet" in sentences
    assert "Blinking amber | Factory reset in progress" in sentences
    assert not any("white" in s and "amber" in s for s in sentences)
    assert "---|---" not in sentences  # a separator row holds no sentence


def test_empty_and_punctuation_only_text_has_no_sentences() -> None:
    assert split_sentences("") == [] and split_sentences("\n\n---\n|---|---|\n") == []


@pytest.mark.slow
def test_meaning_breaks_a_tie_that_term_overlap_gets_wrong() -> None:
    from knowledge.encoder import shared_encoder

    question = "How long does the battery last?"
    sources = ["How long the battery takes to charge depends on the charger you use.",
               "The battery lasts about twelve hours on a full charge."]
    by_terms = ExtractiveGenerator(max_sentences=1).select(question, sources)
    by_meaning = ExtractiveGenerator(max_sentences=1, semantic_weight=1.5,
                                     encoder=shared_encoder(runtime="onnx")).select(question, sources)
    assert [s.source for s in by_terms] == [1]
    assert [s.source for s in by_meaning] == [2]


def test_semantic_weight_without_an_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="encoder"):
        ExtractiveGenerator(semantic_weight=1.0)


# --- sentences read in their section -------------------------------------------------------------------

WARRANTY_DATA = ("Erase your settings with a factory reset and remove any USB drive before you send the router "
                 "to Nimbus. Nimbus erases every returned unit, but is not responsible for data left on it.")
RESET_STEPS = ("Keep the router powered on. Press and hold the recessed Reset button on the back for 10 seconds "
               "with a paper clip. Release the button when the status light blinks amber.")
HEADINGS = [["Nimbus R7 Limited Warranty", "Your data"], ["Nimbus R7 Mesh Router User Guide", "Factory reset"]]


def test_heading_terms_count_for_every_sentence_of_the_section() -> None:
    question = "How long do I hold the button for a factory reset?"
    plain = {s.text: s.score for s in rank_sentences(question, [WARRANTY_DATA, RESET_STEPS], rank_prior=0.0)}
    in_section = {s.text: s.score for s in rank_sentences(question, [WARRANTY_DATA, RESET_STEPS], rank_prior=0.0,
                                                          headings=HEADINGS)}
    step = "Press and hold the recessed Reset button on the back for 10 seconds with a paper clip."
    assert in_section[step] > plain[step]  # "factory" comes from the heading "Factory reset"
    assert max(in_section, key=lambda text: in_section[text]) == step
    # a sentence that shares no term with the question is not quoted for its heading alone
    assert "Keep the router powered on." not in in_section


def test_short_headings_lists_leave_the_other_sources_without_context() -> None:
    ranked = rank_sentences("factory reset", [WARRANTY_DATA, RESET_STEPS], headings=HEADINGS[:1])
    assert {s.source for s in ranked} == {1, 2}


@pytest.mark.slow
def test_the_section_picks_the_steps_over_a_side_remark_elsewhere() -> None:
    """The quick-start question: the warranty's side remark repeats "factory reset" and "router", the
    steps do not; their section's heading and its retrieval cosine make the steps win."""
    from knowledge.encoder import shared_encoder

    question = "How do I factory reset the router?"
    generator = ExtractiveGenerator(max_sentences=1, semantic_weight=1.0, section_weight=2.0,
                                    encoder=shared_encoder(runtime="onnx"))
    sources = [WARRANTY_DATA, RESET_STEPS]
    assert [s.source for s in generator.select(question, sources)] == [1]  # without context: the remark
    context = SourceContext(headings=HEADINGS, relevance=[0.45, 0.62])
    [chosen] = generator.select(question, sources, context)
    assert chosen.source == 2 and chosen.text in RESET_STEPS
    text = answer(question, sources, generator)
    assert marker_numbers(text) == [1]  # a request without headings behaves as before
    request = GenerationRequest(messages=[], question=question, sources=sources,
                                source_headings=HEADINGS, source_relevance=[0.45, 0.62])
    assert marker_numbers(generate_text(generator, request)) == [2]


@pytest.mark.slow
def test_assessment_reports_a_central_word_the_section_lacks() -> None:
    from knowledge.encoder import shared_encoder

    generator = ExtractiveGenerator(semantic_weight=1.0, encoder=shared_encoder(runtime="onnx"))
    sources = [RESET_STEPS]
    covered = generator.assess("How do I factory reset the router?", sources)
    near_miss = generator.assess("Does the router support IPv6?", sources)
    assert covered.confidence > 0 and covered.unmatched_focus < 0.22 < near_miss.unmatched_focus
    assert generator.assess("How do I reset the router?", sources, focus=False).unmatched_focus == 0.0


@pytest.mark.slow
def test_assessment_breaks_the_best_score_into_its_parts_and_its_lead() -> None:
    from knowledge.encoder import shared_encoder

    generator = ExtractiveGenerator(semantic_weight=1.0, section_weight=2.0, rank_prior=0.3,
                                    encoder=shared_encoder(runtime="onnx"))
    question = "How do I factory reset the router?"
    context = SourceContext(headings=HEADINGS, relevance=[0.45, 0.62])
    assessment = generator.assess(question, [WARRANTY_DATA, RESET_STEPS], context)
    best = max(generator.select(question, [WARRANTY_DATA, RESET_STEPS], context), key=lambda s: s.score)
    assert assessment.source_rank == 2 and assessment.section_relevance == 0.62
    assert 0 < assessment.words <= 1 and 0 < assessment.meaning < 1
    assert assessment.confidence == pytest.approx(assessment.words + 0.3 / 2 + assessment.meaning + 2.0 * 0.62)
    assert assessment.confidence == pytest.approx(best.score)
    # the lead is over the warranty's sentence; alone, the reset steps lead by their whole score
    assert 0 < assessment.lead < assessment.confidence
    alone = generator.assess(question, [RESET_STEPS], SourceContext(headings=HEADINGS[1:], relevance=[0.62]))
    assert alone.lead == pytest.approx(alone.confidence) and alone.candidates >= 1
