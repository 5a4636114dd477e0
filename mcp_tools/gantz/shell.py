"""``shell`` mode without shell injection: a value is never shell syntax.

gantz-cli pastes the value into the script, so ``echo "Hi {{name}}"`` with
the name ``x"; rm -rf ~; echo "`` runs ``rm``. We never put a value into the
script: every parameter is already in the process's environment as
``GANTZ_ARG_<NAME>``, and the placeholder becomes a *reference* to it, quoted
for where it stands::

    echo Hi {{name}}        →  echo Hi "${GANTZ_ARG_NAME-}"
    echo "Hi {{name}}"      →  echo "Hi ${GANTZ_ARG_NAME-}"
    echo 'Hi {{name}}'      →  echo 'Hi '"${GANTZ_ARG_NAME-}"''
    cat <<EOF ... {{name}}  →  ... ${GANTZ_ARG_NAME-}   (inside an unquoted here-document)

The shell expands a variable once and never parses the result as code, so
the guarantee does not depend on this module reading quotes perfectly: if it
ever misjudged a context, the value would at worst be word-split or printed
as a reference, never executed. (``-`` keeps ``set -u`` scripts working when an
optional parameter is absent.) A few places would still *evaluate* a value,
and a placeholder there is refused: inside ``$((...))``/``((...))`` and
``[[ ... ]]`` (bash evaluates ``a[$(cmd)]`` there), after a backslash, and in a
quoted here-document (``<<'EOF'``), where nothing is expanded. ``eval`` and the
like are the script's own business.

The script runs under ``/bin/sh`` (POSIX sh; gantz-cli uses ``$SHELL``).
Before that, ``${VAR}``/``$VAR`` naming a variable of the service's environment
is expanded as gantz-cli does; every other ``$`` reference (``$1``, ``$?``,
loop variables, ``$GANTZ_ARG_X``, the tool's own ``environment``) is left for
the shell, where gantz-cli would have erased it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mcp_tools.errors import PermanentToolError

from .environment import ARGUMENT_PREFIX, argument_variable, is_shell_variable
from .templates import MARK, fill, marked

logger = logging.getLogger(__name__)

_REFERENCE = {"plain": '"${%s-}"', "dq": "${%s-}", "sq": "'\"${%s-}\"'", "comment": "${%s-}"}
_WORD_BREAK = frozenset(" \t\n;&|()<>`")
_DELIMITER_END = frozenset(" \t\n;&|()<>")


class ShellTemplateError(ValueError):
    """A placeholder stands where a value would be evaluated or not expanded."""


def render_shell(template: str, arguments: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The script to run: service variables expanded, placeholders turned into references."""

    def keep(name: str) -> bool:
        return is_shell_variable(name) or name.startswith(ARGUMENT_PREFIX) or name not in environ

    text, names = marked(template, environ, keep=keep)
    try:
        contexts = mark_contexts(text)
    except ShellTemplateError as exc:
        raise PermanentToolError(f"The tool's shell script cannot be run: {exc}.", code="tool_failed") from exc
    return fill(
        text, [_REFERENCE[context] % argument_variable(name) for name, context in zip(names, contexts, strict=True)]
    )


def shell_problems(template: str) -> list[str]:
    """What is wrong with ``template``'s placeholders, as written (for the loader)."""
    text, _names = marked(template, {}, keep=lambda name: True)
    try:
        mark_contexts(text, strict=True)
    except ShellTemplateError as exc:
        return [str(exc)]
    return []


@dataclass
class _Frame:
    kind: str  # plain, dq, sq, param, arith, dbracket, comment
    closer: str = ""  # plain: ")" for $(...) and (...), "`" for `...`, "" at the top
    quoted: bool = False  # param: inside "..."
    depth: int = 0  # arith: open parentheses


def mark_contexts(text: str, *, strict: bool = False) -> list[str]:
    """The quoting context (plain, dq, sq, comment) of each ``MARK`` in ``text``."""
    lexer = _Lexer(text)
    lexer.run()
    if strict and any(frame.kind in ("sq", "dq") for frame in lexer.stack):
        raise ShellTemplateError("a quote is not closed")
    return lexer.contexts


