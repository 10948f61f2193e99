"""`molspec push DIR [--repo NS/NAME] [--revision TAG] [--private] [--message M]`, and `molspec build --push`.

A thin shell over `molspec.publish.hub.push`: it picks the repo (the flag, else the spec's `output.hub`),
refreshes the dataset card so that it names that repo, warns about a spec with uncommitted changes, and
turns a `PushError` into one paragraph on stderr. The token is never read here: `push` resolves it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from molspec.records import Manifest

# Imports of the card, the plots and huggingface_hub stay inside the functions: every `molspec` command builds
# this module's parser, and `molspec check` (a pre-commit hook) should not pay for them.

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a `molspec build` output directory")
    parser.add_argument("--repo", metavar="NS/NAME", help="Hub dataset repo (default: the spec's output.hub)")
    parser.add_argument("--revision", metavar="TAG", help="tag for this build (default: spec-<sha8>)")
    parser.add_argument("--private", action="store_true", help="create the repo as private (refuse a public one)")
    parser.add_argument("--message", metavar="M", help="commit title (default: names the spec, sha256, git commit)")


def run(args: argparse.Namespace) -> int:
    return push_dir(Path(args.dir), repo=args.repo, revision=args.revision, private=args.private,
                    message=args.message)


def push_dir(out: Path, repo: str | None = None, revision: str | None = None, private: bool = False,
             message: str | None = None) -> int:
    """Push the build in `out`; prints the outcome and returns the exit code (0 ok, 1 failed, 2 usage)."""
    from molspec.publish.hub import push
    from molspec.records import read_manifest
    from molspec.structure.group import is_group

    out = Path(out)
    if is_group(out):
        return _push_group(out, repo, revision, private, message)
    manifest = read_manifest(out)  # ManifestError (MOL701) says what is missing and how to build it
    repo = repo or manifest.output.hub
    if not repo:
        print("error: no Hub repo to push to: pass --repo NS/NAME, or set `output { hub = \"NS/NAME\" }` in the "
              "spec and rebuild.", file=sys.stderr)
        return EXIT_USAGE
    private = private or manifest.output.private
    _warn_dirty(manifest)
    _refresh_card(out, repo)
    _quiet_hub()
    result = push(out, repo, revision=revision, private=private, message=message)  # PushError: MOL720
    print(result.summary())
    print(f"  browse   {result.url}")
    print(f'  load it  datasets.load_dataset("{result.repo}", revision="{result.tag}")')
    return EXIT_OK


def _push_group(out: Path, repo: str | None, revision: str | None, private: bool, message: str | None) -> int:
    """Push a variant build as one repo (a config per variant); prints how to load each."""
    from molspec.publish.card_group import render_group_card, write_group_card
    from molspec.publish.hub import push
    from molspec.structure.group import open_group

    group = open_group(out)  # MOL701 names a missing or damaged variant
    first = group.variants[0].manifest
    repo = repo or first.output.hub
    if not repo:
        print("error: no Hub repo to push to: pass --repo NS/NAME, or set `output { hub = \"NS/NAME\" }` in the "
              "spec and rebuild.", file=sys.stderr)
        return EXIT_USAGE
    _warn_dirty(first)
    _refresh(out, repo, lambda r: render_group_card(out, r), lambda: write_group_card(out, repo))
    _quiet_hub()
    result = push(out, repo, revision=revision, private=private or first.output.private, message=message)
    print(result.summary())
    print(f"  browse   {result.url}")
    for v in group.variants:
        print(f'  load it  datasets.load_dataset("{result.repo}", "{v.name}", revision="{result.tag}")')
    return EXIT_OK


def _warn_dirty(manifest: Manifest) -> None:
    spec = manifest.spec
    if spec.git_dirty:
        commit = (spec.git_commit or "?")[:12]
        print(f"warning: {spec.path} had uncommitted changes when it was built, so git commit "
              f"{commit} does not reproduce this dataset (the card says so; the exact spec files are pushed under "
              "spec/). Commit the spec and rebuild for a dataset that its commit reproduces.", file=sys.stderr)


def _refresh_card(out: Path, repo: str) -> None:
    """(Re)write the card and picture so the card names `repo`; a README edited by hand is left alone."""
    from molspec.publish.card import render_card, write_card

    _refresh(out, repo, lambda r: render_card(out, r), lambda: write_card(out, repo))


def _refresh(out: Path, repo: str, render: Callable[[str], str], write: Callable[[], object]) -> None:
    """Write the card anew for `repo` unless it is edited by hand (it differs from what molspec renders)."""
    from molspec.publish.card import README

    readme = out / README
    if readme.is_file():
        current = readme.read_text(encoding="utf-8")
        named = re.search(r'load_dataset\("([^"]+)"', current)  # the repo the card was rendered for
        if named and named[1] == repo and current == render(repo):
            return
        if not named or current != render(named[1]):
            print(f"note: {readme} was edited after the build; pushing it as it is.", file=sys.stderr)
            return
    write()


def _quiet_hub() -> None:
    from huggingface_hub.utils.tqdm import disable_progress_bars

    disable_progress_bars()
