"""The schema of each release, by its last migration per app: the starting points an
upgrade must work from. Add a line set when cutting a release."""

RELEASES: dict[str, list[tuple[str, str]]] = {
    "0.1.0": [
        ("artifacts", "0003_test_reports"),
        ("audit", "0002_initial"),
        ("policies", "0002_initial"),
        ("runners", "0002_initial"),
        ("runs", "0001_initial"),
        ("vcs", "0001_initial"),
    ],
}
PREVIOUS = "0.1.0"
