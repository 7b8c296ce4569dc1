"""Local model packages: a directory (or ``.zip`` / ``.tar.gz`` of one) with ``model.json`` and
the weights it names."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import IO

from .decoders import DecoderRegistry
from .errors import ModelPackageError
from .manifest import MANIFEST_FILENAME, WEIGHT_COMPANIONS, ModelManifest

__all__ = [
    "ModelPackage",
    "companion_paths",
    "default_cache_dir",
    "load_package",
    "write_package",
]

logger = logging.getLogger(__name__)

StrPath = str | PathLike[str]


@dataclass(frozen=True)
class ModelPackage:
    """A model package on disk: its root directory and validated manifest."""

    root: Path
    manifest: ModelManifest

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILENAME

    @property
    def formats(self) -> tuple[str, ...]:
        """The weight formats this package ships, e.g. ``("onnx",)``."""
        return tuple(self.manifest.weights)

    def weights_path(self, format: str | None = None) -> Path:
        """The weights file for ``format`` (e.g. ``"onnx"``); may be left out when the package
        has a single format. Raises :class:`ModelPackageError` if there is no such file."""
        weights = self.manifest.weights
        if format is None:
            if len(weights) != 1:
                raise ModelPackageError(
                    f"the package has weights for {', '.join(weights)}; say which format to use",
                    path=self.manifest_path,
                    field="weights",
                )
            format = next(iter(weights))
        if format not in weights:
            raise ModelPackageError(
                f"no {format!r} weights in this package (it has: {', '.join(weights)}); import "
                f"or convert the model for {format} first",
                path=self.manifest_path,
                field="weights",
            )
        path = self.root / weights[format]
        if not path.is_file():
            raise ModelPackageError(
                f"weights file {weights[format]!r} not found in {self.root}",
                path=self.manifest_path,
                field=f"weights.{format}",
            )
        for companion in companion_paths(format, path):
            if not companion.is_file():
                raise ModelPackageError(
                    f"{weights[format]!r} needs {companion.name!r} beside it, not found in "
                    f"{self.root}",
                    path=self.manifest_path,
                    field=f"weights.{format}",
                )
        return path


def companion_paths(format: str, weights: Path) -> list[Path]:
    """The files ``weights`` of ``format`` needs beside it (OpenVINO IR: the ``.bin``)."""
    return [weights.with_suffix(suffix) for suffix in WEIGHT_COMPANIONS.get(format, ())]


def default_cache_dir() -> Path:
    """Where archives are extracted: ``$XDG_CACHE_HOME/coral-inference/packages``, with
    ``XDG_CACHE_HOME`` defaulting to ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "coral-inference" / "packages"


