from tests.pages.conftest import public  # noqa: F401 - fixtures
from tests.pages.factory import artifact_store  # noqa: F401
