"""Columnar windows of scores: what the drift tests read.

A :class:`Window` holds one window's scores as numpy arrays, built once: a conversation
table (ids, sampling weights, cohort tags) and, per score name, one row per score with the
row's conversation, value, message index and judge configuration. Every test downstream
works on these arrays, so no per-score Python runs after the window is built.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ...trace import Score, ScoreKind

MISSING_TAG = "(none)"
"""Tag value given to a conversation that lacks a cohort key."""

_KINDS: tuple[ScoreKind, ...] = ("binary", "ordinal", "continuous", "categorical")


@dataclass(frozen=True)
class JudgeConfig:
    """What produced a score: judge model, prompt hash and grader version.

    Two scores are comparable only when they share all three: a new judge model or prompt
    moves scores exactly like a product regression would.
    """

    judge_model: str | None = None
    """Model used by a judge grader (None for rule-based graders)."""
    prompt_hash: str | None = None
    """Hash of the judge prompt."""
    grader_version: str | None = None
    """Grader version or content hash."""

    def __str__(self) -> str:
        return (
            f"model={self.judge_model or '-'} prompt={self.prompt_hash or '-'} "
            f"grader={self.grader_version or '-'}"
        )


@dataclass(frozen=True)
class Tag:
    """One cohort key over a window's conversations, dictionary-encoded."""

    codes: NDArray[np.int64]
    """Per conversation, the index of its value in ``labels``."""
    labels: tuple[str, ...]
    """The distinct values, sorted."""


@dataclass(frozen=True, eq=False)
class ScoreColumn:
    """Every score of one name in a window, one row per score."""

    name: str
    """Score name."""
    kind: ScoreKind
    """Measurement kind; it picks the test."""
    conversation: NDArray[np.int64]
    """Per row, the index of its conversation in the window's conversation table."""
    values: NDArray[np.float64]
    """Per row, the value (true = 1.0); for categorical scores the index in ``categories``."""
    message_index: NDArray[np.int64]
    """Per row, the graded message, or -1 for a score of the whole conversation."""
    judge: NDArray[np.int64]
    """Per row, the index of its judge configuration in ``judge_configs``."""
    judge_configs: tuple[JudgeConfig, ...]
    """The distinct judge configurations used."""
    weight: NDArray[np.float64]
    """Per row, the sampling weight the score carries: 1 / its inclusion probability."""
    categories: tuple[str, ...] = ()
    """Labels of a categorical score, sorted."""

    @property
    def n_rows(self) -> int:
        """Scores in the column."""
        return int(self.values.size)

    @property
    def turn_level(self) -> bool:
        """Whether any row grades a single message rather than the whole conversation."""
        return bool((self.message_index >= 0).any())

    def configs_used(self) -> tuple[JudgeConfig, ...]:
        """The judge configurations that actually appear in the rows."""
        used = np.unique(self.judge)
        return tuple(self.judge_configs[int(i)] for i in used)


@dataclass(frozen=True)
class ScoreArrays:
    """One score name's rows, as arrays, for :meth:`Window.from_arrays`."""

    kind: ScoreKind
    """Measurement kind."""
    conversation: ArrayLike
    """Per row, the position of the conversation in ``conversation_ids``."""
    values: ArrayLike
    """Per row, the value: bool or 0/1 (binary), number, or a string label (categorical)."""
    message_index: ArrayLike | None = None
    """Per row, the graded message (-1 or None for a whole-conversation score)."""
    judge: JudgeConfig | Sequence[JudgeConfig] = field(default_factory=JudgeConfig)
    """The judge configuration of every row, or the list ``judge_index`` points into."""
    judge_index: ArrayLike | None = None
    """Per row, the index into ``judge`` when it is a list."""
    inclusion_prob: ArrayLike | None = None
    """Per row, the inclusion probability (default: its conversation's)."""


