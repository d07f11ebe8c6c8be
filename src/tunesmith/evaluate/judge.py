"""An optional judge: any OpenAI-compatible chat endpoint (`eval.judge`) grades the answers.

Per example and model, a graded verdict against the reference (correct / partly / wrong, with a
one-line reason); per example, a pairwise tuned-vs-base preference asked twice with the answers'
positions swapped, so a judge that favours the first (or second) position cancels out: a preference
counts only when both orders agree, otherwise it is a tie. Replies are cached by the hash of what
was asked (judge URL, model, messages) in `eval/judge_cache.json`, so a rerun costs nothing. A reply
that cannot be parsed is kept as `unparsed` and counted, never guessed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from tunesmith.errors import TunesmithError
from tunesmith.evaluate.outputs import read_json
from tunesmith.runs import atomic_write_json

VERDICTS = {"correct": 1.0, "partly": 0.5, "wrong": 0.0}
_SYNONYMS = {"partially": "partly", "partial": "partly", "incorrect": "wrong", "right": "correct"}
_WORD = r"(correct|partly|partially|partial|wrong|incorrect|right)"
SYSTEM = "You are a strict grader. You compare answers with a reference answer and reply in the exact format asked."
GRADE = """Question: {question}

Reference answer: {reference}

Candidate answer: {answer}

Is the candidate answer correct, partly correct, or wrong, judged against the reference answer?
Reply with exactly two lines:
VERDICT: correct | partly | wrong
REASON: <one sentence>"""
PAIR = """Question: {question}

Reference answer: {reference}

Answer A: {first}

Answer B: {second}

Which answer agrees better with the reference answer?
Reply with exactly two lines:
WINNER: A | B | tie
REASON: <one sentence>"""


def parse_verdict(reply: str) -> dict:
    """{"verdict": correct|partly|wrong|None, "reason": str} from a judge's reply."""
    text = reply.strip()
    found = re.search(rf"verdict\W*{_WORD}\b", text, re.IGNORECASE) or re.match(rf"\W*{_WORD}\b", text, re.IGNORECASE)
    verdict = None
    if found:
        word = found.group(1).lower()
        verdict = _SYNONYMS.get(word, word)
    return {"verdict": verdict, "reason": _reason(text)}


def parse_winner(reply: str) -> str | None:
    """"A", "B" or "tie" from a pairwise reply, None when it says none of them."""
    text = reply.strip()
    found = re.search(r"winner\W*(a|b|tie)\b", text, re.IGNORECASE) or re.match(r"\W*(a|b|tie)\W*$", text,
                                                                                  re.IGNORECASE | re.MULTILINE)
    if not found:
        return None
    word = found.group(1).lower()
    return word if word == "tie" else word.upper()


def _reason(text: str) -> str:
    found = re.search(r"reason\W*(.+)", text, re.IGNORECASE)
    return (found.group(1).strip() if found else "")[:300]


def combine(tuned_first: str | None, base_first: str | None) -> str | None:
    """The preference over both orders: "tuned", "base", "tie", or None when a reply was unparseable."""
    if tuned_first is None or base_first is None:
        return None
    first = {"A": "tuned", "B": "base", "tie": "tie"}[tuned_first]
    second = {"A": "base", "B": "tuned", "tie": "tie"}[base_first]
    return first if first == second else "tie"


