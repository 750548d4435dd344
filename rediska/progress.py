"""Progress bars for management commands, drawn on the command's own stdout."""

from __future__ import annotations

from tqdm import tqdm


class _Unterminated:
    """The command's stdout without the newline Django adds to every write (tqdm redraws with \\r)."""

    def __init__(self, out):
        self._out = out

    def write(self, text: str) -> None:
        self._out.write(text, ending="")

    def flush(self) -> None:
        self._out.flush()


def progress_bar(out, iterable=None, **options) -> tqdm:
    """A tqdm bar on `out` (a command's `self.stdout`); options as tqdm's."""
    return tqdm(iterable, file=_Unterminated(out), dynamic_ncols=True, **options)
