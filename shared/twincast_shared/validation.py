"""One sentence for a pydantic ValidationError: what a `Rejected` event or a 400 says."""

from __future__ import annotations

from pydantic import ValidationError


def describe(error: ValidationError, *, limit: int = 5, whole: str = "") -> str:
    """`field.path: message` for the first `limit` problems, joined by "; ".

    `whole` names the input when a problem is with all of it rather than one field.
    """
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or whole
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