class JudgeClient:
    """Chat completions over HTTP (the standard library, no extra dependency), cached by content."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None, max_tokens: int, timeout: float,
                 cache_path: Path) -> None:  # fmt: skip
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.base_url, self.model, self.api_key = base_url.rstrip("/"), model, api_key
        self.max_tokens, self.timeout, self.cache_path = max_tokens, timeout, Path(cache_path)
        self.cache: dict[str, str] = read_json(self.cache_path) or {}
        self.calls = 0  # requests actually sent (cache misses)

    def ask(self, prompt: str) -> str:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        key = hashlib.sha256(json.dumps([self.base_url, self.model, self.max_tokens, messages]).encode()).hexdigest()
        if key not in self.cache:
            body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
            self.cache[key] = self._post(body)
            self.calls += 1
        return self.cache[key]

    def check(self) -> None:
        """Fail early (before any model runs) when the judge endpoint cannot be reached."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.base_url + "/models", headers=headers),
                                        timeout=self.timeout):  # fmt: skip
                return
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise TunesmithError(f"eval.judge: {self.base_url} refused the API key ({err.code})") from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise TunesmithError(f"eval.judge: cannot reach {self.base_url} ({err}); start the judge server, fix "
                                 "eval.judge.base_url, or remove eval.judge") from None  # fmt: skip

    def save(self) -> None:
        atomic_write_json(self.cache_path, self.cache)

    def _post(self, body: dict) -> str:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")[:200]
            raise TunesmithError(f"eval.judge: {self.url} answered {err.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise TunesmithError(f"eval.judge: cannot reach {self.url} ({err}); start the judge server, fix "
                                 "eval.judge.base_url, or remove eval.judge") from None  # fmt: skip
        except ValueError:
            raise TunesmithError(f"eval.judge: {self.url} did not answer JSON") from None
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise TunesmithError(f"eval.judge: {self.url} answered without choices[0].message.content") from None


def client_from_config(judge, eval_dir: Path) -> JudgeClient:
    """A JudgeClient from the eval.judge section; the API key is read from its environment variable."""
    api_key = None
    if judge.api_key_env:
        api_key = os.environ.get(judge.api_key_env)
        if not api_key:
            raise TunesmithError(f"eval.judge.api_key_env: the environment variable {judge.api_key_env} is not set; "
                                 "export it or remove api_key_env")  # fmt: skip
    return JudgeClient(judge.base_url, judge.model, api_key=api_key, max_tokens=judge.max_tokens,
                       timeout=judge.timeout, cache_path=Path(eval_dir) / "judge_cache.json")  # fmt: skip


def judge_results(results: dict[str, tuple[list[dict], dict]], client: JudgeClient) -> dict:
    """Grade every answer of every model and compare tuned with base, in place: each record's `judge`,
    `scores["judge_score"]` (correct 1, partly 0.5, wrong 0) and each model's metrics. Returns the judge's
    identity (base_url, model, requests sent)."""
    for records, metrics in results.values():
        counts = dict.fromkeys([*VERDICTS, "unparsed"], 0)
        for record in records:
            reply = client.ask(GRADE.format(question=record["question"], reference=record["reference"],
                                            answer=record["prediction"]))  # fmt: skip
            graded = parse_verdict(reply)
            record["judge"] = graded | ({"reply": reply[:300]} if graded["verdict"] is None else {})
            counts[graded["verdict"] or "unparsed"] += 1
            if graded["verdict"] is not None:
                record.setdefault("scores", {})["judge_score"] = VERDICTS[graded["verdict"]]
        parsed = sum(counts[v] for v in VERDICTS)
        metrics["judge"] = counts
        metrics["judge_score"] = (counts["correct"] + 0.5 * counts["partly"]) / parsed if parsed else None
        client.save()
    if "base" in results and "tuned" in results:
        _pairwise(results["base"][0], results["tuned"], client)
        client.save()
    return {"base_url": client.base_url, "model": client.model, "requests": client.calls}


def _pairwise(base: list[dict], tuned: tuple[list[dict], dict], client: JudgeClient) -> None:
    records, metrics = tuned
    counts = {"tuned": 0, "base": 0, "tie": 0, "unparsed": 0}
    for before, after in zip(base, records, strict=True):
        shared = {"question": after["question"], "reference": after["reference"]}
        tuned_first = parse_winner(client.ask(PAIR.format(first=after["prediction"], second=before["prediction"],
                                                          **shared)))  # fmt: skip
        base_first = parse_winner(client.ask(PAIR.format(first=before["prediction"], second=after["prediction"],
                                                         **shared)))  # fmt: skip
        preference = combine(tuned_first, base_first)
        after.setdefault("judge", {})["preference"] = preference
        counts[preference or "unparsed"] += 1
    metrics["judge"]["pairwise"] = counts
