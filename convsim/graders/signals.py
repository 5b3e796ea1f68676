"""Implicit user signals: cheap observations of how the user behaved.

Every grader here is a :class:`~convsim.graders._base.SyncGrader` whose scores are named
``signal.*``. Unlike guardrails, a signal is an **observation, not a pass/fail
verdict**: a binary signal is ``True`` when the signal is **present**
(``signal.frustration`` True means the user showed frustration), so for most signals a
lower rate is better. ``Score.details["matches"]`` names the message indices and the
matched text.

The detectors are English-language heuristics built to run on all production traffic:
literal anchors found with ``str.find``, short regexes checked only at those anchors,
and word-set similarity. They trade recall for few false positives on polite text.
Simulator stop markers such as ``###STOP###`` are removed from user text before any
check, and a user message holding only a stop marker counts as the user closing the
conversation.

The graders that read user text share one lower-cased copy of it, cached for the last
conversation graded (keyed on the message contents themselves), so running them
together reads the text once.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, is_
from typing import Final

from pydantic import JsonValue

from ..trace import AssistantMessage, Conversation, Message, UserMessage
from ._base import GradeOutput, ScoreBuilder, SyncGrader, config_hash, rule_score

__all__ = [
    "DEFAULT_CLOSING_OFFERS",
    "SIGNAL_NAMES",
    "STOP_MARKERS",
    "AbandonmentSignal",
    "CorrectionSignal",
    "EscalationSignal",
    "FeedbackSignals",
    "FrustrationSignal",
    "LoopSignal",
    "RephraseSignal",
    "default_signals",
]

STOP_MARKERS: Final[tuple[str, ...]] = ("###STOP###", "###TRANSFER###", "###OUT-OF-SCOPE###")
"""Markers simulated users (tau-bench and its successors) write to end a conversation."""

SIGNAL_NAMES: Final[tuple[str, ...]] = (
    "signal.rephrase",
    "signal.correction",
    "signal.frustration",
    "signal.escalation",
    "signal.abandonment",
    "signal.loop",
    "signal.thumbs_down",
    "signal.csat",
)
"""Every score name the graders of this module can emit."""

_MAX_MATCH_TEXT = 120


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_MATCH_TEXT else text[:_MAX_MATCH_TEXT] + "…"


def _strip_markers(text: str) -> str:
    if "###" in text:
        for marker in STOP_MARKERS:
            text = text.replace(marker, " ")
    return text.strip()


_CONTENT = attrgetter("content")
_PARTS = attrgetter("parts")
# The last view built: its conversation, that conversation's messages, its user
# messages with their content and parts, and the view.
_last_view: (
    tuple[
        Conversation,
        tuple[Message, ...],
        tuple[Message, ...],
        tuple[object, ...],
        tuple[object, ...],
        _UserText,
    ]
    | None
) = None


# Every byte but a-z and 0-9 becomes a space, including the bytes of UTF-8 sequences,
# which no ASCII character class matches either.
_NON_WORD_TO_SPACE = bytes(
    b if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789" else 32 for b in range(256)
)


def _runs(lower: str) -> frozenset[bytes]:
    """The runs of a-z and 0-9 in ``lower``, as bytes (an apostrophe splits a run)."""
    # JSON text may hold lone surrogates, which strict UTF-8 refuses.
    return frozenset(lower.encode("utf-8", "surrogatepass").translate(_NON_WORD_TO_SPACE).split())


@dataclass(slots=True)
class _UserText:
    """Every user message with text, lower-cased and joined, to search in one go."""

    indices: list[int]
    """Message index of each piece."""
    pieces: list[str]
    """The text of each piece, stop markers removed."""
    lowers: list[str]
    """Each piece lower-cased, curly apostrophes made straight."""
    starts: list[int]
    """Offset of each piece in ``lower``."""
    lower: str
    """The lower-cased pieces joined by newlines."""
    runs: list[frozenset[bytes]] | None = None
    """The runs of a-z and 0-9 of each piece; built when first asked for."""
    index: tuple[frozenset[bytes], frozenset[bytes]] | None = None
    """The runs of all pieces, and the first four bytes of each; built from ``runs``."""

    def piece_runs(self) -> list[frozenset[bytes]]:
        """The runs of a-z and 0-9 of each piece (shared by rephrase and the rules)."""
        runs = self.runs
        if runs is None:
            runs = self.runs = [_runs(low) for low in self.lowers]
        return runs

    def may_match(self, rule: _Rule) -> bool:
        """False when ``rule`` cannot match: a word that every match holds is missing.

        Always True until the pieces have been split into runs (the rephrase signal
        does that first in :func:`default_signals`): splitting costs about what the
        check saves one grader, and pays only when it is shared.
        """
        if self.index is None:
            if self.runs is None:
                return True
            every = frozenset().union(*self.runs)
            self.index = (every, frozenset([word[:4] for word in every]))
        words, heads = self.index
        for word in rule.words:
            if word not in words:
                return False
        return rule.head is None or rule.head in heads

    @classmethod
    def of(cls, conversation: Conversation) -> _UserText:
        """The view of ``conversation``, shared by the signal graders that read it."""
        global _last_view
        # Four graders read the same user text one after another; build it once. The
        # cache key holds the message objects and the user messages' content and parts
        # themselves, so a replaced message, or one whose content or parts were
        # reassigned, is never served from the cache (a part edited in place is).
        messages = tuple(conversation.messages)
        cached = _last_view
        if (
            cached is not None
            and cached[0] is conversation
            and len(cached[1]) == len(messages)
            and all(map(is_, cached[1], messages))
            and all(map(is_, map(_CONTENT, cached[2]), cached[3]))
            and all(map(is_, map(_PARTS, cached[2]), cached[4]))
        ):
            return cached[5]
        users: list[Message] = []
        indices: list[int] = []
        pieces: list[str] = []
        for i, m in enumerate(messages):
            if isinstance(m, UserMessage):
                users.append(m)
                content = m.content
                text = _strip_markers(
                    content if m.parts is None and isinstance(content, str) else m.text
                )
                if text:
                    indices.append(i)
                    pieces.append(text)
        lowers = [p.lower().replace("’", "'") for p in pieces]
        starts: list[int] = []
        pos = 0
        for low in lowers:
            starts.append(pos)
            pos += len(low) + 1
        view = cls(indices, pieces, lowers, starts, "\n".join(lowers))
        user_messages = tuple(users)
        _last_view = (
            conversation,
            messages,
            user_messages,
            tuple(map(_CONTENT, user_messages)),
            tuple(map(_PARTS, user_messages)),
            view,
        )
        return view

    def locate(self, pos: int) -> int:
        """Which piece the offset ``pos`` of ``lower`` falls in."""
        return bisect_right(self.starts, pos) - 1

    def hit(self, start: int, end: int) -> dict[str, JsonValue]:
        """A match record: message index and matched text (original case when possible)."""
        n = self.locate(start)
        piece = self.pieces[n]
        offset = start - self.starts[n]
        text = self.lower[start:end]
        if len(piece.lower()) == len(piece):  # lower-casing kept every offset
            text = piece[offset : offset + end - start]
        return {"message_index": self.indices[n], "text": _clip(text)}


def _emit(
    grader: SyncGrader,
    conversation: Conversation,
    hits: list[JsonValue],
    present: str,
    absent: str,
    **details: JsonValue,
) -> list[GradeOutput]:
    reason = present.format(n=len(hits)) if hits else absent
    return [rule_score(grader, conversation, bool(hits), reason, {"matches": hits, **details})]


def _clause_start(text: str, pos: int) -> int:
    # Where the clause holding ``pos`` starts, so a negation in an earlier sentence does
    # not cancel a request in this one.
    return max(text.rfind(ch, 0, pos) for ch in ".!?;\n") + 1


def _at_clause_start(text: str, pos: int) -> bool:
    j = pos - 1
    while j >= 0 and text[j] == " ":
        j -= 1
    return j < 0 or text[j] in ",.;:!?\n"


_RUN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class _Rule:
    """One anchored phrase: the anchor is found with ``str.find`` on lower-cased text.

    At each occurrence that starts a word, ``pattern`` (if any) must match from the
    anchor, ``before`` (if any) must match the text just before it in the same clause,
    and ``negation`` (if any) must not. A rule without ``pattern`` needs the anchor to
    end a word unless ``stem`` is set.
    """

    anchor: str
    pattern: re.Pattern[str] | None = None
    before: re.Pattern[str] | None = None
    clause_start: bool = False
    stem: bool = False
    # Most rules match no text, and a set lookup is cheaper than a scan. ``words`` are
    # the runs of a-z and 0-9 that every match holds whole; ``head`` is the first four
    # bytes of the run the anchor ends with when that run may go on past the anchor.
    words: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    head: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        words: list[bytes] = []
        head: bytes | None = None
        ends_word = self.pattern is None and not self.stem
        for run in _RUN.finditer(self.anchor):
            # A match starts a word, and inside the anchor other characters split runs
            # as they do in the text; at the anchor's end, a run is whole only when the
            # anchor must end a word there.
            if run.end() < len(self.anchor) or ends_word:
                words.append(run.group().encode())
            elif len(run.group()) >= 4:
                head = run.group()[:4].encode()
        object.__setattr__(self, "words", tuple(words))
        object.__setattr__(self, "head", head)


def _scan(
    view: _UserText,
    rules: Sequence[_Rule],
    negation: re.Pattern[str] | None = None,
    negation_window: int | None = None,
    *,
    after_index: int = -1,
) -> dict[int, dict[str, JsonValue]]:
    """The first rule match in each user message, keyed by message index.

    Messages at or before ``after_index`` are skipped.
    """
    text = view.lower
    found: dict[int, tuple[int, int]] = {}
    for rule in rules:
        if not view.may_match(rule):
            continue
        anchor = rule.anchor
        pos = text.find(anchor)
        while pos >= 0:
            n = view.locate(pos)
            span = (
                None
                if n in found or view.indices[n] <= after_index
                else _try(view, rule, pos, n, negation, negation_window)
            )
            if span is not None:
                found[n] = span
            pos = text.find(anchor, pos + 1)
    return {view.indices[n]: view.hit(*span) for n, span in found.items()}


def _try(
    view: _UserText,
    rule: _Rule,
    pos: int,
    n: int,
    negation: re.Pattern[str] | None,
    negation_window: int | None,
) -> tuple[int, int] | None:
    text = view.lower
    if pos and text[pos - 1].isalnum():
        return None  # the anchor does not start a word
    end = pos + len(rule.anchor)
    if rule.pattern is not None:
        m = rule.pattern.match(text, pos)
        if m is None:
            return None
        end = m.end()
    elif rule.stem:
        while end < len(text) and text[end].isalpha():
            end += 1
    elif end < len(text) and text[end].isalnum():
        return None  # the anchor does not end a word
    lo = max(view.starts[n], _clause_start(text, pos))
    if rule.clause_start:
        if not _at_clause_start(text, pos) and (
            rule.before is None or rule.before.search(text, lo, pos) is None
        ):
            return None
    elif rule.before is not None and rule.before.search(text, lo, pos) is None:
        return None
    if negation is not None:
        window_lo = lo if negation_window is None else max(lo, pos - negation_window)
        if negation.search(text, window_lo, pos) is not None:
            return None
    return pos, end


# -- rephrase / retry ------------------------------------------------------------------

_WORD = re.compile(rb"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS = frozenset(
    """a an the i me my mine we us our you your yours it its it's this that these those
    is are was were be been am do does did have has had can could would will shall should
    may might must please pls thanks thank just so and or but if then to of in on at for
    with about from by as up out again also too very really some any there here what
    which who how when where why hi hello hey ok okay yes no not sure well oh i'm i'd
    i've i'll you're don't can't""".split()
)
_STOPWORD_BYTES = frozenset(word.encode() for word in _STOPWORDS)


