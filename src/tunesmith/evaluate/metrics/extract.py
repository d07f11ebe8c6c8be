"""Pull the final answer out of a free-form generation with a user-supplied regex."""

import re

from tunesmith.errors import TunesmithError

# A number with optional well-formed thousands separators and an optional sentence-final
# period, e.g. "1,234." Commas are only stripped when they are thousands separators, so
# a text answer like "Paris, France" is left alone.
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\.?")


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise TunesmithError(
            f"eval.extract: invalid regex {pattern!r}: {err}. "
            "Fix the pattern in your config (e.g. '#### (.+)' for GSM8K-style answers)."
        ) from err


def _clean(answer: str) -> str:
    answer = answer.strip()
    if _NUMBER.fullmatch(answer):
        return answer.replace(",", "").rstrip(".")
    return answer


def extract_answer(text: str, pattern: str, *, last: bool = True) -> str | None:
    """Apply `pattern` to `text` and return the cleaned answer, or None if nothing matched.

    If the regex has a capture group, group 1 is the answer, otherwise the whole match.
    The last match is used by default because chain-of-thought models often restate
    intermediate numbers before the final "#### 42". Whitespace is stripped, and a
    number loses its thousands commas and a trailing period ("1,234." -> "1234").

    Args:
        text: The model output (or reference) to search.
        pattern: A Python regular expression.
        last: Use the last match; if False, the first.

    Raises:
        TunesmithError: If `pattern` is not a valid regular expression.
    """
    regex = _compile(pattern)
    # A match whose group 1 did not participate (e.g. "(a)|b" matching "b") has no answer.
    found = [m.group(1) if regex.groups else m.group(0) for m in regex.finditer(text)]
    found = [answer for answer in found if answer is not None]
    if not found:
        return None
    return _clean(found[-1] if last else found[0])
