"""AWS's ``redshift_connector`` reaches the embedded PostgreSQL through the Redshift wire front."""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal

import pytest
import redshift_connector

from flightpipe_local.redshift_wire import (
    REDSHIFT_ONLY_PARAMETERS,
    RedshiftWireFront,
    postgres_login,
    postgres_parameters,
    postgres_socket_path,
)

pytestmark = pytest.mark.warehouse


@pytest.fixture
def front(redshift_standin):
    with RedshiftWireFront(
        redshift_standin.uri, session_parameters=redshift_standin.session_parameters
    ) as started:
        yield started


def connect(front: RedshiftWireFront, **options) -> redshift_connector.Connection:
    return redshift_connector.connect(
        host=front.host,
        port=front.port,
        database="postgres",
        user="postgres",
        password="",
        ssl=False,
        timeout=30,
        **options,
    )


def test_select_returns_typed_rows_with_their_description(front):
    with connect(front) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT 7 AS flights, 'LAX'::varchar(10) AS airport, DATE '2024-03-05' AS day, "
            "12.50::numeric(7,2) AS delay, NULL::varchar AS missing "
            "UNION ALL SELECT -1, 'É', DATE '1999-12-31', 0.05, 'x' ORDER BY flights"
        )
        rows = [tuple(row) for row in cursor.fetchall()]
        described = [(column[0], column[1]) for column in cursor.description]

    assert rows == [
        (-1, "É", datetime.date(1999, 12, 31), Decimal("0.05"), "x"),
        (7, "LAX", datetime.date(2024, 3, 5), Decimal("12.50"), None),
    ]
    # PostgreSQL's type OIDs, which are Redshift's too: int4, varchar, date, numeric
    assert described == [
        ("flights", 23),
        ("airport", 1043),
        ("day", 1082),
        ("delay", 1700),
        ("missing", 1043),
    ]


def test_query_parameters_are_bound_by_the_server(front):
    with connect(front) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT %s::int + 1 AS n, %s::varchar AS s", (41, "it's \\ ok"))
        assert tuple(cursor.fetchone()) == (42, "it's \\ ok")


def test_sessions_get_the_standins_redshift_settings(front):
    with connect(front) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'a\\tb', current_setting('transaction_isolation'), "
            "current_setting('application_name')"
        )
        literal, isolation, application = cursor.fetchone()
    assert literal == "a\tb"  # backslash escapes in literals, as in Redshift
    assert isolation == "repeatable read"  # Redshift's snapshot isolation
    assert application  # the driver's application_name is kept


def test_two_connections_are_served_independently(front):
    holder, waiter = connect(front), connect(front)
    try:
        holder_cursor, waiter_cursor = holder.cursor(), waiter.cursor()
        holder_cursor.execute("SELECT pg_advisory_lock(4242), pg_backend_pid()")
        holder_pid = holder_cursor.fetchone()[1]
        result: list = []
        blocked = threading.Thread(
            target=lambda: result.append(
                waiter_cursor.execute("SELECT pg_advisory_lock(4242), pg_backend_pid()").fetchone()
            )
        )
        blocked.start()
        blocked.join(0.5)
        assert blocked.is_alive()  # the waiter's session waits on the lock...
        holder_cursor.execute("SELECT 1")  # ...while the holder's still answers
        assert tuple(holder_cursor.fetchone()) == (1,)
        holder_cursor.execute("SELECT pg_advisory_unlock(4242)")
        blocked.join(30)
        assert not blocked.is_alive() and result[0][1] != holder_pid
        waiter_cursor.execute("SELECT pg_advisory_unlock(4242)")
    finally:
        holder.close()
        waiter.close()


def test_sql_error_is_a_programming_error_and_the_connection_recovers(front):
    with connect(front) as connection, connection.cursor() as cursor:
        with pytest.raises(redshift_connector.ProgrammingError, match="does not exist"):
            cursor.execute("SELECT * FROM airlines.no_such_table")
        connection.rollback()
        cursor.execute("SELECT 'still here'")
        assert tuple(cursor.fetchone()) == ("still here",)


