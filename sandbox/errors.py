"""Errors the compiler raises for code that must never be queued."""

from __future__ import annotations

from typing import Any


class ScriptRejected(Exception):
    """Base for code refused before it runs; carries what API.md's 400 body shows."""

    error_type = "ScriptRejected"

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.line is not None:
            out["line"] = self.line
        if self.column is not None:
            out["column"] = self.column
        return out


class ScriptSyntaxError(ScriptRejected):
    """The code does not parse (or is too large or deep for the parser)."""

    error_type = "SyntaxError"


class ScriptSecurityError(ScriptRejected):
    """The code parses but breaks the sandbox policy."""

    error_type = "SecurityError"


class ScriptNameError(ScriptRejected):
    """The code reads a name that it never assigns and that the sandbox does not provide."""

    error_type = "NameError"

    def __init__(
        self, message: str, line: int, column: int, *, name: str, suggestions: list[str]
    ) -> None:
        super().__init__(message, line, column)
        self.name = name
        self.suggestions = suggestions

    def details(self) -> dict[str, Any]:
        return {**super().details(), "name": self.name, "suggestions": list(self.suggestions)}
