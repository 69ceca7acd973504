"""Where stairbot's data lives, and the one function that resolves preset names to files.

`urdf/`, `envs/` and `train/` sit at the top of the repository. An installed wheel carries them as
`stairbot/_data/<kind>/`; a source checkout (editable install or `PYTHONPATH=.`) finds them beside the
package. `resolve_preset("stairs_up", "envs")` and `resolve_preset("envs/my.yaml", "envs")` both work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from stairbot.errors import ConfigError

DataKind = Literal["urdf", "envs", "train", "pretrained"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_YAML_SUFFIXES = (".yaml", ".yml")


def data_dir(kind: DataKind) -> Path:
    """Directory holding the shipped data of `kind` (installed copy first, then the checkout)."""
    installed = _PACKAGE_DIR / "_data" / kind
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / kind
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"stairbot data directory '{kind}/' not found (looked in {installed} and {checkout}); "
        "is the package installed correctly?"
    )


def available_presets(kind: DataKind) -> list[str]:
    """Names (file stems) of the YAML presets shipped in `kind`, sorted."""
    return sorted(p.stem for p in data_dir(kind).iterdir() if p.suffix in _YAML_SUFFIXES)


def resolve_preset(name_or_path: str | Path, kind: DataKind) -> Path:
    """Turn a preset name (`stairs_up`) or a path to a YAML file into an existing file path.

    A value that names an existing file is taken as a path; otherwise it is looked up by stem in the
    shipped `kind/` directory. Unknown names raise `ConfigError` listing the shipped ones.
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    shipped = data_dir(kind)
    for suffix in ("", *_YAML_SUFFIXES):
        path = shipped / f"{name_or_path}{suffix}"
        if path.is_file() and path.suffix in _YAML_SUFFIXES:
            return path
    raise ConfigError(
        f"no {kind} preset named '{name_or_path}': it is neither an existing file nor one of the "
        f"shipped presets {available_presets(kind)}"
    )
