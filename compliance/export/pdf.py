# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""PDF reports (reportlab platypus) in Traditional Chinese and English: same input, same bytes."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Drawing, Group
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as PdfTable

from compliance.export.tables import (
    DATETIME_FORMAT,
    STATUS_FILL,
    STATUS_ZH,
    Table,
    cell_text,
    column_width,
    local_time,
)

FONT_PATH = Path("/usr/share/fonts/truetype/arphic/uming.ttc")
FONT_FACE = "AR PL UMing TW"  # the collection also holds CN, HK and TW MBE faces; TW has Taiwan's glyphs
FONT_PACKAGE = "fonts-arphic-uming"
FONT_NAME = "UMingTW"
_FONT_FACE_HINT = 2  # where Debian's uming.ttc keeps the TW face; looked up by name if that changes

# A cell taller than a page stops platypus (LayoutError); the XLSX and CSV keep the full text.
PDF_CELL_MAX = 1500
MARGIN = 18 * mm
CELL_PAD_X = 3  # left and right padding of a table cell, points
CELL_PAD_Y = 2  # top and bottom
ZEBRA = colors.HexColor("#f2f4f7")
HEADER_FILL = colors.HexColor("#dde4ee")
GRID = colors.HexColor("#9aa5b1")


class FontMissingError(RuntimeError):
    """The embedded Traditional Chinese font is not installed."""


def cjk_font(path: Path = FONT_PATH) -> str:
    """Register the Traditional Chinese TrueType face once; its reportlab font name."""
    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return FONT_NAME
    font = tw_face(path)
    pdfmetrics.registerFont(font)
    # One face for every style, so <b> or <i> in a paragraph never asks for a font that does not exist.
    pdfmetrics.registerFontFamily(
        FONT_NAME, normal=FONT_NAME, bold=FONT_NAME, italic=FONT_NAME, boldItalic=FONT_NAME
    )
    return FONT_NAME


def tw_face(path: Path = FONT_PATH) -> TTFont:
    """The 'AR PL UMing TW' face in the collection at `path`; FontMissingError says what to install."""
    if not path.is_file():
        raise FontMissingError(
            f"Traditional Chinese font {path} not found: install the Debian package {FONT_PACKAGE} "
            f"(apt-get install {FONT_PACKAGE})"
        )
    order = [_FONT_FACE_HINT, *(i for i in range(16) if i != _FONT_FACE_HINT)]
    for index in order:
        try:
            font = TTFont(FONT_NAME, str(path), subfontIndex=index)
        except TTFError:  # past the last face of the collection
            continue
        if font.face.familyName == FONT_FACE.encode():
            return font
    raise FontMissingError(f"{path} has no face {FONT_FACE!r}: reinstall the Debian package {FONT_PACKAGE}")


def _styles(font: str) -> dict[str, ParagraphStyle]:
    # wordWrap CJK breaks between any two Chinese characters and inside over-long tokens (hashes, paths),
    # while English words stay whole where a space allows.
    base = ParagraphStyle("body", fontName=font, fontSize=10, leading=14, wordWrap="CJK", spaceAfter=4)
    return {
        "body": base,
        "title_zh": ParagraphStyle(
            "title_zh", base, fontSize=24, leading=32, alignment=TA_CENTER, spaceAfter=8
        ),
        "title_en": ParagraphStyle(
            "title_en", base, fontSize=16, leading=22, alignment=TA_CENTER, spaceAfter=24
        ),
        "h1": ParagraphStyle(
            "h1", base, fontSize=16, leading=22, spaceBefore=10, spaceAfter=6, keepWithNext=1
        ),
        "h2": ParagraphStyle(
            "h2", base, fontSize=13, leading=18, spaceBefore=8, spaceAfter=4, keepWithNext=1
        ),
        "h3": ParagraphStyle(
            "h3", base, fontSize=11, leading=15, spaceBefore=6, spaceAfter=3, keepWithNext=1
        ),
        "caption": ParagraphStyle(
            "caption", base, fontSize=10, leading=14, spaceBefore=6, spaceAfter=3, keepWithNext=1
        ),
        "cell": ParagraphStyle("cell", base, fontSize=8, leading=10, spaceAfter=0),
        "head": ParagraphStyle("head", base, fontSize=8, leading=10, spaceAfter=0),
    }


def _para_text(text: str) -> str:
    return escape(text).replace("\r\n", "\n").replace("\n", "<br/>")


class _Heading(Paragraph):  # type: ignore[misc]  # reportlab is untyped
    """A heading paragraph that also becomes an entry of the PDF outline."""

    def __init__(self, text: str, style: ParagraphStyle, outline: str, level: int) -> None:
        super().__init__(text, style)
        self.outline = outline
        self.outline_level = level