class _Lexer:
    """A best-effort POSIX sh reader: enough to know how each mark is quoted."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.stack = [_Frame("plain")]
        self.contexts: list[str] = []
        self.heredocs: list[tuple[str, bool, bool]] = []  # delimiter, expands, strips tabs

    def run(self) -> None:
        while self.at < len(self.text):
            frame = self.stack[-1]
            getattr(self, "_" + frame.kind)(frame, self.text[self.at])

    def _word_start(self) -> bool:
        return self.at == 0 or self.text[self.at - 1] in _WORD_BREAK

    def _record(self, context: str) -> None:
        if any(frame.kind in ("arith", "dbracket") for frame in self.stack):
            raise ShellTemplateError("a placeholder inside $((...)), ((...)) or [[...]] would be evaluated as code")
        self.contexts.append(context)
        self.at += 1

    def _ahead(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.at)

    def _escape(self) -> None:
        if self._ahead("\\" + MARK):
            raise ShellTemplateError("a placeholder right after a backslash cannot be quoted")
        self.at += 2

    def _expansion(self, quoted: bool) -> bool:
        """Enter ``$((``, ``$(``, ``${`` or a backquote; False if none starts here."""
        for prefix, frame in (
            ("$((", _Frame("arith")),
            ("$(", _Frame("plain", closer=")")),
            ("${", _Frame("param", quoted=quoted)),
            ("`", _Frame("plain", closer="`")),
        ):
            if self._ahead(prefix):
                self.stack.append(frame)
                self.at += len(prefix)
                return True
        return False

    def _plain(self, frame: _Frame, char: str) -> None:
        if char == MARK:
            return self._record("plain")
        if char == "`" and frame.closer == "`" or char == ")" and frame.closer == ")":
            self.stack.pop()
        elif char == "\\":
            return self._escape()
        elif char in "'\"":
            self.stack.append(_Frame("sq" if char == "'" else "dq"))
        elif self._expansion(quoted=False):
            return None
        elif self._word_start() and (self._ahead("((") or self._ahead("[[")):
            self.stack.append(_Frame("arith" if char == "(" else "dbracket"))
            self.at += 2
            return None
        elif char == "(":
            self.stack.append(_Frame("plain", closer=")"))
        elif char == "#" and self._word_start():
            self.stack.append(_Frame("comment"))
        elif self._ahead("<<") and not self._ahead("<<<"):
            return self._heredoc_operator()
        elif char == "\n" and self.heredocs:
            self.at += 1
            return self._heredoc_bodies()
        self.at += 1
        return None

    def _dq(self, frame: _Frame, char: str) -> None:
        if char == MARK:
            return self._record("dq")
        if char == "\\":
            return self._escape()
        if char == '"':
            self.stack.pop()
        elif self._expansion(quoted=True):
            return None
        self.at += 1
        return None

    def _sq(self, frame: _Frame, char: str) -> None:
        if char == MARK:
            return self._record("sq")
        if char == "'":
            self.stack.pop()
        self.at += 1
        return None

    def _param(self, frame: _Frame, char: str) -> None:
        if char == MARK:
            return self._record("dq" if frame.quoted else "plain")
        if char == "\\":
            return self._escape()
        if char == "}":
            self.stack.pop()
        elif char == '"' or char == "'" and not frame.quoted:
            self.stack.append(_Frame("dq" if char == '"' else "sq"))
        elif self._expansion(quoted=frame.quoted):
            return None
        self.at += 1
        return None

    def _arith(self, frame: _Frame, char: str) -> None:
        if char == MARK:
            return self._record("plain")  # raises: an arith frame is on the stack
        if char == "(":
            frame.depth += 1
        elif char == ")" and frame.depth:
            frame.depth -= 1
        elif char == ")":
            self.stack.pop()
            self.at += 1 + self._ahead("))")
            return None
        elif self._expansion(quoted=False):
            return None
        self.at += 1
        return None

    def _dbracket(self, frame: _Frame, char: str) -> None:
        if char == MARK:
            return self._record("plain")  # raises
        if self._ahead("]]"):
            self.stack.pop()
            self.at += 2
            return None
        if char in "'\"":
            self.stack.append(_Frame("sq" if char == "'" else "dq"))
        elif self._expansion(quoted=False):
            return None
        self.at += 1
        return None

    def _comment(self, frame: _Frame, char: str) -> None:
        if char == MARK:
            return self._record("comment")
        if char == "\n":
            self.stack.pop()  # the newline itself is read by the frame below
            return None
        self.at += 1
        return None

    def _heredoc_operator(self) -> None:
        """Read ``<<[-] WORD``; its body starts after the end of this line."""
        self.at += 2
        strips = self._ahead("-")
        self.at += strips
        while self._ahead(" ") or self._ahead("\t"):
            self.at += 1
        word_start = self.at
        quote = ""
        while self.at < len(self.text):
            char = self.text[self.at]
            if quote:
                quote = "" if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char in _DELIMITER_END:
                break
            self.at += 1
        word = self.text[word_start : self.at]
        delimiter = word.replace("'", "").replace('"', "").replace("\\", "")
        expands = delimiter == word
        self.heredocs.append((delimiter, expands, strips))

    def _heredoc_bodies(self) -> None:
        """Read every pending here-document body, line by line, to its delimiter."""
        for delimiter, expands, strips in self.heredocs:
            while self.at < len(self.text):
                end = self.text.find("\n", self.at)
                end = len(self.text) if end == -1 else end
                line = self.text[self.at : end]
                self.at = end + 1
                if (line.lstrip("\t") if strips else line) == delimiter:
                    break
                self._heredoc_line(line, expands)
        self.heredocs = []

    def _heredoc_line(self, line: str, expands: bool) -> None:
        for index, char in enumerate(line):
            if char != MARK:
                continue
            if not expands:
                raise ShellTemplateError("a placeholder in a quoted here-document (<<'EOF') is never expanded")
            if index and line[index - 1] == "\\":
                raise ShellTemplateError("a placeholder right after a backslash cannot be quoted")
            self.contexts.append("dq")
