from tests.pages.conftest import public  # noqa: F401 - a fixture
from tests.pages.factory import artifact_store  # noqa: F401