@dataclass(frozen=True, eq=False)
class Window:
    """One window's scores in columnar form (build with :meth:`from_scores`)."""

    label: str
    """Window label, e.g. ``2026-W47``."""
    conversation_ids: NDArray[np.str_]
    """Conversation table: ids."""
    weights: NDArray[np.float64]
    """Conversation table: sampling weight, 1 / inclusion probability (1 when unknown)."""
    tags: Mapping[str, Tag]
    """Conversation table: cohort keys."""
    scores: Mapping[str, ScoreColumn]
    """Score columns by name."""
    users: Tag | None = None
    """Conversation table: the user (or account) of each conversation, when known."""
    anchors: Window | None = None
    """The anchor set's re-judgments made in this window (scores marked ``anchor``),
    kept apart from the window's sample: they measure the judge, not the product."""

    @property
    def n_conversations(self) -> int:
        """Conversations in the window."""
        return int(self.conversation_ids.size)

    @property
    def names(self) -> tuple[str, ...]:
        """Score names, sorted."""
        return tuple(sorted(self.scores))

    def tag_values(self, key: str) -> NDArray[np.str_]:
        """Per conversation, the value of cohort key ``key`` (``(none)`` when absent)."""
        tag = self.tags.get(key)
        if tag is None:
            return np.full(self.n_conversations, MISSING_TAG)
        return np.asarray(tag.labels + (MISSING_TAG,))[tag.codes]

    @classmethod
    def from_scores(cls, scores: Iterable[Score], label: str | None = None) -> Window:
        """Build a window from score records, in one pass.

        Cohort tags are taken from the first score seen for each conversation, its user
        from the first score that names one. Each score keeps its own inclusion
        probability: in an online window the guardrails ran on every conversation while
        the judges saw a sample, so one conversation's scores carry different weights.
        The conversation's own weight (for the cohort mix) is that of its most probable
        score. Repeated scores of the same conversation and name (several turns, or
        repeated judging) all become rows; tests average them per conversation. Scores
        marked ``anchor`` go to :attr:`anchors`.

        Args:
            scores: The window's scores, any iterable (a generator keeps memory flat).
            label: Window label; default the scores' common ``window`` field.

        Returns:
            The window.

        Raises:
            ValueError: When one name is used with two kinds, or no label can be found.
        """
        main = _Builder()
        anchors = _Builder()
        labels: set[str | None] = set()
        for s in scores:
            if s.anchor:
                anchors.add(s)
            else:
                labels.add(s.window)
                main.add(s)
        if label is None:
            found = {x for x in labels if x is not None}
            if len(found) != 1:
                raise ValueError(
                    "pass a window label: the scores carry "
                    + ("no window label" if not found else f"several: {sorted(found)}")
                )
            label = found.pop()
        anchor_window = anchors.window(f"{label} (anchors)", None) if anchors.acc else None
        return main.window(label, anchor_window)

    @classmethod
    def from_arrays(
        cls,
        label: str,
        scores: Mapping[str, ScoreArrays],
        *,
        n_conversations: int | None = None,
        conversation_ids: ArrayLike | None = None,
        inclusion_prob: ArrayLike | None = None,
        tags: Mapping[str, ArrayLike | Tag] | None = None,
        user_ids: ArrayLike | None = None,
        anchors: Window | None = None,
    ) -> Window:
        """Build a window from arrays (the fast path for large windows and simulations).

        Args:
            label: Window label.
            scores: Per score name, its rows.
            n_conversations: Size of the conversation table; needed only without
                ``conversation_ids``.
            conversation_ids: Conversation ids (default ``"0"``, ``"1"``, ...).
            inclusion_prob: Per conversation, the probability sampling picked it (default
                1); a score's rows may override it.
            tags: Per cohort key, per conversation, its value (or an encoded :class:`Tag`).
            user_ids: Per conversation, its user id ("" when unknown).
            anchors: The anchor set's re-judgments made in this window.

        Returns:
            The window.

        Raises:
            ValueError: On inconsistent lengths or invalid values.
        """
        if conversation_ids is None:
            if n_conversations is None:
                raise ValueError("pass conversation_ids or n_conversations")
            ids = np.arange(n_conversations).astype(np.str_)
        else:
            ids = np.asarray(conversation_ids, dtype=np.str_)
        n = int(ids.size)
        if inclusion_prob is None:
            prob = np.ones(n)
        else:
            prob = _probabilities(inclusion_prob, n, "inclusion_prob")
        weights = 1.0 / prob
        users = None
        if user_ids is not None:
            uid = np.asarray(user_ids, dtype=np.str_)
            if uid.shape != (n,):
                raise ValueError(f"user_ids has {uid.size} entries for {n} conversations")
            uniq, codes = np.unique(uid, return_inverse=True)
            known = [str(u) for u in uniq if u]
            # "" means unknown: it becomes the missing code, len(labels).
            remap = np.asarray([known.index(str(u)) if u else len(known) for u in uniq])
            users = Tag(remap[codes].astype(np.int64), tuple(known))
        encoded: dict[str, Tag] = {}
        for key, values in (tags or {}).items():
            if isinstance(values, Tag):
                if values.codes.shape != (n,):
                    raise ValueError(
                        f"tag {key!r} has {values.codes.size} codes for {n} conversations"
                    )
                encoded[key] = values
                continue
            arr = np.asarray(values, dtype=np.str_)
            if arr.shape != (n,):
                raise ValueError(f"tag {key!r} has {arr.size} values for {n} conversations")
            uniq, codes = np.unique(arr, return_inverse=True)
            encoded[key] = Tag(codes.astype(np.int64), tuple(str(u) for u in uniq))
        columns: dict[str, ScoreColumn] = {}
        for name in sorted(scores):
            columns[name] = _column_from_arrays(name, scores[name], n, prob)
        return cls(label, ids, weights, encoded, columns, users, anchors)


