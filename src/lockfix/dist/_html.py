"""The HTML reader of :func:`lockfix.dist.simple.parse_simple_html`, in a module of its own
so that ``html.parser`` is imported only when an HTML page is read."""

from __future__ import annotations

from html.parser import HTMLParser


class AnchorParser(HTMLParser):
    """The ``<base>`` and the anchors of a PEP 503 page, with their attributes and text."""

    def __init__(self) -> None:
        # convert_charrefs: attribute values are unescaped by HTMLParser (&gt;= → >=).
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[tuple[dict[str, str | None], list[str]]] = []
        self._text: list[str] | None = None
        self.markup = False  # a tag or a <!DOCTYPE> was seen: the document is HTML at all

    def handle_decl(self, decl: str) -> None:
        self.markup = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.markup = True
        if tag == "base" and self.base is None:
            href = dict(attrs).get("href")
            if href:
                self.base = href
        elif tag == "a":
            self._text = []
            self.anchors.append((dict(attrs), self._text))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)
