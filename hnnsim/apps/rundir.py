"""Output folders of the applications: a rerun never mixes its files with a previous run's.

A run writes a manifest (``.hnnsim-run.json``: the application and every file it wrote)
into its folder when it finishes. The next run into the same folder first removes exactly
the files that manifest lists (no stale trajectory of a larger earlier run survives), and
leaves anything else there alone. A folder that is not empty and holds no manifest is not
hnnsim's to write into: it is refused.
"""

from __future__ import annotations

import json
import os
from typing import List

from ..errors import OutputExistsError

MANIFEST = ".hnnsim-run.json"


def prepare(folder: str, app: str) -> None:
    """Make ``folder`` ready for a fresh run of ``app`` (see the module docstring)."""
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise OutputExistsError(f"{folder} exists and is not a folder; choose another --outdir")
        os.makedirs(folder)
        return
    manifest = os.path.join(folder, MANIFEST)
    entries = sorted(e for e in os.listdir(folder) if e != MANIFEST)
    if not os.path.exists(manifest):
        if entries:
            raise OutputExistsError(
                f"{folder} is not empty ({len(entries)} entries, e.g. {entries[0]!r}) and holds no earlier "
                f"{app} run: choose another --outdir or empty it (hnnsim does not mix its files with others)")
        return
    try:
        with open(manifest) as fh:
            data = json.load(fh)
        files: List[str] = list(data["files"])
        owner = data["app"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputExistsError(f"{manifest} cannot be read ({exc}); empty {folder} or choose another --outdir") from None
    if owner != app:
        raise OutputExistsError(f"{folder} holds a {owner} run, not a {app} run; choose another --outdir")
    root = os.path.realpath(folder)
    for rel in files:
        path = os.path.realpath(os.path.join(folder, rel))
        if path.startswith(root + os.sep) and os.path.isfile(path):  # never outside the folder
            os.remove(path)
    os.remove(manifest)


def finish(folder: str, app: str) -> None:
    """Record every file now in ``folder`` as written by this run of ``app``."""
    files = []
    for directory, _, names in os.walk(folder):
        for name in names:
            if name != MANIFEST:
                files.append(os.path.relpath(os.path.join(directory, name), folder))
    tmp = os.path.join(folder, MANIFEST + ".tmp")
    with open(tmp, "w") as fh:
        json.dump({"app": app, "files": sorted(files)}, fh, indent=1)
    os.replace(tmp, os.path.join(folder, MANIFEST))
