"""Query text handling shared by every backend: terms, FTS escaping, snippets.

User queries are never passed to a query language as typed.  They are cut into
plain word terms (letters and digits only), so quotes, parentheses, `*`, `-`,
`:` column filters and the FTS5 operators `AND`/`OR`/`NOT`/`NEAR` are just
words or separators.  Scripts written without spaces (Chinese, Japanese,
Korean) are split into one term per character at index and query time, and a
run of them in a query becomes a phrase, so a word inside a sentence matches.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_TERMS = 64  # a pasted essay still searches; its first 64 distinct words are plenty for BM25
MAX_EMBED_CHARS = 2000  # keeps query and document embeddings inside a small model's context
SNIPPET_CHARS = 240

_WORD = re.compile(r"[^\W_]+")
# Han, Hiragana, Katakana, Hangul, CJK compatibility ranges: written without spaces.
_CJK = re.compile(
    "[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002fa1f]"
)
_SUFFIXES = ("ings", "ing", "ies", "ied", "ers", "er", "es", "ed", "ly", "s")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def segment(text: str) -> str:
    """Text as the FTS tokenizer should see it: CJK characters spaced apart."""
    return _CJK.sub(lambda m: f" {m.group(0)} ", text) if _CJK.search(text) else text


def terms(query: str) -> list[str]:
    """The distinct search terms of a query, in order; CJK runs kept as one phrase term."""
    found: list[str] = []
    seen: set[str] = set()
    for word in _WORD.findall(query):
        # A word may mix scripts ("東京2024"): split CJK runs from the rest.
        for part in re.findall(f"{_CJK.pattern}+|(?:(?!{_CJK.pattern})[^\\W_])+", word):
            key = part.casefold()
            if key not in seen:
                seen.add(key)
                found.append(part)
                if len(found) >= MAX_TERMS:
                    return found
    return found


# Words that say nothing about what a text is about.  They match almost every message, so as
# BM25 terms they only add noise to the fusion (a question's "who", "me", "about" ranked
# unrelated messages above the one meant).  English, plus the commonest of a few languages
# the archive is likely to hold.  A query made only of them still searches them.
STOP_WORDS = frozenset("""
a about above after again against all am an and any anyone anything are aren as at be because been before
being below between both but by can could did do does doing don down during each else ever every few for from
further get got had has have having he her here hers herself him himself his how i if in into is isn it its
itself just let me more most much must my myself no nor not now of off on once only or other ought our ours
ourselves out over own please same shall she should so some someone something than that the their theirs
them themselves then there these they this those through to too under until up upon us very was we were what
when where which while who whom whose why will with would yes yet you your yours yourself yourselves
also did didn doesn isn wasn weren won wouldn couldn shouldn ll re ve d s t m
tell told say said know remember thing things stuff
der die das und ist nicht ein eine zu mit den von le la les et est un une des du de en que qui el los las y es
por para con il lo che di e per non
""".split())


def keyword_terms(query_terms: list[str]) -> list[str]:
    """The terms worth ranking by BM25: stop words dropped, unless nothing else is left."""
    meaningful = [t for t in query_terms if t.casefold() not in STOP_WORDS]
    return meaningful or list(query_terms)


def term_coverage(text: str, query_terms: list[str]) -> float:
    """The share of the query's terms found in `text` (0..1), each term weighted by its length.

    What a keyword hit is worth in the fusion: a message holding every word asked for
    is a strong match, one that shares a single word of a paraphrase is a weak one.
    Longer words are the rarer, more telling ones.
    """
    if not query_terms:
        return 0.0
    folded = text.casefold() if text.isascii() else _fold(text)
    total = found = 0.0
    for term in query_terms:
        weight = float(min(len(term), 12))
        total += weight
        if _CJK.match(term):
            found += weight if term in text else 0.0
            continue
        # A word's stem is a prefix of the word: only words starting with it can match.
        stem = _stem(term)
        for m in re.finditer(r"(?<![^\W_])" + re.escape(stem) + r"[^\W_]*", folded):
            if _stem(m.group(0)) == stem:
                found += weight
                break
    return found / total if total else 0.0


def fts_match(query_terms: list[str]) -> str:
    """An FTS5 MATCH expression that ORs the quoted terms (BM25 ranks docs with more terms first)."""
    quoted = []
    for term in query_terms:
        # Inside double quotes FTS5 treats everything as tokens to match; quotes are doubled.
        quoted.append('"' + segment(term).strip().replace('"', '""') + '"')
    return " OR ".join(quoted)


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stem(word: str) -> str:
    # Crude on purpose: it only decides what to highlight; ranking uses FTS5's porter stemmer.
    word = _fold(word)
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def _match_spans(text: str, query_terms: list[str]) -> list[tuple[int, int]]:
    stems = {_stem(t) for t in query_terms if not _CJK.match(t)}
    spans = []
    if stems:
        for m in _WORD.finditer(text):
            if _stem(m.group(0)) in stems:
                spans.append((m.start(), m.end()))
    for term in query_terms:
        if _CJK.match(term):
            spans.extend((m.start(), m.end()) for m in re.finditer(re.escape(term), text))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, query_terms: list[str], size: int = SNIPPET_CHARS) -> list[tuple[str, bool]]:
    """A window of `text` around the first match, as (piece, is_match) pairs.

    The pieces are plain text: templates escape them and wrap matches in <mark>,
    so nothing from the document is ever rendered as HTML.
    """
    spans = _match_spans(text, query_terms) if query_terms else []
    start = 0
    if spans and spans[0][0] > size // 3:
        start = spans[0][0] - size // 3
        # Begin at a word boundary so the snippet doesn't open mid-word.
        space = text.rfind(" ", 0, start)
        start = space + 1 if space >= 0 and start - space < 20 else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + size // 2 else end
    pieces: list[tuple[str, bool]] = []
    if start > 0:
        pieces.append(("…", False))
    cursor = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        if s > cursor:
            pieces.append((text[cursor:s], False))
        pieces.append((text[s:e], True))
        cursor = e
    if cursor < end:
        pieces.append((text[cursor:end], False))
    if end < len(text):
        pieces.append(("…", False))
    return pieces


def embedding_input(text: str) -> str:
    return text[:MAX_EMBED_CHARS]
