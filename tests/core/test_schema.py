"""The migrated schema equals the spec §5 DDL in substance, on every backend.

`docs/spec-ddl.sql` is the spec's DDL verbatim; it is parsed here and compared
with what Django's introspection sees in the test database: columns,
NULL/NOT NULL, VARCHAR lengths, unique keys, secondary indexes, foreign keys.
Then the constraints are shown to be enforced, not just declared.
"""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import DataError, IntegrityError, connection, transaction

from tests.factories import ConversationFactory, ExternalAccountFactory, IdentityFactory, LeadPostFactory, MessageFactory

DDL = (Path(__file__).resolve().parents[2] / "docs" / "spec-ddl.sql").read_text()
REPLACED_BY_DJANGO = {"local_users", "sessions"}  # Django's auth user and sessions


def parse_ddl(text):
    tables = {}
    for name, body in re.findall(r"CREATE TABLE (\w+) \((.*?)\n\);", text, re.S):
        table = {"columns": {}, "unique": {}, "keys": {}, "fks": {}}
        for raw in body.split("\n"):
            line = raw.split("--")[0].strip().rstrip(",")
            if not line:
                continue
            if m := re.match(r"UNIQUE KEY (\w+) \(([^)]*)\)", line):
                table["unique"][m[1]] = [c.strip() for c in m[2].split(",")]
            elif m := re.match(r"KEY (\w+) \(([^)]*)\)", line):
                table["keys"][m[1]] = [c.strip() for c in m[2].split(",")]
            elif m := re.match(r"CONSTRAINT \w+ FOREIGN KEY \((\w+)\) REFERENCES (\w+)", line):
                table["fks"][m[1]] = m[2]
            elif m := re.match(r"(\w+) (\w+)(?:\((\d+)\))?(.*)", line):
                col, typ, size, rest = m[1], m[2], m[3], m[4]
                table["columns"][col] = {
                    "type": typ.upper(),
                    "size": int(size) if size else None,
                    "null": "NOT NULL" not in rest and "PRIMARY KEY" not in rest,
                    "unique": " UNIQUE" in rest,
                }
        tables[name] = table
    return tables


SPEC = {name: t for name, t in parse_ddl(DDL).items() if name not in REPLACED_BY_DJANGO}


def test_the_spec_ddl_was_parsed_completely():
    assert len(SPEC) == 13
    assert SPEC["messages"]["unique"] == {"uq_msg_ext": ["provider_id", "external_message_id"]}
    assert SPEC["conversations"]["fks"]["identity_id"] == "identities"


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(SPEC))
def test_table_matches_the_spec(table):
    spec = SPEC[table]
    with connection.cursor() as cursor:
        description = {c.name: c for c in connection.introspection.get_table_description(cursor, table)}
        constraints = connection.introspection.get_constraints(cursor, table)

    for col, want in spec["columns"].items():
        assert col in description, f"{table}.{col} missing"
        got = description[col]
        assert bool(got.null_ok) == want["null"], f"{table}.{col} NULL-ness differs"
        if want["type"] == "VARCHAR" and connection.vendor == "mysql":
            assert got.internal_size == want["size"], f"{table}.{col} length differs"

    def by_columns(kind):
        return {tuple(c["columns"]): name for name, c in constraints.items() if c.get(kind)}

    uniques = {name: c["columns"] for name, c in constraints.items() if c["unique"] and not c["primary_key"]}
    for name, cols in spec["unique"].items():
        assert uniques.get(name) == cols, f"{table}: unique key {name} {cols} missing (have {uniques})"
    for col, info in spec["columns"].items():
        if info["unique"]:
            assert (col,) in by_columns("unique"), f"{table}.{col} should be unique"

    indexes = {name: c["columns"] for name, c in constraints.items() if c["index"] or c["unique"]}
    for name, cols in spec["keys"].items():
        assert indexes.get(name) == cols, f"{table}: index {name} {cols} missing (have {indexes})"

    fks = {tuple(c["columns"]): c["foreign_key"][0] for c in constraints.values() if c["foreign_key"]}
    for col, target in spec["fks"].items():
        assert fks.get((col,)) == target, f"{table}.{col} should reference {target}"


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "mysql", reason="SHOW CREATE TABLE is MySQL/MariaDB")
def test_mysql_tables_are_utf8mb4_innodb_with_enum_checks_and_mediumtext():
    with connection.cursor() as cursor:
        cursor.execute("SHOW CREATE TABLE messages")
        ddl = cursor.fetchone()[1]
    assert "ENGINE=InnoDB" in ddl
    assert "utf8mb4" in ddl
    assert re.search(r"`body_text` mediumtext", ddl)
    assert "ck_messages_direction" in ddl and "ck_messages_remote_visibility" in ddl
    assert "UNIQUE KEY `uq_msg_ext`" in ddl
    assert "REFERENCES `conversations`" in ddl


def _rejected(create):
    """True if the database refuses the write (FKs are deferred on SQLite, so check them)."""
    try:
        with transaction.atomic():
            create()
            connection.check_constraints()
    except (IntegrityError, DataError):  # strict MySQL refuses an over-long enum value as DataError
        return True
    return False


@pytest.mark.django_db
def test_duplicate_unique_keys_are_rejected():
    message = MessageFactory()
    assert _rejected(lambda: MessageFactory(provider=message.provider, external_message_id=message.external_message_id))
    lead = LeadPostFactory()
    assert _rejected(lambda: LeadPostFactory(provider=lead.provider, external_post_id=lead.external_post_id))
    identity = IdentityFactory()
    assert _rejected(lambda: IdentityFactory(provider=identity.provider, external_username=identity.external_username))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make",
    [
        lambda: MessageFactory(direction="sideways"),
        lambda: MessageFactory(remote_visibility="gone"),
        lambda: LeadPostFactory(status="maybe"),
        lambda: LeadPostFactory(score=101),
        lambda: ExternalAccountFactory(contact_state="pestered"),
    ],
    ids=["direction", "visibility", "lead-status", "score-range", "contact-state"],
)
def test_bad_enum_values_are_rejected(make):
    assert _rejected(make)


@pytest.mark.django_db
def test_missing_foreign_keys_are_rejected():
    conversation = ConversationFactory()
    from inbox.models import Message

    assert _rejected(
        lambda: Message.objects.create(
            provider_id="reddit", conversation_id=conversation.pk + 10_000, direction="in",
            sent_at=datetime.now(UTC), external_message_id="orphan",
        )
    )
    assert _rejected(lambda: Message.objects.create(
        provider_id="nope", conversation=conversation, direction="in", sent_at=datetime.now(UTC),
    ))


@pytest.mark.django_db
def test_a_rejected_write_leaves_nothing_behind():
    from inbox.models import Message

    conversation = ConversationFactory()
    before = Message.objects.count()
    assert _rejected(lambda: [MessageFactory(conversation=conversation), MessageFactory(direction="bad")])
    assert Message.objects.count() == before