def _probabilities(values: ArrayLike, n: int, what: str) -> NDArray[np.float64]:
    prob = np.asarray(values, dtype=np.float64)
    if prob.shape != (n,):
        raise ValueError(f"{what} has {prob.size} entries for {n} rows")
    if not np.all((prob > 0) & (prob <= 1)):
        raise ValueError("inclusion probabilities must be in (0, 1]")
    return prob


class _Builder:
    """Accumulates score records into a window's conversation table and columns."""

    def __init__(self) -> None:
        self.conv_index: dict[str, int] = {}
        self.conv_prob: array[float] = array("d")
        self.conv_tags: list[dict[str, str]] = []
        self.conv_user: list[str | None] = []
        self.judge_index: dict[tuple[str | None, str | None, str | None], int] = {}
        self.acc: dict[str, _Accumulator] = {}

    def add(self, s: Score) -> None:
        cid = s.conversation_id
        ci = self.conv_index.get(cid)
        p = 1.0 if s.inclusion_prob is None else s.inclusion_prob
        if ci is None:
            ci = self.conv_index[cid] = len(self.conv_prob)
            self.conv_prob.append(p)
            self.conv_tags.append(s.tags)
            self.conv_user.append(s.user_id)
        else:
            if p > self.conv_prob[ci]:
                self.conv_prob[ci] = p
            if self.conv_user[ci] is None and s.user_id:
                self.conv_user[ci] = s.user_id
        a = self.acc.get(s.name)
        if a is None:
            a = self.acc[s.name] = _Accumulator(s.kind)
        elif a.kind != s.kind:
            raise ValueError(f"score {s.name!r} appears as both {a.kind} and {s.kind}")
        key = (s.judge_model, s.prompt_hash, s.grader_version)
        ji = self.judge_index.get(key)
        if ji is None:
            ji = self.judge_index[key] = len(self.judge_index)
        a.conv.append(ci)
        v = s.value
        if isinstance(v, str):
            code = a.cats.get(v)
            if code is None:
                code = a.cats[v] = len(a.cats)
            a.values.append(float(code))
        else:
            a.values.append(float(v))
        a.msg.append(-1 if s.message_index is None else s.message_index)
        a.judge.append(ji)
        a.prob.append(p)

    def window(self, label: str, anchors: Window | None) -> Window:
        configs = tuple(JudgeConfig(*k) for k in self.judge_index)
        ids = np.asarray(list(self.conv_index), dtype=np.str_)
        tags = _encode_tag_dicts(self.conv_tags)
        users = None
        if any(u for u in self.conv_user):
            users = _encode_tag_dicts([{"u": u} if u else {} for u in self.conv_user])["u"]
        columns = {
            name: a.column(name, configs)
            for name, a in sorted(self.acc.items(), key=lambda x: x[0])
        }
        weights = 1.0 / np.frombuffer(self.conv_prob, dtype=np.float64)
        return Window(label, ids, weights, tags, columns, users, anchors)


