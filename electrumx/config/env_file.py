"""The syntax of a config file line: `NAME=VALUE`, as a shell or systemd reads it.

One setting a line.  What a shell (`set -a; . file`) and a systemd
EnvironmentFile agree on is read the same way here:

- blank lines, and lines starting with `#` or `;`, are comments;
- `export NAME=VALUE` is `NAME=VALUE`;
- 'single quotes' keep everything between them as it is;
- "double quotes" too, except that a backslash escapes `"`, `\\`, `$` and
  a backquote inside them;
- quoted and unquoted parts next to each other join (`a"b c"d` is `ab cd`).

Where they differ, or where a value would be ambiguous, the choice is:

- `#` starts a comment only after whitespace, outside quotes:
  `BANNER_FILE=/etc/banner#2` keeps its `#` (in a URL, write it `%23`), and
  `CACHE_MB=1200   # the node's RAM is small` is 1200;
- whitespace inside an unquoted value is kept (`DROP_CLIENT=Electrum 2`);
  whitespace around the value is not;
- a backslash outside double quotes is an ordinary character (a regular
  expression reads the same unquoted or in single quotes);
- `$` is an ordinary character (nothing is expanded; single-quote such a
  value so that a shell reading the file agrees);
- `NAME=a OTHER=b` on one line is refused, not read as one long value.
"""

import re

_EXPORT = re.compile(r"export\s+")
_ANOTHER_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_ESCAPED_IN_DOUBLE_QUOTES = '"\\$`'


class EnvFileSyntaxError(ValueError):
    """A line that is no NAME=VALUE; the message says what is wrong with it."""


def parse_line(line: str):
    """(name, value) of a NAME=VALUE line, or None for a comment or blank line."""
    line = line.strip()
    if not line or line[0] in "#;":
        return None
    export = _EXPORT.match(line)
    if export:
        line = line[export.end():]
    name, separator, rest = line.partition("=")
    name = name.strip()
    if not separator or not name:
        raise EnvFileSyntaxError("expected NAME=VALUE")
    return name, _value(rest)


def _value(text: str) -> str:
    """The value after `=`: quotes joined and removed, a trailing comment dropped."""
    value = []
    i = len(text) - len(text.lstrip())
    if i and text[i:i + 1] == "#":
        return ""
    while i < len(text):
        c = text[i]
        if c.isspace():
            end = i
            while end < len(text) and text[end].isspace():
                end += 1
            if end == len(text) or text[end] == "#":
                break                               # trailing whitespace, or a comment
            if _ANOTHER_ASSIGNMENT.match(text, end):
                raise EnvFileSyntaxError("one NAME=VALUE a line (quote a value that has "
                                         "spaces and '=' in it)")
            value.append(text[i:end])
            i = end
        elif c == "'":
            close = text.find("'", i + 1)
            if close < 0:
                raise EnvFileSyntaxError("a single quote is not closed on this line")
            value.append(text[i + 1:close])
            i = close + 1
        elif c == '"':
            i = _double_quoted(text, i + 1, value)
        else:
            value.append(c)
            i += 1
    return "".join(value)


def _double_quoted(text: str, i: int, value: list) -> int:
    """Append the double-quoted part starting at `i` to `value`; the index after it."""
    while i < len(text):
        c = text[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPED_IN_DOUBLE_QUOTES:
            value.append(text[i + 1])
            i += 2
        else:
            value.append(c)
            i += 1
    raise EnvFileSyntaxError("a double quote is not closed on this line")
