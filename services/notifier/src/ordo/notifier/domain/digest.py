"""A burst of notifications folded into one message: the worst first, then counts. Pure."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ordo.contracts.enums import Severity
from ordo.notifier.domain.notifications import SEVERITY_RANK


@dataclass(frozen=True)
class Held:
    """A notification held back from a channel by its rate limit."""

    kind: str
    severity: Severity
    text: str

    @property
    def title(self) -> str:
        return self.text.split("\n", 1)[0]


def digest_severity(members: Sequence[Held]) -> Severity:
    return max((m.severity for m in members), key=SEVERITY_RANK.__getitem__, default=Severity.INFO)


def digest_text(members: Sequence[Held], *, max_lines: int) -> str:
    """One message for many: how many of each severity and kind, then the titles, the most
    severe first (in the order they came), up to ``max_lines`` of them."""
    severities = Counter(m.severity for m in members)
    kinds = Counter(m.kind for m in members)
    by_severity = " · ".join(
        f"{severities[s]} {s.value}"
        for s in sorted(severities, key=SEVERITY_RANK.__getitem__, reverse=True)
    )
    by_kind = " · ".join(f"{kind.replace('_', ' ')} {count}" for kind, count in kinds.most_common())
    worst_first = sorted(
        range(len(members)), key=lambda i: (-SEVERITY_RANK[members[i].severity], i)
    )
    lines = [
        f"Digest of {len(members)} notifications (the channel's rate limit held them back)",
        by_severity,
        by_kind,
        *(_line(members[i]) for i in worst_first[:max_lines]),
    ]
    if len(members) > max_lines:
        lines.append(
            f"… and {len(members) - max_lines} more: the notifier's delivery log keeps every one"
        )
    return "\n".join(lines)


def _line(member: Held) -> str:
    marker = "" if member.severity is Severity.INFO else f"[{member.severity.value}] "
    return f"• {marker}{member.title}"
