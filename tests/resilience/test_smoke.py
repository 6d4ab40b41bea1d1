from tests.resilience.client import Api, Db


def test_stack_serves(api: Api, sql: Db) -> None:
    assert api.get("/health/ready").status_code in (200, 301, 404)
    assert sql.value("SELECT count(*) FROM profiles_customer") > 0
