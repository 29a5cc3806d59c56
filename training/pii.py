"""PII redaction for training data, with Presidio's pattern recognizers only.

spaCy models cannot be installed here, so Presidio's ``AnalyzerEngine`` (which needs an NLP engine)
is not used: the recognizers are called directly with ``nlp_artifacts=None``, which skips only the
context-word score boost. What is and is not detected (``DETECTION_REPORT`` says the same):

detected
  - e-mail addresses (Presidio ``EmailRecognizer``; its top-level-domain check needs the public
    suffix list from the network, so it is replaced by a local syntax check);
  - phone numbers (Presidio ``PhoneRecognizer``, Google's ``phonenumbers``) in the formats of the
    configured regions (default US, GB, DE, FR, ES, IT, NL, IN, CA, AU) and any ``+``-prefixed
    international number;
  - card numbers of 12-19 digits, with or without spaces or dashes, that pass the Luhn check
    (Presidio ``CreditCardRecognizer``); digit runs that fail Luhn are left alone;
  - IPv4 and IPv6 addresses (Presidio ``IpRecognizer``, validated with :mod:`ipaddress`);
  - IBANs (Presidio ``IbanRecognizer``, checksum-validated);
  - postal addresses of the form ``<number> <Capitalised Name> <street suffix>`` (``221B Baker
    Street``, ``1600 Pennsylvania Ave``), US ZIP codes after a state code (``DC 20500``) and UK
    postcodes (``NW1 6XE``): our own Presidio ``PatternRecognizer``s.

not detected
  - person names, company names and free-text places (these need an NER model);
  - addresses without a house number or street suffix (``Hauptstrasse 5, Berlin``, ``flat 3,
    the old mill``), and postcodes of other countries;
  - phone numbers written in words or in formats of regions not configured, without ``+``;
  - account ids, order numbers, licence keys and other identifiers specific to a product;
  - obfuscated e-mails (``jane at example dot com``).

Usage::

    redactor = PiiRedactor()
    redactor.redact("mail jane@example.com").text  # "mail <EMAIL>"
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

DETECTION_REPORT: dict[str, list[str]] = {
    "detected": ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD (Luhn-valid)", "IP_ADDRESS (v4, v6)", "IBAN_CODE",
                 "POSTAL_ADDRESS (number + street suffix; US state + ZIP; UK postcode)"],
    "not_detected": ["person and organisation names (no NER model)", "addresses without house number or street suffix",
                     "non-US/UK postcodes", "phone numbers of unconfigured regions without +",
                     "product-specific identifiers (account, order, licence numbers)", "obfuscated e-mails"],
}

PLACEHOLDERS = {"EMAIL_ADDRESS": "<EMAIL>", "PHONE_NUMBER": "<PHONE>", "CREDIT_CARD": "<CARD_NUMBER>",
                "IP_ADDRESS": "<IP_ADDRESS>", "IBAN_CODE": "<IBAN>", "POSTAL_ADDRESS": "<ADDRESS>"}

DEFAULT_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "CA", "AU")

_STREET_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
                  r"Square|Sq|Terrace|Parkway|Pkwy|Highway|Hwy|Crescent|Close|Gardens|Row|Strasse|Straße)")
_ADDRESS_PATTERNS = (
    ("street address", rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][A-Za-z'.-]*\s+){{1,4}}{_STREET_SUFFIX}\b\.?"
                       r"(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?", 0.6),
    ("US state + ZIP", r"\b(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|"
                       r"S[CD]|T[NX]|UT|V[AT]|W[AIVY])\s+\d{5}(?:-\d{4})?\b", 0.5),
    ("UK postcode", r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b", 0.5),
)
_EMAIL_SYNTAX = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


@dataclass(frozen=True)
class Redaction:
    text: str
    found: Counter[str] = field(default_factory=Counter)
    """entity type → number of spans replaced"""


class PiiRedactor:
    """Replaces PII spans with ``<TYPE>`` placeholders. Recognizers are built on first use (importing
    Presidio takes several seconds).

    :param regions: phone-number regions (ISO 3166 codes) whose national formats are recognised.
    :param min_score: spans scored below this are kept (phone numbers score 0.4 without context words).
    """

    def __init__(self, *, regions: tuple[str, ...] = DEFAULT_REGIONS, min_score: float = 0.3) -> None:
        if not 0 <= min_score <= 1:
            raise ValueError(f"min_score must be within [0, 1], not {min_score}")
        self.regions = regions
        self.min_score = min_score
        self._recognizers: list[Any] | None = None

    def warm_up(self) -> None:
        if self._recognizers is not None:
            return
        from presidio_analyzer import Pattern, PatternRecognizer
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
        )

        class OfflineEmailRecognizer(EmailRecognizer):
            """Presidio's check of the domain fetches the public suffix list; a syntax check suffices."""

            def validate_result(self, pattern_text: str) -> bool:
                return bool(_EMAIL_SYNTAX.match(pattern_text))

        address = PatternRecognizer(supported_entity="POSTAL_ADDRESS", name="PostalAddressRecognizer",
                                    patterns=[Pattern(name, regex, score) for name, regex, score in _ADDRESS_PATTERNS])
        self._recognizers = [OfflineEmailRecognizer(), PhoneRecognizer(supported_regions=self.regions),
                             CreditCardRecognizer(), IpRecognizer(), IbanRecognizer(), address]

    def redact(self, text: str) -> Redaction:
        """``text`` with every detected span replaced; overlapping spans merge into the larger one."""
        self.warm_up()
        spans: list[tuple[int, int, str]] = []
        for recognizer in self._recognizers or []:
            for result in recognizer.analyze(text, recognizer.supported_entities, None) or []:
                if result.score >= self.min_score:
                    spans.append((result.start, result.end, result.entity_type))
        # Longest first at each start, then drop spans inside an earlier kept one.
        spans.sort(key=lambda span: (span[0], -(span[1] - span[0])))
        kept: list[tuple[int, int, str]] = []
        for start, end, entity in spans:
            if kept and start < kept[-1][1]:
                if end > kept[-1][1]:
                    kept[-1] = (kept[-1][0], end, kept[-1][2])
                continue
            kept.append((start, end, entity))
        found: Counter[str] = Counter()
        pieces, position = [], 0
        for start, end, entity in kept:
            pieces += [text[position:start], PLACEHOLDERS.get(entity, f"<{entity}>")]
            position = end
            found[entity] += 1
        pieces.append(text[position:])
        return Redaction(text="".join(pieces), found=found)
