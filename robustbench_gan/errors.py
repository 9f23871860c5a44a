"""Errors a user can fix. The CLI prints them as one line, without a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a malformed suite, an unknown plugin name, missing data.

    ``where`` names the place (a file, optionally with a field path) so the user
    knows what to edit; the CLI prints ``where: message``.
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def at(self, where: str) -> UserError:
        """The same error, located at ``where`` (kept if already more specific)."""
        return self if self.where else UserError(self.message, where=where)
