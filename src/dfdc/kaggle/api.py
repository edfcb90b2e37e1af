"""The Kaggle round trip: fetch competition data, publish the kernel's datasets, push the kernel,
submit a kernel version to a code competition.

These wrap the official client (``kaggle.api.KaggleApi``) rather than re-implement its uploads.
What they add: credentials are checked before the client is built (the client itself calls
``exit(1)`` when it finds none), every failure becomes :class:`KaggleError` with one line that
never carries the key, datasets are created or versioned as needed with sub-folders zipped
(the client skips sub-folders by default, which would drop every checkpoint), and a push is
refused when the metadata would give the kernel internet access (offline is what code
competitions require).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dfdc.core.errors import UserError

log = logging.getLogger(__name__)

__all__ = [
    "CredentialsError",
    "KaggleError",
    "Published",
    "download_competition",
    "kaggle_credentials",
    "publish_dataset",
    "push_kernel",
    "submit_kernel",
]

T = TypeVar("T")


class CredentialsError(UserError, RuntimeError):
    """No Kaggle credentials; the message says how to set them."""


class KaggleError(UserError, RuntimeError):
    """A Kaggle API call failed; the message is one line (never the credentials)."""


@dataclass(frozen=True)
class Published:
    """What Kaggle answered: the ref, the page, the version (kernels) and what was done."""

    ref: str
    url: str
    action: str
    version: int | None = None


def _config_dir() -> Path:
    """The client's rule: KAGGLE_CONFIG_DIR, else ~/.kaggle if it exists, else XDG on Linux."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    home = Path.home() / ".kaggle"
    if home.exists() or not sys.platform.startswith("linux"):
        return home
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "kaggle"


