"""The one error type for data that breaks a contract."""

from __future__ import annotations


class DataContractError(ValueError):
    """Bad input data. The message names the file, the row (1-based, header excluded) and the
    problem, so a user can open the file and fix it."""

    def __init__(
        self, source: str, problem: str, *, row: int | None = None, column: str | None = None
    ) -> None:
        self.source = source
        self.row = row
        self.column = column
        self.problem = problem
        where = source
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")
