r"""The learned-model file: writing it, and reading it without executing anything in it.

Model file
----------
:meth:`LearnedSystem.save` writes an uncompressed NumPy ``.npz`` (a zip of ``.npy`` members;
any file name) read back with ``allow_pickle=False``, so loading never executes code:

* ``header``: uint8 array, UTF-8 JSON ``{"format": "hnnsim-learned-system", "version": 1,
  "name", "shape": [N, D], "kind", "activation", "networks": {net: {"sizes": [s_0, .., 1]}},
  "masses": bool, "metadata": {...}, "sha256": model_hash}``;
* ``<net>.<k>.weight`` float64 ``(s_{k+1}, s_k)`` and ``<net>.<k>.bias`` float64 ``(s_{k+1},)``
  for ``net`` in ``H`` or ``T``, ``V`` and ``k = 0 .. L-1``;
* ``default_state.q``, ``default_state.p`` float64 ``(N, D)``; ``masses`` float64 ``(N,)`` if any.

``sha256`` (:attr:`LearnedSystem.model_hash`) is the SHA-256 of the canonical JSON of the
header without ``sha256`` followed by every array (name, shape, float64 little-endian
bytes) in the order above. :func:`load` recomputes it and refuses a file whose hash, zip
CRC, structure, format or version does not match, raising :class:`ModelFileError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
import zlib
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from integrators.errors import InputTypeError, ModelFileError

from .network_layout import KIND_SEPARABLE, NETWORKS

if TYPE_CHECKING:
    from .learned import LearnedSystem

FILE_FORMAT = "hnnsim-learned-system"
FILE_VERSION = 1


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise InputTypeError(f"{type(obj).__name__} is not JSON data")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def digest(spec: Mapping[str, Any], arrays: Sequence[Tuple[str, np.ndarray]]) -> str:
    """SHA-256 over the canonical JSON of ``spec`` and the named arrays (name, shape, float64 bytes)."""
    h = hashlib.sha256()
    h.update(FILE_FORMAT.encode() + b"\0")
    h.update(canonical_json(spec).encode())
    for key, arr in arrays:
        a = np.ascontiguousarray(arr, dtype="<f8")
        h.update(b"\0" + key.encode() + b"\0" + canonical_json(list(a.shape)).encode() + b"\0")
        h.update(a.tobytes())
    return h.hexdigest()


_PICKLE_HINT = ("hnnsim model files never contain pickles, and unpickling can execute arbitrary code, so it is "
                "refused; export the weights with LearnedSystem(...).save(path)")


def _fail(path: str, why: str) -> ModelFileError:
    return ModelFileError(f"{path}: {why}")


def write_model(system: "LearnedSystem", path: Union[str, os.PathLike]) -> str:
    """Write ``system`` to ``path`` atomically (temporary file, fsync, rename); returns the path."""
    path = os.fspath(path)
    header = dict(system._spec(), sha256=system.model_hash)
    payload = {"header": np.frombuffer(canonical_json(header).encode(), dtype=np.uint8)}
    payload.update({key: np.ascontiguousarray(arr, dtype="<f8") for key, arr in system._arrays()})
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".hnn", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **payload)  # float64 and uint8 arrays only: nothing is pickled
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a model is shared like any data file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_model(path: str, build: Callable[..., "LearnedSystem"]) -> "LearnedSystem":
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    if not data:
        raise _fail(path, "the file is empty (truncated?); not an hnnsim model file")
    if data[:1] == b"\x80":  # the PROTO opcode that starts every pickle of protocol >= 2
        raise _fail(path, f"the file is a Python pickle. {_PICKLE_HINT}")
    if data[:4] != b"PK\x03\x04":
        if data[:6] == b"\x93NUMPY":
            raise _fail(path, "the file is a single .npy array, not an hnnsim model file (an .npz written by "
                              "LearnedSystem.save)")
        raise _fail(path, f"not an hnnsim model file: it does not start with a zip signature "
                          f"(first bytes {data[:8]!r}); write models with LearnedSystem.save")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise _fail(path, f"truncated or corrupt file ({exc}); save the model again") from None
    with zf:
        names = zf.namelist()
        if any(n.endswith(".pkl") or n.endswith("/data.pkl") for n in names):
            raise _fail(path, f"this looks like a torch checkpoint (torch.save; it holds "
                              f"{next(n for n in names if n.endswith('.pkl'))}). {_PICKLE_HINT}")
        if "header.npy" not in names:
            raise _fail(path, f"not an hnnsim model file: no header (members: {', '.join(names[:6])}); "
                              "write models with LearnedSystem.save")
        bad = [n for n in names if not n.endswith(".npy")]
        if bad:
            raise _fail(path, f"unexpected member(s) {', '.join(bad)}: not an hnnsim model file")
        for item in zf.infolist():
            # hnnsim stores members uncompressed, so no member can be larger than the file
            # itself: a compressed one (a zip bomb expands a few MB into GBs) is refused
            # before a byte of it is inflated
            if item.compress_type != zipfile.ZIP_STORED or item.file_size != item.compress_size \
                    or item.file_size > len(data):
                raise _fail(path, f"member {item.filename} is compressed or declares {item.file_size} bytes in a "
                                  f"{len(data)}-byte file; hnnsim writes uncompressed members only, so it is refused "
                                  "unread (save the model again with LearnedSystem.save)")
        arrays: Dict[str, np.ndarray] = {}
        for member in names:
            try:
                raw = zf.read(member)  # checks the zip CRC
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:
                raise _fail(path, f"corrupt or modified file ({exc}); the bytes changed after it was saved") from None
            try:
                arrays[member[:-4]] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise _fail(path, f"member {member} is an object array (pickled data). {_PICKLE_HINT}") from None
                raise _fail(path, f"member {member} is not a valid array ({exc})") from None
            except (OSError, EOFError) as exc:
                raise _fail(path, f"member {member} is truncated ({exc})") from None
    return _from_arrays(path, arrays, build)


def _from_arrays(path: str, arrays: Dict[str, np.ndarray], build: Callable[..., "LearnedSystem"]) -> "LearnedSystem":
    raw = arrays.pop("header")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _fail(path, f"header must be uint8 JSON bytes, found {raw.dtype} {raw.shape}")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"the header is not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise _fail(path, f"not an hnnsim model file: format is {found!r}, expected {FILE_FORMAT!r}")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, f"invalid format version {version!r}")
    if version > FILE_VERSION:
        raise _fail(path, f"format version {version} was written by a newer hnnsim; this one reads version "
                          f"{FILE_VERSION}: upgrade hnnsim")
    required = {"name": str, "shape": list, "kind": str, "activation": str, "networks": dict, "masses": bool,
                "metadata": dict, "sha256": str}
    for key, typ in required.items():
        if not isinstance(header.get(key), typ):
            raise _fail(path, f"header field {key!r} must be a {typ.__name__}, found {header.get(key)!r}")
    kind = header["kind"]
    if kind not in NETWORKS or set(header["networks"]) != set(NETWORKS[kind]):
        raise _fail(path, f"header kind {kind!r} with networks {sorted(header['networks'])} is not valid")
    expected: List[str] = []
    networks: Dict[str, List[Tuple[np.ndarray, np.ndarray]]] = {}
    for net in NETWORKS[kind]:
        sizes = header["networks"][net].get("sizes") if isinstance(header["networks"][net], dict) else None
        if not (isinstance(sizes, list) and len(sizes) >= 2 and all(isinstance(s, int) for s in sizes)):
            raise _fail(path, f"header sizes of network {net!r} are not a list of layer sizes: {sizes!r}")
        layers = []
        for k in range(len(sizes) - 1):
            wkey, bkey = f"{net}.{k}.weight", f"{net}.{k}.bias"
            expected += [wkey, bkey]
            if wkey not in arrays or bkey not in arrays:
                raise _fail(path, f"array {wkey if wkey not in arrays else bkey} is missing (truncated file?)")
            W, b = arrays[wkey], arrays[bkey]
            if W.dtype != np.float64 or W.shape != (sizes[k + 1], sizes[k]) or b.dtype != np.float64 \
                    or b.shape != (sizes[k + 1],):
                raise _fail(path, f"layer {net}.{k} has {W.dtype} {W.shape} / {b.dtype} {b.shape}; the header says "
                                  f"float64 ({sizes[k + 1]}, {sizes[k]}) / ({sizes[k + 1]},)")
            layers.append((W, b))
        networks[net] = layers
    expected += ["default_state.q", "default_state.p"] + (["masses"] if header["masses"] else [])
    missing = [k for k in expected if k not in arrays]
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise _fail(path, f"arrays do not match the header: missing {missing}, unexpected {extra}")
    spec = {k: v for k, v in header.items() if k != "sha256"}
    ordered = [(k, arrays[k]) for k in expected]
    found = digest(spec, ordered)
    if found != header["sha256"]:
        raise _fail(path, f"hash mismatch: the header records sha256 {header['sha256'][:16]}... but the content hashes "
                          f"to {found[:16]}...; the file was modified (tampered or corrupted) after it was saved")
    try:
        system = build(header["name"], tuple(header["shape"]), networks, activation=header["activation"],
                       separable=kind == KIND_SEPARABLE, metadata=header["metadata"],
                       default_state=(arrays["default_state.q"], arrays["default_state.p"]), masses=arrays.get("masses"))
    except (TypeError, ValueError) as exc:
        raise _fail(path, f"the stored model is invalid: {exc}") from None
    if system.model_hash != found or set(spec) != set(system._spec()):
        raise _fail(path, "the header has fields or values that LearnedSystem.save does not write (unknown "
                          "fields, non-canonical numbers); it was not written by this version of hnnsim")
    return system