def test_stopping_the_front_closes_its_sessions(redshift_standin):
    front = RedshiftWireFront(redshift_standin.uri).start()
    connection = connect(front)
    assert front.session_count == 1
    front.stop()
    assert front.session_count == 0
    with pytest.raises(redshift_connector.InterfaceError):
        connection.cursor().execute("SELECT 1")
    with pytest.raises(redshift_connector.InterfaceError):
        redshift_connector.connect(
            host=front.host, port=front.port, user="postgres", password="", ssl=False
        )


def test_redshift_connector_cannot_start_a_session_on_postgresql_directly(redshift_standin):
    # The seam the front exists for: PostgreSQL refuses the driver's Redshift-only parameters.
    with pytest.raises(redshift_connector.ProgrammingError, match="client_protocol_version"):
        redshift_connector.connect(
            unix_sock=postgres_socket_path(redshift_standin.uri),
            database="postgres",
            user="postgres",
            password="",
            ssl=False,
        )


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the driver's own SSLContext()
def test_the_front_refuses_tls_as_a_server_without_it_does(front):
    # Redshift clients ask for TLS by default: locally they pass ssl=False.
    with pytest.raises(redshift_connector.InterfaceError, match="Server refuses SSL"):
        redshift_connector.connect(host=front.host, port=front.port, user="postgres", password="")


def test_redshift_only_start_up_parameters_are_dropped_and_settings_added():
    client = {
        "user": "postgres",
        "database": "dev",
        "application_name": "report",
        "client_protocol_version": "2",
        "driver_version": "Redshift Python Driver 2.2.0",
        "os_version": "Linux",
        "driver_discovery_version": "1",
        "plugin_name": "redshift_connector.plugin.BrowserIdcAuthPlugin",
        "idp_type": "AwsIdc",
    }
    settings = {"standard_conforming_strings": "off", "application_name": "default"}
    assert postgres_parameters(client, settings) == {
        "standard_conforming_strings": "off",
        "user": "postgres",
        "database": "dev",
        "application_name": "report",
    }
    assert "client_protocol_version" in REDSHIFT_ONLY_PARAMETERS


def test_postgres_socket_and_login_are_read_from_a_libpq_uri(tmp_path):
    uri = f"postgresql://postgres:@/postgres?host={tmp_path}"
    assert postgres_socket_path(uri) == str(tmp_path / ".s.PGSQL.5432")
    assert postgres_socket_path(f"{uri}&port=5433") == str(tmp_path / ".s.PGSQL.5433")
    assert postgres_socket_path(tmp_path) == str(tmp_path / ".s.PGSQL.5432")
    assert postgres_login(uri) == ("postgres", "postgres")
    with pytest.raises(ValueError, match="unix-socket"):
        postgres_socket_path("postgresql://u@db.example.com/dev")


def test_local_stack_serves_redshift_connector_at_its_warehouse_endpoint(tmp_path):
    from flightpipe_local.stack import EmulatedStack

    # Only the warehouse step: moto and the deploy are not needed to reach it.
    stack = EmulatedStack(tmp_path, state_dir=tmp_path / "state")
    stack._temp_dir = tmp_path / "work"
    stack.endpoint_url = "http://127.0.0.1:9"  # S3 is not read here
    try:
        stack._start_warehouse()
        endpoint = stack.warehouse_endpoint
        assert (endpoint.host, endpoint.database, endpoint.user) == (
            "127.0.0.1",
            "postgres",
            "postgres",
        )
        with (
            redshift_connector.connect(
                host=endpoint.host,
                port=endpoint.port,
                database=endpoint.database,
                user=endpoint.user,
                password="",
                ssl=False,
            ) as connection,
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT getdate() IS NOT NULL")
            assert tuple(cursor.fetchone()) == (True,)
    finally:
        stack.stop()
    assert stack.warehouse_front is None and stack.standin is None