class _CellParagraph(Paragraph):  # type: ignore[misc]  # reportlab is untyped
    """A table cell's Paragraph that breaks its lines once per width, not at every wrap call."""

    # A long table is wrapped again at each page split (the table, then both parts), and each wrap breaks
    # every cell's lines anew: character by character for CJK. A cell's width does not change, so the
    # lines of the first wrap at that width are kept. A cell is never split itself (rows are), so
    # nothing else changes the lines in between.
    _wrapped_width: float | None = None

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:  # reportlab's names
        if availWidth == self._wrapped_width:
            return self.width, self.height
        size: tuple[float, float] = super().wrap(availWidth, availHeight)
        self._wrapped_width = availWidth
        return size


class _Doc(BaseDocTemplate):  # type: ignore[misc]  # reportlab is untyped
    _outline_level = -1

    def afterFlowable(self, flowable: Flowable) -> None:  # reportlab's hook name
        if isinstance(flowable, _Heading):
            key = f"h{self.seq.nextf('outline')}"  # a counter, not id(): the same input, the same bytes
            # An outline may go down one level at a time only: an h3 straight after an h1 sits at level 2.
            level = min(flowable.outline_level - 1, self._outline_level + 1)
            self._outline_level = level
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(flowable.outline, key, level=level, closed=False)


