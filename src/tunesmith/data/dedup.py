"""Duplicate prompts: exact, and near (same words give or take a few), across train and test.

Each example gets three keys, computed while tokenizing (so in parallel): a hash of its prompt,
a hash of the prompt normalised (case, punctuation, spacing), and a MinHash signature of its
word bigrams. Near duplicates are pairs whose signatures agree on at least NEAR_THRESHOLD of
their entries (an estimate of Jaccard similarity), found by locality-sensitive hashing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SIGNATURE = 32  # MinHash entries per prompt
BANDS, BAND_ROWS = 8, 4  # LSH: 8 bands of 4 entries; pairs above ~0.6 similarity become candidates
NEAR_THRESHOLD = 0.7
MAX_PAIRS = 2_000_000  # candidate pairs compared at most
ESTIMATE_FLOOR = 0.5  # candidates whose MinHash estimate is below this are not looked at
MAX_VERIFIED = 200_000  # close candidates whose similarity is computed exactly
Texts = Callable[[np.ndarray], list[str]]  # positions -> prompt texts
_WORD = re.compile(r"\w+")
_rng = np.random.Generator(np.random.PCG64(20240611))  # constants only; not a data-order seed
_MULT = _rng.integers(1, 1 << 63, SIGNATURE, dtype=np.uint64) | np.uint64(1)
_ADD = _rng.integers(0, 1 << 63, SIGNATURE, dtype=np.uint64)
_BAND_MULT = _rng.integers(1, 1 << 63, BAND_ROWS, dtype=np.uint64) | np.uint64(1)


def prompt_text(example: dict) -> str:
    """What leaks if it is in both splits: the user turns (and input), or the whole raw text."""
    if "text" in example:
        return example["text"]
    users = [m["content"] for m in example["messages"] if m["role"] == "user"]
    return "\n".join([*users, example.get("input", "")]).strip()


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def prompt_keys(texts: list[str]) -> dict[str, list]:
    """Columns exact_key, normal_key (int64 hashes) and minhash (SIGNATURE uint32) per text."""
    normal = [normalise(t) for t in texts]
    return {
        "exact_key": [_hash64(t.strip()) for t in texts],
        "normal_key": [_hash64(n) for n in normal],
        "minhash": _minhash(normal).tolist(),
    }


def _hash64(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _minhash(normal: list[str]) -> np.ndarray:
    """[len(normal), SIGNATURE] MinHash of word-bigram sets, vectorised over the whole batch."""
    hashes: list[int] = []
    offsets: list[int] = []
    for text in normal:
        words = text.split()
        grams = [" ".join(words[i:i + 2]) for i in range(max(1, len(words) - 1))]
        offsets.append(len(hashes))
        hashes += [zlib.crc32(g.encode("utf-8", "surrogatepass")) for g in grams]
    if not normal:
        return np.zeros((0, SIGNATURE), dtype=np.uint32)
    values = np.asarray(hashes, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mixed = (_MULT[:, None] * values[None, :] + _ADD[:, None]) >> np.uint64(32)  # [SIGNATURE, n_grams]
    return np.minimum.reduceat(mixed, np.asarray(offsets), axis=1).T.astype(np.uint32)


@dataclass
class Leakage:
    exact: np.ndarray  # test positions whose prompt is in train verbatim
    near: np.ndarray  # test positions with a near duplicate in train (and no verbatim one)
    near_pairs: list[tuple[int, int, float]]  # (test position, train position, similarity), a few
    complete: bool = True  # False when the candidate budget ran out (very repetitive data)


def duplicate_count(keys: np.ndarray) -> int:
    """Rows whose key an earlier row already had."""
    return int(len(keys) - len(np.unique(keys)))


def find_leakage(train: dict[str, np.ndarray], test: dict[str, np.ndarray], train_texts: Texts | None = None,
                 test_texts: Texts | None = None, listed: int = 5) -> Leakage:
    """Compare test keys with train keys (dicts of the prompt_keys columns as numpy arrays).

    MinHash finds candidate pairs; when the prompt texts are at hand (`*_texts`: positions ->
    prompts) the similarity of each close candidate is then computed exactly.
    """
    exact = np.flatnonzero(np.isin(test["exact_key"], train["exact_key"]))
    best = np.where(np.isin(test["normal_key"], train["normal_key"]), 1.0, 0.0)
    partner = np.full(len(best), -1)
    pairs = np.asarray(_candidates(_bands(train["minhash"]), _bands(test["minhash"])), dtype=np.int64).reshape(-1, 2)
    estimate = (train["minhash"][pairs[:, 1]] == test["minhash"][pairs[:, 0]]).mean(axis=1)
    close = pairs[estimate >= ESTIMATE_FLOOR]
    if train_texts is not None and test_texts is not None and len(close) <= MAX_VERIFIED:
        similarity = _exact_similarity(close, train_texts, test_texts)
    else:
        similarity = estimate[estimate >= ESTIMATE_FLOOR]
    for (test_pos, train_pos), value in zip(close.tolist(), similarity.tolist(), strict=True):
        if value >= NEAR_THRESHOLD and value > best[test_pos]:
            best[test_pos], partner[test_pos] = value, train_pos
    near = np.setdiff1d(np.flatnonzero(best >= NEAR_THRESHOLD), exact)
    listed_pairs = [(int(t), int(partner[t]), round(float(best[t]), 3)) for t in near[:listed]]
    return Leakage(exact, near, listed_pairs, complete=len(pairs) < MAX_PAIRS)


def bigrams(text: str) -> set[str]:
    words = normalise(text).split()
    return {" ".join(words[i:i + 2]) for i in range(max(1, len(words) - 1))}


def _exact_similarity(pairs: np.ndarray, train_texts: Texts, test_texts: Texts) -> np.ndarray:
    """Jaccard similarity of the word-bigram sets of each (test, train) pair."""
    grams = []
    for column, texts in ((0, test_texts), (1, train_texts)):
        positions = np.unique(pairs[:, column])
        grams.append(dict(zip(positions.tolist(), map(bigrams, texts(positions)) if len(positions) else [],
                              strict=True)))
    out = [len(grams[0][t] & grams[1][r]) / max(1, len(grams[0][t] | grams[1][r])) for t, r in pairs.tolist()]
    return np.asarray(out, dtype=float)


def _bands(signatures: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """[n, BANDS] uint64: each band of BAND_ROWS signature entries folded into one hash (chunked: bounded memory)."""
    out = np.zeros((len(signatures), BANDS), dtype=np.uint64)
    for start in range(0, len(signatures), chunk):
        part = signatures[start:start + chunk]
        grouped = part.astype(np.uint64).reshape(len(part), BANDS, BAND_ROWS)
        with np.errstate(over="ignore"):
            out[start:start + chunk] = (grouped * _BAND_MULT).sum(axis=2, dtype=np.uint64)
    return out


def _candidates(train_bands: np.ndarray, test_bands: np.ndarray) -> list[tuple[int, int]]:
    """(test position, train position) pairs that share at least one band (at most MAX_PAIRS)."""
    seen: set[tuple[int, int]] = set()
    for band in range(BANDS):
        order = np.argsort(test_bands[:, band], kind="stable")
        sorted_test = test_bands[order, band]
        left = np.searchsorted(sorted_test, train_bands[:, band], side="left")
        right = np.searchsorted(sorted_test, train_bands[:, band], side="right")
        for train_pos in np.flatnonzero(right > left).tolist():
            seen.update((test_pos, train_pos) for test_pos in order[left[train_pos]:right[train_pos]].tolist())
            if len(seen) >= MAX_PAIRS:
                return list(seen)
    return list(seen)