def kaggle_credentials() -> str:
    """Where the Kaggle credentials come from (never their value); raise if there are none."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY"
    config_dir = _config_dir()
    for name in ("kaggle.json", "access_token"):
        path = config_dir / name
        if path.exists():
            if path.stat().st_mode & 0o077:
                log.warning("%s is readable by other users; run: chmod 600 %s", path, path)
            return str(path)
    raise CredentialsError(
        "no Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN), or save "
        f"kaggle.json from kaggle.com/settings to {Path.home() / '.kaggle'}/kaggle.json "
        "(chmod 600)"
    )


def _secrets() -> list[str]:
    values = [os.environ.get("KAGGLE_KEY", ""), os.environ.get("KAGGLE_API_TOKEN", "")]
    return [v for v in values if len(v) >= 4]


def _one_line(what: str, exc: BaseException) -> KaggleError:
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    for secret in _secrets():
        message = message.replace(secret, "***")
    return KaggleError(f"{what}: {message}")


def _api() -> Any:
    """An authenticated client; credentials are checked first so a missing one is one line."""
    kaggle_credentials()
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    # The client fixes its config folder when it is first imported; use today's environment.
    config_dir = _config_dir()
    api.config_dir, api.config = str(config_dir), str(config_dir / "kaggle.json")
    # With KAGGLE_API_TOKEN the client checks the token with Kaggle's server here: offline,
    # that is a connection error to report in one line like any other call's.
    _call("Kaggle sign-in failed", api.authenticate)
    return api


def _call(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    import requests

    try:
        return fn(*args, **kwargs)
    except (requests.exceptions.RequestException, ValueError, OSError) as exc:
        raise _one_line(what, exc) from None


def _not_found(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    return response is not None and response.status_code == 404


def download_competition(competition: str, out_dir: str | Path) -> Path:
    """Download a competition's files and unpack them into ``out_dir``, which appears whole or
    not at all (the archive is unpacked beside it first)."""
    out_dir = Path(out_dir)
    api = _api()
    tmp = out_dir.with_name(out_dir.name + ".download")
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        _call(
            f"Kaggle download of '{competition}' failed",
            api.competition_download_files,
            competition,
            path=str(tmp),
            quiet=False,
        )
    except KaggleError:
        if not any(tmp.iterdir()):  # nothing fetched to resume from: leave no empty folder
            tmp.rmdir()
        raise
    archive = tmp / f"{competition}.zip"
    if not archive.exists():
        raise KaggleError(f"{archive}: the Kaggle download did not produce the archive")
    staged = tmp / "unzipped"
    if staged.exists():
        shutil.rmtree(staged)
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staged)
    except zipfile.BadZipFile:
        raise KaggleError(f"{archive}: not a zip archive (download cut short?)") from None
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staged.rename(out_dir)
    shutil.rmtree(tmp)
    return out_dir


def _metadata(folder: Path, name: str) -> dict:
    path = folder / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; run `dvc repro package` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise KaggleError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _check_owner(ref: str, path: Path) -> None:
    if ref.startswith("your-kaggle-username/"):
        raise KaggleError(
            f"{path}: id is '{ref}'; set package.owner in params.yaml to your Kaggle user name "
            "and rerun `dvc repro package`"
        )


def publish_dataset(folder: str | Path, notes: str = "", public: bool = False) -> Published:
    """Create the dataset in ``folder`` if Kaggle does not have it yet, else add a version.
    Sub-folders (the models' run/fold tree) are uploaded as zips, which Kaggle unpacks."""
    folder = Path(folder)
    meta = _metadata(folder, "dataset-metadata.json")
    ref = str(meta.get("id", ""))
    _check_owner(ref, folder / "dataset-metadata.json")
    api = _api()
    try:
        api.dataset_status(ref)
        exists = True
    except Exception as exc:  # the client raises requests' HTTPError; 404 means "new"
        if not _not_found(exc):
            raise _one_line(f"Kaggle dataset {ref}: status check failed", exc) from None
        exists = False
    if exists:
        what = f"Kaggle dataset {ref}: new version failed"
        response = _call(
            what,
            api.dataset_create_version,
            str(folder),
            notes or "dfdc-workspace release",
            quiet=True,
            dir_mode="zip",
        )
    else:
        what = f"Kaggle dataset {ref}: create failed"
        response = _call(
            what, api.dataset_create_new, str(folder), public=public, quiet=True, dir_mode="zip"
        )
    if getattr(response, "error", None):
        raise KaggleError(f"{what}: {response.error}")
    action = "versioned" if exists else "created"
    log.info("Kaggle dataset %s %s: %s", ref, action, response.url)
    return Published(ref=ref, url=response.url or "", action=action)


def push_kernel(folder: str | Path) -> Published:
    """Push the kernel in ``folder`` (a new version each time). Refuses internet access and
    reports sources Kaggle could not resolve, which would otherwise fail only at run time."""
    folder = Path(folder)
    meta_path = folder / "kernel-metadata.json"
    meta = _metadata(folder, "kernel-metadata.json")
    _check_owner(str(meta.get("id", "")), meta_path)
    if meta.get("enable_internet", True) is not False:
        raise KaggleError(
            f"{meta_path}: enable_internet is not false (the client's default is true); code "
            "competitions run offline"
        )
    api = _api()
    response = _call(
        f"Kaggle kernel push of {meta.get('id')} failed", api.kernels_push, str(folder)
    )
    problems = [
        f"{label}: {', '.join(values)}"
        for label, values in (
            ("error", [response.error] if response.error else []),
            ("unknown datasets", response.invalid_dataset_sources or []),
            ("unknown competitions", response.invalid_competition_sources or []),
            ("unknown kernels", response.invalid_kernel_sources or []),
        )
        if values
    ]
    if problems:
        raise KaggleError(f"Kaggle kernel push of {meta.get('id')}: {'; '.join(problems)}")
    log.info("Kaggle kernel %s version %s: %s", meta["id"], response.version_number, response.url)
    return Published(
        ref=str(meta["id"]),
        url=response.url or "",
        action="pushed",
        version=response.version_number,
    )


def submit_kernel(
    kernel: str,
    version: int | None,
    competition: str,
    message: str = "",
    file_name: str = "submission.csv",
) -> str:
    """Submit the output file of a pushed kernel version to a code competition."""
    if kernel.count("/") != 1:
        raise KaggleError(f"kernel '{kernel}': expected <owner>/<kernel-slug>")
    api = _api()
    response = _call(
        f"Kaggle submission of {kernel} to '{competition}' failed",
        api.competition_submit_code,
        file_name,
        message,
        competition=competition,
        kernel=kernel,
        kernel_version=version,
        quiet=True,
    )
    log.info("Kaggle submission of %s v%s: %s", kernel, version, response.message)
    return response.message or ""
