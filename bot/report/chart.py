"""Two kinds of chart as PNG, drawn with Pillow: lines on unit axes, and a square heatmap.

All the plan needs for its pictures (``bot.report.plots``), in tens of milliseconds each,
without a plotting library (matplotlib's import took half a second, its drawing a quarter).
Everything is drawn at ``SCALE`` times the size and scaled down, each pixel the mean of
those it covers, which smooths the edges of lines and letters. Text uses Pillow's built-in
scalable font, so nothing depends on the fonts a machine has.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from bot.errors import BotError

#: The picture's size in pixels, and the plot area's edges as shares of it (left, top,
#: right, bottom).
SIZE = (500, 420)
BOX = (0.13, 0.08, 0.96, 0.88)
#: Drawn this many times larger, then scaled down (anti-aliasing).
SCALE = 3
TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
_INK, _FRAME, _GRID, _WHITE = "#222222", "#444444", "#ececec", "#ffffff"
#: ColorBrewer's "Blues", light to dark (what matplotlib's ``Blues`` is made from).
_BLUES = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5",
          "#08519c", "#08306b")
Style = Literal["solid", "dashed", "dotted"]
Corner = Literal["lower right", "lower left"]


@dataclass(frozen=True)
class Line:
    """A polyline in data units (both axes run from 0 to 1), and its legend entry."""

    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    label: str
    style: Style = "solid"


def line_chart(lines: Sequence[Line], *, title: str, xlabel: str, ylabel: str,
               legend: Corner, ylim: tuple[float, float] = (0.0, 1.01)) -> bytes:
    """PNG of ``lines`` on axes from 0 to 1 (``ylim`` on y), the first line drawn first."""
    canvas = _Canvas()
    axes = _Axes(canvas, (0.0, 1.0), ylim)
    axes.grid()
    for line in lines:
        axes.plot(line)
    axes.frame()
    axes.legend(lines, legend)
    canvas.titles(title, xlabel, ylabel)
    return canvas.png()


def heatmap(shares: Sequence[Sequence[float]], texts: Sequence[Sequence[str]],
            labels: Sequence[str], *, title: str, xlabel: str, ylabel: str) -> bytes:
    """PNG of a square grid: each cell coloured by its share (0 to 1, light to dark blue)
    with its text centred on it; ``labels`` name the columns (below) and rows (left)."""
    canvas = _Canvas()
    n = len(shares)
    left, top, right, bottom = canvas.box
    side = min(right - left, bottom - top)
    left += (right - left - side) // 2
    cell = side / n
    for row in range(n):
        for column in range(n):
            x0, y0 = left + column * cell, top + row * cell
            share = min(max(shares[row][column], 0.0), 1.0)
            canvas.draw.rectangle((x0, y0, x0 + cell, y0 + cell), fill=blues(share))
            lines = texts[row][column].split("\n")
            height = canvas.font(12).size * 1.2
            for i, text in enumerate(lines):
                canvas.draw.text(
                    (x0 + cell / 2, y0 + cell / 2 + (i - (len(lines) - 1) / 2) * height),
                    text, fill=_WHITE if share > 0.5 else "#000000", font=canvas.font(12),
                    anchor="mm")
    canvas.draw.rectangle((left, top, left + side, top + side), outline=_FRAME,
                          width=SCALE)
    for i, label in enumerate(labels):
        middle = left + (i + 0.5) * cell
        canvas.draw.text((middle, top + side + 6 * SCALE), label, fill=_INK,
                         font=canvas.font(10), anchor="mt")
        canvas.draw.text((left - 6 * SCALE, top + (i + 0.5) * cell), label, fill=_INK,
                         font=canvas.font(10), anchor="rm")
    canvas.titles(title, xlabel, ylabel, across=(left, left + side))
    return canvas.png()


def blues(share: float) -> str:
    """The colour of ``share`` (0 light, 1 dark) on the Blues scale, as ``#rrggbb``."""
    position = min(max(share, 0.0), 1.0) * (len(_BLUES) - 1)
    low = min(int(position), len(_BLUES) - 2)
    a, b = _rgb(_BLUES[low]), _rgb(_BLUES[low + 1])
    mix = position - low
    return "#" + "".join(f"{round(x + (y - x) * mix):02x}" for x, y in zip(a, b, strict=True))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


