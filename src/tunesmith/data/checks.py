"""The mistakes that silently ruin fine-tuning, each checked before any training time is spent.

Per-example flags are computed while tokenizing (`example_flags`); each check then turns the
flags of the training examples into a `Check`: ok, warning, or error (training would be
meaningless). Checks take plain arrays and callables, so tests can feed them crafted data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from tunesmith.data.collate import collate
from tunesmith.data.dedup import NEAR_THRESHOLD, Leakage
from tunesmith.data.templates import Template
from tunesmith.data.tokenize import IGNORE_INDEX
from tunesmith.errors import TunesmithError

Sources = Callable[[np.ndarray], list[str]]  # positions -> "file:line" of those examples
PROBE = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]


@dataclass
class Check:
    name: str
    status: str  # ok | warning | error
    message: str
    count: int = 0
    sources: list[str] = field(default_factory=list)  # a few of the examples concerned

    def as_dict(self) -> dict:
        return asdict(self)


def example_flags(input_ids: list[int], labels: list[int], bos_id: int | None, eos_id: int | None) -> dict:
    """eos_in_labels, double_bos and eos_masked (an EOS right after trained tokens, itself masked)."""
    eos_positions = [i for i, token in enumerate(input_ids) if token == eos_id] if eos_id is not None else []
    return {
        "eos_in_labels": any(labels[i] == eos_id for i in eos_positions),
        "double_bos": bos_id is not None and input_ids[:2] == [bos_id, bos_id],
        "eos_masked": any(labels[i] == IGNORE_INDEX and labels[i - 1] != IGNORE_INDEX for i in eos_positions if i),
    }


def check_eos(eos_in_labels: np.ndarray, eos_token: str | None, sources: Sources) -> Check:
    missing = np.flatnonzero(~eos_in_labels)
    if not eos_token:
        return Check("eos_in_labels", "warning", "the tokenizer has no EOS token: the model cannot learn to stop",
                     len(missing))
    if len(missing) == 0:
        return Check("eos_in_labels", "ok", f"every training example ends its answer with {eos_token} in the labels")
    return Check(
        "eos_in_labels", "warning",
        f"{len(missing)} of {len(eos_in_labels)} training examples have no {eos_token} in their labels, so the model "
        "does not learn to stop there (usually truncation cut it: raise data.max_length, or "
        "data.truncation_side: left)", len(missing), sources(missing[:5]),
    )


def check_pad_eos(pad_id: int | None, eos_id: int | None, eos_masked: np.ndarray, sample: list[dict],
                  sources: Sources) -> Check:
    """EOS masked as if it were padding: in the data, or by the collator on a sample batch."""
    masked = np.flatnonzero(eos_masked)
    if len(masked):
        return Check("pad_eos", "warning", f"{len(masked)} examples have an EOS right after the answer whose label is "
                     "masked (-100), as padding-by-id masking does: the model will not learn to stop",
                     len(masked), sources(masked[:5]))
    if pad_id is None or pad_id != eos_id:
        return Check("pad_eos", "ok", "the pad token is not the EOS token")
    batch = collate(sample, pad_id) if sample else None  # the collator training uses
    for k, row in enumerate(sample):
        kept = int(((batch.input_ids[k] == eos_id) & (batch.labels[k] == eos_id)).sum())
        if kept < row["labels"].count(eos_id):
            return Check("pad_eos", "error", "collating a batch masked EOS labels as padding", 1)
    return Check("pad_eos", "ok", f"the pad token is the EOS token (id {eos_id}); padding is masked by length, "
                 "so EOS keeps its label (checked on a collated batch)")


def check_double_bos(double_bos: np.ndarray, bos_token: str | None, sources: Sources) -> Check:
    twice = np.flatnonzero(double_bos)
    if len(twice) == 0:
        return Check("double_bos", "ok", "no example starts with two BOS tokens")
    return Check("double_bos", "warning",
                 f"{len(twice)} examples start with {bos_token} twice (the template or the data already has it)",
                 len(twice), sources(twice[:5]))


def check_truncation(response_tokens: np.ndarray, response_kept: np.ndarray, max_length: int,
                     sources: Sources) -> Check:
    lost = np.flatnonzero((response_kept == 0) & (response_tokens > 0))
    partly = int(np.sum((response_kept > 0) & (response_kept < response_tokens)))
    if len(lost) == len(response_tokens) and len(lost):
        return Check("truncation", "error", f"every training example loses its whole answer to truncation at "
                     f"data.max_length={max_length}: raise it, or set data.truncation_side: left", len(lost),
                     sources(lost[:5]))
    if len(lost) == 0 and partly == 0:
        return Check("truncation", "ok", f"no answer is cut by data.max_length={max_length}")
    status = "warning" if len(lost) else "ok"
    message = (f"{len(lost)} examples lose their whole answer (left out of training) and {partly} lose part of it "
               f"at data.max_length={max_length}")
    return Check("truncation", status, message, len(lost), sources(lost[:5]))


def check_masked(lengths: np.ndarray, trained: np.ndarray, sources: Sources) -> Check:
    empty = np.flatnonzero((lengths == 0) | (trained == 0))
    if len(empty) == 0:
        return Check("empty_or_masked", "ok", "every training example has tokens to learn from")
    if len(empty) == len(lengths):
        return Check("empty_or_masked", "error", "every training example is empty or fully masked (-100): "
                     "there is nothing to train on", len(empty), sources(empty[:5]))
    return Check("empty_or_masked", "warning", f"{len(empty)} training examples are empty or have every label "
                 "masked; they are left out of training", len(empty), sources(empty[:5]))


def check_leakage(leakage: Leakage, n_test: int, sources: Sources) -> Check:
    exact, near = len(leakage.exact), len(leakage.near)
    note = "" if leakage.complete else " (near-duplicate search stopped early: the data is very repetitive)"
    if exact == 0 and near == 0:
        return Check("leakage", "ok", f"no test prompt appears in train, exactly or nearly{note}")
    return Check(
        "leakage", "warning",
        f"{exact} of {n_test} test prompts are also in train verbatim and {near} nearly "
        f"(same words, or ≥{NEAR_THRESHOLD:.0%} word-bigram overlap): test scores will overstate the model; "
        f"deduplicate the data{note}", exact + near, sources(np.concatenate([leakage.exact, leakage.near])[:5]),
    )


def check_template(template: Template, tokenizer, text_only: bool) -> Check:
    """Does the model's own chat template render a conversation the way data.template does?"""
    model_template = getattr(tokenizer, "chat_template", None)
    if text_only or template.name == "chat" or not isinstance(model_template, str):
        reason = "raw text needs no template" if text_only else (
            "the model's own chat template is used" if template.name == "chat" else "the model has no chat template")
        return Check("template", "ok", reason)
    own = Template("chat", chat_template=model_template, bos_token=tokenizer.bos_token or "",
                   eos_token=tokenizer.eos_token or "")
    ours = "".join(text for text, _ in template.segments(PROBE))
    try:
        theirs = "".join(text for text, _ in own.segments(PROBE))
    except TunesmithError as err:
        return Check("template", "ok", f"the model's chat template could not be compared ({err})")
    if ours == theirs:
        return Check("template", "ok", f"data.template {template.name} matches the model's chat template")
    return Check(
        "template", "warning",
        f"data.template is {template.name}, but the model's own chat template writes a conversation differently "
        f"(ours: {ours[:80]!r}; the model's: {theirs[:80]!r}). The tuned model will expect {template.name}: "
        "tunesmith's chat and serve use it, other tools apply the model's template. Use data.template: auto "
        "to train in the model's own format.",
    )


def check_double_template(marker: np.ndarray, markers: tuple[str, ...], template_name: str,
                          sources: Sources) -> Check:
    """Prompts that already contain template markers get a second template around them."""
    found = np.flatnonzero(marker >= 0)
    if len(found) == 0:
        return Check("double_template", "ok", "no prompt already contains template markers such as "
                     f"{markers[0]!r} or {markers[5]!r}")
    counts = np.bincount(marker[found], minlength=len(markers))
    seen = ", ".join(f"{markers[i]!r} in {counts[i]:,}" for i in np.argsort(-counts)[:3] if counts[i])
    fix = ("remove the markers from the prompts (keep just the question), or set data.template: none to train on "
           "the prompts exactly as written (they must then carry the whole format, answer cue included)"
           ) if template_name != "none" else (
           "data.template is none, so the prompts are used as written: make sure they end with the answer cue")
    return Check(
        "double_template", "warning" if template_name != "none" else "ok",
        f"{len(found):,} of {len(marker):,} training prompts already contain template markers ({seen}), and "
        f"data.template {template_name} wraps them in its own format too: the model learns both. Fix: {fix}",
        len(found), sources(found[:5]),
    )

