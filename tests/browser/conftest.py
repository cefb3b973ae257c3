from tests.pages.factory import artifact_store  # noqa: F401 - a fixture
