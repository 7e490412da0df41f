from tests.api.conftest import staff_api, stub_training  # noqa: F401  (shared fixtures)
