"""The environment variables deltaci/settings.py reads, with their types and defaults,
as the Markdown table in deploy/README.md. Read from the settings' source (no import),
so the table cannot drift from the code:

    python deploy/envdoc.py            # print the table
    python deploy/envdoc.py --write    # replace the table in deploy/README.md
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "deltaci" / "settings.py"
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- envdoc:begin -->", "<!-- envdoc:end -->"


def env_vars(source: str | None = None) -> list[tuple[str, str, str]]:
    """(name, type, default) for every env.<type>("NAME", default=…) call, in order."""
    tree = ast.parse(source if source is not None else SETTINGS.read_text())
    found: dict[str, tuple[str, str, str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_env = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
        if not (is_env and func.value.id == "env"):
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        default = next((ast.unparse(k.value) for k in node.keywords if k.arg == "default"), "")
        found.setdefault(first.value, (first.value, func.attr, default))
    return sorted(found.values(), key=lambda row: row[0])


def table() -> str:
    rows = ["| variable | type | default (deltaci/settings.py) |", "|---|---|---|"]
    for name, kind, default in env_vars():
        shown = "`" + default.replace("|", "\\|") + "`" if default else "—"
        rows.append(f"| `{name}` | {kind} | {shown} |")
    return "\n".join(rows)


def write() -> None:
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(table())
