"""Reading a ``/metrics`` answer in tests: samples by name and labels, and differences between two scrapes."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

PREFIX = "mcp_tools_"


@dataclass(frozen=True)
class Scrape:
    """Every sample of one scrape: ``{(sample name, sorted label pairs): value}``."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 if absent: a series not created yet)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def ours(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {key: value for key, value in self.samples.items() if key[0].startswith(PREFIX)}


def grown(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    return after.value(name, **labels) - before.value(name, **labels)


def deltas(events: list[dict]) -> int:
    return sum(event.get("type") == "execution.delta" for event in events)