def _content_words(lower: str, runs: frozenset[bytes]) -> frozenset[bytes]:
    """The words of lower-cased text (``_WORD`` matches) as bytes, stop words removed.

    Without an apostrophe the words are exactly the text's runs of a-z and 0-9 (UTF-8
    bytes of other letters never match ``_WORD`` either), which the signals share.
    """
    if "'" in lower:
        return frozenset(_WORD.findall(lower.encode("utf-8", "surrogatepass"))) - _STOPWORD_BYTES
    return runs - _STOPWORD_BYTES


class RephraseSignal:
    """The user repeats or closely rephrases their previous message (``signal.rephrase``).

    ``True`` means present: at least one user message is a near-copy of the user message
    before it, which usually means the agent did not understand or did not act. Two
    messages are near-copies when their content words (lower-cased, stop words removed)
    overlap with a Jaccard similarity of at least ``threshold``, and each has at least
    ``min_words`` content words, so short confirmations ("yes, please") repeated across
    turns do not count. ``details["matches"]`` lists ``message_index``,
    ``previous_index``, the ``similarity`` and the ``text``.

    Known limits: synonyms and paraphrases with different words are missed ("cancel my
    trip" vs "call off my flight"); only consecutive user messages are compared.

    Args:
        threshold: Minimum Jaccard similarity of the content-word sets.
        min_words: Minimum content words in each message.
    """

    name = "signal.rephrase"

    def __init__(self, threshold: float = 0.6, min_words: int = 3) -> None:
        self.threshold = threshold
        self.min_words = min_words
        self.version = config_hash("rephrase", 1, threshold, min_words, sorted(_STOPWORDS))

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Score one conversation (see the class docstring)."""
        hits: list[JsonValue] = []
        previous: tuple[int, frozenset[bytes]] | None = None
        view = _UserText.of(conversation)
        runs = view.piece_runs()
        for i, text, low, piece_runs in zip(
            view.indices, view.pieces, view.lowers, runs, strict=True
        ):
            words = _content_words(low, piece_runs)
            if previous is not None and len(words) >= self.min_words:
                j, before = previous
                size, size_before = len(words), len(before)
                # Jaccard is at most small/large; skip the set work when that bound misses.
                if size_before >= self.min_words and (
                    min(size, size_before) >= self.threshold * max(size, size_before)
                ):
                    shared = len(words & before)
                    similarity = shared / (size + size_before - shared)
                    if similarity >= self.threshold:
                        hits.append(
                            {
                                "message_index": i,
                                "previous_index": j,
                                "similarity": round(similarity, 3),
                                "text": _clip(text),
                            }
                        )
            previous = (i, words)
        return _emit(
            self,
            conversation,
            hits,
            "{n} user message(s) repeat the previous one",
            "no repeated user messages",
        )


# -- correction ------------------------------------------------------------------------

_THAT_IS = r"\b(?:that|it|this)(?:'s| is| was) "
_HEDGES = (
    "only just merely simply sure certain entirely quite exactly really too that much yet "
    "necessarily"
).split()
_CORRECTION_RULES: tuple[_Rule, ...] = (
    _Rule(
        "no",
        re.compile(r"no[,.!]? (?:i|we) (?:said|meant|asked|wanted|want|need(?:ed)?|told you)\b"),
    ),
    _Rule("not what i", re.compile(r"not what i (?:said|asked(?: for)?|meant|wanted|requested)\b")),
    _Rule("not", re.compile(r"not (?:right|correct|true)\b"), before=re.compile(_THAT_IS + "$")),
    _Rule(
        "wrong",
        before=re.compile(
            rf"(?:{_THAT_IS}(?:the |all )?|\byou(?:'ve|'re| have| are)? (?:[a-z]+ )?(?:the )?"
            r"|\byou got (?:it|that|me|this) )$"
        ),
    ),
    _Rule("incorrect", before=re.compile(_THAT_IS + "$")),
    _Rule("i meant"),
    _Rule("i didn't", re.compile(r"i didn't (?:say|ask|mean|want|request)\b")),
    _Rule("i did not", re.compile(r"i did not (?:say|ask|mean|want|request)\b")),
    _Rule("i never", re.compile(r"i never (?:said|asked|meant|wanted|requested)\b")),
    _Rule("misunderstood", before=re.compile(r"\byou(?:'ve| have)? $")),
    _Rule("misheard", before=re.compile(r"\byou(?:'ve| have)? $")),
    # "not X but Y" at a clause start or after "it's" / "I said" / "I want"; never
    # after a hedge ("I'm not entirely sure, but I think...").
    _Rule(
        "not",
        re.compile(
            rf"not (?!(?:{'|'.join(_HEDGES)})\b)(?:the |a |an |my )?[\w-]+ ?,? but "
            r"(?:the |a |an |my |rather )?[\w-]+"
        ),
        before=re.compile(
            r"\b(?:no,? |it(?:'s| is| was) |i (?:said|meant|want(?:ed)?|need(?:ed)?|asked for) )$"
        ),
        clause_start=True,
    ),
)


class CorrectionSignal:
    """The user corrects the agent (``signal.correction``).

    ``True`` means present: a user message after the agent's first message contains a
    correction such as "no, I said…", "that's not what I asked", "I meant…", "that's
    wrong", "you booked the wrong flight", "I didn't ask for…", "you misunderstood" or
    "not X but Y". ``details["matches"]`` lists ``message_index`` and the matched
    ``text``.

    Known limits: English phrasing only; corrections without a marker phrase ("The date
    is the 21st.") are missed; "not X but Y" counts only at a clause start or after
    "it's" / "I said" / "I want", and never after a hedge ("not sure, but…").
    """

    name = "signal.correction"
    version = config_hash("correction", 2, _CORRECTION_RULES)

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Score one conversation (see the class docstring)."""
        first_assistant = next(
            (i for i, m in enumerate(conversation.messages) if isinstance(m, AssistantMessage)),
            None,
        )
        hits: list[JsonValue] = []
        # Only a message after the agent's first reply can correct the agent.
        if first_assistant is not None:
            view = _UserText.of(conversation)
            found = _scan(view, _CORRECTION_RULES, after_index=first_assistant)
            hits = [found[i] for i in sorted(found)]
        return _emit(
            self,
            conversation,
            hits,
            "the user corrected the agent in {n} message(s)",
            "no corrections",
        )


# -- frustration -----------------------------------------------------------------------

# Word stems (any ending), whole words, and phrases (an anchor word and the pattern that
# must follow it) that voice frustration, including mild profanity. Every phrase hangs
# off one anchor, since each anchor costs a scan of the text.
_FRUSTRATION_STEMS = (
    "frustrat annoy irritat ridiculous absurd unacceptabl outrageous useless pointless "
    "hopeless horrible pathetic incompeten disappoint infuriat furious damn shit fuck "
    "f*ck bullshit pissed crap"
).split()
_FRUSTRATION_WORDS = "terrible awful worst angry upset unhelpful wtf ffs".split()
_FRUSTRATION_PHRASES = {
    "fed": r"fed[ -]up\b",
    "sick": r"sick (?:of|and tired)\b",
    "tired": r"tired of\b",
    "wast": r"wast(?:e of (?:my )?time|ing my time)\b",
    "not": r"not (?:helpful|listening)\b",
    "are you": r"are you (?:kidding|serious|even listening|a bot)\b",
    "give me": r"give me a break\b",
    "for the": r"for the (?:third|fourth|fifth|tenth|hundredth|last) time\b",
    "how many": r"how many times\b",
    "already": r"already (?:told|said|explained|gave|asked)\b",
    "screw": r"screw (?:this|you|it)\b",
    "hell": r"hell no\b",
    "what the": r"what the hell\b",
}
_FRUSTRATION_RULES = (
    *(_Rule(stem, stem=True) for stem in _FRUSTRATION_STEMS),
    *(_Rule(word) for word in _FRUSTRATION_WORDS),
    *(_Rule(anchor, re.compile(pattern)) for anchor, pattern in _FRUSTRATION_PHRASES.items()),
)
# "n't" has no word boundary before it ("don't"), so it stands outside the \b group.
_NEGATED = re.compile(r"(?:\b(?:not|never|no)|n't)\s+(?:\w+\s+){0,2}$")
_PUNCTUATION = re.compile(r"!{3,}|\?{2,}|[!?]*(?:\?!|!\?)[!?]*")
_SHOUT = re.compile(r"[A-Z]{2,}(?:[ ,.!?']+[A-Z]{2,}\b){2,}")
_POLITE = re.compile(
    r"\b(?:thanks?|thank\s+you|great|awesome|perfect|appreciate\w*|love|wonderful|excellent"
    r"|amazing|happy|glad|brilliant|fantastic|congrat\w*)\b",
    re.IGNORECASE,
)
_SHOUT_MIN_LETTERS = 8


def _shouting(text: str) -> re.Match[str] | None:
    for m in _SHOUT.finditer(text):
        if m.start() and text[m.start() - 1].isalnum():
            continue
        words = re.findall(r"[A-Z]+", m.group())
        # Airport codes and booking ids ("SFO JFK LAX") are not shouting: it takes three
        # capitalised words in a row, one longer than an acronym.
        if max(map(len, words)) >= 4 and sum(map(len, words)) >= _SHOUT_MIN_LETTERS:
            return m
    return None


class FrustrationSignal:
    """The user shows frustration (``signal.frustration``).

    ``True`` means present: a user message contains a frustration word or phrase
    ("ridiculous", "this is useless", "I already told you", "waste of my time"), mild
    profanity, shouting (three or more ALL-CAPS words in a row, at least one of four or
    more letters and eight letters in all, so airport codes and booking ids do not
    count), or insistent punctuation ("!!!", "??", "?!"). Frustration words right after
    a negation ("not upset") are ignored, and punctuation alone does not count in a
    message that also thanks or praises ("Thank you so much!!!").
    ``details["matches"]`` lists ``message_index``, the ``cue`` (lexicon, shouting or
    punctuation) and the matched ``text``.

    Known limits: sarcasm and politely worded frustration are missed; a frustration word
    about something other than the conversation ("terrible weather") still counts.
    """

    name = "signal.frustration"
    version = config_hash(
        "frustration",
        3,
        _FRUSTRATION_RULES,
        _NEGATED.pattern,
        _PUNCTUATION.pattern,
        _SHOUT.pattern,
        _POLITE.pattern,
        _SHOUT_MIN_LETTERS,
    )

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Score one conversation (see the class docstring)."""
        view = _UserText.of(conversation)
        by_message = _scan(view, _FRUSTRATION_RULES, _NEGATED, 24)
        for hit in by_message.values():
            hit["cue"] = "lexicon"
        # Shouting and insistent punctuation are rare: one look at all the text decides
        # whether any message needs a closer one.
        joined = "\n".join(view.pieces)
        punctuation = "!!!" in joined or "??" in joined or "?!" in joined or "!?" in joined
        if not punctuation and _shouting(joined) is None:
            return _emit(
                self,
                conversation,
                [by_message[i] for i in sorted(by_message)],
                "frustration in {n} user message(s)",
                "no frustration cues",
            )
        for n, piece in enumerate(view.pieces):
            index = view.indices[n]
            if index in by_message:
                continue
            shout = _shouting(piece)
            if shout is not None:
                by_message[index] = {
                    "message_index": index,
                    "cue": "shouting",
                    "text": _clip(shout.group()),
                }
            elif "!!!" in piece or "??" in piece or "?!" in piece or "!?" in piece:
                m = _PUNCTUATION.search(piece)
                if m is not None and _POLITE.search(piece) is None:
                    by_message[index] = {
                        "message_index": index,
                        "cue": "punctuation",
                        "text": m.group(),
                    }
        hits: list[JsonValue] = [by_message[i] for i in sorted(by_message)]
        return _emit(
            self,
            conversation,
            hits,
            "frustration in {n} user message(s)",
            "no frustration cues",
        )


# -- escalation ------------------------------------------------------------------------

_PEOPLE = (
    "human humans person someone somebody representative rep agent manager supervisor "
    "operator boss staff"
).split()
# What comes before a person word in a request: "speak to a (real) ...", "transfer me to
# a ...", "I want a ...".
_ESCALATION_BEFORE = re.compile(
    r"\b(?:(?:speak|talk|chat)(?:ing)? (?:to|with) "
    r"|(?:connect|transfer|put|patch|pass|hand|send|escalate|get) me (?:[a-z]+ ){0,2}?"
    r"(?:to |with |through to |over to )?"
    r"|(?:want|need|request|demand|like|get) (?:to (?:have|speak to|talk to) )?)"
    r"(?:a |an |the |your |another |other |different )?(?:[a-z]+ ){0,2}$"
)
_ESCALATION_RULES: tuple[_Rule, ...] = (
    *(_Rule(p, before=_ESCALATION_BEFORE) for p in _PEOPLE),
    _Rule("transfer me"),
    _Rule("transfer this"),
    _Rule("transfer my call"),
    _Rule("escalat", stem=True),
)
_ESCALATION_NEGATION = re.compile(
    r"\b(?:not|never|without|rather not|no need|avoid|instead of)\b|n't\b"
    r"|\bif (?:needed|necessary)\b"
)
_BARE_REQUEST = frozenset(
    f"{word}{tail}"
    for word in ("human", "agent", "representative", "operator", "manager", "supervisor")
    for tail in ("", " please", "!", ".", " please.", " please!")
)


class EscalationSignal:
    """The user asks for a human (``signal.escalation``).

    ``True`` means present: a user message asks to speak to, or be transferred to, a
    human, agent, representative, manager, supervisor or operator ("can I talk to a real
    person?", "transfer me", "I want a manager"), asks to escalate, or is just "agent"
    or "representative" (IVR style). A request negated earlier in the same clause ("I
    don't want to be transferred", "without involving another agent") is ignored.
    ``details["matches"]`` lists ``message_index`` and the matched ``text``. Whether the
    agent actually handed off is not part of this signal (see
    ``Conversation.signals.escalated``).

    Known limits: English only; indirect requests ("is there anyone else who could
    help?") are missed; a negation anywhere earlier in the clause suppresses a request.
    """

    name = "signal.escalation"
    version = config_hash(
        "escalation", 2, _PEOPLE, _ESCALATION_BEFORE.pattern, _ESCALATION_NEGATION.pattern
    )

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Score one conversation (see the class docstring)."""
        view = _UserText.of(conversation)
        found = _scan(view, _ESCALATION_RULES, _ESCALATION_NEGATION)
        for n, piece in enumerate(view.pieces):
            index = view.indices[n]
            if index not in found and len(piece) < 24 and piece.lower() in _BARE_REQUEST:
                found[index] = {"message_index": index, "text": piece}
        hits: list[JsonValue] = [found[i] for i in sorted(found)]
        return _emit(
            self,
            conversation,
            hits,
            "the user asked for a human in {n} message(s)",
            "no request for a human",
        )


# -- abandonment -----------------------------------------------------------------------

DEFAULT_CLOSING_OFFERS = (
    r"\b(?:anything\s+else|something\s+else|any\s+other\s+(?:questions?|thing|way|help)"
    r"|any\s+(?:further|more|additional)\s+(?:questions?|help|assistance)"
    r"|further\s+(?:assistance|help|questions?))\b"
)
"""Agent questions that offer more help rather than wait for an answer."""

_TRAILING = " \t\r\n*_\"'`)]>»”’"


class AbandonmentSignal:
    """The user left the conversation hanging (``signal.abandonment``).

    ``True`` means present: the conversation ends on a user message the agent never
    answered, or the agent's last message asks the user a question and no user message
    follows. A user message that contains a stop marker (:data:`STOP_MARKERS`, even one
    holding only the marker) closes the conversation and is never abandonment. A final
    agent question that only offers more help ("Is there anything else I can help you
    with?") is not waiting for an answer. When the source recorded
    ``Conversation.signals.abandoned``, that explicit value wins. ``details["reason"]``
    is a code (``unanswered_user_turn``, ``unanswered_agent_question``, ``user_closed``,
    ``closing_offer``, ``answered``, ``no_user_message``, ``explicit``) and
    ``details["message_index"]`` the message concerned. A conversation without user
    messages is not abandoned.

    Known limits: a final question must end in ``?`` to count; any assistant message
    (even one with only tool calls) answers a user message.

    Args:
        stop_markers: Markers that mean the user closed the conversation.
        closing_offers: Regex for final agent questions that are not abandonment
            (None: every final question counts).
    """

    name = "signal.abandonment"

    def __init__(
        self,
        stop_markers: Collection[str] = STOP_MARKERS,
        closing_offers: str | None = DEFAULT_CLOSING_OFFERS,
    ) -> None:
        self.stop_markers = tuple(stop_markers)
        self.closing_offers = re.compile(closing_offers, re.IGNORECASE) if closing_offers else None
        self.version = config_hash("abandonment", 1, self.stop_markers, closing_offers)

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Score one conversation (see the class docstring)."""
        explicit = conversation.signals.abandoned
        if explicit is not None:
            verdict = "abandoned" if explicit else "not abandoned"
            details: dict[str, JsonValue] = {
                "reason": "explicit",
                "message_index": None,
                "matches": [],
            }
            return [
                rule_score(
                    self, conversation, explicit, f"recorded by the source as {verdict}", details
                )
            ]
        value, code, index, reason = self._judge(conversation)
        hits: list[JsonValue] = [{"message_index": index}] if value else []
        details = {"reason": code, "message_index": index, "matches": hits}
        return [rule_score(self, conversation, value, reason, details)]

    def _judge(self, conversation: Conversation) -> tuple[bool, str, int | None, str]:
        messages = conversation.messages
        last_user = next(
            (i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], UserMessage)),
            None,
        )
        if last_user is None:
            return False, "no_user_message", None, "no user message"
        user_text = messages[last_user].text
        if any(marker in user_text for marker in self.stop_markers):
            return False, "user_closed", last_user, "the user closed the conversation"
        replies = [
            i
            for i in range(last_user + 1, len(messages))
            if isinstance(messages[i], AssistantMessage)
        ]
        if not replies:
            return True, "unanswered_user_turn", last_user, "the last user message got no reply"
        for i in reversed(replies):
            text = messages[i].text.rstrip(_TRAILING)
            if not text:
                continue
            if not text.endswith("?"):
                break
            closing = self.closing_offers
            if closing is not None and closing.search(text, text.rfind("\n") + 1):
                return False, "closing_offer", i, "the agent's last question offers more help"
            return True, "unanswered_agent_question", i, "the agent's last question got no reply"
        return False, "answered", None, "the conversation did not end on an open question"


# -- loops -----------------------------------------------------------------------------


_LOOP_KEY_CHARS = 48


@dataclass(slots=True)
class _LoopText:
    """The first text of a cluster of (near-)identical agent texts."""

    text: str
    words: frozenset[str] | None
    """Its lower-cased word set, built when first needed."""
    indices: list[int]
    """Messages in the cluster."""


class LoopSignal:
    """The agent goes in circles (``signal.loop``).

    ``True`` means present: the agent sends the same or a near-duplicate text at least
    ``min_duplicate_texts`` times, or makes an identical tool call (same name and
    arguments) at least ``min_identical_calls`` times. Two texts are near-duplicates
    when they start or end with the same 48 characters (ignoring case), their lengths
    are within ``threshold`` of each other, and their sets of lower-cased,
    whitespace-separated words have a Jaccard similarity of at least ``threshold``
    (texts under ``min_words`` words must have identical word sets). The shared start
    or end is what keeps this cheap: only such pairs are compared word by word.
    ``details["matches"]`` lists each repeated text or call with its
    ``message_indices`` and ``count``.

    Known limits: paraphrased loops, and near-duplicates that differ in both their
    first and last 48 characters, are missed; legitimate repeats, such as polling a
    status tool three times, count; punctuation stays attached to words ("flight." and
    "flight" differ); arguments in a different key order make a different call.

    Args:
        min_duplicate_texts: Occurrences of one text that make a loop.
        min_identical_calls: Occurrences of one tool call that make a loop.
        threshold: Jaccard similarity of word sets (and length ratio) for near-duplicates.
        min_words: Shorter texts must have identical word sets.
    """

    name = "signal.loop"

    def __init__(
        self,
        min_duplicate_texts: int = 2,
        min_identical_calls: int = 3,
        threshold: float = 0.8,
        min_words: int = 4,
    ) -> None:
        self.min_duplicate_texts = min_duplicate_texts
        self.min_identical_calls = min_identical_calls
        self.threshold = threshold
        self.min_words = min_words
        self.version = config_hash(
            "loop", 3, min_duplicate_texts, min_identical_calls, threshold, min_words
        )

    def _similar(self, words: frozenset[str], other: _LoopText) -> bool:
        # The caller has checked that the lengths are close enough.
        other_words = other.words
        if other_words is None:
            other_words = other.words = frozenset(other.text.lower().split())
        if words == other_words:
            return True
        size_a, size_b = len(words), len(other_words)
        small, large = (size_a, size_b) if size_a < size_b else (size_b, size_a)
        if small < self.min_words or small < self.threshold * large:
            return False
        shared = len(words & other_words)
        return shared >= self.threshold * (size_a + size_b - shared)

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Score one conversation (see the class docstring)."""
        clusters: list[_LoopText] = []
        # Cluster numbers by the lower-cased start and end of their first text.
        by_head: dict[str, list[int]] = {}
        by_tail: dict[str, list[int]] = {}
        calls: dict[tuple[str, str], list[int]] = {}
        for i, m in enumerate(conversation.messages):
            if not isinstance(m, AssistantMessage):
                continue
            for call in m.tool_calls:
                # repr is a fast, faithful key for the parsed arguments (JSON would be
                # three times slower).
                arguments = (
                    repr(call.arguments) if call.arguments is not None else call.arguments_raw or ""
                )
                calls.setdefault((call.name, arguments), []).append(i)
            text = m.text if m.parts is not None else m.content
            if not text:
                continue
            if text[0].isspace() or text[-1].isspace():
                text = text.strip()
                if not text:
                    continue
            head = text[:_LOOP_KEY_CHARS].lower()
            tail = text[-_LOOP_KEY_CHARS:].lower()
            same_head = by_head.get(head)
            same_tail = by_tail.get(tail)
            found = False
            words: frozenset[str] | None = None
            if same_head is not None or same_tail is not None:
                # Word sets are built only for texts that share a start or an end with
                # one of about the same length.
                size = len(text)
                for n in (*(same_head or ()), *(same_tail or ())):
                    other = clusters[n]
                    other_size = len(other.text)
                    if (size if size < other_size else other_size) < self.threshold * (
                        size if size > other_size else other_size
                    ):
                        continue
                    if words is None:
                        words = frozenset(text.lower().split())
                    if self._similar(words, other):
                        other.indices.append(i)
                        found = True
                        break
            if not found:
                n = len(clusters)
                clusters.append(_LoopText(text, words, [i]))
                if same_head is None:
                    by_head[head] = [n]
                else:
                    same_head.append(n)
                if same_tail is None:
                    by_tail[tail] = [n]
                else:
                    same_tail.append(n)
        hits: list[JsonValue] = [
            {
                "type": "text",
                "text": _clip(cluster.text),
                "message_indices": list(cluster.indices),
                "count": len(cluster.indices),
            }
            for cluster in clusters
            if len(cluster.indices) >= self.min_duplicate_texts
        ]
        hits.extend(
            {
                "type": "tool_call",
                "tool": tool,
                "arguments": _clip(arguments),
                "message_indices": list(indices),
                "count": len(indices),
            }
            for (tool, arguments), indices in calls.items()
            if len(indices) >= self.min_identical_calls
        )
        return _emit(
            self,
            conversation,
            hits,
            "the agent repeated itself ({n} repeated text(s) or call(s))",
            "no repeated agent texts or tool calls",
        )


# -- explicit feedback -----------------------------------------------------------------


class FeedbackSignals:
    """Explicit user feedback from ``Conversation.signals`` (grader ``signal.feedback``).

    Emits ``signal.thumbs_down`` (binary: ``True`` when the user gave a thumbs down,
    ``False`` for a thumbs up) only when thumbs feedback was recorded, and
    ``signal.csat`` (ordinal, 1-5) only when a CSAT rating was recorded. A conversation
    with neither gets no score at all, never a default. Scores have source ``user``.
    """

    name = "signal.feedback"
    version = config_hash("feedback", 1)

    def grade_sync(self, conversation: Conversation) -> list[GradeOutput]:
        """Score one conversation (see the class docstring)."""
        signals = conversation.signals
        if signals.thumbs is None and signals.csat is None:
            return []
        builder = ScoreBuilder(self.name, self.version, conversation, source="user")
        if signals.thumbs is not None:
            builder.score(
                "signal.thumbs_down",
                signals.thumbs == "down",
                "binary",
                f"the user gave a thumbs {signals.thumbs}",
            )
        if signals.csat is not None:
            builder.score(
                "signal.csat", signals.csat, "ordinal", f"the user rated {signals.csat}/5"
            )
        return builder.out


def default_signals() -> list[SyncGrader]:
    """Every signal grader with its default settings."""
    return [
        RephraseSignal(),
        CorrectionSignal(),
        FrustrationSignal(),
        EscalationSignal(),
        AbandonmentSignal(),
        LoopSignal(),
        FeedbackSignals(),
    ]
