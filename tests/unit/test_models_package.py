"""Model packages: writing, loading directories and archives, safe extraction."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from coral_inference.models import (
    ModelManifest,
    ModelPackageError,
    load_package,
    write_package,
)

MANIFEST = {
    "name": "tiny",
    "task": "object-detection",
    "weights": "model.onnx",
    "input": {"size": [64, 64]},
    "classes": ["thing"],
    "decoder": {"type": "yolov8"},
}
WEIGHTS = b"not really onnx, but packages do not parse weights"


def make_package(root: Path, manifest: dict = MANIFEST) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.json").write_text(json.dumps(manifest))
    (root / "model.onnx").write_bytes(WEIGHTS)
    return root


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_write_then_load(tmp_path):
    weights = tmp_path / "exported.onnx"
    weights.write_bytes(WEIGHTS)
    manifest = ModelManifest.from_dict(MANIFEST)
    package = write_package(tmp_path / "pkg", manifest, weights)
    assert package.root == tmp_path / "pkg"
    assert package.manifest == manifest
    assert package.formats == ("onnx",)
    assert package.weights_path().read_bytes() == WEIGHTS
    assert package.weights_path("onnx") == tmp_path / "pkg" / "model.onnx"
    assert load_package(tmp_path / "pkg").manifest == manifest
    assert load_package(tmp_path / "pkg" / "model.json").root == tmp_path / "pkg"
    assert not list((tmp_path / "pkg").glob(".*tmp"))


def test_write_in_place_and_multiple_formats(tmp_path):
    root = make_package(tmp_path / "pkg")
    (root / "model.rknn").write_bytes(b"rknn")
    data = dict(MANIFEST, weights={"onnx": "model.onnx", "rknn": "model.rknn"})
    manifest = ModelManifest.from_dict(data)
    package = write_package(
        root, manifest, {"onnx": root / "model.onnx", "rknn": root / "model.rknn"}
    )
    assert package.weights_path("rknn").read_bytes() == b"rknn"
    with pytest.raises(ModelPackageError, match="say which format") as info:
        package.weights_path()
    assert info.value.field == "weights"
    with pytest.raises(ModelPackageError, match="no 'hef' weights"):
        package.weights_path("hef")
    with pytest.raises(ValueError, match="pass a mapping"):
        write_package(root, manifest, root / "model.onnx")


def test_openvino_ir_weights_bring_their_bin(tmp_path):
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "ir.xml").write_bytes(b"<net/>")
    (exported / "ir.bin").write_bytes(b"weights")
    manifest = ModelManifest.from_dict(dict(MANIFEST, weights="model.xml"))
    assert manifest.weights == {"openvino": "model.xml"}  # the format of a .xml is openvino
    package = write_package(tmp_path / "pkg", manifest, exported / "ir.xml")
    assert package.weights_path("openvino") == tmp_path / "pkg" / "model.xml"
    assert (tmp_path / "pkg" / "model.bin").read_bytes() == b"weights"
    (tmp_path / "pkg" / "model.bin").unlink()
    with pytest.raises(ModelPackageError, match="'model.xml' needs 'model.bin' beside it") as info:
        load_package(tmp_path / "pkg")
    assert info.value.field == "weights.openvino"


def test_missing_weights_is_reported_on_load(tmp_path):
    root = make_package(tmp_path / "pkg")
    (root / "model.onnx").unlink()
    with pytest.raises(ModelPackageError) as info:
        load_package(root)
    assert info.value.path == root / "model.json"
    assert info.value.field == "weights.onnx"
    assert "not found" in info.value.message


def test_missing_path_and_non_archive(tmp_path):
    with pytest.raises(ModelPackageError, match="no such file"):
        load_package(tmp_path / "nope")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"neither zip nor tar\n" * 50)
    with pytest.raises(ModelPackageError, match="not a package directory") as info:
        load_package(junk, cache_dir=tmp_path / "cache")
    assert info.value.path == junk


def test_empty_directory_names_model_json(tmp_path):
    with pytest.raises(ModelPackageError, match="file not found") as info:
        load_package(tmp_path)
    assert info.value.path == tmp_path / "model.json"


@pytest.mark.parametrize("top_folder", ["", "centerface/"])
def test_zip_archive_is_extracted_to_the_cache_once(tmp_path, top_folder):
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{top_folder}model.json", json.dumps(MANIFEST))
        zf.writestr(f"{top_folder}model.onnx", WEIGHTS)
    cache = tmp_path / "cache"
    package = load_package(archive, cache_dir=cache)
    assert package.root.is_relative_to(cache)
    assert package.weights_path().read_bytes() == WEIGHTS
    assert package.manifest.name == "tiny"
    stamp = package.weights_path().stat().st_mtime_ns
    again = load_package(archive, cache_dir=cache)
    assert again.root == package.root
    assert again.weights_path().stat().st_mtime_ns == stamp
    assert [p.name for p in cache.iterdir()] == [package.root.relative_to(cache).parts[0]]


def test_tar_gz_archive(tmp_path):
    source = make_package(tmp_path / "src")
    archive = tmp_path / "pkg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="pkg")
    package = load_package(archive, cache_dir=tmp_path / "cache")
    assert package.root.name == "pkg"
    assert package.weights_path().read_bytes() == WEIGHTS


def test_default_cache_dir_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.json", json.dumps(MANIFEST))
        zf.writestr("model.onnx", WEIGHTS)
    package = load_package(archive)
    assert package.root.parent == tmp_path / "xdg" / "coral-inference" / "packages"


def test_archive_without_manifest(tmp_path):
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/model.onnx", WEIGHTS)
        zf.writestr("b/readme.txt", "hi")
    with pytest.raises(ModelPackageError, match="no model.json") as info:
        load_package(archive, cache_dir=tmp_path / "cache")
    assert info.value.path == archive


@pytest.mark.parametrize(
    "evil", ["../evil.txt", "pkg/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"]
)
def test_zip_path_traversal_is_rejected(tmp_path, evil):
    archive = tmp_path / "work" / "pkg.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.json", json.dumps(MANIFEST))
        zf.writestr("model.onnx", WEIGHTS)
        zf.writestr(evil, "pwned")
    cache = tmp_path / "work" / "cache"
    with pytest.raises(ModelPackageError, match="unsafe member") as info:
        load_package(archive, cache_dir=cache)
    assert info.value.path == archive
    assert not list(tmp_path.rglob("evil.txt"))
    assert list(cache.iterdir()) == []  # the partial extraction is cleaned up


@pytest.mark.parametrize("evil", ["../evil.txt", "/tmp/evil.txt"])
def test_tar_path_traversal_is_rejected(tmp_path, evil):
    archive = tmp_path / "pkg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_bytes(tar, "model.json", json.dumps(MANIFEST).encode())
        add_bytes(tar, evil, b"pwned")
    with pytest.raises(ModelPackageError, match="unsafe member"):
        load_package(archive, cache_dir=tmp_path / "cache")
    assert not list(tmp_path.rglob("evil.txt"))


def test_tar_links_are_rejected(tmp_path):
    archive = tmp_path / "pkg.tar"
    with tarfile.open(archive, "w") as tar:
        add_bytes(tar, "model.json", json.dumps(MANIFEST).encode())
        link = tarfile.TarInfo("model.onnx")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(ModelPackageError, match="link or special file"):
        load_package(archive, cache_dir=tmp_path / "cache")


def test_zip_symlinks_are_rejected(tmp_path):
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("model.json", json.dumps(MANIFEST))
        link = zipfile.ZipInfo("model.onnx")
        link.external_attr = (0o120777 << 16) | 0
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ModelPackageError, match="symbolic link"):
        load_package(archive, cache_dir=tmp_path / "cache")
    assert not any(os.path.islink(p) for p in tmp_path.rglob("*"))


def test_truncated_archive(tmp_path):
    source = make_package(tmp_path / "src")
    (source / "model.onnx").write_bytes(os.urandom(200_000))
    archive = tmp_path / "pkg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname="pkg")
    archive.write_bytes(archive.read_bytes()[:100_000])
    with pytest.raises(ModelPackageError, match="cannot extract the archive") as info:
        load_package(archive, cache_dir=tmp_path / "cache")
    assert info.value.path == archive
    assert list((tmp_path / "cache").iterdir()) == []


def test_macos_zip_metadata_is_ignored(tmp_path):
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pkg/model.json", json.dumps(MANIFEST))
        zf.writestr("pkg/model.onnx", WEIGHTS)
        zf.writestr("__MACOSX/pkg/._model.json", b"resource fork")
    assert load_package(archive, cache_dir=tmp_path / "cache").root.name == "pkg"


def test_a_bare_onnx_file_points_at_import_onnx(tmp_path):
    weights = tmp_path / "yolov8n.onnx"
    weights.write_bytes(b"\x08\x07" * 64)
    with pytest.raises(ModelPackageError, match="coral models import-onnx") as info:
        load_package(weights, cache_dir=tmp_path / "cache")
    assert str(weights) in str(info.value)
