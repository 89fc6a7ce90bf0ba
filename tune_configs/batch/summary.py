"""The outcome of a batch run: one result per photo, counts, exit status."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .jobs import PhotoResult


@dataclass
class RetouchSummary:
    results: list[PhotoResult]
    seconds: float = 0.0

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def done(self) -> int:
        return self._count("done")

    @property
    def skipped(self) -> int:
        return self._count("skipped")

    @property
    def failed(self) -> list[PhotoResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 otherwise."""
        return 1 if self.failed else 0

    def text(self) -> str:
        lines = [f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)} in {self.seconds:.1f} s"]
        lines += [f"  failed: {r.reason}" for r in self.failed]
        return "\n".join(lines)


def summary_json(summary: RetouchSummary) -> dict:
    """The summary as JSON-ready data (for logs and tests)."""
    return {
        "done": summary.done,
        "skipped": summary.skipped,
        "failed": len(summary.failed),
        "seconds": round(summary.seconds, 3),
        "results": [asdict(r) for r in summary.results],
    }
