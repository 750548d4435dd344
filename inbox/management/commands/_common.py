"""What the inbox commands share: finding the identity, a progress bar on the command's stdout."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db.models import Q
from tqdm import tqdm

from identities.models import Identity


def find_identity(name: str) -> Identity:
    found = list(Identity.objects.filter(Q(external_username__iexact=name) | Q(display_name__iexact=name))[:2])
    if not found:
        raise CommandError(f"No identity is called {name!r}.")
    if len(found) > 1:
        raise CommandError(f"Several identities match {name!r}: use the username.")
    if not found[0].is_active:
        raise CommandError(f"{found[0].display_name} is deactivated: reconnect it first.")
    return found[0]


class _Unterminated:
    """The command's stdout without the newline Django adds to every write (tqdm redraws with \\r)."""

    def __init__(self, out):
        self._out = out

    def write(self, text: str) -> None:
        self._out.write(text, ending="")

    def flush(self) -> None:
        self._out.flush()


def progress_bar(out, description: str) -> tqdm:
    return tqdm(unit="msg", desc=description, file=_Unterminated(out), dynamic_ncols=True)


def page_counter(bar: tqdm):
    """An `on_page` callback moving the bar by the messages of each page."""
    seen: dict[str, int] = {}

    def on_page(result) -> None:
        bar.update(result.messages - seen.get(result.folder, 0))
        seen[result.folder] = result.messages
        bar.set_postfix(folder=result.folder, pages=result.pages, new=result.new, refresh=False)

    return on_page
