"""Reading one commit for planning: which base the diff can use, and the tree listing
with its build files (read and parsed while git is still listing)."""

from planner.classify import CONFIG_PATH
from planner.discovery import candidate_records, select_build_files
from planner.discovery.common import parse_blob
from planner.git import NULL_SHA, Blob, BlobReader, Entry, Git, entry
from planner.manifests import MAX_MANIFEST_BYTES

_CONFIG = frozenset({CONFIG_PATH})


class Listing:
    """Receives the tree listing batch by batch: keeps the build files, asks for their
    contents at once (reading overlaps listing) and notes whether ci.ai.yaml exists.

    ``parse``: parse each build file as it arrives. Off when a recipe may spare
    discovery: then only the fingerprint needs the contents, and discovery parses
    them itself if the recipe turns out stale."""

    def __init__(self, reader: BlobReader, head: str, parse: bool = True) -> None:
        self.reader, self.head, self.parse = reader, head, parse
        self.read: list[str] = []
        self.present: list[str] = []
        self.tickets: list[int] = []
        self.parsed: dict[str, object] = {}  # filled by the reading thread
        self.oids: dict[str, str] = {}  # build file -> git object id (cache keys)
        self.config: Entry | None = None

    def __call__(self, batch: bytes) -> None:
        entries = [entry(r) for r in candidate_records(batch, also=_CONFIG)]
        kept = {e.path: e for e in entries}
        read, present = select_build_files(kept)
        self.read += read
        self.present += present
        self.oids.update((p, kept[p].oid) for p in (*read, *present))
        wanted = [kept[p] for p in read]
        then = self._parse if self.parse else None  # not kept: self -> self would be a cycle
        self.tickets += self.reader.request(self.head, wanted, MAX_MANIFEST_BYTES, then)
        self.config = kept.get(CONFIG_PATH, self.config)

    def _parse(self, wanted: Entry | str, blob: Blob) -> None:
        """Parse each manifest as it arrives, while git is still listing the tree."""
        path = wanted if isinstance(wanted, str) else wanted.path
        self.parsed[path] = parse_blob(path, blob)

    def blobs(self) -> dict[str, Blob]:
        return dict(zip(self.read, self.reader.collect(self.tickets), strict=True))


def diff_base(
    git: Git, reader: BlobReader, base_sha: str | None, head: str, forced: str | None
) -> tuple[str | None, str | None]:
    """(base commit, None) when a diff is possible, else (None, why not); the base is
    resolved by the plan's cat-file."""
    if forced:
        return None, forced
    if not base_sha:
        return None, "no base commit to compare with"
    if base_sha == NULL_SHA:
        return None, "first push of a branch: the base is the null commit"
    base = reader.commit(base_sha)
    if base is None:
        return None, f"base {base_sha[:12]} is not in the repository"
    parent = reader.commit(f"{head}^")  # the usual push: no merge-base process needed
    if parent != base and not git.is_ancestor(base, head):
        return None, f"base {base[:12]} is not an ancestor of head {head[:12]} (force push?)"
    return base, None
