"""The Hugging Face hub side of loading and saving: hub ids to cached folders, and uploads.

Everything goes through ``huggingface_hub`` (the ``[hub]`` extra), imported only when a hub id
is used: importing csbrain makes no network call. ``hf_hub_download`` honours the hub cache
(``HF_HUB_CACHE`` / ``HF_HOME``, or ``cache_dir``), ``revision`` (branch, tag or commit) and
offline mode (``HF_HUB_OFFLINE=1`` or ``local_files_only=True``: no network call, and a model
missing from the cache is a ``FileNotFoundError`` naming the cache).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import ModuleType

from csbrain.models.hub import CONFIG_NAME, WEIGHTS_NAME

logger = logging.getLogger(__name__)

__all__ = ["HUB_FILES", "is_hub_id", "resolve_pretrained", "push_folder"]

#: Files of a csbrain model repository that loading needs (the model card is not needed).
HUB_FILES: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME)
#: Endings of local checkpoint files: such a name is never taken for a hub id.
_FILE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".json", ".onnx")
#: ``org/name``: what a hub id looks like (anything else is a local path).
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def _hub() -> ModuleType:
    try:
        import huggingface_hub
    except ImportError as err:
        raise ImportError("the Hugging Face hub needs huggingface_hub: "
                          "pip install 'csbrain-eeg[hub]'") from err
    return huggingface_hub


def is_hub_id(name: str | Path) -> bool:
    """Whether ``name`` is taken for a hub id ``org/name`` rather than a local path.

    A :class:`~pathlib.Path`, an existing path, a name with more than one ``/``, a leading
    ``.`` / ``~`` or a checkpoint file ending (``.pth``, ``.safetensors``...) is local.
    """
    if isinstance(name, Path) or not isinstance(name, str):
        return False
    return (bool(_REPO_ID.match(name)) and not name.lower().endswith(_FILE_SUFFIXES)
            and ".." not in name and not Path(name).exists())


def resolve_pretrained(name: str | Path, *, revision: str | None = None,
                       local_files_only: bool = False, cache_dir: str | Path | None = None,
                       token: str | bool | None = None, force_download: bool = False) -> Path:
    """The local path of a model: ``name`` itself, or a hub id's cached snapshot folder.

    Parameters
    ----------
    name : str | Path
        A local folder or file (returned as a Path, unchecked), or a hub id ``"org/name"``
        (:func:`is_hub_id`) whose :data:`HUB_FILES` are fetched with ``hf_hub_download``.
    revision : str | None
        Branch, tag or commit hash (default ``main``).
    local_files_only : bool
        Only read the cache (also implied by ``HF_HUB_OFFLINE=1``).
    cache_dir : path-like | None
        Hub cache folder (default: ``HF_HUB_CACHE``).
    token, force_download
        As for ``huggingface_hub.hf_hub_download``.

    Returns
    -------
    Path
        A folder holding ``config.json`` and ``model.safetensors`` for a hub id.

    Raises
    ------
    FileNotFoundError
        The model (or revision, or file) is neither cached nor downloadable: offline mode, no
        such repository, no such revision.
    """
    if not is_hub_id(name):
        return Path(name)
    hub = _hub()
    from huggingface_hub import errors

    from csbrain import __version__

    where = f"hub model {name!r} (revision {revision or 'main'})"
    paths = []
    for filename in HUB_FILES:
        try:
            paths.append(Path(hub.hf_hub_download(
                name, filename, revision=revision, cache_dir=cache_dir, token=token,
                local_files_only=local_files_only, force_download=force_download,
                library_name="csbrain", library_version=__version__)))
        except errors.LocalEntryNotFoundError:
            cache = cache_dir or hub.constants.HF_HUB_CACHE
            why = ("offline (HF_HUB_OFFLINE=1 or local_files_only=True)"
                   if local_files_only or hub.constants.is_offline_mode()
                   else "and the hub could not be reached")
            raise FileNotFoundError(f"{where}: {filename} is not in the hub cache {str(cache)!r}, "
                                    f"{why}; download it once online, or pass a local model "
                                    f"folder") from None
        except errors.RevisionNotFoundError:
            raise FileNotFoundError(f"{where}: the repository has no such revision") from None
        except errors.RepositoryNotFoundError:
            raise FileNotFoundError(f"{where}: no such repository on the hub (or it is private: "
                                    f"log in with `hf auth login`), and no local path "
                                    f"{name!r} exists") from None
        except errors.EntryNotFoundError:
            raise FileNotFoundError(f"{where} has no {filename}: not a csbrain model repository "
                                    f"(expected {' + '.join(HUB_FILES)})") from None
    logger.info("%s: %s", where, paths[0].parent)
    return paths[0].parent


def push_folder(folder: str | Path, repo_id: str, *, commit_message: str,
                private: bool | None = None, token: str | None = None,
                revision: str | None = None) -> str:
    """Upload a saved model folder to hub repository ``repo_id`` (created if missing).

    Returns
    -------
    str
        The URL of the commit.
    """
    hub = _hub()
    api = hub.HfApi(token=token, library_name="csbrain")
    repo = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
    info = api.upload_folder(repo_id=repo, folder_path=str(folder), commit_message=commit_message,
                             revision=revision)
    logger.info("pushed %s to %s", folder, repo)
    return str(getattr(info, "commit_url", info))