def load_package(
    path: StrPath, *, cache_dir: StrPath | None = None, decoders: DecoderRegistry | None = None
) -> ModelPackage:
    """Load and validate a model package.

    Args:
        path: A package directory, its ``model.json``, or a ``.zip`` / ``.tar(.gz|.bz2|.xz)``
            archive of one (``model.json`` at the archive's top level or in its single top-level
            folder).
        cache_dir: Where archives are extracted, each into a sub-directory named after the
            archive's SHA-256 and reused on later loads; defaults to :func:`default_cache_dir`.
        decoders: Resolves the manifest's ``decoder.type`` (a runtime's ``context.decoders``);
            the built-in decoders by default.

    Raises:
        ModelPackageError: The package is missing, unsafe or invalid.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        return _load_dir(path, decoders)
    if path.is_file() and path.name == MANIFEST_FILENAME:
        return _load_dir(path.parent, decoders)
    if not path.exists():
        raise ModelPackageError(
            "no such file or directory; give a package directory or a .zip / .tar.gz of one",
            path=path,
        )
    if zipfile.is_zipfile(path):
        extract = _extract_zip
    elif tarfile.is_tarfile(path):
        extract = _extract_tar
    elif path.suffix.lower() == ".onnx":
        raise ModelPackageError(
            "a bare ONNX file, not a model package: make one with `coral models import-onnx "
            f"{path} OUT_DIR --name NAME --decoder yolov8|yolov5|centerface --classes a,b`, "
            "then give OUT_DIR",
            path=path,
        )
    else:
        raise ModelPackageError(
            "not a package directory, model.json, zip or tar archive", path=path
        )
    digest = _sha256(path)
    target = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dest = target / digest[:16]
    if not dest.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}-", dir=target))
        try:
            try:
                extract(path, staging)
            except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as exc:
                raise ModelPackageError(f"cannot extract the archive: {exc}", path=path) from exc
            try:
                staging.rename(dest)
            except OSError:  # another process extracted the same archive meanwhile
                if not dest.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("extracted %s to %s", path, dest)
    if (dest / MANIFEST_FILENAME).is_file():
        return _load_dir(dest, decoders)
    entries = [entry for entry in dest.iterdir() if not entry.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and (entries[0] / MANIFEST_FILENAME).is_file():
        return _load_dir(entries[0], decoders)
    raise ModelPackageError(
        f"the archive has no {MANIFEST_FILENAME} at its top level or in its single top-level "
        "folder",
        path=path,
    )


def write_package(
    directory: StrPath,
    manifest: ModelManifest,
    weights: StrPath | Mapping[str, StrPath],
    *,
    decoders: DecoderRegistry | None = None,
) -> ModelPackage:
    """Write a package: copy the weights in under the names the manifest gives them, then write
    ``model.json``. Used by importers and converters.

    Args:
        directory: The package directory (created if missing).
        manifest: The manifest to write.
        weights: The weights file for a single-format manifest, or a mapping from format to
            file covering every format in ``manifest.weights``. A file already at its place in
            ``directory`` is left as is. A format's companion files (OpenVINO IR's ``.bin``)
            are copied from beside the weights file.
        decoders: Resolves ``decoder.type`` when the package is loaded back (the built-ins by
            default).

    Returns:
        The package, loaded back (and so validated) from ``directory``.
    """
    root = Path(directory)
    if not isinstance(weights, Mapping):
        if len(manifest.weights) != 1:
            raise ValueError(
                f"the manifest lists weights for {', '.join(manifest.weights)}; pass a mapping "
                "from format to file"
            )
        weights = {next(iter(manifest.weights)): weights}
    if set(weights) != set(manifest.weights):
        raise ValueError(
            f"weights given for {sorted(weights)} but the manifest lists {sorted(manifest.weights)}"
        )
    root.mkdir(parents=True, exist_ok=True)
    for fmt, source in weights.items():
        source = Path(source)
        dest = root / manifest.weights[fmt]
        if dest.exists() and dest.samefile(source):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        for extra, target in zip(
            companion_paths(fmt, source), companion_paths(fmt, dest), strict=True
        ):
            shutil.copyfile(extra, target)
    staging = root / f".{MANIFEST_FILENAME}.tmp"
    staging.write_text(manifest.to_json(), encoding="utf-8")
    staging.replace(root / MANIFEST_FILENAME)
    return _load_dir(root, decoders)


def _load_dir(root: Path, decoders: DecoderRegistry | None) -> ModelPackage:
    manifest = ModelManifest.load(root / MANIFEST_FILENAME, decoders=decoders)
    package = ModelPackage(root=root, manifest=manifest)
    for fmt in package.formats:
        package.weights_path(fmt)
    return package


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _member_path(root: Path, name: str, archive: Path) -> Path | None:
    """Where archive member ``name`` goes under ``root``; None for the archive root itself.
    Rejects absolute names and names that climb out of ``root``."""
    posix = PurePosixPath(name.replace("\\", "/"))
    parts = [part for part in posix.parts if part not in ("", ".")]
    if posix.is_absolute() or ".." in parts or (parts and ":" in parts[0]):
        raise ModelPackageError(
            f"unsafe member {name!r} (absolute or outside the archive); refusing to extract",
            path=archive,
        )
    if not parts:
        return None
    target = root.joinpath(*parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise ModelPackageError(
            f"unsafe member {name!r} resolves outside the archive; refusing to extract",
            path=archive,
        )
    return target


def _write_member(source: IO[bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        shutil.copyfileobj(source, out)


def _extract_zip(archive: Path, root: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = _member_path(root, info.filename, archive)
            if target is None:
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ModelPackageError(
                    f"member {info.filename!r} is a symbolic link; packages hold only regular "
                    "files",
                    path=archive,
                )
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                with zf.open(info) as source:
                    _write_member(source, target)


def _extract_tar(archive: Path, root: Path) -> None:
    with tarfile.open(archive) as tf:
        for member in tf:
            target = _member_path(root, member.name, archive)
            if target is None:
                continue
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                source = tf.extractfile(member)
                assert source is not None  # regular members always have data
                with source:
                    _write_member(source, target)
            else:
                raise ModelPackageError(
                    f"member {member.name!r} is a link or special file; packages hold only "
                    "regular files",
                    path=archive,
                )
