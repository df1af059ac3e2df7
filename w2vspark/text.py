"""Tokenization of one string, in pure Python (the Spark stage applies the same pattern with Spark SQL).

Default: lowercase, then tokens are runs of Unicode letters, with apostrophes allowed only inside a word
("o'clock" stays one token, quotes around a word are dropped). Digits and punctuation separate tokens.
"""
from __future__ import annotations

import re
from functools import lru_cache

# Python spelling of "a letter" ([^\W\d_]: word characters minus digits and underscore); the Spark stage
# uses the Java spelling \p{L}. Both accept ASCII and accented letters alike.
PYTHON_TOKEN_PATTERN = r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*"
JAVA_TOKEN_PATTERN = r"\p{L}+(?:['\u2019]\p{L}+)*"


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def tokenize(text: str, lowercase: bool = True, token_pattern: str = "") -> list[str]:
    """Split ``text`` into tokens; ``token_pattern`` (a regex for one token) replaces the default."""
    if lowercase:
        text = text.lower()
    return _compiled(token_pattern or PYTHON_TOKEN_PATTERN).findall(text)


def chunk(tokens: list, max_length: int) -> list[list]:
    """Cut a token list into pieces of at most ``max_length`` tokens."""
    return [tokens[i:i + max_length] for i in range(0, len(tokens), max_length)]
