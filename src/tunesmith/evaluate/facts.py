"""Checkable facts in a reference answer, and whether a prediction states them or contradicts them.

A fact is (kind, slot, value):

- `number`: a number in digits or words ("nine" == "9", "1,200" == "1200"), its slot the unit that
  follows it ("countries" -> "country"), "$" or "%", or else the word before it ("version 3").
- `year` (1900-2099) and `date` ("March 3", "3 March"): slot "year" / "date".
- `entity`: a run of capitalised words that is not just a sentence's first word ("Penang", "Sprout Max"),
  its slot the lowercase word before it ("in", "called").
- `quoted`: text in double quotes.
- `word`: a rare content word (in few of the references), recall only.

A prediction *contradicts* a fact when it states a fact of the same kind and slot with another value
and not the reference's: "nine countries" vs "seven countries", "2019" vs "2021", "in Shenzhen" vs
"in Penang", "Sprout Mini" vs "Sprout Max". Facts the question already states are not knowledge and
are left out, as are conventions shared by most references (a house prefix such as "Sprout Support:").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from tunesmith.evaluate.stopwords import STOPWORDS

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "dozen": 12,
}  # fmt: skip
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
MONTHS = ("january february march april may june july august september october november december").split()
CONTRADICTABLE = ("number", "year", "date", "entity", "quoted")
CONVENTION_SHARE = 0.5  # a fact in more than half the references (5+) is a house convention, not knowledge
RARE_SHARE = 0.1  # a content word in at most 10% of the references (at least 1) is rare
WEAK_SLOTS = frozenset("the a an our your my its their his her this that these those and or but every each any some "
                       "all both".split())  # a name after these says nothing about which role it fills

_TOKEN = re.compile(  # numbers ($, %, 1,200.5), words (and codes such as E3), punctuation, quotes
    r"\$?\d+(?:,\d{3})*(?:\.\d+)?%?|[A-Za-z][A-Za-z0-9'’-]*|[.,!?;:()\n]|\"[^\"\n]{1,80}\"|“[^”\n]{1,80}”"
)
_MONTH_DAY = re.compile(rf"\b({'|'.join(MONTHS)})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b", re.IGNORECASE)
_DAY_MONTH = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({'|'.join(MONTHS)})\b", re.IGNORECASE)


@dataclass(frozen=True)
class Fact:
    kind: str  # number | year | date | entity | quoted | word
    slot: str  # what the value is of: a unit, "year", the word before a name
    value: str  # normalised: "9", "2019", "march 3", "sprout max"
    text: str  # as written in the reference

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.slot, self.value)


def extract_facts(text: str) -> list[Fact]:
    """Every fact in `text`, in order of appearance, without duplicates (by kind, slot and value)."""
    tokens = _TOKEN.findall(text or "")
    facts = [*_dates(text or ""), *_numbers(tokens), *_entities(tokens), *_quoted(tokens), *_words(tokens)]
    return list({fact.key: fact for fact in facts}.values())


def _singular(word: str) -> str:
    word = word.lower().strip("'’")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _dates(text: str) -> list[Fact]:
    found = [(m.group(1), m.group(2), m.group(0)) for m in _MONTH_DAY.finditer(text)]
    found += [(m.group(2), m.group(1), m.group(0)) for m in _DAY_MONTH.finditer(text)]
    return [Fact("date", "date", f"{month.lower()} {int(day)}", written) for month, day, written in found]


def _number_at(tokens: list[str], i: int) -> tuple[float | None, int, str]:
    """(value, tokens used, unit mark "$"/"%"/"") of a number starting at tokens[i], or (None, 0, "")."""
    token = tokens[i]
    if token[0] in "$0123456789":
        digits = token.strip("$%").replace(",", "")
        try:
            value = float(digits)
        except ValueError:
            return None, 0, ""
        return value, 1, "$" if token.startswith("$") else ("%" if token.endswith("%") else "")
    return _word_number(tokens, i)


def _word_number(tokens: list[str], i: int) -> tuple[float | None, int, str]:
    total, current, used = 0, 0, 0
    while i + used < len(tokens):
        parts = tokens[i + used].lower().split("-")
        if not all(p in UNITS or p in TENS or p in SCALES for p in parts) or (used and parts[0] == "dozen"):
            break
        for part in parts:
            if part in SCALES:
                current = max(current, 1) * SCALES[part]
                if SCALES[part] >= 1000:
                    total, current = total + current, 0
            else:
                current += UNITS.get(part, 0) + TENS.get(part, 0)
        used += 1
        if i + used < len(tokens) and tokens[i + used].lower() == "and" and used and current >= 100:
            used += 1  # "two hundred and five"
    if not used:
        return None, 0, ""
    return float(total + current), used, ""


def _numbers(tokens: list[str]) -> list[Fact]:
    facts, i = [], 0
    while i < len(tokens):
        value, used, mark = _number_at(tokens, i)
        if value is None:
            i += 1
            continue
        written = " ".join(tokens[i : i + used])
        after = tokens[i + used] if i + used < len(tokens) else ""
        before = tokens[i - 1].lower() if i and tokens[i - 1][:1].isalpha() else ""
        if before in MONTHS or after.lower() in MONTHS:  # part of a date, found by _dates
            i += used
            continue
        if 1900 <= value <= 2099 and value == int(value) and written.isdigit():
            facts.append(Fact("year", "year", written, written))
        elif mark:
            facts.append(Fact("number", mark, _show(value), written))
        elif after[:1].isalpha() and after.lower() not in STOPWORDS:
            unit = _unit(tokens, i + used)
            facts.append(Fact("number", _singular(unit), _show(value), f"{written} {unit}"))
        elif written[0].isdigit():  # a bare number in digits: its slot is the word before it
            facts.append(Fact("number", f"after {before}" if before else "", _show(value), written))
        i += used
    return facts


def _unit(tokens: list[str], i: int) -> str:
    """The word a number counts: the next word, or the one after it when that is the plural noun
    ("nine starter pods" -> "pods")."""
    first = tokens[i]
    second = tokens[i + 1] if i + 1 < len(tokens) else ""
    plural = second[:1].isalpha() and second.lower() not in STOPWORDS and second.endswith("s")
    return second if plural and not first.endswith("s") else first


def _show(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _entities(tokens: list[str]) -> list[Fact]:
    facts, i = [], 0
    while i < len(tokens):
        starts_sentence = i == 0 or tokens[i - 1] in ".!?:(\n"
        if not _capitalised(tokens[i]):
            i += 1
            continue
        end = i
        while end < len(tokens) and _capitalised(tokens[end]):
            end += 1
        words = tokens[i:end]
        if starts_sentence and words[0].lower() in STOPWORDS:
            words = words[1:]  # "Every Sprout" -> "Sprout"
        elif starts_sentence and len(words) == 1:
            words = []  # a sentence's first word: capitalised by grammar, not by being a name
        if words and not all(w.lower() in STOPWORDS or w.lower() in MONTHS for w in words):
            first = tokens.index(words[0], i)
            before = tokens[first - 1].lower() if first and tokens[first - 1][:1].isalpha() else ""
            value = " ".join(re.sub(r"['’]s$", "", w) for w in words).lower()  # "Sprout's" is "Sprout"
            facts.append(Fact("entity", before, value, " ".join(words)))
        i = end
    return facts


def _capitalised(token: str) -> bool:
    return token[:1].isupper() and token[:1].isalpha() and token.lower() not in ("i", "i'm", "i'd", "i'll", "i've")


def _quoted(tokens: list[str]) -> list[Fact]:
    return [Fact("quoted", "quote", t[1:-1].strip().lower(), t[1:-1].strip()) for t in tokens
            if t[:1] in "\"“" and len(t) > 2]  # fmt: skip


def _words(tokens: list[str]) -> list[Fact]:
    words = [t for t in tokens if t[:1].isalpha() and t.islower() and len(t) >= 4]
    return [Fact("word", "word", _singular(w), w) for w in words
            if w.lower() not in STOPWORDS and _word_number([w], 0)[0] is None]  # fmt: skip


class FactIndex:
    """The facts of each reference, minus house conventions, question facts and common words."""

    def __init__(self, references: list[str]) -> None:
        self.per_reference = [extract_facts(ref) for ref in references]
        counts = Counter(fact.key for facts in self.per_reference for fact in facts)
        n = len(references)
        self.conventions = {key for key, c in counts.items() if n >= 5 and c / n > CONVENTION_SHARE}
        self.ignored = {(kind, value) for kind, _, value in self.conventions}  # never a competing fact either
        rare_limit = max(1, int(RARE_SHARE * n))
        self.common_words = {key for key, c in counts.items() if key[0] == "word" and c > rare_limit}

    def facts(self, index: int, question: str = "") -> list[Fact]:
        """The checkable facts of reference `index` that `question` does not already state."""
        asked = {fact.key for fact in extract_facts(question)}
        asked_values = {(fact.kind, fact.value) for fact in extract_facts(question)}
        return [fact for fact in self.per_reference[index]
                if fact.key not in self.conventions and fact.key not in self.common_words
                and fact.key not in asked and (fact.kind, fact.value) not in asked_values]  # fmt: skip


def check_facts(facts: list[Fact], prediction: str, question: str = "", ignore: set | frozenset = frozenset()) -> dict:
    """{"fact_recall": share of `facts` the prediction states (None if there are none),
    "facts": how many, "recalled": [text...], "contradictions": [{"kind", "reference", "prediction"}...]}.
    `ignore`: (kind, value) of house conventions, which never compete with a reference's fact."""
    stated = [fact for fact in extract_facts(prediction) if (fact.kind, fact.value) not in ignore]
    asked = {fact.key for fact in extract_facts(question)}
    lowered = " ".join(prediction.lower().split())
    words = {_singular(w) for w in re.findall(r"[a-z][a-z'’-]*", lowered)}
    recalled = [fact for fact in facts if _states(fact, stated, lowered, words)]
    contradictions = []
    for kind_slot in dict.fromkeys((f.kind, f.slot) for f in facts if f.kind in CONTRADICTABLE):
        expected = [f for f in facts if (f.kind, f.slot) == kind_slot]
        if any(f in recalled for f in expected):
            continue
        others = [s for s in stated if (s.kind, s.slot) == kind_slot and s.slot and s.key not in asked
                  and not (s.kind == "entity" and s.slot in WEAK_SLOTS)]  # fmt: skip
        others += _same_line_entities(expected, stated, asked) if kind_slot[0] == "entity" else []
        if others:
            contradictions.append({"kind": kind_slot[0], "reference": expected[0].text, "prediction": others[0].text})
    return {
        "fact_recall": len(recalled) / len(facts) if facts else None,
        "facts": len(facts),
        "recalled": [fact.text for fact in recalled],
        "contradictions": contradictions,
    }


def _states(fact: Fact, stated: list[Fact], lowered: str, words: set[str]) -> bool:
    if fact.kind == "number":
        return any(s.kind == "number" and s.value == fact.value and (s.slot == fact.slot or not s.slot or not fact.slot
                   or s.slot.startswith("after ") or fact.slot.startswith("after ")) for s in stated)  # fmt: skip
    if fact.kind in ("year", "date"):
        return any(s.key == fact.key for s in stated)
    if fact.kind == "word":
        return fact.value in words
    return re.search(rf"(?<![a-z0-9]){re.escape(fact.value)}(?![a-z0-9])", lowered) is not None


def _same_line_entities(expected: list[Fact], stated: list[Fact], asked: set) -> list[Fact]:
    """Names the prediction states that start like an expected name but differ ("Sprout Mini" for
    "Sprout Max"), whatever word precedes them."""
    out = []
    for fact in expected:
        head, *rest = fact.value.split()
        out += [s for s in stated if s.kind == "entity" and s.value != fact.value and s.key not in asked
                and rest and s.value.split()[0] == head and len(s.value.split()) > 1]  # fmt: skip
    return out