@dataclass
class _Accumulator:
    kind: ScoreKind
    conv: array[int] = field(default_factory=lambda: array("q"))
    values: array[float] = field(default_factory=lambda: array("d"))
    msg: array[int] = field(default_factory=lambda: array("q"))
    judge: array[int] = field(default_factory=lambda: array("q"))
    prob: array[float] = field(default_factory=lambda: array("d"))
    cats: dict[str, int] = field(default_factory=dict)

    def column(self, name: str, configs: tuple[JudgeConfig, ...]) -> ScoreColumn:
        values = np.frombuffer(self.values, dtype=np.float64).copy()
        categories: tuple[str, ...] = ()
        if self.kind == "categorical":
            # Codes were given in order of first appearance; re-code to sorted labels so
            # two windows built from the same labels agree.
            order = sorted(self.cats, key=str)
            remap = np.empty(len(order), dtype=np.float64)
            for new, lab in enumerate(order):
                remap[self.cats[lab]] = new
            values = remap[values.astype(np.int64)] if values.size else values
            categories = tuple(order)
        judge = np.frombuffer(self.judge, dtype=np.int64).copy()
        used = np.unique(judge)
        # Keep only the configurations this column uses, so a column does not report
        # another score's judge.
        remap_j = np.full(len(configs), -1, dtype=np.int64)
        remap_j[used] = np.arange(used.size)
        return ScoreColumn(
            name=name,
            kind=self.kind,
            conversation=np.frombuffer(self.conv, dtype=np.int64).copy(),
            values=values,
            message_index=np.frombuffer(self.msg, dtype=np.int64).copy(),
            judge=remap_j[judge],
            judge_configs=tuple(configs[int(i)] for i in used),
            weight=1.0 / np.frombuffer(self.prob, dtype=np.float64),
            categories=categories,
        )


def _encode_tag_dicts(conv_tags: list[dict[str, str]]) -> dict[str, Tag]:
    keys = sorted({k for t in conv_tags for k in t})
    out: dict[str, Tag] = {}
    for key in keys:
        raw = [t.get(key) for t in conv_tags]
        labels = sorted({v for v in raw if v is not None})
        index = {v: i for i, v in enumerate(labels)}
        missing = len(labels)
        codes = np.fromiter(
            (missing if v is None else index[v] for v in raw), dtype=np.int64, count=len(raw)
        )
        out[key] = Tag(codes, tuple(labels))
    return out


