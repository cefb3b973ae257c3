"""The jobs' `needs` drawn as a graph: one column per stage (depth in the DAG), one box
per job, a curve from each need to its dependent. Laid out here in SVG units; the SVG
scales down to the page's width, so every job stays visible without horizontal scrolling.
On a phone the page shows the vertical list by stage instead (CSS)."""

from dataclasses import dataclass, field
from typing import Any

NODE_W, NODE_H = 200, 40
GAP_X, GAP_Y = 56, 12
PAD = 4
MAX_LABEL = 24


@dataclass
class Node:
    view: Any  # a detail.JobView (imported by detail: no import back)
    x: int
    y: int

    @property
    def label(self) -> str:
        name = self.view.job.name
        return name if len(name) <= MAX_LABEL else name[: MAX_LABEL - 1] + "…"


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[str] = field(default_factory=list)  # SVG path data, numbers only
    width: int = 0
    height: int = 0


def _order(stages: list[list]) -> list[list]:
    """Each stage sorted by the mean row of its needs (fewer crossing curves)."""
    row: dict[str, int] = {}
    ordered = []
    for depth, stage in enumerate(stages):
        if depth:

            def key(view, _row=row):
                rows = [_row[n] for n in view.job.needs if n in _row]
                return (sum(rows) / len(rows) if rows else 0, view.job.position)

            stage = sorted(stage, key=key)
        for i, view in enumerate(stage):
            row[view.job.name] = i
        ordered.append(stage)
    return ordered


def layout(stages: list[list]) -> Graph:
    graph = Graph()
    at: dict[str, Node] = {}
    for depth, stage in enumerate(_order(stages)):
        for i, view in enumerate(stage):
            node = Node(view=view, x=PAD + depth * (NODE_W + GAP_X), y=PAD + i * (NODE_H + GAP_Y))
            at[view.job.name] = node
            graph.nodes.append(node)
    for node in graph.nodes:
        for need in node.view.job.needs:
            src = at.get(need)
            if src is None or src is node:
                continue
            x1, y1 = src.x + NODE_W, src.y + NODE_H // 2
            x2, y2 = node.x, node.y + NODE_H // 2
            bend = GAP_X // 2
            graph.edges.append(f"M{x1} {y1} C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}")
    if graph.nodes:
        graph.width = max(n.x for n in graph.nodes) + NODE_W + PAD
        graph.height = max(n.y for n in graph.nodes) + NODE_H + PAD
    return graph
