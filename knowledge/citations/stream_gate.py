"""The gate between a generator and a streamed answer.

Raw model text must not reach the customer before it is checked, yet the whole-answer citation
check can only run once generation has ended. So streamed text is held until a sentence is finished
(the sentence rules of :func:`knowledge.sentences.split_sentences`: a sentence is finished once the
next one starts), then it goes through the checks of :mod:`knowledge.citations.check` that need no
other sentence: links, images and HTML sanitised exactly as in the final check, and a sentence that
holds the canary, repeats the system prompt or is a claim no source supports held back (the final
check would drop it: a customer never sees a sentence appear and then vanish). The final ``answer``
event stays the authority and replaces the streamed text: re-attributed markers, or the extractive
answer when no sentence was supported.
"""

from __future__ import annotations

import re

from haystack import Document

from knowledge.citations.check import link_sources, stream_verdict
from knowledge.citations.links import remove_foreign_links
from knowledge.sentences import split_sentences

# Markup that is still open at the end of the text: a tag without its ">", a markdown link or image
# without its "]" or "(...)". Text from there on waits for it to close, so that the sanitiser sees a
# link or tag whole even when its label runs over a sentence boundary.
_OPEN_MARKUP = re.compile(r"(?:<\s*/?\s*(?:[A-Za-z][^>]*)?|!?\[[^\]]*(?:\](?:\([^)]*)?)?)\Z")


class SentenceGate:
    """Releases generated text sentence by sentence, checked and sanitised.

    Usage::

        gate = SentenceGate(documents, threshold, withheld=system_prompt, canary=canary)
        for piece in generator.stream(request):
            send(gate.feed(piece))
        send(gate.flush())

    :param sources: the documents given to the model, numbered from 1 (links found in them are kept).
    :param threshold: the sentence support threshold of the citation check.
    :param withheld: text that must never be repeated (the system prompt).
    :param canary: the system prompt's secret marker; a sentence holding it is never released.
    :param check_support: ``False`` for an answer that is not checked against sources (the prompt-only
        baseline): claims are released without support, and the reply never strays.
    """

    def __init__(self, sources: list[Document], threshold: float, *, withheld: str = "", canary: str = "",
                 check_support: bool = True) -> None:
        self._texts = [doc.content or "" for doc in sources]
        self._allowed = link_sources(sources)
        self._threshold = threshold
        self._withheld = withheld
        self._canary = canary
        self._check_support = check_support
        self._raw = ""
        self._closed = 0  # the text before this offset holds no open markup (once closed, it stays closed)
        self._released = 0
        self._shown = False
        self._finished: list[str] = []
        self._claimed = False  # a claim has been judged
        self.strayed = False
        """Whether the reply's first claim is one no source supports: a small model that starts off its
        sources rarely comes back to them, so the caller may stop generating (``answer.stop_astray``)."""

    @property
    def finished_text(self) -> str:
        """The finished sentences so far, sanitised, shown or not (what the final check would read of
        a reply stopped here)."""
        return " ".join(self._finished)

    def feed(self, piece: str) -> str:
        """Add ``piece``; returns the text that may be streamed now ("" while a sentence is unfinished).

        :returns: the sentences finished by ``piece`` that passed, space-separated as in the answer.
        """
        self._raw += piece
        return self._release(final=False)

    def flush(self) -> str:
        """Generation has ended: the last sentence goes through the same checks.

        :returns: what is left to stream.
        """
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        # The whole text is sanitised and split every time, as the final check does it, so that a
        # sentence is cut where that check would cut it; answers are short (max_new_tokens).
        stable = self._raw
        if not final:
            opened = _OPEN_MARKUP.search(stable, self._closed)
            self._closed = opened.start() if opened else len(stable)
            stable = stable[:self._closed]
        clean, _ = remove_foreign_links(stable, self._allowed)
        sentences = split_sentences(clean)
        finished = sentences if final else sentences[:-1]
        passed = []
        for sentence in finished[self._released:]:
            verdict = stream_verdict(sentence, self._texts, self._threshold, withheld=self._withheld,
                                     canary=self._canary)
            self._finished.append(sentence)
            if verdict == "unsupported" and not self._check_support:
                verdict = "supported"
            if verdict in ("supported", "aside"):
                passed.append(sentence)
            if verdict in ("supported", "unsupported") and not self._claimed:
                self._claimed = True
                self.strayed = verdict == "unsupported"
        self._released = max(self._released, len(finished))
        if not passed:
            return ""
        text = (" " if self._shown else "") + " ".join(passed)
        self._shown = True
        return text
