"""Lab guides as rich renders them, except for tables: rich narrows a column under its longest
word and ends it in "…", which cuts paths and figures out of a guide."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.markdown import Markdown, MarkdownElement, TableElement
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text


class _WholeTable(TableElement):
    """A Markdown table that never cuts a word: columns at least as wide as their longest word, and
    one block per row when the columns cannot fit the width that way."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update_width(10_000)
        for table in super().__rich_console__(console, options):
            if not isinstance(table, Table):
                yield table
                continue
            least = Measurement.get(console, unbounded, table).minimum
            if least > options.max_width:
                yield self._records()
                continue
            self._fit(console, unbounded, table, options.max_width - least)
            yield table

    def _columns(self) -> list[list[Text]]:
        rows = [self.header.row] if self.header and self.header.row else []
        rows += self.body.rows if self.body else []
        return [list(column) for column in zip(*([cell.content for cell in row.cells] for row in rows), strict=False)]

    def _fit(self, console: Console, unbounded: ConsoleOptions, table: Table, slack: int) -> None:
        # rich narrows the widest column first, under its longest word (a path ends in "…"): fix each
        # column's width at its longest word plus a share of the slack in proportion to what it wants.
        ranges = [[Measurement.get(console, unbounded, text) for text in column] for column in self._columns()]
        least = [max(m.minimum for m in column) for column in ranges]
        wants = [max(m.maximum for m in column) - low for column, low in zip(ranges, least, strict=True)]
        for column, low, want in zip(table.columns, least, wants, strict=False):
            column.width = max(1, low + min(want, slack * want // max(1, sum(wants))))

    def _records(self) -> Group:
        headings = [cell.content for cell in self.header.row.cells] if self.header and self.header.row else []
        lines: list[Text | Padding] = []
        for row in self.body.rows if self.body else []:
            first, *rest = [cell.content for cell in row.cells]
            lines.append(Text.assemble("• ", first.copy()))
            lines += [Padding(Text.assemble((heading.plain, "bold"), ": ", value.copy()), (0, 0, 0, 2))
                      for heading, value in zip(headings[1:], rest, strict=False)]
        return Group(*lines)


class GuideMarkdown(Markdown):
    """rich's Markdown with tables that keep every word whole."""

    elements: ClassVar[dict[str, type[MarkdownElement]]] = {**Markdown.elements, "table_open": _WholeTable}