def _column_from_arrays(
    name: str, spec: ScoreArrays, n_conv: int, conv_prob: NDArray[np.float64]
) -> ScoreColumn:
    if spec.kind not in _KINDS:
        raise ValueError(f"score {name!r}: unknown kind {spec.kind!r}")
    conv = np.asarray(spec.conversation, dtype=np.int64)
    rows = conv.size
    if conv.ndim != 1 or (rows and (conv.min() < 0 or conv.max() >= n_conv)):
        raise ValueError(f"score {name!r}: conversation indices must be in [0, {n_conv})")
    raw = np.asarray(spec.values)
    if raw.shape != (rows,):
        raise ValueError(f"score {name!r}: {raw.size} values for {rows} rows")
    categories: tuple[str, ...] = ()
    if spec.kind == "categorical":
        uniq, codes = np.unique(raw.astype(np.str_), return_inverse=True)
        values = codes.astype(np.float64)
        categories = tuple(str(u) for u in uniq)
    else:
        if raw.dtype.kind in "USO":
            raise ValueError(f"score {name!r}: a {spec.kind} score needs numbers, got strings")
        values = raw.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"score {name!r}: values must be finite")
        if spec.kind == "binary" and not np.all((values == 0.0) | (values == 1.0)):
            raise ValueError(f"score {name!r}: binary values must be true/false or 0/1")
    if spec.message_index is None:
        msg = np.full(rows, -1, dtype=np.int64)
    else:
        msg = np.asarray(spec.message_index, dtype=np.int64)
        if msg.shape != (rows,):
            raise ValueError(f"score {name!r}: {msg.size} message indices for {rows} rows")
    if isinstance(spec.judge, JudgeConfig):
        configs: tuple[JudgeConfig, ...] = (spec.judge,)
        judge = np.zeros(rows, dtype=np.int64)
    else:
        configs = tuple(spec.judge)
        if spec.judge_index is None:
            raise ValueError(f"score {name!r}: a list of judge configs needs judge_index")
        judge = np.asarray(spec.judge_index, dtype=np.int64)
        if judge.shape != (rows,) or (rows and (judge.min() < 0 or judge.max() >= len(configs))):
            raise ValueError(f"score {name!r}: judge_index out of range")
    if spec.inclusion_prob is None:
        prob = conv_prob[conv]
    else:
        prob = _probabilities(spec.inclusion_prob, rows, f"score {name!r}: inclusion_prob")
    return ScoreColumn(
        name,
        spec.kind,
        conv,
        values,
        msg,
        judge,
        configs,
        1.0 / prob,
        categories,
    )


@dataclass(frozen=True, eq=False)
class Units:
    """One score's conversation-level units, both windows stacked (baseline first).

    Turn-level scores become one unit per conversation: ``total`` is the sum of the turn
    values and ``turns`` their count, so means are ratio estimators (the share of turns
    that pass) whose variance comes from conversation-level residuals. That is what makes
    every test cluster-robust: conversations, not turns, are the independent units.
    """

    current: NDArray[np.bool_]
    """True for units of the current window."""
    total: NDArray[np.float64]
    """Sum of the conversation's values (binary, ordinal, continuous)."""
    counts: NDArray[np.float64] | None
    """Per category (or ordinal level), the conversation's number of rows with it."""
    levels: tuple[float, ...]
    """Ordinal levels seen, or () for other kinds."""
    turns: NDArray[np.float64]
    """Rows (scored turns) of the conversation."""
    weight: NDArray[np.float64]
    """Sampling weight of the conversation's scores."""
    cell: NDArray[np.int64]
    """Cohort cell code: the stratum the windows are compared within."""
    categories: tuple[str, ...] = ()
    """Category labels of a categorical score (joint over both windows)."""
    cluster: NDArray[np.int64] | None = None
    """Top-level cluster (e.g. user) of each conversation, joint over both windows."""

    @property
    def value(self) -> NDArray[np.float64]:
        """The conversation-level value: the mean of its turns."""
        return self.total / self.turns


