"""The per-run quality report: what was validated, what passed, what failed and why.

The sync engine feeds every processed batch to a :class:`RunQuality`, adds the run's
referential check, and publishes the result as markdown - a Prefect artifact
(``quality-<source>``) linked from the run summary, and a file under
``<INTERCHANGE_HOME>/reports/``. Examples are ``(source_id, check)`` pairs only: a
report never carries personal data (no e-mails, names, phones, payloads).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from process_apis.quality.expectations import EXPECTATIONS
from process_apis.quality.referential import ReferentialReport

EXAMPLES = 5  # per check and stream


def check_name(failure: dict[str, Any]) -> str:
    """The name a failure is counted under: the GX check's, else the mapping rule's."""
    return str(failure.get("check") or failure.get("rule") or "unknown")


@dataclass
class StreamQuality:
    stream: str
    entity: str
    batches: int = 0
    validated: int = 0
    passed: int = 0
    failed: int = 0
    by_check: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "batches": self.batches, "validated": self.validated,
                "passed": self.passed, "failed": self.failed,
                "by_check": dict(self.by_check), "examples": self.examples}


@dataclass
class RunQuality:
    source: str
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    streams: dict[str, StreamQuality] = field(default_factory=dict)
    referential: ReferentialReport | None = None
    gate_failures: list[str] = field(default_factory=list)  # batches over their threshold

    def add(self, processed: Any) -> None:
        """Count one processed batch (``pipeline.Processed``): records in, passed, failed."""
        sq = self.streams.get(processed.stream)
        if sq is None:
            sq = self.streams[processed.stream] = StreamQuality(processed.stream,
                                                                processed.entity)
        sq.batches += 1
        # ``read`` counts duplicates within a batch once per copy; passed + failed is
        # what was validated (the last copy of each source record).
        sq.passed += len(processed.records)
        sq.failed += len(processed.rejected)
        sq.validated += len(processed.records) + len(processed.rejected)
        for rejected in processed.rejected:
            for name in dict.fromkeys(check_name(f) for f in rejected.failed_rules):
                sq.by_check[name] += 1
                examples = sq.examples.setdefault(name, [])
                if len(examples) < EXAMPLES:
                    examples.append(str(rejected.source_id))

    @property
    def totals(self) -> dict[str, int]:
        return {k: sum(getattr(s, k) for s in self.streams.values())
                for k in ("validated", "passed", "failed")}

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "started_at": self.started_at.isoformat(),
                **self.totals, "streams": {k: s.as_dict() for k, s in self.streams.items()},
                "referential": self.referential.as_dict() if self.referential else None,
                "gate_failures": self.gate_failures}

    @property
    def key(self) -> str:
        return artifact_key(self.source)

    def markdown(self) -> str:
        t = self.totals
        lines = [
            f"# Data quality: {self.source}",
            "",
            f"Run started {self.started_at.isoformat(timespec='seconds')}. "
            f"{t['validated']} records validated, {t['passed']} passed, {t['failed']} "
            "quarantined (with the checks they failed; `interchange quarantine list`).",
            "",
        ]
        if self.gate_failures:
            lines += ["**The run failed its quality gate:**", "",
                      *(f"- {g}" for g in self.gate_failures), ""]
        lines += ["## Per stream", "",
                  "| stream | entity | batches | validated | passed | failed | failed % |",
                  "|---|---|---|---|---|---|---|"]
        for s in self.streams.values():
            share = f"{s.failed / s.validated:.1%}" if s.validated else "-"
            lines.append(f"| {s.stream} | {s.entity} | {s.batches} | {s.validated} | "
                         f"{s.passed} | {s.failed} | {share} |")
        failing = [(s, name, n) for s in self.streams.values()
                   for name, n in s.by_check.most_common()]
        lines += ["", "## Failures per check", ""]
        if failing:
            lines += ["| stream | check | records | examples (source_id) |", "|---|---|---|---|"]
            lines += [f"| {s.stream} | `{name}` | {n} | "
                      f"{', '.join(f'`{_cell(x)}`' for x in s.examples.get(name, []))} |"
                      for s, name, n in failing]
        else:
            lines.append("Every validated record passed every check.")
        lines += ["", *self._referential_md(), "", *self._checks_md()]
        return "\n".join(lines) + "\n"

    def _referential_md(self) -> list[str]:
        ref = self.referential
        lines = ["## Referential checks (after all loads of the run)", ""]
        if ref is None:
            return [*lines, "Not run (the run stopped before its loads finished)."]
        lines += ["Orphans are landed and listed here until what they refer to lands; "
                  "see `interchange quarantine stats`.", "",
                  "| check | checked | orphans | why | examples (source_id) | in the hub now |",
                  "|---|---|---|---|---|---|"]
        for check, checked in ref.checked.items():
            why = ", ".join(f"{r}: {n}" for r, n in ref.reasons.get(check, {}).items())
            examples = ", ".join(f"`{_cell(x)}`" for x in ref.examples.get(check, []))
            lines.append(f"| `{check}` | {checked} | {ref.orphans.get(check, 0)} | {why} | "
                         f"{examples} | {ref.hub_orphans.get(check, 0)} |")
        if ref.unchecked_lines:
            lines += ["", f"{ref.unchecked_lines} order lines have no SKU and were not checked."]
        return lines

    def _checks_md(self) -> list[str]:
        entities = {s.entity for s in self.streams.values()}
        lines = ["<details><summary>The checks (process_apis/quality/expectations.py)"
                 "</summary>", "", "| entity | layer | check | column | expectation |",
                 "|---|---|---|---|---|"]
        from process_apis.quality.expectations import as_table

        for row in as_table():
            if row["entity"].split(".")[0] in entities:
                lines.append(f"| {row['entity']} | {row['layer']} | `{row['name']}` | "
                             f"{row['column']} | {_cell(row['detail'])} |")
        return [*lines, "", "</details>"]

    def write(self, home: Path) -> Path:
        """The report as ``<home>/reports/quality-<source>-<UTC time>.md``."""
        folder = Path(home) / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        path = folder / f"{self.key}-{stamp}.md"
        path.write_text(self.markdown())
        return path


def artifact_key(source: str) -> str:
    # Artifact keys take lowercase letters, digits and dashes only.
    return re.sub(r"[^a-z0-9-]+", "-", f"quality-{source}".lower())


def _cell(value: str) -> str:
    return str(value).replace("|", "\\|").replace("`", "'")


__all__ = ["EXPECTATIONS", "RunQuality", "StreamQuality", "artifact_key", "check_name"]