class _Canvas:
    """A white picture ``SCALE`` times ``SIZE``, with its plot area and fonts."""

    def __init__(self) -> None:
        width, height = SIZE[0] * SCALE, SIZE[1] * SCALE
        self.image: Image.Image = Image.new("RGB", (width, height), _WHITE)
        self.draw: ImageDraw.ImageDraw = ImageDraw.Draw(self.image)
        self.box = (round(BOX[0] * width), round(BOX[1] * height), round(BOX[2] * width),
                    round(BOX[3] * height))
        self._fonts: dict[int, ImageFont.FreeTypeFont] = {}

    def font(self, points: int) -> ImageFont.FreeTypeFont:
        """Pillow's scalable font at ``points`` (as at 100 dpi) of the final picture."""
        if points not in self._fonts:
            font = ImageFont.load_default(size=round(points * 100 / 72) * SCALE)
            if not isinstance(font, ImageFont.FreeTypeFont):
                raise BotError("this Pillow was built without FreeType: it cannot draw the "
                               "plan's pictures' text")
            self._fonts[points] = font
        return self._fonts[points]

    def titles(self, title: str, xlabel: str, ylabel: str,
               across: tuple[int, int] | None = None) -> None:
        """The title above the plot, the x label below it, the y label up its left side;
        ``across``: the plot's left and right edges, if narrower than the plot area."""
        left, top, right, bottom = self.box
        if across is not None:
            left, right = across
        middle = (left + right) / 2
        self.draw.text((middle, top - 8 * SCALE), title, fill=_INK, font=self.font(12),
                       anchor="md")
        self.draw.text((middle, self.image.height - 8 * SCALE), xlabel, fill=_INK,
                       font=self.font(10), anchor="md")
        font = self.font(10)
        width = round(self.draw.textlength(ylabel, font=font)) + 2 * SCALE
        height = 20 * SCALE
        label = Image.new("RGB", (width, height), _WHITE)
        ImageDraw.Draw(label).text((width / 2, height / 2), ylabel, fill=_INK, font=font,
                                   anchor="mm")
        rotated = label.rotate(90, expand=True)
        x = max(0, round(left - 38 * SCALE - rotated.width / 2))
        y = round((top + bottom) / 2 - rotated.height / 2)
        self.image.paste(rotated, (x, max(0, y)))

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.reduce(SCALE).save(out, format="PNG")
        return out.getvalue()


class _Axes:
    """The plot area of a canvas, mapping data units to its pixels."""

    def __init__(self, canvas: _Canvas, xlim: tuple[float, float],
                 ylim: tuple[float, float]) -> None:
        self.canvas, self.xlim, self.ylim = canvas, xlim, ylim

    def at(self, x: float, y: float) -> tuple[float, float]:
        """The pixel of data point (x, y) on the large canvas."""
        left, top, right, bottom = self.canvas.box
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        return (left + (x - x0) / (x1 - x0) * (right - left),
                bottom - (y - y0) / (y1 - y0) * (bottom - top))

    def grid(self) -> None:
        draw, font = self.canvas.draw, self.canvas.font(10)
        left, top, right, bottom = self.canvas.box
        for tick in TICKS:
            x, _ = self.at(tick, 0.0)
            _, y = self.at(0.0, tick)
            draw.line((x, top, x, bottom), fill=_GRID, width=SCALE)
            draw.line((left, y, right, y), fill=_GRID, width=SCALE)
            draw.line((x, bottom, x, bottom + 4 * SCALE), fill=_FRAME, width=SCALE)
            draw.line((left - 4 * SCALE, y, left, y), fill=_FRAME, width=SCALE)
            draw.text((x, bottom + 6 * SCALE), f"{tick:.1f}", fill=_INK, font=font,
                      anchor="mt")
            draw.text((left - 6 * SCALE, y), f"{tick:.1f}", fill=_INK, font=font, anchor="rm")

    def frame(self) -> None:
        self.canvas.draw.rectangle(self.canvas.box, outline=_FRAME, width=SCALE)

    def plot(self, line: Line) -> None:
        self._stroke([self.at(x, y) for x, y in zip(line.xs, line.ys, strict=True)], line)

    def _stroke(self, points: Sequence[tuple[float, float]], line: Line) -> None:
        """``points`` (pixels) in the line's colour and style."""
        if line.style == "solid":
            self.canvas.draw.line(points, fill=line.color, width=2 * SCALE, joint="curve")
            return
        on, off = (7, 4) if line.style == "dashed" else (1.5, 3)
        for piece in _dashes(points, on * SCALE, off * SCALE):
            self.canvas.draw.line(piece, fill=line.color, width=2 * SCALE)

    def legend(self, lines: Sequence[Line], corner: Corner) -> None:
        draw, font = self.canvas.draw, self.canvas.font(10)
        left, _, right, bottom = self.canvas.box
        pad, sample, row = 8 * SCALE, 24 * SCALE, 18 * SCALE
        width = pad * 3 + sample + max(round(draw.textlength(line.label, font=font))
                                       for line in lines)
        height = pad * 2 + row * len(lines)
        x0 = right - pad - width if corner == "lower right" else left + pad
        y0 = bottom - pad - height
        draw.rounded_rectangle((x0, y0, x0 + width, y0 + height), radius=3 * SCALE,
                               fill=_WHITE, outline="#cccccc", width=SCALE)
        for i, line in enumerate(lines):
            y = y0 + pad + row * (i + 0.5)
            self._stroke([(x0 + pad, y), (x0 + pad + sample, y)], line)
            draw.text((x0 + pad * 2 + sample, y), line.label, fill=_INK, font=font,
                      anchor="lm")


def _dashes(points: Sequence[tuple[float, float]], on: float,
            off: float) -> Iterator[list[tuple[float, float]]]:
    """The pieces of a polyline that a dash pattern (``on`` drawn, ``off`` not) keeps."""
    drawing, left = True, on
    piece = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        length = math.hypot(x1 - x0, y1 - y0)
        done = 0.0
        while length - done > left:
            done += left
            point = (x0 + (x1 - x0) * done / length, y0 + (y1 - y0) * done / length)
            if drawing:
                yield [*piece, point]
            piece = [point]
            drawing, left = not drawing, on if not drawing else off
        left -= length - done
        if drawing:
            piece.append((x1, y1))
    if drawing and len(piece) > 1:
        yield piece
