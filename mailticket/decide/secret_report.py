"""What the secrets guard found in a mail: a value the parsed mail carries (pure, no scan).

Its own module so that ``mail`` (which carries a report from the parser worker) and
``secret_scan`` (which reads mails) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["private_key", "mnemonic"]
MARKERS: Final[dict[Kind, str]] = {
    "private_key": "[secret removed: private key]",
    "mnemonic": "[secret removed: recovery phrase]",
}


@dataclass(frozen=True, slots=True)
class SecretReport:
    """What intake needs to tag the ticket and warn the requester (true when found)."""

    found: bool
    kinds: tuple[Kind, ...]

    def __bool__(self) -> bool:
        return self.found


NO_SECRETS: Final = SecretReport(False, ())
