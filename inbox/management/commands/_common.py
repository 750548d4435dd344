"""What the inbox commands share: a progress bar moved by each page of a folder walk."""

from __future__ import annotations

from tqdm import tqdm

from rediska.progress import progress_bar as _bar


def progress_bar(out, description: str) -> tqdm:
    return _bar(out, unit="msg", desc=description)


def page_counter(bar: tqdm):
    """An `on_page` callback moving the bar by the messages of each page."""
    seen: dict[str, int] = {}

    def on_page(result) -> None:
        bar.update(result.messages - seen.get(result.folder, 0))
        seen[result.folder] = result.messages
        bar.set_postfix(folder=result.folder, pages=result.pages, new=result.new, refresh=False)

    return on_page