def conversation_units(
    columns: tuple[ScoreColumn, ScoreColumn],
    cells: tuple[NDArray[np.int64], NDArray[np.int64]],
    clusters: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None,
) -> Units:
    """Aggregate one score's rows to conversations in both windows.

    Each conversation takes the sampling weight its rows carry (the rows of one
    conversation share one sampling decision).

    Args:
        columns: The score's column in the baseline and the current window.
        cells: Per window, per conversation, the joint cohort cell code.
        clusters: Per window, per conversation, its joint top-level cluster code.

    Returns:
        The stacked units.
    """
    kind = columns[0].kind
    categories: tuple[str, ...] = ()
    levels: tuple[float, ...] = ()
    if kind == "categorical":
        categories = tuple(sorted(set(columns[0].categories) | set(columns[1].categories)))
    elif kind == "ordinal":
        levels = tuple(
            float(v) for v in np.unique(np.concatenate([columns[0].values, columns[1].values]))
        )
    parts: list[
        tuple[
            NDArray[np.float64],
            NDArray[np.float64] | None,
            NDArray[np.float64],
            NDArray[np.float64],
        ]
    ] = []
    idxs: list[NDArray[np.int64]] = []
    for col, nconv in zip(columns, (cells[0].size, cells[1].size), strict=True):
        turns = np.bincount(col.conversation, minlength=nconv).astype(np.float64)
        present = np.flatnonzero(turns)
        counts: NDArray[np.float64] | None = None
        if kind == "categorical":
            remap = np.asarray([categories.index(c) for c in col.categories], dtype=np.int64)
            codes = remap[col.values.astype(np.int64)] if col.n_rows else col.values
            counts = _count_matrix(
                col.conversation, codes.astype(np.int64), nconv, present, len(categories)
            )
            total = np.zeros(present.size)
        else:
            total = np.bincount(col.conversation, weights=col.values, minlength=nconv)[
                present
            ].astype(np.float64)
            if kind == "ordinal":
                codes = np.searchsorted(np.asarray(levels), col.values)
                counts = _count_matrix(col.conversation, codes, nconv, present, len(levels))
        weight = (
            np.bincount(col.conversation, weights=col.weight, minlength=nconv)[present]
            / turns[present]
        )
        parts.append((total, counts, turns[present], weight))
        idxs.append(present)
    cur = np.concatenate([np.zeros(idxs[0].size, bool), np.ones(idxs[1].size, bool)])
    cell = np.concatenate([cells[0][idxs[0]], cells[1][idxs[1]]])
    c0, c1 = parts[0][1], parts[1][1]
    return Units(
        current=cur,
        total=np.concatenate([parts[0][0], parts[1][0]]),
        counts=None if c0 is None or c1 is None else np.concatenate([c0, c1]),
        levels=levels,
        turns=np.concatenate([parts[0][2], parts[1][2]]),
        weight=np.concatenate([parts[0][3], parts[1][3]]),
        cell=cell,
        categories=categories,
        cluster=None
        if clusters is None
        else np.concatenate([clusters[0][idxs[0]], clusters[1][idxs[1]]]),
    )


def _count_matrix(
    conv: NDArray[np.int64],
    codes: NDArray[np.int64],
    n_conv: int,
    present: NDArray[np.int64],
    k: int,
) -> NDArray[np.float64]:
    if k == 0:
        return np.zeros((present.size, 0))
    # Compact the conversation index first so the flat bincount stays small when only a
    # few of the window's conversations carry this score.
    compact = np.full(n_conv, -1, dtype=np.int64)
    compact[present] = np.arange(present.size)
    flat = compact[conv] * k + codes
    return np.bincount(flat, minlength=present.size * k).reshape(present.size, k).astype(float)


def joint_codes(*arrays: NDArray[np.int64]) -> tuple[NDArray[np.int64], int]:
    """Dense codes of the combinations of several code arrays (mixed radix, then compacted).

    Args:
        arrays: Equal-length non-negative code arrays.

    Returns:
        ``(codes, number of distinct combinations)``.
    """
    if not arrays:
        raise ValueError("need at least one array")
    combined = np.zeros(arrays[0].size, dtype=np.int64)
    for a in arrays:
        radix = int(a.max()) + 1 if a.size else 1
        combined = combined * radix + a
    uniq, inverse = np.unique(combined, return_inverse=True)
    return inverse.astype(np.int64), int(uniq.size)


def round_weights(weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """Weights rounded so that equal inclusion probabilities form one sampling stratum."""
    # 1/p computed along different float paths can differ in the last bits; rounding the
    # log to 9 decimals keeps genuinely different probabilities apart.
    return np.exp(np.round(np.log(weights), 9))
