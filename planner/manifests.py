"""Parsers for untrusted manifest bytes: every failure becomes one ``ManifestError``
with a short, line-numbered message, never a crash or an unbounded expansion.

Sizes are bounded before parsing (the blob reader does not keep oversize content),
XML goes through defusedxml (no entities, no DTDs), YAML through a loader that
refuses aliases and duplicate keys, and deep nesting is caught.
"""

import configparser
import json
import tomllib
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import yaml
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as xml_fromstring

MAX_MANIFEST_BYTES = 1024 * 1024


class ManifestError(Exception):
    """A manifest could not be read; the message says why, for the plan's reason."""


def decode_text(content: bytes | None) -> str:
    if content is None:
        raise ManifestError(f"larger than {MAX_MANIFEST_BYTES // 1024} KiB")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 (byte {exc.start})") from exc


def load_json(content: bytes | None) -> Any:
    text = decode_text(content)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except RecursionError as exc:
        raise ManifestError("JSON nested too deeply") from exc


def load_toml(content: bytes | None) -> dict[str, Any]:
    text = decode_text(content)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ManifestError("TOML nested too deeply") from exc


def load_xml(content: bytes | None) -> Element:
    """The root element with namespaces stripped from every tag (Maven, MSBuild)."""
    decode_text(content)  # size and encoding checks
    assert content is not None
    try:
        root = xml_fromstring(content, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ManifestError(f"refused XML: {type(exc).__name__}") from exc
    except ParseError as exc:
        line = exc.position[0] if getattr(exc, "position", None) else "?"
        raise ManifestError(f"invalid XML at line {line}") from exc
    except RecursionError as exc:
        raise ManifestError("XML nested too deeply") from exc
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.rpartition("}")[2]
    return root


def load_ini(content: bytes | None) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(decode_text(content))
    except configparser.Error as exc:
        raise ManifestError(f"invalid INI: {exc.message.splitlines()[0]}") from exc
    return parser


class StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases (no "billion laughs") and without duplicate keys."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable keys are reported by the constructor itself
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def load_yaml(content: bytes | None) -> Any:
    text = decode_text(content)
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        raise ManifestError(f"YAML error at {where}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"YAML error: {exc}") from exc
    except RecursionError as exc:
        raise ManifestError("YAML nested too deeply") from exc
