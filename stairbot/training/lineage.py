"""Where a run's policy came from: the commands of the runs it was started from or derived from.

A run's `command.txt` holds only the command that started (and resumed) it. A policy shipped after
a chain of runs - `stairbot train --init-from` an earlier run or bundle, then `stairbot distill` or
`stairbot average` of those - needs the whole chain to be reproduced. `run_lineage(run)` follows
the links each run directory already records and returns the chain's commands, oldest first:

- `config.yaml`'s `init_from` (`stairbot train --init-from`): a run's checkpoint, a run, or an
  export bundle (whose `policy.json` carries its own chain in `provenance`);
- `distill.json`'s student run, `average.json`'s sources and `ensemble.json`'s members.

A source that is no longer on disk (runs/ is scratch space) ends its branch with a `# not found:
PATH` line, so a gap in the record is visible rather than silent. A bundle is read as it is when the
lineage is taken: a run started from `pretrained` gets the chain of whatever is shipped then, so
export a run while the bundles it names are still the ones it used.
"""

from __future__ import annotations

import json
from pathlib import Path

from stairbot.config import read_yaml
from stairbot.errors import StairbotError
from stairbot.policy_source import run_of_checkpoint

NOT_FOUND = "# not found: "
# A chain longer than this is a cycle in hand-edited records, not a real history.
_MAX_DEPTH = 64
# The derived-run records and the key of each that lists its source runs.
_DERIVED_RECORDS = (("distill.json", "student"), ("average.json", "sources"), ("ensemble.json", "members"))


def run_lineage(run: Path) -> list[str]:
    """The commands that made the runs and bundles `run` was started from or derived from, oldest
    first, each source's chain before its own commands; `run`'s own commands are not included (they
    are its `command.txt`). Empty for a run trained from scratch."""
    return _sources_lineage(run, depth=0)


def bundle_lineage(bundle: Path) -> list[str]:
    """An export bundle's chain: its recorded lineage, then its run's own commands."""
    provenance = json.loads((bundle / "policy.json").read_text()).get("provenance", {})
    return [*provenance.get("lineage", []), *provenance.get("training_command", [])]


def _sources_lineage(run: Path, depth: int) -> list[str]:
    if depth > _MAX_DEPTH:
        raise StairbotError(
            f"the lineage of {run} is more than {_MAX_DEPTH} runs deep: do its records (config.yaml's "
            "init_from, distill.json, average.json, ensemble.json) name each other in a cycle?"
        )
    lines: list[str] = []
    for source in _sources(run):
        lines.extend(_lineage_of_source(source, run, depth + 1))
    return lines


def _lineage_of_source(source: str, run: Path, depth: int) -> list[str]:
    path = _resolve(source, run)
    if path is None:
        return [NOT_FOUND + source]
    if (path / "policy.json").is_file():
        return bundle_lineage(path)
    source_run = path if (path / "config.yaml").is_file() else run_of_checkpoint(path)
    if source_run is None:
        return [NOT_FOUND + source]
    command = source_run / "command.txt"
    own = command.read_text().splitlines() if command.is_file() else [NOT_FOUND + str(command)]
    return [*_sources_lineage(source_run, depth), *own]


def _sources(run: Path) -> list[str]:
    """The paths `run` names as what it was derived from or started from, in the order recorded,
    each once. A derived run's config.yaml is its first source's, `init_from` included, so its
    record (not its config) says where it came from."""
    found: list[str] = []
    for record_name, key in _DERIVED_RECORDS:
        record_file = run / record_name
        if record_file.is_file():
            entries = json.loads(record_file.read_text()).get(key, [])
            found.extend(str(entry["run"]) for entry in (entries if isinstance(entries, list) else [entries]))
    config = run / "config.yaml"
    if not found and config.is_file():
        init_from = read_yaml(config).get("init_from")
        if init_from:
            found.append(str(init_from))
    return list(dict.fromkeys(found))


def _resolve(source: str, run: Path) -> Path | None:
    """`source` as recorded (relative to where the command ran, or absolute), else the folder of that
    name beside `run` (a checkout moved or a run directory copied elsewhere), else None."""
    path = Path(source)
    if path.exists():
        return path
    parts = path.parts
    for start in range(1, len(parts)):  # runs/d520 recorded, run now at /elsewhere/runs/d521
        candidate = run.parent.joinpath(*parts[start:])
        if candidate.exists():
            return candidate
    return None