class _NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab is untyped
    """A canvas that holds its pages until the end, so each footer can say how many there are."""

    def __init__(self, *args: Any, footer_left: str = "", font: str = FONT_NAME, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer_left = footer_left
        self._footer_font = font
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._footer(total)
            super().showPage()
        super().save()

    def _footer(self, total: int) -> None:
        width, _ = self._pagesize
        n = self._pageNumber
        self.saveState()
        self.setStrokeColor(GRID)
        self.setLineWidth(0.5)
        self.line(MARGIN, 12 * mm, width - MARGIN, 12 * mm)
        self.setFont(self._footer_font, 8)
        self.setFillColor(colors.HexColor("#444444"))
        self.drawString(MARGIN, 8 * mm, self._footer_left)
        self.drawRightString(width - MARGIN, 8 * mm, f"第 {n} 頁，共 {total} 頁 / page {n} of {total}")
        self.restoreState()


class PdfReport:
    """A bilingual report: a title page, then headings, paragraphs, tables, charts, sign-off in call order."""

    def __init__(
        self,
        title_zh: str,
        title_en: str,
        *,
        site: str,
        period: str,
        generated_at: datetime,
        tz: tzinfo,
        details: Sequence[tuple[str, str]] = (),
        pagesize: tuple[float, float] = A4,
    ) -> None:
        self.font = cjk_font()
        self.title_zh = title_zh
        self.title_en = title_en
        self.site = site
        self.tz = tz
        self.pagesize = pagesize
        self.styles = _styles(self.font)
        # Steps make fresh flowables at every build: platypus splits and mutates the ones it lays out.
        self._steps: list[Callable[[], list[Flowable]]] = []
        local = local_time(generated_at, tz)
        zone = getattr(tz, "key", None) or local.tzname() or ""
        cover = [
            ("場域 Site", site),
            ("期間 Period", period),
            ("產製時間 Generated at", f"{local.strftime(DATETIME_FORMAT)} ({zone})"),
            *details,
        ]
        self._steps.append(lambda: self._title_page(cover))

    @property
    def frame_width(self) -> float:
        """Width in points available to a table or a chart."""
        return float(self.pagesize[0] - 2 * MARGIN)

    def heading(self, zh: str, en: str = "", level: int = 1) -> None:
        """A section heading (levels 1-3), Chinese then English; it is also an outline entry."""
        if level not in (1, 2, 3):
            raise ValueError(f"heading level {level}: use 1, 2 or 3")
        style = self.styles[f"h{level}"]
        text = _para_text(zh) + (
            f"　<font size={style.fontSize * 0.8:g}>{_para_text(en)}</font>" if en else ""
        )
        outline = f"{zh} {en}".strip()
        self._steps.append(lambda: [_Heading(text, style, outline, level)])

    def paragraph(self, text: str) -> None:
        """A paragraph of plain text, Chinese or English (no markup: <, > and & are printed as such)."""
        self._steps.append(lambda: [Paragraph(_para_text(text), self.styles["body"])])

    def table(self, table: Table, *, caption: bool = True) -> None:
        """A table: wrapping cells, the header repeated on each page, zebra rows, coloured status cells."""
        self._steps.append(lambda: self._table(table, caption))

    def drawing(self, drawing: Drawing) -> None:
        """A chart from compliance.export.charts (or any reportlab drawing), shrunk to the frame if wider."""
        self._steps.append(lambda: [self._fit(drawing)])

    def image(self, path: str | Path, width: float | None = None) -> None:
        """A raster image, `width` points wide (the frame width at most), aspect ratio kept."""
        path = Path(path)

        def step() -> list[Flowable]:
            iw, ih = ImageReader(str(path)).getSize()
            w = min(width or iw, self.frame_width)
            return [Image(str(path), width=w, height=w * ih / iw)]

        self._steps.append(step)

    def spacer(self, height: float = 6 * mm) -> None:
        """Vertical space."""
        self._steps.append(lambda: [Spacer(1, height)])

    def page_break(self) -> None:
        """Start a new page."""
        self._steps.append(lambda: [PageBreak()])

    def sign_off(self, prepared_by: str = "", reviewed_by: str = "", approved_by: str = "") -> None:
        """The sign-off block: prepared, reviewed, approved by, each with name, date and signature lines."""
        self._steps.append(lambda: [self._sign_off([prepared_by, reviewed_by, approved_by])])

    def to_bytes(self) -> bytes:
        """The PDF bytes, the same for the same calls (reportlab's invariant mode: no clock, no random ID)."""
        buf = io.BytesIO()
        doc = _Doc(
            buf,
            pagesize=self.pagesize,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN,
            title=f"{self.title_zh} {self.title_en}",
            author="roomguard",
            subject=self.site,
            creator="roomguard",
            invariant=1,
        )
        frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
        doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
        story = [flowable for step in self._steps for flowable in step()]
        footer_left = f"{self.site} · {self.title_zh} {self.title_en}"

        def canvasmaker(*args: Any, **kwargs: Any) -> _NumberedCanvas:
            return _NumberedCanvas(*args, footer_left=footer_left, font=self.font, **kwargs)

        doc.build(story, canvasmaker=canvasmaker)
        return buf.getvalue()

    def build(self, path: str | Path) -> Path:
        """Write the PDF to `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.to_bytes())
        return path

    def _title_page(self, cover: list[tuple[str, str]]) -> list[Flowable]:
        s = self.styles
        rows = [[Paragraph(_para_text(k), s["body"]), Paragraph(_para_text(v), s["body"])] for k, v in cover]
        info = PdfTable(rows, colWidths=[self.frame_width * 0.35, self.frame_width * 0.65])
        info.setStyle(
            TableStyle(
                [
                    ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return [
            Spacer(1, 60 * mm),
            Paragraph(_para_text(self.title_zh), s["title_zh"]),
            Paragraph(_para_text(self.title_en), s["title_en"]),
            info,
            PageBreak(),
        ]

    def _table(self, table: Table, caption: bool) -> list[Flowable]:
        s = self.styles
        texts = [[_clip(cell_text(v, self.tz)) for v in table.cells(row)] for row in table.rows]
        header = [Paragraph(f"{_para_text(c.zh)}<br/>{_para_text(c.en)}", s["head"]) for c in table.columns]
        status_cells = [
            (c, r, t) for r, row in enumerate(texts, 1) for c, t in enumerate(row) if t in STATUS_FILL
        ]
        for c, r, t in status_cells:
            texts[r - 1][c] = f"{t} {STATUS_ZH[t]}"
        # Columns share the frame in proportion to their widest text (as shown), so a status never wraps.
        weights = [
            column_width(col, [row[i] for row in texts], cap=40) for i, col in enumerate(table.columns)
        ]
        widths = [self.frame_width * w / sum(weights) for w in weights]
        body = self._body(texts, [w - 2 * CELL_PAD_X for w in widths])

        style: list[tuple[Any, ...]] = [
            ("FONTNAME", (0, 0), (-1, -1), self.font),
            ("GRID", (0, 0), (-1, -1), 0.25, GRID),
            ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), CELL_PAD_Y),
            ("BOTTOMPADDING", (0, 0), (-1, -1), CELL_PAD_Y),
            ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD_X),
            ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD_X),
        ]
        if body:
            cell = s["cell"]
            # Plain-string cells take the font size and leading of the Paragraph style: the same look, the
            # same row height, and (VALIGN TOP) the same baseline, top padding + font size down.
            style.append(("FONTSIZE", (0, 1), (-1, -1), cell.fontSize))
            style.append(("LEADING", (0, 1), (-1, -1), cell.leading))
            style.append(("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]))
            # After the zebra rows, so a status colour wins over the stripe.
            style += [
                ("BACKGROUND", (c, r), (c, r), colors.HexColor(STATUS_FILL[v])) for c, r, v in status_cells
            ]
        else:
            body = [[Paragraph("無資料 / no rows", s["cell"])] + [""] * (len(table.columns) - 1)]
            style.append(("SPAN", (0, 1), (-1, 1)))
        grid = PdfTable([header, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
        grid.setStyle(TableStyle(style))
        out: list[Flowable] = []
        if caption:
            out.append(Paragraph(f"{_para_text(table.title_zh)}　{_para_text(table.title_en)}", s["caption"]))
        out.append(grid)
        return out

    def _body(self, texts: list[list[str]], room: list[float]) -> list[list[Any]]:
        """Table cells: a plain string where the text fits on one line of its column, else a Paragraph."""
        style = self.styles["cell"]
        font, size = style.fontName, style.fontSize
        widths: dict[str, float] = {}  # texts repeat (dates, flags, statuses): each is measured once
        # One Paragraph for the same text at the same width, however many cells show it (a holder type,
        # an action): the table only wraps and draws a cell's flowable, so cells can share it, and its
        # lines are broken once.
        paragraphs: dict[tuple[str, float], _CellParagraph] = {}

        def paragraph(text: str, room: float) -> _CellParagraph:
            shared = paragraphs.get((text, room))
            if shared is None:
                shared = paragraphs[text, room] = _CellParagraph(_para_text(text), style)
            return shared

        def cell(text: str, room: float) -> Any:
            if not _plain_ok(text):
                return paragraph(text, room)
            width = widths.get(text)
            if width is None:
                width = widths[text] = pdfmetrics.stringWidth(text, font, size)
            return text if width <= room else paragraph(text, room)

        body: list[list[Any]] = []
        for row in texts:
            if any(row):
                body.append([cell(t, r) for t, r in zip(row, room, strict=True)])
            else:
                # An empty Paragraph is 0 high, an empty string one line: a row of nothing keeps its height.
                body.append([Paragraph("", style) for _ in row])
        return body

    def _fit(self, drawing: Drawing) -> Drawing:
        if drawing.width <= self.frame_width:
            return drawing
        k = self.frame_width / drawing.width
        fitted = Drawing(drawing.width * k, drawing.height * k)
        # The caller's drawing is left as it was: its shapes are shared, scaled by the enclosing group.
        fitted.add(Group(*drawing.contents, transform=(k, 0, 0, k, 0, 0)))
        return fitted

    def _sign_off(self, names: list[str]) -> Flowable:
        s = self.styles
        roles = ["製表 Prepared by", "覆核 Reviewed by", "核准 Approved by"]
        header = ["", "姓名 Name", "日期 Date", "簽名 Signature"]
        w = self.frame_width
        widths = [w * 0.22, w * 0.26, w * 0.2, w * 0.32]
        pad = 6

        def line(c: int, text: str = "") -> list[Flowable]:
            # A line of its own in each cell, shorter than the cell: separate lines, not one long rule.
            return [Paragraph(_para_text(text), s["body"]), _WriteLine(widths[c] - 2 * pad)]

        rows: list[list[Any]] = [[Paragraph(h, s["head"]) for h in header]]
        rows += [
            [Paragraph(role, s["body"]), line(1, name), line(2), line(3)]
            for role, name in zip(roles, names, strict=True)
        ]
        grid = PdfTable(rows, colWidths=widths, rowHeights=[None, 36, 36, 36])
        grid.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), self.font),
                    ("VALIGN", (0, 1), (-1, -1), "BOTTOM"),
                    ("LEFTPADDING", (0, 0), (-1, -1), pad),
                    ("RIGHTPADDING", (0, 0), (-1, -1), pad),
                ]
            )
        )
        title = Paragraph("簽核　<font size=10>Sign-off</font>", s["h2"])
        return KeepTogether([title, grid])


class _WriteLine(Flowable):  # type: ignore[misc]  # reportlab is untyped
    """A horizontal line to write a name, a date or a signature on."""

    def __init__(self, width: float) -> None:
        super().__init__()
        self.width = width
        self.height = 1.0

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        self.canv.setLineWidth(0.75)
        self.canv.line(0, 0, self.width, 0)


def _plain_ok(text: str) -> bool:
    """Whether a Paragraph would show `text` unchanged on a line: no line break, no run of spaces."""
    # A Paragraph joins lines, drops leading and trailing white space and collapses runs of it; a plain
    # string is drawn as it is. Text like that keeps its Paragraph, so both ways look the same.
    return text == " ".join(text.split())


def _clip(text: str) -> str:
    if len(text) <= PDF_CELL_MAX:
        return text
    return text[:PDF_CELL_MAX] + " …（全文見 XLSX/CSV；full text in the XLSX/CSV）"
